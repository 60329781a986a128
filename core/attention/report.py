"""The attention mode's run: generate with capture, build word maps, measure, draw, write."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from diffusionscope.core.attention.capture import capture_cross_attention, denoiser
from diffusionscope.core.attention.maps import entropy, overlap, top_mass, word_maps
from diffusionscope.core.attention.words import prompt_words
from diffusionscope.core.errors import InputError
from diffusionscope.core.generation import GenerationSettings, generate
from diffusionscope.core.modes import RunContext

SUPPORTED = ("StableDiffusion", "PixArt", "Kandinsky", "LatentConsistency", "AltDiffusion")


def selected_step_indices(calls: int, requested: str | None) -> list[int]:
    """Denoiser-call indices to keep: ``K`` spread over the run, or an explicit list."""
    if requested and "," in requested or (requested and not requested.isdigit()):
        try:
            steps = sorted({int(s) for s in requested.split(",") if s.strip()})
        except ValueError:
            raise InputError(f"--attention-steps: expected a count or step indices, got "
                             f"{requested!r}") from None  # fmt: skip
        bad = [s for s in steps if not 0 <= s < calls]
        if bad:
            raise InputError(f"--attention-steps: step {bad[0]} is outside 0..{calls - 1}")
        return steps
    count = min(int(requested or 4), calls)
    return sorted({int(round(v)) for v in np.linspace(0, calls - 1, count)})


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "word"


def analyse(ctx: RunContext) -> tuple[dict[str, Any], str]:
    from diffusionscope.core.loading import require_pipeline

    args = ctx.args
    model = ctx.model()
    require_pipeline(model, "attention", SUPPORTED)
    pipeline = model.pipeline
    _, net = denoiser(pipeline)
    tokens = prompt_words(pipeline.tokenizer, args.prompt)
    if tokens.dropped:
        ctx.warn(f"prompt longer than the tokenizer's {pipeline.tokenizer.model_max_length} "
                 f"tokens: dropped words: {' '.join(tokens.dropped)}")  # fmt: skip
    if args.words:
        chosen = [tokens.word(text.strip()) for text in args.words.split(",") if text.strip()]
    else:
        chosen = tokens.content_words
    settings = GenerationSettings.from_args(args, steps=25, guidance_scale=5.0)
    pipeline.scheduler.set_timesteps(settings.steps)
    calls = len(pipeline.scheduler.timesteps)
    visited = [float(t) for t in pipeline.scheduler.timesteps]
    selected = selected_step_indices(calls, args.attention_steps)
    height = settings.height or model.summary.native_resolution or 512
    width = settings.width or model.summary.native_resolution or 512
    scale = getattr(pipeline, "vae_scale_factor", 8)
    guided = settings.guidance_scale > 1.0
    ctx.progress("generate", 0, 1, "img")
    with capture_cross_attention(pipeline, selected, (height // scale, width // scale),
                                 guided) as buffers:  # fmt: skip
        image = generate(pipeline, [ctx.seed], settings, [args.prompt])[0]
    ctx.progress("generate", 1, 1, "img")
    maps = word_maps(buffers, chosen, image.shape[:2])
    labels = _unique_labels(maps.words)
    step_entropy = entropy(maps.per_step)  # [W, K]
    step_top = top_mass(maps.per_step)
    results: dict[str, Any] = {
        "prompt": args.prompt,
        "pipeline": model.summary.pipeline_class,
        "words": labels,
        "dropped_words": tokens.dropped,
        "tokens": tokens.tokens,
        "steps": settings.steps,
        "selected_steps": selected,
        "timesteps": [visited[i] for i in selected],
        "groups": [f"{h}x{w}" for h, w in sorted(buffers.total, reverse=True)],
        "layers": {f"{h}x{w}": sorted(names) for (h, w), names in buffers.layers.items()},
        "guided": guided,
        "measures": {
            label: {
                "entropy": step_entropy[i].tolist(),
                "top10_mass": step_top[i].tolist(),
                "aggregate_entropy": float(entropy(maps.aggregate[i])),
            }
            for i, label in enumerate(labels)
        },  # fmt: skip
        "overlap": {
            f"{labels[i]}|{labels[j]}": overlap(maps.aggregate[i], maps.aggregate[j])
            for i in range(len(labels))
            for j in range(i + 1, len(labels))
        },  # fmt: skip
    }
    mean_entropy = step_entropy.mean(axis=0)
    for slot, value in enumerate(mean_entropy):
        ctx.series("attention_entropy", results["timesteps"][slot], float(value),
                   x_label="timestep", y_label="mean map entropy")  # fmt: skip
    ctx.metric("entropy_early", float(mean_entropy[0]))
    ctx.metric("entropy_late", float(mean_entropy[-1]))
    _write(ctx, image, maps, labels, results, buffers, tokens.tokens)
    return results, _report(results)


def _unique_labels(words: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    labels = []
    for word in words:
        seen[word] = seen.get(word, 0) + 1
        labels.append(word if seen[word] == 1 else f"{word}#{seen[word]}")
    return labels


def _write(ctx: RunContext, image: np.ndarray, maps: Any, labels: list[str],
           results: dict[str, Any], buffers: Any, all_tokens: list[str]) -> None:  # fmt: skip
    import matplotlib.pyplot as plt

    from diffusionscope.core.attention.figures import grid_figure, overlay

    arrays: dict[str, Any] = {"image": image, "words": np.asarray(labels),
                              "per_step": maps.per_step.astype(np.float32),
                              "aggregate": maps.aggregate.astype(np.float32),
                              "timesteps": np.asarray(results["timesteps"]),
                              "tokens": np.asarray(all_tokens)}  # fmt: skip
    for (h, w), selected in buffers.selected.items():
        arrays[f"raw_{h}x{w}"] = selected.reshape(*selected.shape[:2], h, w).numpy()
        arrays[f"words_{h}x{w}"] = maps.by_group[(h, w)].astype(np.float32)
    ctx.save_npz("attention_maps.npz", "raw and word maps", **arrays)
    figure = grid_figure(image, maps.per_step, maps.aggregate, labels, results["timesteps"])
    ctx.save_figure(figure, "attention_maps.png", "words × timesteps")
    plt.close(figure)
    ctx.save_image(overlay(image, None), "attention_image.png", "generated image")
    for index, label in enumerate(labels):
        ctx.save_image(overlay(image, maps.aggregate[index]), f"attention_word-{_slug(label)}.png",
                       f"{label}: all steps and layers")  # fmt: skip
        for slot, timestep in enumerate(results["timesteps"]):
            ctx.save_image(overlay(image, maps.per_step[index, slot]),
                           f"attention_word-{_slug(label)}_t-{int(timestep):03d}.png",
                           f"{label} at t={timestep:g}")  # fmt: skip


def _report(results: dict[str, Any]) -> str:
    header = " | ".join(f"t={t:g}" for t in results["timesteps"])
    lines = [f"Prompt: *{results['prompt']}* ({results['pipeline']}, {results['steps']} steps, "
             f"groups {', '.join(results['groups'])}).", "",
             "![attention maps](artifacts/attention_maps.png)", "",
             "Map entropy per word and timestep (1 = uniform, lower = more localised):", "",
             f"| word | {header} |", "|" + " --- |" * (len(results['timesteps']) + 1)]  # fmt: skip
    for word, measures in results["measures"].items():
        cells = " | ".join(f"{v:.3f}" for v in measures["entropy"])
        lines.append(f"| {word} | {cells} |")
    if results["dropped_words"]:
        lines += ["", f"Dropped (past the tokenizer's limit): {' '.join(results['dropped_words'])}"]
    return "\n".join(lines)
