"""Capturing, during generation, where each image token attends among the prompt's tokens.

A forward hook on an attention layer sees its *output*, never where each text token is
attended, and diffusers' fused processors never form the probabilities. Here every processor
of the denoiser is wrapped: the layer's output is the original processor's, untouched (images
are bit-identical with capture on or off), and on the side :mod:`.layers` recomputes, for the
conditional image only, each image query's probabilities over the text keys, from the full
softmax over all the keys the layer attends to (image and text for joint attention).

Two maps are kept per layer call, both head-averaged and ``[tokens, pixels]``:

- ``share``: the text keys' probabilities from the full softmax. A pixel's column sums to its
  share of attention on the text (always 1 for cross-attention, less for joint attention).
- ``renormalised``: the same columns divided by their sum, i.e. the distribution over the text
  tokens given that the pixel attends to text. These are the maps the report shows: they read
  the same way for cross- and joint-attention layers.

Only the selected steps are computed: the probabilities cost one more attention pass per
layer call, so the cost grows with the steps kept, not with the run's length, and the aggregate
map is the mean over the selected steps (``--attention-steps all`` keeps every step).

Memory: the sums live on the denoiser's device, one pair of ``[tokens, pixels]`` buffers per
resolution group for the step being captured and one for the running total over the selected
steps; each selected step is copied to the host once, when the next denoiser call starts. The host
holds ``selected steps × groups × 2 × tokens × pixels`` floats, whatever the number of layers
and steps; the device twice one step's worth.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from ..errors import InputError
from .layers import (
    SELF,
    UnsupportedLayer,
    bind_call,
    call_kind,
    full_probabilities,
    has_added_projections,
    image_queries,
    text_probabilities,
)


def denoiser(pipeline: Any) -> tuple[str, Any]:
    for name in ("unet", "transformer"):
        model = getattr(pipeline, name, None)
        if model is not None and hasattr(model, "attn_processors"):
            return name, model
    raise InputError(f"{type(pipeline).__name__}: no UNet or transformer with attention layers")


def grid_of(pixels: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """The ``(h, w)`` with ``h·w == pixels`` closest to the aspect ratio of ``aspect``."""
    height, width = aspect
    target = math.log(max(height, 1) / max(width, 1))
    best = (1, pixels)
    for h in range(1, math.isqrt(pixels) + 1):
        if pixels % h:
            continue
        for candidate in ((h, pixels // h), (pixels // h, h)):
            error = abs(math.log(candidate[0] / candidate[1]) - target)
            if error < abs(math.log(best[0] / best[1]) - target):
                best = candidate
    return best


@dataclass
class CaptureBuffers:
    """Sums of head-averaged text probabilities per resolution group ``(h, w)``.

    After the capture: ``selected[g]`` / ``selected_share[g]`` are ``[K, tokens, h·w]`` on the
    host (renormalised over the text / full-softmax share), ``total[g]`` / ``total_share[g]``
    the same summed over the selected steps. ``layers[g]`` names the layers summed in a group,
    ``kinds`` each captured layer's kind, ``skipped`` each layer not captured and why.
    """

    selected_steps: list[int]
    latent_size: tuple[int, int]  # aspect hint when the denoiser input has no grid of its own
    step: int = -1
    captured_steps: int = 0  # selected steps that have begun
    text_tokens: int | None = None  # the denoiser's text sequence length
    image_tokens: int | None = None  # the denoiser's token count when it takes a sequence
    grid: tuple[int, int] | None = None  # the denoiser input's latent grid
    batch: int = 1  # the denoiser's batch: 2 when guidance doubles it
    selected: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    selected_share: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    total: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    total_share: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    layers: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # On the device, pixel-major [2, P, T] (share, renormalised) so each layer adds in place
    # without a transpose; turned token-major once, on the host.
    _step_sums: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    _totals: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    _pending: int | None = None  # slot of the selected step whose sums are still on the device

    @property
    def slot(self) -> int | None:
        return self.selected_steps.index(self.step) if self.step in self.selected_steps else None

    @property
    def capturing(self) -> bool:
        """Whether the current denoiser call is a selected step (the only ones computed)."""
        return self._pending is not None

    def begin_call(self, hidden_states: Any, context: Any, image_ids: Any) -> None:
        """A denoiser call starts: the previous step's sums go to the host if it was selected,
        and the call's text length and latent grid are read from its inputs."""
        self.flush()
        self.step += 1
        self._pending = self.slot
        self.captured_steps += self._pending is not None
        if isinstance(hidden_states, torch.Tensor):
            self.batch = int(hidden_states.shape[0])
        if isinstance(context, torch.Tensor) and context.ndim == 3:
            self.text_tokens = int(context.shape[1])
        if isinstance(hidden_states, torch.Tensor) and hidden_states.ndim == 4:
            self.grid = (int(hidden_states.shape[-2]), int(hidden_states.shape[-1]))
            self.image_tokens = None
        elif isinstance(hidden_states, torch.Tensor) and hidden_states.ndim == 3:
            self.image_tokens = int(hidden_states.shape[1])
            self.grid = None
            if (
                isinstance(image_ids, torch.Tensor)
                and not image_ids.is_meta
                and image_ids.shape[-1] >= 3
            ):
                # Packed latents (Flux) carry their (frame, row, column) ids.
                ids = image_ids.reshape(-1, image_ids.shape[-1])
                rows, cols = int(ids[:, 1].max()) + 1, int(ids[:, 2].max()) + 1
                if rows * cols == self.image_tokens:
                    self.grid = (rows, cols)

    def group(self, pixels: int) -> tuple[int, int]:
        return grid_of(pixels, self.grid or self.latent_size)

    def add(self, layer: str, kind: str, probabilities: torch.Tensor) -> None:
        """``probabilities``: ``[pixels, tokens]`` text probabilities of one layer call."""
        pixels, tokens = probabilities.shape
        key = self.group(pixels)
        if key not in self._totals:
            self._totals[key] = probabilities.new_zeros(2, pixels, tokens)
            self._step_sums[key] = probabilities.new_zeros(2, pixels, tokens)
            self.layers[key] = set()
        self.layers[key].add(layer)
        self.kinds[layer] = kind
        target = self._step_sums[key]  # added to the totals when the step is flushed
        target[0].add_(probabilities)
        total = probabilities.sum(dim=1, keepdim=True)
        target[1].add_(probabilities / total.clamp_min(torch.finfo(total.dtype).tiny))

    @torch.inference_mode()
    def flush(self) -> None:
        """Copy the pending selected step's sums to the host, once, and add them to the total.

        Inference mode: generation runs in it, so the sums are inference tensors, which only
        inference mode may update in place (the last flush comes after generation)."""
        if self._pending is None:
            return
        slot, count = self._pending, len(self.selected_steps)
        self._pending = None
        for key, sums in self._step_sums.items():
            host = sums.to("cpu", torch.float32).transpose(1, 2)
            if key not in self.selected:
                tokens, pixels = host.shape[1:]
                self.selected_share[key] = torch.zeros(count, tokens, pixels)
                self.selected[key] = torch.zeros(count, tokens, pixels)
            self.selected_share[key][slot] = host[0]
            self.selected[key][slot] = host[1]
            self._totals[key].add_(sums)
            sums.zero_()

    @torch.inference_mode()
    def collect(self) -> None:
        """After the last call: the last step and the totals to the host."""
        self.flush()
        for key, sums in self._totals.items():
            host = sums.to("cpu", torch.float32).transpose(1, 2).contiguous()
            self.total_share[key], self.total[key] = host[0], host[1]
            if key not in self.selected:
                count, (tokens, pixels) = len(self.selected_steps), host.shape[1:]
                self.selected_share[key] = torch.zeros(count, tokens, pixels)
                self.selected[key] = torch.zeros(count, tokens, pixels)

    def host_bytes_per_selected_step(self) -> int:
        """Host bytes one selected step holds (both maps, every group)."""
        return sum(2 * t.shape[1] * t.shape[2] * 4 for t in self.selected.values())


