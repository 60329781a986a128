"""The latent mode on every pipeline family (tiny random pipelines, tests/family_pipelines.py):
strips whose ends are the pipeline's own images, pixel for pixel; inversion mechanics; what
cannot be inverted refused from the configs; every network fed on its own device."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from family_pipelines import FAMILIES, FAMILY_INFO
from PIL import Image

from diffusionscope.core import pipeline_parts as parts
from diffusionscope.core.errors import InputError
from diffusionscope.core.families import read_model_configs
from diffusionscope.core.generation import GenerationSettings
from diffusionscope.core.images import float_to_uint8
from diffusionscope.core.latent import check_model, explore

PROMPT = "a red seven on a white background"
OTHER_PROMPT = "a cat on a mat"  # fewer T5 / Gemma tokens: the masks of the two differ
GUIDANCE = 3.0  # classifier-free guidance on where the family has it
INVERTIBLE = [name for name in FAMILIES if name != "lcm"]

#: (height, width) asked of each family: non-square, so --width is exercised; PixArt's is put in
#: a resolution bin (denoised at another size, resized back); Sana keeps its own default (1024,
#: denoised in the 512 bin); Flux smaller than its 256 px default (4096 tokens) to stay fast.
SIZES: dict[str, tuple[int | None, int | None]] = {
    **{name: (64, 48) for name in ("sd15", "sd21v", "sdxl", "lcm", "sd3", "sd35m")},
    "pixart_alpha": (200, 300),
    "pixart_sigma": (200, 300),
    "flux_dev": (64, 96),
    "flux_schnell": (64, 96),
    "sana": (None, None),
}


def _own_image(pipeline: Any, prompt: str, seed: int, settings: GenerationSettings) -> np.ndarray:
    """What ``pipe`` itself makes for the seed: its own call, its own noise."""
    sizes = {k: v for k, v in (("height", settings.height), ("width", settings.width)) if v}
    with torch.inference_mode():
        image = pipeline(
            prompt=prompt,
            generator=torch.Generator().manual_seed(seed),
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            output_type="np",
            **sizes,
        ).images[0]
    return float_to_uint8(image)


def _max_difference(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("name", FAMILIES)
def test_strip_ends_are_the_pipelines_own_images(name: str, family_pipeline) -> None:
    """Seed and prompt strips end exactly (max pixel difference 0) on ``pipe(prompt,
    generator=seed)``: conditioning from encode_prompt by keyword, every value handed back
    (pooled embeddings, masks), latents from prepare_latents (unscaled where the scheduler
    scales, packed on Flux, at PixArt's and Sana's bin size), LCM's later noise from the
    seed's own generator."""
    pipeline = family_pipeline(name)
    height, width = SIZES[name]
    settings = GenerationSettings(steps=2, guidance_scale=GUIDANCE, height=height, width=width)
    own = [_own_image(pipeline, PROMPT, seed, settings) for seed in (3, 4)]
    expected = (height or FAMILY_INFO[name].height, width or FAMILY_INFO[name].width)
    assert own[0].shape == (*expected, 3)
    assert parts.image_size(pipeline, height, width) == expected
    strip = explore.seed_strip(pipeline, settings, PROMPT, (3, 4), 4, "slerp")  # 2 batched
    assert strip.shape == (4, *expected, 3)
    assert _max_difference(strip[0], own[0]) == 0 and _max_difference(strip[-1], own[1]) == 0
    for middle in strip[1:-1]:
        assert _max_difference(middle, own[0]) > 0 and _max_difference(middle, own[1]) > 0
    prompts = explore.prompt_strip(pipeline, settings, (PROMPT, OTHER_PROMPT), 3, 3)
    other = _own_image(pipeline, OTHER_PROMPT, 3, settings)
    assert _max_difference(prompts[0], own[0]) == 0 and _max_difference(prompts[-1], other) == 0


