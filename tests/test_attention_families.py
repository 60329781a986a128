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

import numpy as np
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
SIZES = {"sd3": None, "sd35m": None, "flux_dev": 64, "pixart_alpha": None, "pixart_sigma": None}


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
def by_hand(
    processor: str, attn: Any, call: dict[str, Any], text_tokens: int
) -> tuple[torch.Tensor, slice, torch.Tensor]:
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
def test_captured_probabilities_equal_a_by_hand_softmax(family_pipeline, name: str) -> None:
    pipeline = family_pipeline(name)
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
        call = {
            key: value.clone() if isinstance(value, torch.Tensor) else value
            for key, value in call.items()
        }  # out of inference mode
        if kind is None:  # not captured: SD3.5's attn2, given image tokens only
            assert "self-attention" in buffers.skipped[layer]
            assert call["encoder_hidden_states"] is None
            continue
        processor = type(attn.processor).__name__
        probabilities, text, out = by_hand(processor, attn, call, text_tokens)
        # The recomputation is the processor's: P·V gives what the layer returned.
        torch.testing.assert_close(
            out, _image_part(output, kind, text_tokens), atol=1e-5, rtol=1e-4
        )
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
    expected = {
        "sd3": {"joint"},
        "sd35m": {"joint"},
        "flux_dev": {"joint", "single"},
        "pixart_alpha": {"cross"},
        "pixart_sigma": {"cross"},
    }[name]
    assert set(buffers.kinds.values()) == expected


@pytest.mark.parametrize("name", list(SIZES))
def test_capture_on_and_off_gives_identical_images(family_pipeline, name: str) -> None:
    pipeline = family_pipeline(name)
    before = dict(pipeline.transformer.attn_processors)
    plain = generate(pipeline, [5], _settings(name, 2), [PROMPT])
    with capture_text_attention(pipeline, [0, 1], (64, 64)) as buffers:
        captured = generate(pipeline, [5], _settings(name, 2), [PROMPT])
    assert buffers.layers and np.array_equal(plain, captured)
    after = pipeline.transformer.attn_processors
    assert all(after[layer] is processor for layer, processor in before.items())


# --------------------------------------------------------------------------------------------
# The mode, end to end
# --------------------------------------------------------------------------------------------

RUNS = {  # family: (extra options, image side, text positions)
    "sd3": ([], 64, 16 + 256),
    "sd35m": ([], 64, 16 + 256),
    "flux_dev": (["--height", "64", "--width", "64"], 64, 512),
    "pixart_sigma": ([], 256, 300),
    "sd15": ([], 64, 16),
}


@pytest.fixture(scope="module")
def runs(family_dir, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    import json

    from diffusionscope.core.cli import main

    out = {}
    for name, (options, _, _) in RUNS.items():
        root = tmp_path_factory.mktemp(f"attention-{name}")
        code = main(
            [
                "run",
                "--modes",
                "attention",
                "--model",
                str(family_dir(name)),
                "--prompt",
                PROMPT,
                "--steps",
                "2",
                "--runs-root",
                str(root),
                "--quiet",
                *options,
            ]
        )
        assert code == 0
        run_dir = next(root.iterdir())
        results = json.loads((run_dir / "results.json").read_text())["attention"]
        out[name] = (results, (run_dir / "report.md").read_text())
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_run_maps_every_word_with_numbers(runs, name: str) -> None:
    results, report = runs[name]
    _, _, text_tokens = RUNS[name]
    assert len(results["tokens"]) == text_tokens
    assert results["words"] == ["red", "seven", "white", "background"]
    for word, positions in results["word_positions"].items():
        for source in results["text_sources"]:
            inside = [
                p for p in positions if source["start"] <= p < source["start"] + source["length"]
            ]
            spelled = "".join(results["tokens"][p] for p in inside)
            assert spelled.replace("</w>", "").replace("▁", "") == word
    for measures in results["measures"].values():
        assert all(v is not None and 0 <= v <= 1 for v in measures["entropy"])
    assert "renormalised over the text tokens" in report
    for source in results["text_sources"]:
        assert " + ".join(source["encoders"]) + " tokens" in report


def test_run_names_what_each_family_captured(runs) -> None:
    assert runs["sd3"][0]["layer_kinds"] == {"joint": 2}
    assert runs["sd35m"][0]["layer_kinds"] == {"joint": 2}
    assert runs["sd35m"][0]["not_captured"] == {
        "transformer_blocks.0.attn2.processor": "self-attention: no text keys"
    }
    assert runs["flux_dev"][0]["layer_kinds"] == {"joint": 1, "single": 1}
    assert runs["pixart_sigma"][0]["layer_kinds"] == {"cross": 1}
    assert [s["encoders"] for s in runs["sd3"][0]["text_sources"]] == [
        ["text_encoder", "text_encoder_2"],
        ["text_encoder_3"],
    ]
    assert [s["encoders"] for s in runs["flux_dev"][0]["text_sources"]] == [["text_encoder_2"]]
    for name in ("sd3", "sd35m", "flux_dev"):  # joint: part of the attention goes to the image
        share = runs[name][0]["text_share"]["all_steps"]
        assert 0 < share < 1
    assert runs["pixart_sigma"][0]["text_share"]["all_steps"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", list(RUNS))
def test_memory_per_selected_step_follows_from_the_configs(family_dir, runs, name: str) -> None:
    from diffusionscope.core.attention.support import capture_footprint
    from diffusionscope.core.families import read_model_configs

    _, side, _ = RUNS[name]
    footprint = capture_footprint(read_model_configs(str(family_dir(name))), side, side)
    assert footprint.bytes_per_selected_step == runs[name][0]["capture_bytes_per_selected_step"]
    assert {f"{h}x{w}" for h, w in footprint.groups} == set(runs[name][0]["groups"])


def test_run_that_captures_no_layer_fails_in_one_line(
    family_dir, tmp_path, capsys, monkeypatch
) -> None:
    from diffusionscope.core.attention import layers
    from diffusionscope.core.cli import main

    monkeypatch.setattr(layers, "RECOMPUTE", {})  # no processor known: nothing to capture
    code = main(
        [
            "run",
            "--modes",
            "attention",
            "--model",
            str(family_dir("sd15")),
            "--prompt",
            PROMPT,
            "--steps",
            "2",
            "--runs-root",
            str(tmp_path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "no attention layer attended to the prompt's tokens" in err[-1]
    assert "processor AttnProcessor2_0 is not known" in err[-1]
    assert not list(tmp_path.glob("*/results.json"))


def test_measures_of_an_all_zero_map_are_not_numbers() -> None:
    from diffusionscope.core.attention.maps import entropy, overlap, top_mass
    from diffusionscope.core.attention.report import _number

    maps = np.zeros((2, 4, 4))
    maps[1, 0, 0] = 1.0  # one sharp map, one empty
    assert np.isnan(entropy(maps)[0]) and entropy(maps)[1] == 0.0
    assert np.isnan(top_mass(maps)[0]) and top_mass(maps)[1] == 1.0
    assert np.isnan(overlap(maps[0], maps[1])) and overlap(maps[1], maps[1]) == 1.0
    assert _number(entropy(maps)[0]) is None


def test_every_family_passes_the_config_check(family_dir) -> None:
    import argparse

    from family_pipelines import FAMILIES

    from diffusionscope.core.attention import check_model
    from diffusionscope.core.families import read_model_configs

    for name in FAMILIES:
        check_model(argparse.Namespace(prompt=PROMPT), read_model_configs(str(family_dir(name))))