# --------------------------------------------------------------------------------------------
# Wrapping processors
# --------------------------------------------------------------------------------------------


class ProbabilityTap:
    """Wraps one layer's processor: the layer's output is the original's, untouched, and
    :meth:`observe` sees every call's arguments, by name.

    The default :meth:`observe` hands cross-attention calls (text states given, projected into
    keys only) to :meth:`record`, the hook the zoo's grounding loss uses.
    """

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        output = self.original(attn, *args, **kwargs)
        self.observe(attn, args, kwargs)
        return output

    def observe(self, attn: Any, args: tuple, kwargs: dict) -> None:
        call = bind_call(self.original, attn, args, kwargs)
        if call.encoder_hidden_states is not None and not has_added_projections(attn):
            self.record(
                attn, call.hidden_states, call.encoder_hidden_states, call.attention_mask, call.temb
            )

    def record(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        context: torch.Tensor,
        attention_mask: torch.Tensor | None,
        temb: Any,
    ) -> None:
        raise NotImplementedError


def innermost(processor: Any) -> Any:
    """The processor that really computes, under any taps wrapped around it."""
    while isinstance(processor, ProbabilityTap):
        processor = processor.original
    return processor


@lru_cache(maxsize=128)
def _mirrored(tap_class: type, processor_class: type) -> type:
    """A subclass of ``tap_class`` whose ``__call__`` shows ``processor_class``'s signature.

    ``Attention.forward`` and ``FluxAttention.forward`` inspect the processor's signature to
    decide which keyword arguments to pass on; the wrapper must look exactly like the
    original or the layer would be called differently.
    """

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        return tap_class.__call__(self, *args, **kwargs)

    __call__.__signature__ = inspect.signature(processor_class.__call__)  # type: ignore[attr-defined]
    return type(tap_class.__name__, (tap_class,), {"__call__": __call__})