@pytest.mark.parametrize("name", ["pixart_alpha", "sana"])
def test_denoise_size_is_the_bin(name: str, family_pipeline) -> None:
    pipeline = family_pipeline(name)
    height, width = SIZES[name]
    h, w = parts.denoise_size(pipeline, height, width)
    conditioning = parts.encode(pipeline, PROMPT, 1.0)
    latents = parts.initial_latents(pipeline, 0, conditioning, height, width).latents
    scale = pipeline.vae_scale_factor
    assert latents.shape[-2:] == (h // scale, w // scale)
    assert (h, w) != parts.image_size(pipeline, height, width)  # binned, then resized back


def _smooth_image(size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    waves = np.stack([np.sin(6 * x), np.cos(5 * y), np.sin(4 * (x + y))], axis=-1)
    return (waves * 100 + 128).astype(np.uint8)[None]


@pytest.mark.parametrize("name", INVERTIBLE)
def test_inversion_round_trip_converges(name: str, family_pipeline) -> None:
    """Inverting then regenerating is exact up to how much the model's prediction changes over
    one step, so the round trip's error in VAE latents must fall as steps grow and end far
    below what fresh noise gives. Random weights make the model's output no image at all; the
    mechanics are what is checked here. Measured from 8 to 32 steps, the error falls 1.6x
    (SDXL), 1.9x (SD 1.5), 4.2x (SD 2.1-v), 7.9x (PixArt), 12-19x (Flux, SD3, Sana), and
    fresh noise lands 186x (SD 2.1-v) to 13848x (Sana) farther."""
    pipeline = family_pipeline(name)
    size = 64
    clean = explore.encode_images(pipeline, _smooth_image(size))
    errors, fresh = [], None
    for steps in (8, 32):
        noise = explore.invert(pipeline, clean, PROMPT, steps, GUIDANCE)
        assert noise.shape == parts.pack(pipeline, clean).shape and torch.isfinite(noise).all()
        back = explore.regenerate_latents(pipeline, noise, PROMPT, steps, (size, size), GUIDANCE)
        errors.append(float(((back - clean) ** 2).mean()))
        if steps == 32:
            other = explore.regenerate_latents(
                pipeline, torch.randn_like(noise), PROMPT, steps, (size, size), GUIDANCE
            )
            fresh = float(((other - clean) ** 2).mean())
    assert errors[1] < errors[0] / 1.4, errors
    assert fresh is not None and fresh > 50 * errors[1], (errors, fresh)


def test_flow_inverse_scheduler_mirrors_the_forward_grid(family_pipeline) -> None:
    """Flux-dev's dynamic shift included: the inverse visits the forward σ's in reverse, from
    0, and its timesteps are its σ's where each step starts."""
    pipeline = family_pipeline("flux_dev")
    inverse, forward = parts.inversion_schedulers(pipeline)
    sigmas = np.linspace(1.0, 1 / 6, 6)
    forward.set_timesteps(sigmas=sigmas, mu=0.8)
    inverse.set_timesteps(sigmas=sigmas, mu=0.8)
    assert torch.equal(inverse.sigmas, forward.sigmas.flip(0))
    assert float(inverse.sigmas[0]) == 0.0 and float(inverse.sigmas[-1]) == float(forward.sigmas[0])
    assert torch.allclose(inverse.timesteps, inverse.sigmas[:-1] * 1000)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sd15", "ddim"),
        ("sd21v", "ddim"),
        ("sdxl", "ddim"),
        ("pixart_alpha", "ddim"),
        ("sd3", "flow"),
        ("flux_dev", "flow"),
        ("sana", "flow"),
    ],
)
def test_inversion_kind_comes_from_the_configs(name: str, kind: str, family_dir) -> None:
    configs = read_model_configs(str(family_dir(name)))
    assert parts.inversion_kind(configs.family, configs.scheduler) == kind


def _args(**given: Any) -> Any:
    from diffusionscope.core.cli import build_parser, mode_options

    options = ["run", "--modes", "latent"]
    for key, value in given.items():
        options += [f"--{key.replace('_', '-')}", str(value)]
    return mode_options(build_parser().parse_args(options), "latent")


