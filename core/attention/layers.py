"""What one attention call attends to: its kind, read from the call, and its image queries and
keys, recomputed with the transforms of the processor that really ran.

diffusers' processors compute attention with a fused kernel (scaled_dot_product_attention) and
never form the probabilities, so they are recomputed on the side. The recomputation has to
apply exactly what the processor applies before its softmax, or the maps are wrong without any
error: SD3.5's and Sana's q/k RMS norms (Sana normalises across heads, before the head split),
Flux's rotary position embeddings, the order in which joint attention concatenates image and
text, the additive text-padding mask of PixArt and Sana, and the softmax scale (the fused
processors use 1/sqrt(head dim), the classic one ``attn.scale``). Each supported processor class
has its own small function here that reads the processor's own modules (``to_q``, ``norm_q``,
``add_k_proj`` ...) and diffusers' own ``apply_rotary_emb``; a processor class without one is
reported, never guessed. ``tests/test_attention_families.py`` checks every function against a
recomputation written out by hand and against the processor's own output (P·V).

The kind of a call is decided from what the layer is given and what it computes, not from its
name:

- ``cross``: given text states that it projects into keys only (no added projections): every
  key is a text token (UNet and PixArt ``attn2``, Sana's cross-attention).
- ``joint``: given text states that it projects with its own added projections into the same
  sequence as the image (SD3 and Flux double-stream blocks): the softmax runs over image and
  text keys together.
- ``single``: given one sequence as long as the denoiser's text plus image tokens (Flux
  single-stream blocks): text and image tokens already share the sequence.
- ``self``: anything else, e.g. SD3.5-Medium's ``attn2`` (image tokens only): no text keys, so
  nothing to record.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

CROSS, JOINT, SINGLE, SELF = "cross", "joint", "single", "self"


class UnsupportedLayer(Exception):
    """This call's processor cannot be recomputed exactly; the layer is skipped and named."""


