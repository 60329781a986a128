"""Device placement, proven without a GPU: every network the metrics mode runs is moved to the
``meta`` device, fed exactly what the mode feeds it, and a forward pre-hook checks that its
input arrived on ``meta`` too (an input left on the CPU raises; see ``device_checks.py``).
Tensors handed to a cross-process sync and to the auto-batch collectives are checked the same
way. One forward pass serves features and logits.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from device_checks import META, Reached, input_on, leaf_layers

from diffusionscope.core.zoo import DIGITS_CLIP, DIGITS_LDM


def _images() -> list[np.ndarray]:
    """What a folder of mixed sizes gives the extractor: uint8 ``[H,W,3]`` arrays on the CPU."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((40, 30), (32, 32))]


# ---- feature extractors -------------------------------------------------------------------


def random_inception(device: str = "cpu"):
    """torch-fidelity's Inception-v3 with random weights (the real ones need a download)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from diffusionscope.core.metrics.features import InceptionExtractor

    with (
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None),
        mock.patch(
            "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", return_value={}
        ),
    ):
        return InceptionExtractor(device, None).eval()


def test_inception_gets_its_input_on_its_device() -> None:
    """torch-fidelity's forward does not move its input: the extractor must."""
    from diffusionscope.core.metrics.reference import extract

    extractor = random_inception().to(META)
    with input_on(extractor.net.Conv2d_1a_3x3) as seen, pytest.raises(Reached):
        extract(extractor, np.stack([_images()[1]] * 2), with_logits=True)
    assert seen == [META]


def test_digits_extractor_gets_its_input_on_its_device() -> None:
    from diffusionscope.core.metrics.features import extract, get_extractor

    extractor = get_extractor("digits", "cpu").to(META)
    with input_on(extractor.net.body[0][0]), pytest.raises(Reached):
        extract(extractor, _images(), with_logits=True)


def test_clip_extractor_gets_its_input_on_its_device() -> None:
    """The CLIP extractor (``--features clip`` and CMMD): its image processor runs there too."""
    from diffusionscope.core.metrics.features import extract, get_extractor

    extractor = get_extractor("clip", "cpu", model=str(DIGITS_CLIP)).to(META)
    with input_on(extractor.net.vision_model.embeddings.patch_embedding), pytest.raises(Reached):
        extract(extractor, _images())


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random DINOv2 with its image processor (resize 40, crop 28), saved as a folder."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=28,
        patch_size=14,
    )
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(
        size={"shortest_edge": 40}, crop_size={"height": 28, "width": 28}, do_center_crop=True
    ).save_pretrained(folder)
    return folder


def test_dinov2_extractor_gets_its_input_on_its_device(tiny_dinov2: Path) -> None:
    from diffusionscope.core.metrics.features import extract, get_extractor

    extractor = get_extractor("dinov2", "cpu", model=str(tiny_dinov2)).to(META)
    layer = extractor.net.embeddings.patch_embeddings.projection
    with input_on(layer), pytest.raises(Reached):
        extract(extractor, _images())


def test_dinov2_features_do_not_depend_on_batch_make_up(tiny_dinov2: Path) -> None:
    """Each image goes through the model's own processor at its own size (cropped, not
    squashed), so an image's features are the same alone or among others of other sizes."""
    from diffusionscope.core.metrics.features import extract, get_extractor

    extractor = get_extractor("dinov2", "cpu", model=str(tiny_dinov2))
    images = _images()
    together, _ = extract(extractor, images)
    alone, _ = extract(extractor, [images[0]])
    np.testing.assert_allclose(together[0], alone[0], rtol=1e-5, atol=1e-6)
    assert "centre crop 28x28" in extractor.resize_policy


# ---- CLIP score -----------------------------------------------------------------------------


def test_clip_score_runs_where_the_model_is() -> None:
    """torchmetrics' update would move the model to the images' (CPU) device; ours keeps it."""
    from diffusionscope.core.metrics.clip_score import ClipScorer

    scorer = ClipScorer(str(DIGITS_CLIP), "cpu")
    scorer.model.to(META)
    vision = scorer.model.vision_model.embeddings.patch_embedding
    text = scorer.model.text_model.embeddings.token_embedding
    with (
        input_on(vision, stop=False) as image_calls,
        input_on(text) as text_calls,
        pytest.raises(Reached),
    ):
        scorer.scores(_images(), ["a red seven on a white background", "a blue two"])
    assert image_calls == [META] and text_calls == [META]
    assert scorer.device == META  # still where it was put


def test_clip_score_equals_torchmetrics_on_the_cpu() -> None:
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update

    from diffusionscope.core.metrics.clip_score import ClipScorer
    from diffusionscope.core.zoo.clip import load_digits_clip

    images = np.stack([_images()[1]] * 3)
    prompts = ["a red seven on a white background", "a blue two", "a green four"]
    ours = ClipScorer(str(DIGITS_CLIP), "cpu").scores(images, prompts)
    model, processor = load_digits_clip()
    with torch.inference_mode():
        theirs, _ = _clip_score_update(
            list(torch.from_numpy(images).permute(0, 3, 1, 2)), prompts, model, processor
        )
    np.testing.assert_allclose(ours, theirs.double().numpy(), rtol=1e-5, atol=1e-4)


# ---- the pipeline, as the metrics mode samples from it ----------------------------------------


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from family_pipelines import build_family

    base = tmp_path_factory.mktemp("families")
    return {name: build_family(name, base / name) for name in ("sdxl", "sd3", "flux_schnell")}


