"""The latent mode's run: each task produces strips or grids, numbers, and a report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import InputError
from core.images import find_images, load_images, make_grid
from core.latent import explore
from core.latent.ood import auroc, fit_latent_znorm, fit_mahalanobis
from core.latent.paths import path, smoothness
from core.modes import RunContext


def _features(ctx: RunContext, extractor: Any, images: np.ndarray) -> np.ndarray:
    from core.metrics.reference import extract

    return extract(extractor, images)[0]


def _strip(ctx: RunContext, images: np.ndarray, name: str, caption: str) -> str:
    ctx.save_image(make_grid(images, columns=len(images)), name, caption)
    return f"artifacts/{name}"


def seeds_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt": options.prompt,
        "seeds": list(options.seeds),
        "frames": options.frames,
    }
    for method in ("slerp", "lerp"):
        strip = explore.seed_strip(pipeline, options.settings, options.prompt, options.seeds,
                                   options.frames, method, options.size)  # fmt: skip
        stats = smoothness(_features(ctx, extractor, strip))
        out[method] = {**stats, "strip": _strip(ctx, strip, f"latent_seeds_{method}.png",
                                                f"seed {method} {options.seeds}")}  # fmt: skip
        ctx.metric(f"seeds_{method}_max_mean_ratio", stats["max_mean_ratio"])
    return out


def prompts_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    pair = (options.prompt, options.prompt_b)
    strip = explore.prompt_strip(pipeline, options.settings, pair, options.seeds[0], options.frames)
    stats = smoothness(_features(ctx, extractor, strip))
    ctx.metric("prompts_max_mean_ratio", stats["max_mean_ratio"])
    return {"prompts": list(pair), "seed": options.seeds[0], **stats,
            "strip": _strip(ctx, strip, "latent_prompts.png", "prompt-embedding lerp")}  # fmt: skip


def images_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    explore.require_vae(pipeline, "images")
    images, skipped = load_images([Path(p) for p in options.images], size=options.size[0])
    if skipped or len(images) != 2:
        raise InputError(f"--images: could not decode {', '.join(map(str, skipped))}")
    latents = explore.encode_images(pipeline, images)
    a, b = latents[:1], latents[1:]
    out: dict[str, Any] = {"images": [str(p) for p in options.images]}
    for method in ("slerp", "lerp"):
        strip = explore.decode_latents(pipeline, torch.cat(path(a, b, options.frames, method)))
        stats = smoothness(_features(ctx, extractor, strip))
        out[f"vae_{method}"] = {**stats, "strip": _strip(ctx, strip, f"latent_images_vae_{method}.png",
                                                         f"VAE-latent {method}")}  # fmt: skip
    steps = options.settings.steps
    noise = explore.ddim_invert(pipeline, latents, options.inversion_prompt, steps)
    rebuilt = explore.ddim_regenerate(pipeline, [noise[:1], noise[1:]], options.inversion_prompt,
                                      steps, ctx.seed)  # fmt: skip
    error = float(np.mean((rebuilt.astype(np.float64) - images.astype(np.float64)) ** 2) / 255**2)
    strip = explore.ddim_regenerate(pipeline, path(noise[:1], noise[1:], options.frames, "slerp"),
                                    options.inversion_prompt, steps, ctx.seed)  # fmt: skip
    stats = smoothness(_features(ctx, extractor, strip))
    out["ddim"] = {**stats, "reconstruction_mse": error,
                   "strip": _strip(ctx, strip, "latent_images_ddim.png", "DDIM-inverted slerp"),
                   "reconstruction": _strip(ctx, np.concatenate([images, rebuilt]),
                                            "latent_images_reconstruction.png",
                                            "originals, then their DDIM reconstructions")}  # fmt: skip
    ctx.metric("inversion_mse", error)
    return out


def directions_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    from scipy.stats import spearmanr

    grid = explore.direction_sweep(pipeline, options.settings, options.direction,
                                   options.direction_prompts, options.strengths, ctx.seed)  # fmt: skip
    # The attribute: projection on the feature-space direction between the pair's own images.
    ends = explore.render(pipeline, options.settings, ctx.seed, prompt=None,
                          embeddings=[explore.embed(pipeline, p)[0] for p in options.direction],
                          negative=explore.embed(pipeline, "")[1])  # fmt: skip
    end_features = _features(ctx, extractor, ends)
    axis = end_features[0] - end_features[1]
    axis /= np.linalg.norm(axis) + 1e-12
    rows = []
    for prompt, row in zip(options.direction_prompts, grid, strict=True):
        values = _features(ctx, extractor, row) @ axis
        rho = float(spearmanr(options.strengths, values).statistic)
        rows.append({"prompt": prompt, "attribute": values.tolist(), "spearman": rho,
                     "monotone": bool(np.all(np.diff(values) > 0))})  # fmt: skip
    share = float(np.mean([r["monotone"] for r in rows]))
    ctx.metric("direction_monotone_share", share)
    flat = grid.reshape(-1, *grid.shape[2:])
    ctx.save_image(make_grid(flat, columns=len(options.strengths)), "latent_directions.png",
                   f"{options.direction[0]} - {options.direction[1]} sweep")  # fmt: skip
    ctx.save_npz("latent_directions.npz", "sweep images", images=grid,
                 strengths=np.asarray(options.strengths))  # fmt: skip
    return {"pair": list(options.direction), "strengths": list(options.strengths), "rows": rows,
            "monotone_share": share, "mean_spearman": float(np.mean([r["spearman"] for r in rows])),
            "grid": "artifacts/latent_directions.png"}  # fmt: skip


def _read_folder(folder: str, size: int, what: str, ctx: RunContext) -> np.ndarray:
    images, skipped = load_images(find_images(folder, what=what), size=size)
    if skipped:
        ctx.warn(f"{what} {folder}: skipped {len(skipped)} file(s) that failed to decode")
    return images


def ood_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    explore.require_vae(pipeline, "ood")
    size = options.size[0]
    reference = _read_folder(options.reference, size, "--reference", ctx)[: options.ood_limit]
    latent_model = fit_latent_znorm(explore.encode_images(pipeline, reference).numpy())
    feature_model = fit_mahalanobis(_features(ctx, extractor, reference))
    out: dict[str, Any] = {"reference": options.reference, "n_reference": len(reference),
                           "latent_znorm": latent_model.describe(),
                           "mahalanobis": feature_model.describe()}  # fmt: skip

    def score(images: np.ndarray) -> dict[str, np.ndarray]:
        return {"latent_znorm": latent_model.score(explore.encode_images(pipeline, images).numpy()),
                "mahalanobis": feature_model.score(_features(ctx, extractor, images))}  # fmt: skip

    rows = []
    if options.ood_score:
        paths = find_images(options.ood_score, what="--ood-score")
        images, skipped = load_images(paths, size=size)
        scores = score(images)
        good = [p for p in paths if p not in set(skipped)]
        for index, file in enumerate(good):
            z, m = scores["latent_znorm"][index], scores["mahalanobis"][index]
            rows.append([str(file), f"{z:.6g}", f"{m:.6g}", int(m > feature_model.threshold)])
        out["scored"] = len(rows)
        out["flagged"] = int(sum(r[3] for r in rows))
    if options.ood_in and options.ood_out:
        inside = score(_read_folder(options.ood_in, size, "--ood-in", ctx))
        outside = score(_read_folder(options.ood_out, size, "--ood-out", ctx))
        out["auroc"] = {name: auroc(inside[name], outside[name]) for name in inside}
        for name, value in out["auroc"].items():
            ctx.metric(f"auroc_{name}", value)
    if rows:
        ctx.save_csv("ood_scores.csv", ["file", "latent_znorm", "mahalanobis", "flagged"], rows,
                     "OOD scores")  # fmt: skip
    return out


TASKS = {"seeds": seeds_task, "prompts": prompts_task, "images": images_task,
         "directions": directions_task, "ood": ood_task}  # fmt: skip


def analyse(ctx: RunContext, options: Any) -> tuple[dict[str, Any], str]:
    from core.metrics.features import get_extractor

    model = ctx.model()
    pipeline = model.pipeline
    if not model.summary.text_conditioned:
        raise InputError(f"{model.summary.pipeline_class}: the latent mode needs a text-to-image "
                         "pipeline")  # fmt: skip
    side = options.size_override or model.summary.native_resolution or 512
    options.size = (side, side)
    extractor = get_extractor(options.features, str(pipeline.device))
    results: dict[str, Any] = {"features": extractor.name, "tasks": list(options.tasks)}
    for index, task in enumerate(options.tasks):
        ctx.progress("tasks", index, len(options.tasks), "task")
        ctx.log(f"latent task: {task}")
        results[task] = TASKS[task](ctx, pipeline, extractor, options)
    ctx.progress("tasks", len(options.tasks), len(options.tasks), "task")
    return results, _report(results)


def _report(results: dict[str, Any]) -> str:
    lines = [f"Feature space for smoothness and OOD: **{results['features']}**.", ""]
    if "seeds" in results:
        seeds = results["seeds"]
        lines += [f"Seed interpolation ({seeds['seeds']}, *{seeds['prompt']}*): max/mean step "
                  f"ratio slerp {seeds['slerp']['max_mean_ratio']:.3f}, lerp "
                  f"{seeds['lerp']['max_mean_ratio']:.3f}.", "",
                  f"![slerp]({seeds['slerp']['strip']})", "", f"![lerp]({seeds['lerp']['strip']})", ""]  # fmt: skip
    if "prompts" in results:
        lines += [f"Prompt interpolation: max/mean ratio {results['prompts']['max_mean_ratio']:.3f}",
                  "", f"![prompts]({results['prompts']['strip']})", ""]  # fmt: skip
    if "images" in results:
        ddim = results["images"]["ddim"]
        lines += [f"Image interpolation: DDIM reconstruction MSE {ddim['reconstruction_mse']:.5f}.",
                  "", f"![ddim]({ddim['strip']})", ""]  # fmt: skip
    if "directions" in results:
        d = results["directions"]
        lines += [f"Direction *{d['pair'][0]}* − *{d['pair'][1]}*: monotone for "
                  f"{d['monotone_share']:.0%} of prompts (mean Spearman {d['mean_spearman']:.2f}).",
                  "", f"![directions]({d['grid']})", ""]  # fmt: skip
    if "ood" in results:
        ood = results["ood"]
        lines.append(f"OOD reference: {ood['n_reference']} images; Mahalanobis threshold "
                     f"{ood['mahalanobis']['threshold']:.3f}, latent z-norm threshold "
                     f"{ood['latent_znorm']['threshold']:.3f}.")  # fmt: skip
        if "auroc" in ood:
            lines.append("AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in ood["auroc"].items()))
    return "\n".join(lines)
