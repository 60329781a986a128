"""Capturing true cross-attention probabilities during generation.

A forward hook on ``attn2`` sees the layer's *output* hidden states, never where each text
token is attended; diffusers' default SDPA processor never even forms the probabilities. Here a
processor wraps each cross-attention layer's own processor: the layer's output is computed by
the original processor, untouched (so images are bit-identical with capture on or off), and on
the side the probabilities softmax(QKᵀ·scale) are recomputed for the conditional half of the
classifier-free-guidance batch only, averaged over heads, and added into fixed-size buffers:
one per resolution group for each selected step, plus a running sum over all steps. Memory is
``groups × (selected steps + 1) × tokens × pixels``, whatever the number of steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from diffusionscope.core.errors import InputError


def denoiser(pipeline: Any) -> tuple[str, Any]:
    for name in ("unet", "transformer"):
        model = getattr(pipeline, name, None)
        if model is not None and hasattr(model, "attn_processors"):
            return name, model
    raise InputError(f"{type(pipeline).__name__}: no UNet or transformer with attention layers")


def cross_attention_layers(model: Any) -> list[str]:
    """Processor names of the cross-attention (``attn2``) layers: image queries, text keys."""
    return [name for name in model.attn_processors if ".attn2." in f".{name}"]


@dataclass
class CaptureBuffers:
    """Fixed-size sums of head-averaged probabilities, keyed by spatial size ``(h, w)``."""

    selected_steps: list[int]
    latent_size: tuple[int, int]
    step: int = -1
    selected: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # [K, T, h*w]
    total: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # [T, h*w]
    layers: dict[tuple[int, int], set[str]] = field(default_factory=dict)

    def grid(self, pixels: int) -> tuple[int, int]:
        """The spatial size of a layer from its pixel count and the latent's aspect ratio."""
        height, width = self.latent_size
        scale = math.sqrt(height * width / pixels)
        return max(1, round(height / scale)), max(1, round(width / scale))

    def add(self, layer: str, probabilities: torch.Tensor) -> None:
        """``probabilities``: ``[pixels, tokens]`` for one image, already head-averaged."""
        pixels, tokens = probabilities.shape
        key = self.grid(pixels)
        maps = probabilities.T.to(torch.float32).cpu()  # [tokens, pixels]
        if key not in self.total:
            self.total[key] = torch.zeros(tokens, pixels)
            self.selected[key] = torch.zeros(len(self.selected_steps), tokens, pixels)
            self.layers[key] = set()
        self.layers[key].add(layer)
        self.total[key] += maps
        if self.step in self.selected_steps:
            self.selected[key][self.selected_steps.index(self.step)] += maps


def attention_probabilities(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor,
                            attention_mask: torch.Tensor | None = None,
                            temb: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Head-averaged softmax(QKᵀ·scale), ``[batch, pixels, tokens]``, with the same
    pre-processing the default processors apply before their projections.

    Gradients flow through it, so the zoo build can train on the same maps that are captured.
    """
    x = hidden_states
    if getattr(attn, "spatial_norm", None) is not None:
        x = attn.spatial_norm(x, temb)
    if x.ndim == 4:
        batch, channels, height, width = x.shape
        x = x.view(batch, channels, height * width).transpose(1, 2)
    if getattr(attn, "group_norm", None) is not None:
        x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
    if getattr(attn, "norm_cross", None):
        context = attn.norm_encoder_hidden_states(context)
    query = attn.head_to_batch_dim(attn.to_q(x)).float()
    key = attn.head_to_batch_dim(attn.to_k(context)).float()
    if attention_mask is not None:
        attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1],
                                                     x.shape[0]).float()  # fmt: skip
    probabilities = attn.get_attention_scores(query, key, attention_mask)  # [b*heads, n, T]
    return probabilities.view(-1, attn.heads, *probabilities.shape[1:]).mean(dim=1)


class ProbabilityTap:
    """Wraps one layer's processor: the layer's output is the original's, untouched, and
    :meth:`record` sees the inputs of every cross-attention call."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, attn: Any, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:  # fmt: skip
        output = self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb,
                               *args, **kwargs)  # fmt: skip
        if encoder_hidden_states is not None:
            self.record(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return output

    def record(self, attn: Any, hidden_states: torch.Tensor, context: torch.Tensor,
               attention_mask: torch.Tensor | None, temb: Any) -> None:  # fmt: skip
        raise NotImplementedError


class CapturingProcessor(ProbabilityTap):
    """Adds the first conditional image's probabilities to the capture buffers."""

    def __init__(self, original: Any, buffers: CaptureBuffers, layer: str, guided: bool) -> None:
        super().__init__(original)
        self.buffers = buffers
        self.layer = layer
        self.guided = guided

    @torch.no_grad()
    def record(self, attn: Any, hidden_states: torch.Tensor, context: torch.Tensor,
               attention_mask: torch.Tensor | None, temb: Any) -> None:  # fmt: skip
        if self.guided:  # diffusers orders a guided batch [unconditional, conditional]
            half = hidden_states.shape[0] // 2
            hidden_states, context = hidden_states[half:], context[half:]
            if attention_mask is not None and attention_mask.shape[0] == 2 * half:
                attention_mask = attention_mask[half:]
        probabilities = attention_probabilities(attn, hidden_states, context, attention_mask, temb)
        self.buffers.add(self.layer, probabilities[0])  # one image per generation call


@contextlib.contextmanager
def tapped_cross_attention(model: Any, tap: Callable[[str, Any], ProbabilityTap]
                           ) -> Iterator[None]:  # fmt: skip
    """Wrap the ``attn2`` processors of ``model`` with ``tap(name, original)``, every other
    processor kept as it was; restore all of them on the way out."""
    layers = set(cross_attention_layers(model))
    originals = dict(model.attn_processors)
    model.set_attn_processor({name: tap(name, processor) if name in layers else processor
                              for name, processor in originals.items()})  # fmt: skip
    try:
        yield
    finally:
        model.set_attn_processor(originals)


@contextlib.contextmanager
def capture_cross_attention(pipeline: Any, selected_steps: list[int], latent_size: tuple[int, int],
                            guided: bool) -> Iterator[CaptureBuffers]:  # fmt: skip
    """Install capturing processors on the ``attn2`` layers only; restore every processor."""
    _, model = denoiser(pipeline)
    if not cross_attention_layers(model):
        raise InputError(
            f"{type(pipeline).__name__}: no cross-attention (attn2) layers; joint-attention "
            "transformers (SD3, Flux) are not supported by the attention mode"
        )
    buffers = CaptureBuffers(selected_steps=list(selected_steps), latent_size=latent_size)

    def count_step(_module: Any, _args: Any) -> None:
        buffers.step += 1

    def tap(name: str, original: Any) -> CapturingProcessor:
        return CapturingProcessor(original, buffers, name, guided)

    handle = model.register_forward_pre_hook(count_step)
    try:
        with tapped_cross_attention(model, tap):
            yield buffers
    finally:
        handle.remove()