@pytest.mark.parametrize("family", ["digits", "sdxl", "sd3", "flux_schnell"])
def test_pipeline_networks_get_their_inputs_on_their_device(
    family: str, family_dirs, monkeypatch
) -> None:
    """Text encoders, denoiser and VAE decoder, each with every layer's input checked, through
    the metrics mode's own sampling (``PipelineImages``)."""
    import diffusionscope.core.generation as generation
    from diffusionscope.core.loading import load_pipeline
    from diffusionscope.core.metrics.acceleration import denoiser_of
    from diffusionscope.core.metrics.loop import PipelineImages

    source = str(DIGITS_LDM) if family == "digits" else str(family_dirs[family])
    pipeline = load_pipeline(source, "cpu", "fp32").pipeline
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(META)
    # meta has no random generator (seeds stay on the CPU, as on MPS hosts), and schedulers
    # copy their sigmas to the CPU and look their timesteps up by value, which tensors without
    # data cannot do: the schedule is made on the CPU, and only the timesteps the pipeline
    # hands to the denoiser are put on meta, starting from the first.
    monkeypatch.setattr(generation, "generator_device", lambda pipe: "cpu")
    scheduler = pipeline.scheduler
    set_timesteps = scheduler.set_timesteps

    @functools.wraps(set_timesteps)  # pipelines read its signature
    def timesteps_on_meta(*args, device=None, **kwargs) -> None:
        set_timesteps(*args, device="cpu", **kwargs)
        scheduler.timesteps = scheduler.timesteps.to(META)
        scheduler.set_begin_index(0)

    monkeypatch.setattr(scheduler, "set_timesteps", timesteps_on_meta)
    networks = {"denoiser": denoiser_of(pipeline), "vae": pipeline.vae.decoder}
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
        if getattr(pipeline, name, None) is not None:
            networks[name] = getattr(pipeline, name)
    calls: dict[str, list] = {name: [] for name in networks}
    with contextlib.ExitStack() as stack:
        for name, network in networks.items():
            for layer in leaf_layers(network):
                stack.enter_context(input_on(layer, stop=False, seen=calls[name]))
        stack.enter_context(input_on(networks["vae"].conv_in))  # the last network: stop there
        with pytest.raises(Reached):
            PipelineImages(
                pipeline,
                ["a red seven on a white background"] * 2,
                generation.GenerationSettings(steps=2, guidance_scale=3.0),
                seed=0,
            ).batch(range(2))
    assert all(calls[name] for name in networks), {k: len(v) for k, v in calls.items()}


# ---- cross-process tensors --------------------------------------------------------------------


def test_step_rows_reach_the_sync_on_the_process_device() -> None:
    """NCCL gathers only CUDA tensors: rows are handed to torchmetrics' sync on this process's
    device (meta here, standing in for the GPU)."""
    from diffusionscope.core.metrics.loop import StepRows, gather_rows

    handed: list[torch.device] = []

    def sync(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        handed.append(tensor.device)
        return [torch.zeros(tensor.shape, dtype=tensor.dtype)]  # what the other side sends

    gather = StepRows(dist_sync_fn=sync, distributed_available_fn=lambda: True)
    rows = np.arange(12, dtype=np.float64).reshape(3, 4)
    gathered = gather_rows(gather, rows, META)
    assert handed == [META]
    assert gathered.shape == (3, 4) and gathered.device.type == "cpu"


def test_auto_batch_collectives_use_the_process_device(monkeypatch) -> None:
    import torch.distributed as dist

    from diffusionscope.core.metrics.batching import distributed_agreement

    devices: list[torch.device] = []

    def all_reduce(tensor: torch.Tensor, op=None) -> None:
        devices.append(tensor.device)
        raise Reached

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    agree, any_failed = distributed_agreement(META)
    for call in (lambda: agree(8), lambda: any_failed(True)):
        with pytest.raises(Reached):
            call()
    assert devices == [META, META]


# ---- one forward pass per batch ---------------------------------------------------------------


def test_features_and_logits_come_from_one_forward_pass(monkeypatch) -> None:
    """The Inception Score's logits and the features are one pass over each batch (each group
    of same-size images), for the reference and the generated side alike."""
    from diffusionscope.core.metrics.features import get_extractor
    from diffusionscope.core.metrics.reference import extract

    images = [*_images(), _images()[0]]  # two of 40x30, one of 32x32
    digits = get_extractor("digits")
    calls: list[int] = []
    handle = digits.net.body[0][0].register_forward_pre_hook(
        lambda module, args: calls.append(len(args[0]))
    )
    try:
        features, logits = extract(digits, images, with_logits=True)
    finally:
        handle.remove()
    assert sorted(calls) == [1, 2]
    assert features.shape == (3, 64) and logits.shape == (3, 10)
    np.testing.assert_array_equal(features[0], features[2])  # the same picture, the same numbers

    inception = random_inception()  # its full forward costs seconds on a CPU: count the calls
    passes: list[int] = []

    def forward(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        passes.append(len(batch))
        return torch.zeros(len(batch), 2048), torch.zeros(len(batch), 1008)

    monkeypatch.setattr(inception.net, "_torch_fidelity_forward", forward)
    features, logits = extract(inception, images, with_logits=True)
    assert sorted(passes) == [1, 2] and logits.shape == (3, 1008)
