"""Every network the attention path runs receives its inputs on its own device, and the
capture's sums stay on the denoiser's device, proven without a GPU: the networks are moved to
the ``meta`` device (shapes only, no data) and a forward pre-hook on every leaf layer with
weights raises as soon as an input lives elsewhere than those weights.

Whole pipelines run on ``meta`` where the library allows it (SD3, SD3.5, Flux, Sana: their
schedulers step without reading tensor values once their begin index is set) up to the VAE
decoder, which is where the image would need data. The UNet and PixArt denoisers, whose
schedulers read timestep values, are called directly with ``meta`` inputs under capture.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import pytest
import torch

from diffusionscope.core.attention.capture import capture_text_attention
from diffusionscope.core.attention.words import recording_text_inputs
from diffusionscope.core.generation import GenerationSettings, generate

PROMPT = "a red seven, on a white background."


class ReachedDecoder(Exception):
    """The VAE decoder was called with inputs on its device: the run got through."""


def _guard(network: Any, label: str, seen: dict[str, int], stop: bool = False) -> None:
    """Hook every leaf layer with weights: its tensor inputs must be on its weights' device."""

    def check(module: Any, args: tuple, kwargs: dict) -> None:
        device = next(module.parameters()).device
        for value in (*args, *kwargs.values()):
            if isinstance(value, torch.Tensor) and value.device != device:
                raise AssertionError(
                    f"{label}.{type(module).__name__}: input on {value.device}, weights on {device}"
                )
        seen[label] = seen.get(label, 0) + 1
        if stop:
            raise ReachedDecoder

    for module in network.modules():
        if not list(module.children()) and list(module.parameters(recurse=False)):
            module.register_forward_pre_hook(check, with_kwargs=True)


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("sd3", {"joint"}),
        ("sd35m", {"joint"}),
        ("flux_dev", {"joint", "single"}),
        ("sana", {"cross"}),
    ],
)
def test_attention_path_keeps_every_input_on_its_network(
    family_dir, monkeypatch, name: str, kinds: set[str]
) -> None:
    from diffusers import DiffusionPipeline

    import diffusionscope.core.generation as generation

    pipeline = DiffusionPipeline.from_pretrained(family_dir(name)).to("meta")
    pipeline.set_progress_bar_config(disable=True)
    # Seeds are drawn on the CPU and moved (a meta generator does not exist), and the scheduler
    # starts at index 0 instead of looking its first timestep up by value.
    monkeypatch.setattr(generation, "generator_device", lambda _pipeline: "cpu")
    scheduler = pipeline.scheduler

    @functools.wraps(scheduler.set_timesteps)
    def set_timesteps(*args: Any, _original=scheduler.set_timesteps, **kwargs: Any) -> None:
        _original(*args, **kwargs)
        scheduler.set_begin_index(0)

    monkeypatch.setattr(scheduler, "set_timesteps", set_timesteps)
    seen: dict[str, int] = {}
    networks = {n: c for n, c in pipeline.components.items() if isinstance(c, torch.nn.Module)}
    for label, network in networks.items():
        if label == "vae":
            _guard(network.decoder, label, seen, stop=True)
        else:
            _guard(network, label, seen)
    with (
        pytest.raises(ReachedDecoder),
        recording_text_inputs(pipeline),
        # The last step is selected: its sums are never flushed to the host (the decoder stops
        # the run first), since meta tensors hold no data to copy.
        capture_text_attention(pipeline, [1], (64, 64)) as buffers,
    ):
        generate(pipeline, [0], GenerationSettings(steps=2, height=64, width=64), [PROMPT])
    assert set(seen) == set(networks)  # every network ran, each on its own device
    assert set(buffers.kinds.values()) == kinds
    assert buffers._step_sums
    assert all(t.device.type == "meta" for t in buffers._step_sums.values())


def _unet_inputs(model: Any) -> dict[str, Any]:
    return {
        "sample": torch.empty(2, 4, 8, 8, device="meta"),
        "timestep": torch.empty(2, device="meta"),
        "encoder_hidden_states": torch.empty(
            2, 16, model.config.cross_attention_dim, device="meta"
        ),
    }


def _pixart_inputs(model: Any) -> dict[str, Any]:
    return {
        "hidden_states": torch.empty(2, 4, 32, 32, device="meta"),
        "encoder_hidden_states": torch.empty(2, 120, model.config.caption_channels, device="meta"),
        "encoder_attention_mask": torch.ones(2, 120, device="meta"),
        "timestep": torch.empty(2, device="meta"),
        "added_cond_kwargs": {"resolution": None, "aspect_ratio": None},
    }


class Stop(Exception):
    """Leave the capture before its sums are copied to the host (meta tensors hold no data)."""


@pytest.mark.parametrize(
    ("name", "component", "inputs"),
    [("sd15", "unet", _unet_inputs), ("pixart_alpha", "transformer", _pixart_inputs)],
)
def test_cross_attention_capture_stays_on_the_denoiser_device(
    family_dir, name: str, component: str, inputs
) -> None:
    from diffusers import DiffusionPipeline

    model = getattr(DiffusionPipeline.from_pretrained(family_dir(name)), component).to("meta")
    seen: dict[str, int] = {}
    _guard(model, component, seen)
    holder = types.SimpleNamespace(**{component: model})
    with pytest.raises(Stop), capture_text_attention(holder, [0], (8, 8)) as buffers:
        with torch.inference_mode():
            model(**inputs(model))
        raise Stop
    assert seen[component] > 0
    assert set(buffers.kinds.values()) == {"cross"}
    assert buffers._step_sums
    assert all(t.device.type == "meta" for t in buffers._step_sums.values())
