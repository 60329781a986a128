"""The attention mode's run: generate with capture, align the prompt's words with the tokens
the maps index, build word maps, measure, draw, write."""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from ..errors import InputError
from ..generation import generate
from ..modes import RunContext
from . import ATTENTION_STEPS
from .capture import CaptureBuffers, capture_text_attention, denoiser
from .maps import entropy, overlap, top_mass, word_maps
from .words import (
    PromptTokens,
    align,
    encoder_inputs,
    recording_text_inputs,
)

SHOWN = "renormalised over the text tokens"


def selected_step_indices(calls: int, requested: int | str | tuple[int, ...]) -> list[int]:
    """Denoiser-call indices to keep: ``K`` spread over the run, ``all``, or an explicit list
    (``--attention-steps`` as its declaration parses it; text is parsed by the same one)."""
    if isinstance(requested, str) and requested != "all":
        requested = ATTENTION_STEPS.convert(requested)
    if requested == "all":
        return list(range(calls))
    if isinstance(requested, tuple):
        steps = sorted(set(requested))
        bad = [s for s in steps if not 0 <= s < calls]
        if bad:
            raise InputError(f"--attention-steps: step {bad[0]} is outside 0..{calls - 1}")
        return steps
    count = min(int(requested), calls)
    return sorted({int(round(v)) for v in np.linspace(0, calls - 1, count)})


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "word"


def _number(value: float) -> float | None:
    """JSON has no NaN: a measure that is not a number is ``null``."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def denoiser_calls(pipeline: Any, steps: int) -> tuple[int, list[float]]:
    """How many denoiser calls ``steps`` makes, and their timesteps when the scheduler can tell
    without the pipeline's own arguments (Flux's dynamic shift needs ``mu``: then one call per
    step, and the timesteps are read after generation)."""
    import copy

    scheduler = copy.deepcopy(pipeline.scheduler)
    try:
        scheduler.set_timesteps(steps)
    except (TypeError, ValueError):
        return steps, []
    return len(scheduler.timesteps), [float(t) for t in scheduler.timesteps]


def _skipped_summary(skipped: dict[str, str]) -> str:
    reasons: dict[str, int] = {}
    for reason in skipped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return "; ".join(f"{count} × {reason}" for reason, count in reasons.items()) or "none"


def text_share(buffers: CaptureBuffers) -> tuple[list[float | None], float | None]:
    """Mean share of attention on the text keys per selected step, and over the selected steps:
    each captured layer call's pixels averaged alike (1 for cross-attention)."""
    per_step = np.zeros(len(buffers.selected_steps))
    total = calls = 0.0
    layer_count = sum(len(names) for names in buffers.layers.values())
    for grid, share in buffers.selected_share.items():
        pixels = share.shape[-1]
        per_step += share.sum(dim=(1, 2)).double().numpy() / pixels
        total += float(buffers.total_share[grid].sum()) / pixels
    calls = layer_count * buffers.captured_steps
    steps = [_number(v / layer_count) if layer_count else None for v in per_step]
    return steps, _number(total / calls) if calls else None