def attention_probabilities(
    attn: Any,
    hidden_states: torch.Tensor,
    context: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    temb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Head-averaged softmax(QKᵀ·scale) of a cross-attention call, ``[batch, pixels, tokens]``,
    with the transforms of the layer's processor and with gradients (the zoo build trains on
    the same maps that are captured)."""
    from .layers import CROSS, AttentionCall

    processor = innermost(attn.processor)  # called from inside a tap: the original
    call = AttentionCall(attn, hidden_states, context, attention_mask, temb)
    return full_probabilities(image_queries(processor, call, CROSS)).mean(dim=1)


@contextlib.contextmanager
def tapped_processors(model: Any, tap: Callable[[str, Any], ProbabilityTap]) -> Iterator[None]:
    """Wrap every attention processor of ``model`` with ``tap(name, original)``; the tap
    decides per call what to record. All originals are restored on the way out."""
    originals = dict(model.attn_processors)
    wrapped = {}
    for name, processor in originals.items():
        wrapper = tap(name, processor)
        wrapper.__class__ = _mirrored(type(wrapper), type(processor))
        wrapped[name] = wrapper
    model.set_attn_processor(wrapped)
    try:
        yield
    finally:
        model.set_attn_processor(originals)


#: The zoo's grounding build wraps a UNet's processors under this name.
tapped_cross_attention = tapped_processors


class CapturingProcessor(ProbabilityTap):
    """Adds the conditional image's text probabilities of every call to the buffers.

    A generation call makes one image; diffusers orders a guided batch [unconditional,
    conditional], so the conditional image is the last batch row either way. A larger batch
    (perturbed-attention guidance's third row) has no row that is known to be it: skipped.
    """

    def __init__(self, original: Any, buffers: CaptureBuffers, layer: str) -> None:
        super().__init__(original)
        self.buffers = buffers
        self.layer = layer

    @torch.no_grad()
    def observe(self, attn: Any, args: tuple, kwargs: dict) -> None:
        buffers = self.buffers
        if not buffers.capturing:
            return
        processor = innermost(self.original)
        call = bind_call(processor, attn, args, kwargs)
        kind = call_kind(call, buffers.text_tokens, buffers.image_tokens)
        if kind == SELF:
            buffers.skipped.setdefault(self.layer, "self-attention: no text keys")
            return
        if call.batch > 2:  # e.g. perturbed-attention guidance adds a third row
            buffers.skipped[self.layer] = f"a batch of {call.batch}: no single conditional row"
            return
        try:
            prepared = image_queries(processor, call.row(call.batch - 1), kind, buffers.text_tokens)
        except UnsupportedLayer as error:
            buffers.skipped[self.layer] = str(error)
            return
        keys = prepared.text.stop - prepared.text.start
        if buffers.text_tokens is not None and keys != buffers.text_tokens:
            # e.g. an IP-Adapter's image tokens appended to the text: not the prompt's positions
            buffers.skipped[self.layer] = (
                f"attends to {keys} tokens, the denoiser was given "
                f"{buffers.text_tokens} text tokens"
            )
            return
        buffers.add(self.layer, kind, text_probabilities(prepared))


def _denoiser_inputs(model: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        return inspect.signature(model.forward).bind_partial(*args, **kwargs).arguments
    except TypeError:
        return dict(kwargs)


@contextlib.contextmanager
def capture_text_attention(
    pipeline: Any, selected_steps: list[int], latent_size: tuple[int, int]
) -> Iterator[CaptureBuffers]:
    """Capture every denoiser layer that attends to the text while inside; restore every
    processor on the way out. The buffers are complete (on the host) after a clean exit."""
    _, model = denoiser(pipeline)
    buffers = CaptureBuffers(selected_steps=list(selected_steps), latent_size=latent_size)

    def before_call(_module: Any, args: tuple, kwargs: dict) -> None:
        inputs = _denoiser_inputs(model, args, kwargs)
        hidden = inputs.get("hidden_states", inputs.get("sample"))
        buffers.begin_call(hidden, inputs.get("encoder_hidden_states"), inputs.get("img_ids"))

    def tap(name: str, original: Any) -> CapturingProcessor:
        return CapturingProcessor(original, buffers, name)

    handle = model.register_forward_pre_hook(before_call, with_kwargs=True)
    try:
        with tapped_processors(model, tap):
            yield buffers
    finally:
        handle.remove()
    buffers.collect()