@dataclass
class AttentionCall:
    """The arguments of one processor call, by name, whatever order the caller used."""

    attn: Any
    hidden_states: torch.Tensor
    encoder_hidden_states: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    temb: torch.Tensor | None = None
    image_rotary_emb: Any = None

    @property
    def batch(self) -> int:
        return int(self.hidden_states.shape[0])

    def row(self, index: int) -> AttentionCall:
        """The same call restricted to one batch row (masks and temb follow when batched)."""

        def pick(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == self.batch:
                return value[index : index + 1]
            return value

        return AttentionCall(
            self.attn,
            self.hidden_states[index : index + 1],
            pick(self.encoder_hidden_states),
            pick(self.attention_mask),
            pick(self.temb),
            self.image_rotary_emb,
        )


@lru_cache(maxsize=64)
def _signature(processor_class: type) -> inspect.Signature:
    return inspect.signature(processor_class.__call__)


def bind_call(processor: Any, attn: Any, args: tuple, kwargs: dict) -> AttentionCall:
    """Name the arguments of ``processor(attn, *args, **kwargs)`` with the processor's own
    signature: FluxAttention passes ``image_rotary_emb`` positionally where Attention's
    processors have ``temb``."""
    bound = _signature(type(processor)).bind(processor, attn, *args, **kwargs).arguments
    extra = bound.get("kwargs", {})

    def get(name: str) -> Any:
        return bound.get(name, extra.get(name))

    return AttentionCall(
        attn,
        get("hidden_states"),
        get("encoder_hidden_states"),
        get("attention_mask"),
        get("temb"),
        get("image_rotary_emb"),
    )


def has_added_projections(attn: Any) -> bool:
    """Whether a layer projects the text states into its own sequence (joint attention)."""
    return getattr(attn, "add_k_proj", None) is not None or hasattr(attn, "to_added_qkv")


def call_kind(call: AttentionCall, text_tokens: int | None, image_tokens: int | None) -> str:
    """``cross``, ``joint``, ``single`` or ``self``, from the call and the denoiser's call.

    ``text_tokens`` and ``image_tokens`` are the lengths of the text and (already tokenised)
    image sequences the denoiser itself was given; the latter is known only for denoisers that
    take a token sequence (Flux's packed latents).
    """
    if call.encoder_hidden_states is not None:
        return JOINT if has_added_projections(call.attn) else CROSS
    length = call.hidden_states.shape[1] if call.hidden_states.ndim == 3 else None
    if text_tokens and image_tokens and length == text_tokens + image_tokens:
        return SINGLE
    return SELF


@dataclass
class ImageQueries:
    """Image queries against every key of one call: softmax(q·kᵀ·scale + bias) over the keys
    is the processor's attention, and the ``text`` key positions hold the prompt's tokens."""

    query: torch.Tensor  # [batch, heads, image tokens, head dim]
    key: torch.Tensor  # [batch, heads, keys, head dim]
    scale: float
    text: slice  # positions of the text tokens among the keys
    bias: torch.Tensor | None = None  # additive, broadcastable to [batch, heads, queries, keys]
    kind: str = CROSS


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean SDPA mask (True = attend) as the additive bias it stands for."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask, float("-inf"))


def _heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """``[batch, tokens, heads·dim]`` -> ``[batch, heads, tokens, dim]``."""
    batch = tensor.shape[0]
    return tensor.view(batch, -1, heads, tensor.shape[-1] // heads).transpose(1, 2)


def _flat_image(attn: Any, call: AttentionCall) -> torch.Tensor:
    """The image tokens as ``[batch, tokens, channels]`` after the layer's input norms."""
    x = call.hidden_states
    if getattr(attn, "spatial_norm", None) is not None:
        x = attn.spatial_norm(x, call.temb)
    if x.ndim == 4:
        batch, channels, height, width = x.shape
        x = x.view(batch, channels, height * width).transpose(1, 2)
    if getattr(attn, "group_norm", None) is not None:
        x = attn.group_norm(x.transpose(1, 2)).transpose(1, 2)
    return x


def _prepared_mask(attn: Any, call: AttentionCall, keys: int, batch: int) -> torch.Tensor | None:
    if call.attention_mask is None:
        return None
    mask = attn.prepare_attention_mask(call.attention_mask, keys, batch)
    return mask.view(batch, attn.heads, -1, mask.shape[-1])


def _sdpa_cross(call: AttentionCall, kind: str, _text_tokens: int | None) -> ImageQueries:
    """``AttnProcessor2_0`` (UNets, PixArt): q/k norms after the head split, SDPA's scale."""
    if kind != CROSS:
        raise UnsupportedLayer(f"{kind} attention through AttnProcessor2_0")
    attn = call.attn
    x = _flat_image(attn, call)
    context = call.encoder_hidden_states
    bias = _prepared_mask(attn, call, context.shape[1], x.shape[0])
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    query, key = _heads(attn.to_q(x), attn.heads), _heads(attn.to_k(context), attn.heads)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return ImageQueries(
        query,
        key,
        query.shape[-1] ** -0.5,
        slice(0, key.shape[2]),
        _additive(bias, query.dtype),
        CROSS,
    )


def _classic_cross(call: AttentionCall, kind: str, _text_tokens: int | None) -> ImageQueries:
    """``AttnProcessor`` (no SDPA): baddbmm with ``attn.scale``, no q/k norms."""
    if kind != CROSS:
        raise UnsupportedLayer(f"{kind} attention through AttnProcessor")
    attn = call.attn
    x = _flat_image(attn, call)
    context = call.encoder_hidden_states
    batch = x.shape[0]
    bias = None
    if call.attention_mask is not None:
        mask = attn.prepare_attention_mask(call.attention_mask, context.shape[1], batch)
        bias = mask.view(batch, attn.heads, -1, mask.shape[-1])
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    query, key = _heads(attn.to_q(x), attn.heads), _heads(attn.to_k(context), attn.heads)
    return ImageQueries(query, key, float(attn.scale), slice(0, key.shape[2]), bias, CROSS)


def _sana_cross(call: AttentionCall, kind: str, _text_tokens: int | None) -> ImageQueries:
    """``SanaAttnProcessor2_0``: q/k norms over all heads *before* the head split."""
    if kind != CROSS:
        raise UnsupportedLayer(f"{kind} attention through SanaAttnProcessor2_0")
    attn = call.attn
    x, context = call.hidden_states, call.encoder_hidden_states
    bias = _prepared_mask(attn, call, context.shape[1], x.shape[0])
    query, key = attn.to_q(x), attn.to_k(context)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    query, key = _heads(query, attn.heads), _heads(key, attn.heads)
    return ImageQueries(
        query,
        key,
        query.shape[-1] ** -0.5,
        slice(0, key.shape[2]),
        _additive(bias, query.dtype),
        CROSS,
    )


def _sd3_joint(call: AttentionCall, kind: str, _text_tokens: int | None) -> ImageQueries:
    """``JointAttnProcessor2_0`` (SD3, SD3.5): keys are [image, text]; the mask is ignored by
    the processor, so it is here too."""
    if kind != JOINT:
        raise UnsupportedLayer(f"{kind} attention through JointAttnProcessor2_0")
    attn = call.attn
    x, context = call.hidden_states, call.encoder_hidden_states
    query, key = _heads(attn.to_q(x), attn.heads), _heads(attn.to_k(x), attn.heads)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    text_key = _heads(attn.add_k_proj(context), attn.heads)
    if attn.norm_added_k is not None:
        text_key = attn.norm_added_k(text_key)
    image = key.shape[2]
    key = torch.cat([key, text_key], dim=2)
    return ImageQueries(
        query, key, query.shape[-1] ** -0.5, slice(image, key.shape[2]), None, JOINT
    )


def _flux(call: AttentionCall, kind: str, text_tokens: int | None) -> ImageQueries:
    """``FluxAttnProcessor``: RMS q/k norms per head, sequences ordered [text, image], rotary
    embeddings over that whole order (diffusers' own ``apply_rotary_emb``)."""
    from diffusers.models.embeddings import apply_rotary_emb

    attn = call.attn
    x = call.hidden_states
    if getattr(attn, "fused_projections", False):
        query, key, _ = attn.to_qkv(x).chunk(3, dim=-1)
    else:
        query, key = attn.to_q(x), attn.to_k(x)
    query = attn.norm_q(query.unflatten(-1, (-1, attn.head_dim)))  # [batch, tokens, heads, dim]
    key = attn.norm_k(key.unflatten(-1, (-1, attn.head_dim)))
    if kind == JOINT:
        context = call.encoder_hidden_states
        if getattr(attn, "fused_projections", False):
            _, text_key, _ = attn.to_added_qkv(context).chunk(3, dim=-1)
        else:
            text_key = attn.add_k_proj(context)
        text_key = attn.norm_added_k(text_key.unflatten(-1, (-1, attn.head_dim)))
        text = context.shape[1]
        key = torch.cat([text_key, key], dim=1)
    elif kind == SINGLE and text_tokens:
        text = text_tokens
        query = query[:, text:]
    else:
        raise UnsupportedLayer(f"{kind} attention through FluxAttnProcessor")
    if call.image_rotary_emb is not None:
        cos, sin = call.image_rotary_emb
        query = apply_rotary_emb(query, (cos[text:], sin[text:]), sequence_dim=1)
        key = apply_rotary_emb(key, (cos, sin), sequence_dim=1)
    bias = _additive(call.attention_mask, query.dtype)
    if bias is not None and bias.ndim >= 2 and bias.shape[-2] == key.shape[1]:
        bias = bias[..., text:, :]  # a mask over the whole sequence: image rows only
    query, key = query.transpose(1, 2), key.transpose(1, 2)
    return ImageQueries(query, key, query.shape[-1] ** -0.5, slice(0, text), bias, kind)


#: processor class name -> the function that recomputes its image queries and keys.
RECOMPUTE: dict[str, Callable[[AttentionCall, str, int | None], ImageQueries]] = {
    "AttnProcessor2_0": _sdpa_cross,
    "AttnProcessor": _classic_cross,
    "SanaAttnProcessor2_0": _sana_cross,
    "JointAttnProcessor2_0": _sd3_joint,
    "FluxAttnProcessor": _flux,
    "FluxAttnProcessor2_0": _flux,
}


def image_queries(
    processor: Any, call: AttentionCall, kind: str, text_tokens: int | None = None
) -> ImageQueries:
    """The image queries and all keys of ``call`` as ``processor`` computes them."""
    recompute = RECOMPUTE.get(type(processor).__name__)
    if recompute is None:
        raise UnsupportedLayer(f"processor {type(processor).__name__} is not known")
    return recompute(call, kind, text_tokens)


def full_probabilities(prepared: ImageQueries) -> torch.Tensor:
    """softmax over every key, ``[batch, heads, image tokens, keys]``, in float32, with
    gradients (the zoo's grounding loss trains on them)."""
    scores = prepared.query.float() @ prepared.key.float().transpose(-1, -2) * prepared.scale
    if prepared.bias is not None:
        scores = scores + prepared.bias.float()
    return scores.softmax(dim=-1)


@torch.no_grad()
def text_probabilities(prepared: ImageQueries) -> torch.Tensor:
    """Head-averaged probabilities of the text keys from the full softmax over every key,
    ``[image tokens, text tokens]`` for the first batch row. Rows sum to each image token's
    share of attention on the text (1 for cross-attention).

    Why not softmax over the full score matrix: at Flux's 4096 image tokens that matrix is
    written, read and exponentiated in memory, ten times slower than the processor's own fused
    attention. Per head, a text key's probability is the row's mass on the text times the
    softmax over the text keys alone (the same scores, renormalised). The mass is one fused
    ``scaled_dot_product_attention`` whose values are the text keys' indicator, padded to the
    head width so the fused kernel runs; the softmax over text keys is small (queries × text).
    """
    import torch.nn.functional as F

    query = prepared.query[:1].float()  # [1, heads, N, d]
    key = prepared.key[:1].float()  # [1, heads, S, d]
    bias = prepared.bias[:1].float() if prepared.bias is not None else None
    text = prepared.text
    scores = (query[0] * prepared.scale) @ key[0, :, text].transpose(-1, -2)  # [heads, N, T]
    if bias is not None:
        scores += bias[0, ..., text]
    within = scores.softmax(dim=-1)
    heads = within.shape[0]
    if text.start == 0 and text.stop == key.shape[2]:
        mass = torch.ones(heads, within.shape[1], 1, device=within.device)  # every key is text
    else:
        indicator = torch.zeros_like(key)
        indicator[:, :, text, 0] = 1.0
        mass = F.scaled_dot_product_attention(
            query, key, indicator, attn_mask=bias, scale=prepared.scale
        )[0, :, :, :1]
    # The head average, one head at a time: a reduction over the head dimension would read
    # the whole [heads, N, T] block again.
    out = within[0] * mass[0]
    for head in range(1, heads):
        out.addcmul_(within[head], mass[head])
    return out.div_(heads)