def analyse(ctx: RunContext) -> tuple[dict[str, Any], str]:
    args = ctx.options
    model = ctx.model()
    pipeline = model.pipeline
    denoiser(pipeline)
    if not any(
        name.startswith("text_encoder") and value is not None
        for name, value in pipeline.components.items()
    ):
        raise InputError(
            f"model {model.summary.source!r}: {model.summary.pipeline_class} has no "
            "text encoder; the attention mode maps prompt words"
        )
    settings = args.generation
    calls, planned_timesteps = denoiser_calls(pipeline, settings.steps)
    selected = selected_step_indices(calls, args.attention_steps)
    height = settings.height or model.summary.native_resolution or 512
    width = settings.width or model.summary.native_resolution or 512
    ctx.progress("generate", 0, 1, "img")
    with (
        recording_text_inputs(pipeline) as records,
        capture_text_attention(pipeline, selected, (height, width)) as buffers,
    ):
        image = generate(pipeline, [ctx.seed], settings, [args.prompt])[0]
    ctx.progress("generate", 1, 1, "img")
    if not buffers.layers:
        raise InputError(
            f"{model.summary.pipeline_class}: no attention layer attended to the "
            f"prompt's tokens (not captured: {_skipped_summary(buffers.skipped)})"
        )
    if buffers.step + 1 != calls:
        ctx.warn(
            f"the denoiser was called {buffers.step + 1} times, {calls} expected: selected "
            "steps are denoiser-call indices"
        )
    tokens = align(args.prompt, encoder_inputs(records, args.prompt), int(buffers.text_tokens))
    if tokens.dropped:
        ctx.warn(f"words past the text encoders' limits, not mapped: {' '.join(tokens.dropped)}")
    if args.words:
        chosen = [tokens.word(text.strip()) for text in args.words.split(",") if text.strip()]
    else:
        chosen = tokens.content_words
    visited = [float(t) for t in getattr(pipeline.scheduler, "timesteps", [])]
    if len(visited) != buffers.step + 1:
        visited = planned_timesteps if len(planned_timesteps) == buffers.step + 1 else []
    timesteps = [visited[i] if visited else float(i) for i in selected]
    maps = word_maps(buffers, chosen, image.shape[:2])
    labels = _unique_labels(maps.words)
    step_entropy = entropy(maps.per_step)  # [W, K]
    step_top = top_mass(maps.per_step)
    share_steps, share_all = text_share(buffers)
    kinds: dict[str, int] = {}
    for kind in buffers.kinds.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    results: dict[str, Any] = {
        "prompt": args.prompt,
        "pipeline": model.summary.pipeline_class,
        "words": labels,
        "word_positions": {
            label: list(word.positions) for label, word in zip(labels, chosen, strict=True)
        },
        "dropped_words": tokens.dropped,
        "tokens": tokens.tokens,
        "text_sources": [source.to_json() for source in tokens.sources],
        "shown": SHOWN,
        "steps": settings.steps,
        "selected_steps": selected,
        "timesteps": timesteps,
        "groups": [f"{h}x{w}" for h, w in sorted(buffers.total, reverse=True)],
        "layers": {f"{h}x{w}": sorted(names) for (h, w), names in buffers.layers.items()},
        "layer_kinds": kinds,
        "not_captured": dict(sorted(buffers.skipped.items())),
        "guided": bool(buffers.batch > 1),
        "text_share": {"per_step": share_steps, "all_steps": share_all},
        "capture_bytes_per_selected_step": buffers.host_bytes_per_selected_step(),
        "measures": {
            label: {
                "entropy": [_number(v) for v in step_entropy[i]],
                "top10_mass": [_number(v) for v in step_top[i]],
                "aggregate_entropy": _number(entropy(maps.aggregate[i])),
            }
            for i, label in enumerate(labels)
        },
        "overlap": {
            f"{labels[i]}|{labels[j]}": _number(overlap(maps.aggregate[i], maps.aggregate[j]))
            for i in range(len(labels))
            for j in range(i + 1, len(labels))
        },
    }
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step where every map is empty
        mean_entropy = np.nanmean(step_entropy, axis=0)
    for slot, value in enumerate(mean_entropy):
        if math.isfinite(value):
            ctx.series(
                "attention_entropy",
                timesteps[slot],
                float(value),
                x_label="timestep",
                y_label="mean map entropy",
            )
    for name, value in (("entropy_early", mean_entropy[0]), ("entropy_late", mean_entropy[-1])):
        if math.isfinite(value):
            ctx.metric(name, float(value))
    if share_all is not None:
        ctx.metric("text_share", share_all)
    _write(ctx, image, maps, labels, results, buffers, tokens)
    return results, _report(results, tokens)


