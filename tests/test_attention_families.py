"""Attention capture on the tiny SD3, SD3.5, Flux, PixArt-α/Σ (and Sana) pipelines.

The captured probabilities are checked against a recomputation written out here by hand from
each layer's weights (projections, RMS q/k norms, rotary embeddings, masks, scale), and that
recomputation is itself checked against the processor's real output: its probabilities times
the values, projected out, give what the layer returned. Joint-attention rows are softmaxed
over image and text keys together, so the captured text share plus the image keys' share is
one for every pixel.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from diffusionscope.core.attention.capture import (
    ProbabilityTap,
    capture_text_attention,
    tapped_processors,
)
from diffusionscope.core.generation import GenerationSettings, generate

PROMPT = "a red seven, on a white background."
#: Families and the image size they are run at (Flux at 64 px: 256 packed tokens, not 4096).
SIZES = {"sd3": None, "sd35m": None, "flux_dev": 64, "pixart_alpha": None,
         "pixart_sigma": None}  # fmt: skip


@pytest.fixture(scope="module")
def pipelines(family_dir):
    from diffusers import DiffusionPipeline

    loaded: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in loaded:
            pipeline = DiffusionPipeline.from_pretrained(family_dir(name))
            pipeline.set_progress_bar_config(disable=True)
            loaded[name] = pipeline
        return loaded[name]

    return get


def _settings(name: str, steps: int) -> GenerationSettings:
    size = SIZES.get(name)
    return GenerationSettings(steps=steps, guidance_scale=5.0, height=size, width=size)


# --------------------------------------------------------------------------------------------
# The recomputation by hand
# --------------------------------------------------------------------------------------------


def _rms(x: torch.Tensor, norm: Any) -> torch.Tensor:
    if norm is None:
        return x
    eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * norm.weight if getattr(norm, "weight", None) is not None else y


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Flux's rotary embedding on ``[batch, tokens, heads, dim]``: consecutive pairs
    (a, b) of each head's channels turn by the position's angle."""
    a, b = x.unflatten(-1, (-1, 2)).unbind(-1)
    turned = torch.stack([-b, a], dim=-1).flatten(-2)
    return x * cos[None, :, None] + turned * sin[None, :, None]


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[1, tokens, heads·dim]`` -> ``[1, heads, tokens, dim]``."""
    return x.view(1, x.shape[1], heads, -1).transpose(1, 2)


@torch.no_grad()
def by_hand(processor: str, attn: Any, call: dict[str, Any], text_tokens: int
            ) -> tuple[torch.Tensor, slice, torch.Tensor]:  # fmt: skip
    """The conditional image's full attention ``P [heads, image tokens, keys]``, which keys
    are text, and the layer's output for those image tokens recomputed as ``P·V``."""
    x = call["hidden_states"][-1:]
    context = call.get("encoder_hidden_states")
    context = None if context is None else context[-1:]
    heads = attn.heads
    bias = None
    if processor == "AttnProcessor2_0":  # PixArt cross-attention, with its padding mask
        q, k, v = _split(attn.to_q(x), heads), _split(attn.to_k(context), heads), None
        v = _split(attn.to_v(context), heads)
        mask = call.get("attention_mask")
        if mask is not None:
            bias = mask[-1:].float()[:, None]  # [1, 1, 1, T] additive
        text = slice(0, k.shape[2])
    elif processor == "JointAttnProcessor2_0":  # SD3: keys are [image, text]
        q = _rms(_split(attn.to_q(x), heads), attn.norm_q)
        k = _rms(_split(attn.to_k(x), heads), attn.norm_k)
        v = _split(attn.to_v(x), heads)
        ck = _rms(_split(attn.add_k_proj(context), heads), attn.norm_added_k)
        cv = _split(attn.add_v_proj(context), heads)
        text = slice(k.shape[2], k.shape[2] + ck.shape[2])
        k, v = torch.cat([k, ck], 2), torch.cat([v, cv], 2)
    else:  # FluxAttnProcessor: sequences [text, image], rotary over the whole order
        cos, sin = call["image_rotary_emb"]
        d = attn.head_dim
        q = _rms(attn.to_q(x).view(1, x.shape[1], -1, d), attn.norm_q)
        k = _rms(attn.to_k(x).view(1, x.shape[1], -1, d), attn.norm_k)
        v = attn.to_v(x).view(1, x.shape[1], -1, d)
        if context is not None:  # double-stream
            t = context.shape[1]
            ck = _rms(attn.add_k_proj(context).view(1, t, -1, d), attn.norm_added_k)
            cv = attn.add_v_proj(context).view(1, t, -1, d)
            k, v = torch.cat([ck, k], 1), torch.cat([cv, v], 1)
            q = _rotate(q, cos[t:], sin[t:])
        else:  # single-stream: text and image in one sequence
            t = text_tokens
            q = _rotate(q, cos, sin)[:, t:]
        k = _rotate(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        text = slice(0, t)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    probabilities = scores.softmax(dim=-1)[0]
    out = (probabilities @ v[0]).transpose(0, 1).reshape(1, probabilities.shape[1], -1)
    if getattr(attn, "to_out", None) is not None:
        out = attn.to_out[0](out)
        if processor == "AttnProcessor2_0":
            out = out / attn.rescale_output_factor
    return probabilities, text, out


class Spy(ProbabilityTap):
    """Records each layer's first call (arguments by name, and output)."""

    def __init__(self, original: Any, name: str, calls: dict[str, Any]) -> None:
        super().__init__(original)
        self.name, self.calls = name, calls

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        output = self.original(attn, *args, **kwargs)
        if self.name not in self.calls:
            from diffusionscope.core.attention.capture import innermost
            from diffusionscope.core.attention.layers import bind_call

            call = bind_call(innermost(self.original), attn, args, kwargs)
            self.calls[self.name] = (attn, vars(call), output)
        return output


def _image_part(output: Any, kind: str, text_tokens: int) -> torch.Tensor:
    """The image tokens of a layer's output for the conditional row: joint processors return
    (image, text); a single-stream layer returns its whole [text, image] sequence."""
    if isinstance(output, tuple):
        return output[0][-1:]
    return output[-1:, text_tokens:] if kind == "single" else output[-1:]


@pytest.mark.parametrize("name", list(SIZES))
def test_captured_probabilities_equal_a_by_hand_softmax(pipelines, name: str) -> None:
    pipeline = pipelines(name)
    model = pipeline.transformer
    calls: dict[str, Any] = {}
    with (
        capture_text_attention(pipeline, [0], (64, 64)) as buffers,
        tapped_processors(model, lambda layer, original: Spy(original, layer, calls)),
    ):
        generate(pipeline, [3], _settings(name, 2), [PROMPT])
    assert buffers.step == 1 and len(buffers.selected) == 1
    ((grid, selected_share),) = buffers.selected_share.items()
    share_sum = torch.zeros_like(selected_share[0])  # [tokens, pixels]
    renormalised_sum = torch.zeros_like(share_sum)
    image_share_sum = torch.zeros(share_sum.shape[1])
    text_tokens = buffers.text_tokens
    for layer, (attn, call, output) in calls.items():
        kind = buffers.kinds.get(layer)
        call = {key: value.clone() if isinstance(value, torch.Tensor) else value
                for key, value in call.items()}  # out of inference mode  # fmt: skip
        if kind is None:  # not captured: SD3.5's attn2, given image tokens only
            assert "self-attention" in buffers.skipped[layer]
            assert call["encoder_hidden_states"] is None
            continue
        processor = type(attn.processor).__name__
        probabilities, text, out = by_hand(processor, attn, call, text_tokens)
        # The recomputation is the processor's: P·V gives what the layer returned.
        torch.testing.assert_close(out, _image_part(output, kind, text_tokens), atol=1e-5,
                                   rtol=1e-4)  # fmt: skip
        text_part = probabilities[..., text].mean(0)  # [pixels, tokens]
        share_sum += text_part.T
        renormalised_sum += (text_part / text_part.sum(-1, keepdim=True)).T
        image_share_sum += probabilities.sum(-1).mean(0) - text_part.sum(-1)
        if kind in ("joint", "single"):
            assert 0 < float(text_part.sum(-1).mean()) < 1  # image keys take the rest
    captured = buffers.layers[grid]
    assert captured and captured == set(buffers.kinds)
    torch.testing.assert_close(selected_share[0], share_sum, atol=1e-5, rtol=0)
    torch.testing.assert_close(buffers.selected[grid][0], renormalised_sum, atol=1e-5, rtol=0)
    # Captured text share + the image keys' share: one per pixel and layer (full softmax).
    rows = selected_share[0].sum(0) + image_share_sum
    torch.testing.assert_close(rows, torch.full_like(rows, float(len(captured))))
    expected = {"sd3": {"joint"}, "sd35m": {"joint"}, "flux_dev": {"joint", "single"},
                "pixart_alpha": {"cross"}, "pixart_sigma": {"cross"}}[name]  # fmt: skip
    assert set(buffers.kinds.values()) == expected
