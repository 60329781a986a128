"""Layer by layer, for processors the tiny pipelines do not exercise with every option: Sana's
cross-attention with q/k RMS norms across heads (Sana 1.5), the classic ``AttnProcessor`` with
``attn.scale``, and SD-style cross-attention with q/k norms and a padding mask. Each captured
map equals a softmax written out by hand, which itself reproduces the processor's output."""

from __future__ import annotations

import math

import pytest
import torch

from diffusionscope.core.attention.layers import (
    CROSS,
    AttentionCall,
    image_queries,
    text_probabilities,
)


def _rms(x: torch.Tensor, norm) -> torch.Tensor:
    if norm is None:
        return x
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps)
    return y * norm.weight if norm.weight is not None else y


def _layer(processor: str, qk_norm: str | None):
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
    from diffusers.models.transformers.sana_transformer import SanaAttnProcessor2_0

    made = {"sana": SanaAttnProcessor2_0, "classic": AttnProcessor, "sdpa": AttnProcessor2_0}
    torch.manual_seed(0)
    attn = Attention(
        query_dim=16,
        cross_attention_dim=12,
        heads=2,
        dim_head=8,
        qk_norm=qk_norm,
        kv_heads=2 if qk_norm else None,
        bias=True,
        processor=made[processor](),
    )
    with torch.no_grad():  # norms with weights that are not all one
        for norm in (attn.norm_q, attn.norm_k):
            if norm is not None and getattr(norm, "weight", None) is not None:
                norm.weight.uniform_(0.5, 1.5)
    return attn


@pytest.mark.parametrize(
    ("processor", "qk_norm"),
    [("sana", "rms_norm_across_heads"), ("sana", None), ("classic", None), ("sdpa", "rms_norm")],
)
@torch.no_grad()
def test_layer_capture_equals_a_by_hand_softmax(processor: str, qk_norm: str | None) -> None:
    attn = _layer(processor, qk_norm)
    torch.manual_seed(1)
    x, context = torch.randn(2, 20, 16), torch.randn(2, 7, 12)
    keep = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0, 0]])
    mask = ((1 - keep.float()) * -10000.0)[:, None]  # PixArt's and Sana's additive bias
    output = attn(x, encoder_hidden_states=context, attention_mask=mask)
    # By hand, for the last (conditional) row.
    heads, row = attn.heads, slice(1, 2)
    q, k, v = attn.to_q(x[row]), attn.to_k(context[row]), attn.to_v(context[row])
    if processor == "sana":  # norms over all heads, before the split
        q, k = _rms(q, attn.norm_q), _rms(k, attn.norm_k)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(1, t.shape[1], heads, -1).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    if processor == "sdpa":  # norms per head, after the split
        q, k = _rms(q, attn.norm_q), _rms(k, attn.norm_k)
    scale = attn.scale if processor == "classic" else 1 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(-1, -2) * scale + mask[row][:, None]
    probabilities = scores.softmax(-1)[0]  # [heads, 20, 7]
    by_hand = attn.to_out[0]((probabilities @ v[0]).transpose(0, 1).reshape(1, 20, -1))
    torch.testing.assert_close(by_hand, output[row], atol=1e-5, rtol=1e-4)
    call = AttentionCall(attn, x, context, mask).row(1)
    captured = text_probabilities(image_queries(attn.processor, call, CROSS))
    torch.testing.assert_close(captured, probabilities.mean(0), atol=1e-6, rtol=0)
    assert torch.all(captured[:, 4:] < 1e-3)  # padded tokens of that row get nothing