def _unique_labels(words: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    labels = []
    for word in words:
        seen[word] = seen.get(word, 0) + 1
        labels.append(word if seen[word] == 1 else f"{word}#{seen[word]}")
    return labels


def _write(
    ctx: RunContext,
    image: np.ndarray,
    maps: Any,
    labels: list[str],
    results: dict[str, Any],
    buffers: CaptureBuffers,
    tokens: PromptTokens,
) -> None:
    import matplotlib.pyplot as plt

    from .figures import grid_figure, overlay

    arrays: dict[str, Any] = {
        "image": image,
        "words": np.asarray(labels),
        "per_step": maps.per_step.astype(np.float32),
        "aggregate": maps.aggregate.astype(np.float32),
        "timesteps": np.asarray(results["timesteps"]),
        "tokens": np.asarray(tokens.tokens),
    }
    for (h, w), selected in buffers.selected.items():
        arrays[f"raw_{h}x{w}"] = selected.reshape(*selected.shape[:2], h, w).numpy()
        share = buffers.selected_share[(h, w)]
        arrays[f"share_{h}x{w}"] = share.reshape(*share.shape[:2], h, w).numpy()
        arrays[f"words_{h}x{w}"] = maps.by_group[(h, w)].astype(np.float32)
    ctx.save_npz("attention_maps.npz", "raw and word maps", **arrays)
    figure = grid_figure(image, maps.per_step, maps.aggregate, labels, results["timesteps"])
    ctx.save_figure(figure, "attention_maps.png", "words × timesteps")
    plt.close(figure)
    ctx.save_image(overlay(image, None), "attention_image.png", "generated image")
    for index, label in enumerate(labels):
        ctx.save_image(
            overlay(image, maps.aggregate[index]),
            f"attention_word-{_slug(label)}.png",
            f"{label}: the selected steps, all layers",
        )
        for slot, timestep in enumerate(results["timesteps"]):
            ctx.save_image(
                overlay(image, maps.per_step[index, slot]),
                f"attention_word-{_slug(label)}_t-{int(timestep):03d}.png",
                f"{label} at t={timestep:g}",
            )


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _report(results: dict[str, Any], tokens: PromptTokens) -> str:
    header = " | ".join(f"t={t:g}" for t in results["timesteps"])
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(results["layer_kinds"].items()))
    share = results["text_share"]["all_steps"]
    lines = [
        f"Prompt: *{results['prompt']}* ({results['pipeline']}, {results['steps']} steps, "
        f"groups {', '.join(results['groups'])}; captured layers: {kinds}).",
        "",
        "![attention maps](artifacts/attention_maps.png)",
        "",
        f"Maps shown: each pixel's attention over the prompt's tokens, {SHOWN} (for "
        "joint attention, the text keys' probabilities from the softmax over all keys, "
        "divided by their sum), summed over layers and the word's tokens. Mean share of "
        f"attention on the text keys: {_cell(share)} (1 for cross-attention); the "
        "unrenormalised maps are `share_<group>` in `artifacts/attention_maps.npz`.",
        "",
        "Token positions the maps index:",
        "",
    ]
    lines += [f"- {source.describe()}" for source in tokens.sources]
    lines += [
        "",
        "Map entropy per word and timestep (1 = uniform, lower = more localised; "
        "n/a for a map with no mass):",
        "",
        f"| word | {header} |",
        "|" + " --- |" * (len(results["timesteps"]) + 1),
    ]
    for word, measures in results["measures"].items():
        cells = " | ".join(_cell(v) for v in measures["entropy"])
        lines.append(f"| {word} | {cells} |")
    if results["dropped_words"]:
        lines += [
            "",
            f"Not mapped (past the text encoders' limits): {' '.join(results['dropped_words'])}",
        ]
    if results["not_captured"]:
        lines += ["", f"Layers not captured: {_skipped_summary(results['not_captured'])}."]
    return "\n".join(lines)