def test_check_model_refuses_inverting_lcm_and_takes_the_others(family_dir, tmp_path) -> None:
    images = []
    for index in range(2):
        images.append(tmp_path / f"{index}.png")
        Image.fromarray(_smooth_image(64)[0]).save(images[-1])
    pair = ",".join(map(str, images))
    lcm = str(family_dir("lcm"))
    with pytest.raises(InputError, match="LCM samples by consistency steps"):
        check_model(_args(model=lcm, prompt=PROMPT, images=pair), read_model_configs(lcm))
    check_model(_args(model=lcm, prompt=PROMPT), read_model_configs(lcm))  # seeds: fine
    for name in ("sdxl", "sd3", "flux_dev", "pixart_sigma", "sana"):
        model = str(family_dir(name))
        check_model(_args(model=model, prompt=PROMPT, images=pair), read_model_configs(model))


def test_check_model_refuses_sizes_the_pipeline_refuses(family_dir) -> None:
    sd3 = str(family_dir("sd3"))
    with pytest.raises(InputError, match="--width 40: .* multiple of 16"):
        check_model(_args(model=sd3, prompt=PROMPT, width=40), read_model_configs(sd3))
    pixart = str(family_dir("pixart_alpha"))  # binned: any size is put in a bin
    check_model(_args(model=pixart, prompt=PROMPT, width=300), read_model_configs(pixart))


def test_inverting_lcm_is_refused_in_one_line(family_pipeline) -> None:
    with pytest.raises(InputError, match="cannot invert images"):
        explore.invert(family_pipeline("lcm"), torch.zeros(1, 4, 8, 8), PROMPT, 2)


# ---- every network gets its inputs on its own device --------------------------------------------


class Reached(Exception):
    """Raised by the first layer's hook once it has checked its input: the run stops there."""


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def _watch(network: torch.nn.Module, log: list[str]) -> list[Any]:
    """Forward pre-hooks on the network and on each of its layers: the first one called checks
    that every tensor it gets (nested dicts included) is on the meta device, else raises, and
    stops the run with :class:`Reached`. The network's own hook sees what the caller feeds it
    (a UNet's added_cond_kwargs, a T5's mask, which transformers turns into a bias before any
    layer runs); the layers' hooks catch methods that bypass ``forward`` (``vae.encode``)."""

    def first_call(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        for tensor in _tensors(list(args)) + _tensors(kwargs):
            if tensor.device.type != "meta":
                raise AssertionError(f"{type(module).__name__} got a tensor on {tensor.device}")
        log.append(type(module).__name__)
        raise Reached

    leaves = [m for m in network.modules() if not list(m.children())]
    return [m.register_forward_pre_hook(first_call, with_kwargs=True) for m in [network, *leaves]]


def _on_meta(network: torch.nn.Module, run: Callable[[], Any]) -> list[str]:
    log: list[str] = []
    handles = _watch(network, log)
    try:
        with pytest.raises(Reached):
            run()
    finally:
        for handle in handles:
            handle.remove()
    return log


@pytest.mark.parametrize("name", FAMILIES)
def test_every_network_is_fed_on_its_own_device(name: str, family_dir) -> None:
    """Each network moved alone to the meta device (the others stay on the CPU) for the calls
    the latent mode makes to it directly: the VAE (encode, decode) and the text encoders
    (through encode_prompt, whose ``device`` the mode chooses). The denoiser is fed by the
    pipeline's own loop on the pipeline's device: with the whole pipeline on meta, it must
    get the latents and conditioning the mode hands over (sampling and inversion) there."""
    from diffusers import DiffusionPipeline

    def fresh() -> Any:
        pipeline = DiffusionPipeline.from_pretrained(family_dir(name))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    pipeline = fresh()
    vae = pipeline.vae.to("meta")
    assert _on_meta(vae, lambda: explore.encode_images(pipeline, _smooth_image(64)))
    latents = torch.zeros(1, parts.parts(pipeline).channels(pipeline), 8, 8)
    assert _on_meta(vae, lambda: explore.decode_latents(pipeline, latents))

    pipeline = fresh()
    encoders = [
        getattr(pipeline, n)
        for n in ("text_encoder", "text_encoder_2", "text_encoder_3")
        if getattr(pipeline, n, None) is not None
    ]
    for encoder in encoders:
        encoder.to("meta")
    for encoder in encoders:  # the ones before run through on meta; this one stops the call
        assert _on_meta(encoder, lambda: parts.encode(pipeline, PROMPT, GUIDANCE))

    pipeline = fresh()
    # encoded on the CPU (a T5 with a mask cannot run on meta: transformers reads the mask's
    # values); the pipeline moves the conditioning to its device itself
    conditioning = parts.encode(pipeline, PROMPT, GUIDANCE)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.to("meta")
    if name in INVERTIBLE:
        # Euler's and DPM-Solver's set_timesteps copy their sigmas to the CPU, which a meta
        # tensor cannot do: sample with the inversion's forward scheduler (DDIM, flow Euler),
        # which hands the denoiser the same kinds of inputs.
        pipeline.scheduler = parts.inversion_schedulers(pipeline)[1]
    settings = GenerationSettings(steps=2, guidance_scale=GUIDANCE, height=64, width=64)
    start = parts.initial_latents(pipeline, 0, conditioning, 64, 64)
    denoiser = parts.denoiser(pipeline)
    assert _on_meta(
        denoiser,
        lambda: explore.render(
            pipeline, settings, conditioning, start.latents, start.generator(pipeline)
        ),
    )
    if name in INVERTIBLE and not name.startswith("pixart"):  # invert encodes the prompt itself
        assert _on_meta(denoiser, lambda: explore.invert(pipeline, latents, PROMPT, 2))


# ---- through the command line ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sdxl", "flux_schnell"])
def test_cli_runs_every_task_on_a_family(name: str, family_dir, tmp_path: Path) -> None:
    """SDXL used to crash in prompts and images (SD's encode_prompt signature, no
    added_cond_kwargs), Flux in everything (unpacked latents)."""
    from diffusionscope.core.cli import main

    images = []
    for index in range(2):
        images.append(tmp_path / f"{index}.png")
        Image.fromarray(_smooth_image(64)[0][:, ::-1] if index else _smooth_image(64)[0]).save(
            images[-1]
        )
    code = main(
        [
            "run",
            "--modes",
            "latent",
            "--model",
            str(family_dir(name)),
            "--quiet",
            "--runs-root",
            str(tmp_path / "runs"),
            "--features",
            "digits",
            "--steps",
            "2",
            "--frames",
            "2",
            "--height",
            "64",
            "--width",
            "48",
            "--prompt",
            PROMPT,
            "--prompt-b",
            OTHER_PROMPT,
            "--direction",
            "red|blue",
            "--strengths",
            "0,1",
            "--images",
            f"{images[0]},{images[1]}",
            "--latent-tasks",
            "seeds,prompts,images,directions",
        ]
    )
    assert code == 0
    run_dir = next((tmp_path / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())["latent"]
    assert results["images"]["size"] == [64, 48]
    assert results["images"]["inversion"] == ("flow" if name.startswith("flux") else "ddim")
    assert len(results["directions"]["rows"]) == 1
    strip = np.asarray(Image.open(run_dir / results["seeds"]["slerp"]["strip"]))
    assert strip.shape[0] >= 64  # two 64 x 48 frames side by side


def test_check_model_refuses_what_the_configs_rule_out(family_dir) -> None:
    """An unconditional pipeline and a pipeline without a VAE, from their configs alone; a
    single file without configs is left to the loaded pipeline."""
    from diffusionscope.core.families import ModelConfigs

    ddpm = ModelConfigs("x", "folder", "DDPMPipeline", {"unet": ("diffusers", "UNet2DModel")})
    with pytest.raises(InputError, match="DDPMPipeline: the latent mode needs a text-to-image"):
        check_model(_args(prompt=PROMPT), ddpm)
    sd = read_model_configs(str(family_dir("sd15")))
    no_vae = ModelConfigs(
        sd.source,
        sd.kind,
        sd.pipeline_class,
        {k: v for k, v in sd.components.items() if k != "vae"},
        sd.configs,
        sd.scheduler,
    )
    with pytest.raises(InputError, match="--latent-tasks directions: .* has no VAE"):
        check_model(_args(prompt=PROMPT, direction="red|blue"), no_vae)
    check_model(
        _args(prompt=PROMPT, images="a.png,b.png"), ModelConfigs("m.safetensors", "single_file")
    )
