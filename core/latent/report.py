"""The latent mode's run: each task produces strips or grids, numbers, and a report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import pipeline_parts as parts
from ..errors import InputError
from ..images import find_images, make_grid, read_image
from ..modes import RunContext
from . import explore
from .ood import MIN_REFERENCE, auroc, fit_mahalanobis, latent_summary
from .paths import path, smoothness


def _features(
    ctx: RunContext,
    extractor: Any,
    images: np.ndarray,
    batch_size: int = 64,
    phase: str | None = None,
) -> np.ndarray:
    """Feature-space embeddings in batches (a 299 px Inception batch of a whole reference set
    would not fit in memory), reporting progress under ``phase`` when given."""
    from ..metrics.reference import extract

    out = []
    for start in range(0, len(images), batch_size):
        out.append(extract(extractor, images[start : start + batch_size])[0])
        if phase:
            ctx.progress(phase, min(start + batch_size, len(images)), len(images), "img")
    return np.concatenate(out) if out else extract(extractor, images)[0]


def _latents(
    ctx: RunContext, pipeline: Any, images: np.ndarray, options: Any, phase: str
) -> np.ndarray:
    out = []
    step = options.batch_size
    for start in range(0, len(images), step):
        out.append(explore.encode_images(pipeline, images[start : start + step], step).numpy())
        ctx.progress(phase, min(start + step, len(images)), len(images), "img")
    return np.concatenate(out)


def _strip(ctx: RunContext, images: np.ndarray, name: str, caption: str) -> str:
    ctx.save_image(make_grid(images, columns=len(images)), name, caption)
    return f"artifacts/{name}"


def _read_images(paths: list[Path], size: tuple[int, int]) -> tuple[np.ndarray, list[Path]]:
    """RGB uint8 ``[N, H, W, 3]`` at ``size`` (height, width), bicubic, and the files that
    failed to decode."""
    from PIL import Image

    images, skipped = [], []
    for file in paths:
        image = read_image(file)
        if image is None:
            skipped.append(file)
            continue
        if image.shape[:2] != size:
            image = np.asarray(
                Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BICUBIC)
            )
        images.append(image)
    empty = np.zeros((0, *size, 3), np.uint8)
    return (np.stack(images) if images else empty), skipped


def seeds_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt": options.prompt,
        "seeds": list(options.seeds),
        "frames": options.frames,
    }
    for method in ("slerp", "lerp"):
        strip = explore.seed_strip(
            pipeline,
            options.settings,
            options.prompt,
            options.seeds,
            options.frames,
            method,
            options.batch_size,
        )
        stats = smoothness(_features(ctx, extractor, strip))
        out[method] = {
            **stats,
            "strip": _strip(
                ctx, strip, f"latent_seeds_{method}.png", f"seed {method} {options.seeds}"
            ),
        }
        ctx.metric(f"seeds_{method}_max_mean_ratio", stats["max_mean_ratio"])
    return out


def prompts_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    pair = (options.prompt, options.prompt_b)
    strip = explore.prompt_strip(
        pipeline, options.settings, pair, options.seeds[0], options.frames, options.batch_size
    )
    stats = smoothness(_features(ctx, extractor, strip))
    ctx.metric("prompts_max_mean_ratio", stats["max_mean_ratio"])
    return {
        "prompts": list(pair),
        "seed": options.seeds[0],
        **stats,
        "strip": _strip(ctx, strip, "latent_prompts.png", "prompt-embedding lerp"),
    }


def _reconstruction(
    ctx: RunContext, extractor: Any, images: np.ndarray, rebuilt: np.ndarray
) -> dict[str, Any]:
    """How faithful inversion + regeneration is: pixel MSE and PSNR, the feature-space
    distance, and (extractors with a classifier) whether the predicted class survives."""
    from ..metrics.reference import extract

    mse = float(np.mean((rebuilt.astype(np.float64) - images.astype(np.float64)) ** 2) / 255**2)
    psnr = float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")
    original, original_logits = extract(extractor, images, with_logits=extractor.has_logits)
    again, again_logits = extract(extractor, rebuilt, with_logits=extractor.has_logits)
    agreement = None
    if original_logits is not None and again_logits is not None:
        agreement = float(np.mean(original_logits.argmax(1) == again_logits.argmax(1)))
    return {
        "reconstruction_mse": mse,
        "reconstruction_psnr": psnr,
        "feature_distance": float(np.linalg.norm(original - again, axis=1).mean()),
        "label_agreement": agreement,
    }


def images_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    explore.require_vae(pipeline, "images")
    images, skipped = _read_images([Path(p).expanduser() for p in options.images], options.size)
    if skipped or len(images) != 2:
        raise InputError(f"--images: {', '.join(map(str, skipped))}: cannot be decoded as an image")
    latents = explore.encode_images(pipeline, images, options.batch_size)
    a, b = latents[:1], latents[1:]
    out: dict[str, Any] = {
        "images": [str(p) for p in options.images],
        "size": list(options.size),
        "inversion": parts.inversion_kind(parts.family_of(pipeline), _scheduler_config(pipeline)),
    }
    for method in ("slerp", "lerp"):
        strip = explore.decode_latents(pipeline, torch.cat(path(a, b, options.frames, method)))
        stats = smoothness(_features(ctx, extractor, strip))
        out[f"vae_{method}"] = {
            **stats,
            "strip": _strip(ctx, strip, f"latent_images_vae_{method}.png", f"VAE-latent {method}"),
        }
        ctx.metric(f"images_vae_{method}_max_mean_ratio", stats["max_mean_ratio"])
    ctx.progress("images", 1, 3, "phase")
    steps, guidance = options.settings.steps, options.settings.guidance_scale
    prompt = options.inversion_prompt
    noise = explore.invert(pipeline, latents, prompt, steps, guidance)
    rebuilt = explore.regenerate(pipeline, noise, prompt, steps, options.size, guidance)
    fidelity = _reconstruction(ctx, extractor, images, rebuilt)
    ctx.progress("images", 2, 3, "phase")
    strip = explore.regenerate(
        pipeline,
        torch.cat(path(noise[:1], noise[1:], options.frames, "slerp")),
        prompt,
        steps,
        options.size,
        guidance,
    )
    stats = smoothness(_features(ctx, extractor, strip))
    out["ddim"] = {
        **stats,
        **fidelity,
        "strip": _strip(ctx, strip, "latent_images_ddim.png", "inverted-noise slerp"),
        "reconstruction": _strip(
            ctx,
            np.concatenate([images, rebuilt]),
            "latent_images_reconstruction.png",
            "originals, then their inversion + regeneration",
        ),
    }
    ctx.progress("images", 3, 3, "phase")
    ctx.metric("inversion_mse", fidelity["reconstruction_mse"], n=2)
    ctx.metric("inversion_psnr", fidelity["reconstruction_psnr"], unit="dB", n=2)
    if fidelity["label_agreement"] is not None:
        ctx.metric("inversion_label_agreement", fidelity["label_agreement"], n=2)
    return out


def _scheduler_config(pipeline: Any) -> dict[str, Any]:
    return {**dict(pipeline.scheduler.config), "_class_name": type(pipeline.scheduler).__name__}


def _spearman(strengths: list[float], values: np.ndarray | None) -> float:
    from scipy.stats import spearmanr

    if values is None or np.ptp(values) == 0:
        return 0.0
    rho = spearmanr(strengths, values).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def directions_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    explore.require_vae(pipeline, "directions")
    prompts, strengths = options.direction_prompts, options.strengths
    pair, seed = options.direction, ctx.seed
    total = 2 * len(prompts) + 1
    grid = []
    for index, prompt in enumerate(prompts):
        grid.append(
            explore.direction_sweep(
                pipeline, options.settings, pair, [prompt], strengths, seed, options.batch_size
            )[0]
        )
        ctx.progress("directions", index + 1, total, "step")
    # Each row's scale: the same prompt and seed with the positive and with the negative word.
    positive, negative = explore.contrast_images(pipeline, options.settings, pair, prompts, seed)
    ctx.progress("directions", total, total, "step")
    rows = []
    for prompt, row, high, low in zip(prompts, grid, positive, negative, strict=True):
        values = explore.attribute(pipeline, row, high, low)
        if values is None:
            ctx.warn(
                f"--direction: '{pair[0]}' and '{pair[1]}' give the same image for "
                f"{prompt!r}; its attribute scale is undefined"
            )
        rows.append(
            {
                "prompt": prompt,
                "contrast": [explore.with_word(prompt, w) for w in pair],
                "attribute": None if values is None else [float(v) for v in values],
                "spearman": _spearman(strengths, values),
                "monotone": values is not None and bool(np.all(np.diff(values) > 0)),
            }
        )
    share = float(np.mean([r["monotone"] for r in rows]))
    mean_rho = float(np.mean([r["spearman"] for r in rows]))
    ctx.metric("direction_monotone_share", share, n=len(rows))
    ctx.metric("direction_mean_spearman", mean_rho, n=len(rows))
    # grid rows: the negative word's image, the sweep, the positive word's image
    framed = np.stack(
        [
            np.concatenate([low[None], row, high[None]])
            for row, high, low in zip(grid, positive, negative, strict=True)
        ]
    )
    ctx.save_image(
        make_grid(framed.reshape(-1, *framed.shape[2:]), columns=framed.shape[1]),
        "latent_directions.png",
        f"{pair[1]} (left), the {pair[0]} - {pair[1]} sweep "
        f"at strengths {', '.join(f'{s:g}' for s in strengths)}, {pair[0]} (right)",
    )
    ctx.save_npz(
        "latent_directions.npz",
        "sweep images and each row's contrast pair",
        images=np.stack(grid),
        strengths=np.asarray(strengths),
        positive=positive,
        negative=negative,
    )
    ctx.save_csv(
        "latent_directions.csv",
        ["prompt", *[f"s={s:g}" for s in strengths], "spearman", "monotone"],
        [
            [
                r["prompt"],
                *(
                    [f"{v:.6g}" for v in r["attribute"]]
                    if r["attribute"] is not None
                    else [""] * len(strengths)
                ),
                f"{r['spearman']:.4f}",
                int(r["monotone"]),
            ]
            for r in rows
        ],
        "attribute along the sweep: 0 = the negative word's image, 1 = the positive "
        "word's (VAE-latent projection)",
    )
    return {
        "pair": list(pair),
        "strengths": list(strengths),
        "seed": seed,
        "rows": rows,
        "measured_in": "vae_latent",
        "monotone_share": share,
        "mean_spearman": mean_rho,
        "grid": "artifacts/latent_directions.png",
    }


def _read_folder(
    ctx: RunContext, folder: str, size: tuple[int, int], what: str, limit: int | None = None
) -> np.ndarray:
    """Decodable images of a folder (at most ``limit``, evenly spread over its sorted files);
    files that fail to decode are skipped with one warning line."""
    paths = find_images(folder, what=what)
    if limit is not None and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    images, skipped = _read_images(paths, size)
    if skipped:
        ctx.warn(
            f"{what} {folder}: skipped {len(skipped)} file(s) that failed to decode: "
            f"{', '.join(p.name for p in skipped[:5])}"
        )
    if len(images) == 0:
        raise InputError(f"{what} {folder}: none of the images could be decoded")
    return images


def ood_task(ctx: RunContext, pipeline: Any, extractor: Any, options: Any) -> dict[str, Any]:
    explore.require_vae(pipeline, "ood")
    size = options.size
    reference = _read_folder(ctx, options.reference, size, "--reference", options.ood_limit)
    latent_model = fit_mahalanobis(
        _latents(ctx, pipeline, reference, options, "ood reference"),
        f"--reference {options.reference}",
        "latent_mahalanobis",
        summary=latent_summary,
    )
    feature_model = fit_mahalanobis(
        _features(ctx, extractor, reference, phase="ood features"),
        f"--reference {options.reference}",
    )
    models = {"latent_mahalanobis": latent_model, "mahalanobis": feature_model}
    out: dict[str, Any] = {
        "reference": options.reference,
        "n_reference": len(reference),
        "min_reference": MIN_REFERENCE,
        "shrinkage": feature_model.shrinkage,
        "clusters": len(feature_model.centres),
        "n_fit": feature_model.fitted,
        "n_calibration": len(feature_model.scores),
        **{name: model.describe() for name, model in models.items()},
    }
    for name, model in models.items():
        ctx.metric(f"ood_{name}_threshold", model.threshold, n=len(model.scores))

    def score(images: np.ndarray, phase: str) -> dict[str, np.ndarray]:
        return {
            "latent_mahalanobis": latent_model.score(
                _latents(ctx, pipeline, images, options, phase)
            ),
            "mahalanobis": feature_model.score(_features(ctx, extractor, images)),
        }

    if options.ood_in and options.ood_out:
        inside = score(_read_folder(ctx, options.ood_in, size, "--ood-in"), "ood in")
        outside = score(_read_folder(ctx, options.ood_out, size, "--ood-out"), "ood out")
        out["auroc"] = {name: auroc(inside[name], outside[name]) for name in inside}
        for name, value in list(out["auroc"].items()):
            ctx.metric(f"auroc_{name}", value, n=len(inside[name]) + len(outside[name]))
        out["auroc"].update(n_in=len(inside["mahalanobis"]), n_out=len(outside["mahalanobis"]))
        out["in_flagged"] = {
            name: float(np.mean(inside[name] > models[name].threshold)) for name in models
        }
    if options.ood_score:
        paths = find_images(options.ood_score, what="--ood-score")
        images, skipped = _read_images(paths, size)
        if skipped:
            ctx.warn(
                f"--ood-score {options.ood_score}: skipped {len(skipped)} file(s) that "
                "failed to decode"
            )
        good = [p for p in paths if p not in set(skipped)]
        scores = score(images, "ood score") if len(images) else {n: np.zeros(0) for n in models}
        rows = []
        for index, file in enumerate(good):
            values = {name: float(scores[name][index]) for name in models}
            rows.append(
                [
                    str(file),
                    *[f"{values[n]:.6g}" for n in models],
                    *[int(values[n] > models[n].threshold) for n in models],
                ]
            )
        ctx.save_csv(
            "ood_scores.csv",
            ["file", *models, *[f"{n}_flagged" for n in models]],
            rows,
            "OOD scores; flagged = above the threshold calibrated on the held-out "
            "part of the reference (about 5% of in-distribution images)",
        )
        out["scored"] = len(rows)
        out["flagged"] = {n: int(np.sum(scores[n] > models[n].threshold)) for n in models}
        out["scores_csv"] = "artifacts/ood_scores.csv"
    return out


TASKS = {
    "seeds": seeds_task,
    "prompts": prompts_task,
    "images": images_task,
    "directions": directions_task,
    "ood": ood_task,
}


def analyse(ctx: RunContext, options: Any) -> tuple[dict[str, Any], str]:
    from ..metrics.features import get_extractor

    model = ctx.model()
    pipeline = model.pipeline
    if not model.summary.text_conditioned:
        raise InputError(
            f"{model.summary.pipeline_class}: the latent mode needs a text-to-image pipeline"
        )
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=True)
    parts.parts(pipeline)  # one line for a pipeline family the mode cannot drive
    settings = options.settings
    options.size = parts.denoise_size(pipeline, settings.height, settings.width)
    extractor = get_extractor(
        options.features,
        str(pipeline.device),
        inception_weights=ctx.options.inception_weights,
        model=ctx.options.feature_model,
    )
    results: dict[str, Any] = {
        "features": extractor.name,
        "tasks": list(options.tasks),
        "steps": options.settings.steps,
        "guidance_scale": options.settings.guidance_scale,
    }
    for index, task in enumerate(options.tasks):
        ctx.progress("tasks", index, len(options.tasks), "task")
        ctx.log(f"latent task: {task}")
        results[task] = TASKS[task](ctx, pipeline, extractor, options)
    ctx.progress("tasks", len(options.tasks), len(options.tasks), "task")
    return results, _report(results)


def _report(results: dict[str, Any]) -> str:
    lines = [
        f"Feature space for smoothness, directions and OOD: **{results['features']}**; "
        f"{results['steps']} steps, guidance {results['guidance_scale']:g}.",
        "",
    ]
    if "seeds" in results:
        seeds = results["seeds"]
        lines += [
            f"Seed interpolation ({seeds['seeds']}, *{seeds['prompt']}*): max/mean step "
            f"ratio slerp {seeds['slerp']['max_mean_ratio']:.3f}, lerp "
            f"{seeds['lerp']['max_mean_ratio']:.3f} (1 = evenly paced).",
            "",
            f"![slerp]({seeds['slerp']['strip']})",
            "",
            f"![lerp]({seeds['lerp']['strip']})",
            "",
        ]
    if "prompts" in results:
        lines += [
            f"Prompt interpolation: max/mean ratio {results['prompts']['max_mean_ratio']:.3f}",
            "",
            f"![prompts]({results['prompts']['strip']})",
            "",
        ]
    if "images" in results:
        images = results["images"]
        ddim = images["ddim"]
        agreement = ddim["label_agreement"]
        lines += [
            f"Image interpolation: VAE-latent max/mean ratio slerp "
            f"{images['vae_slerp']['max_mean_ratio']:.3f}, lerp "
            f"{images['vae_lerp']['max_mean_ratio']:.3f}; inverted-noise slerp "
            f"{ddim['max_mean_ratio']:.3f} ({images['inversion']} inversion). "
            f"Inversion reconstruction MSE "
            f"{ddim['reconstruction_mse']:.5f} (PSNR {ddim['reconstruction_psnr']:.1f} dB)"
            + (f", class kept for {agreement:.0%}" if agreement is not None else "")
            + ".",
            "",
            f"![vae slerp]({images['vae_slerp']['strip']})",
            "",
            f"![vae lerp]({images['vae_lerp']['strip']})",
            "",
            f"![ddim]({ddim['strip']})",
            "",
            f"![reconstruction]({ddim['reconstruction']})",
            "",
        ]
    if "directions" in results:
        d = results["directions"]
        lines += [
            f"Direction *{d['pair'][0]}* − *{d['pair'][1]}*: attribute monotone for "
            f"{d['monotone_share']:.0%} of prompts (mean Spearman {d['mean_spearman']:.2f}). "
            f"The attribute of a frame is where it lies between the same prompt and seed "
            f"with *{d['pair'][1]}* (0) and with *{d['pair'][0]}* (1), in VAE latents.",
            "",
        ]
        for row in d["rows"]:
            values = ", ".join(f"{v:.2f}" for v in row["attribute"]) if row["attribute"] else "–"
            lines.append(f"- *{row['prompt']}*: {values} (Spearman {row['spearman']:.2f})")
        lines += ["", f"![directions]({d['grid']})", ""]
    if "ood" in results:
        ood = results["ood"]
        lines.append(
            f"OOD reference: {ood['n_reference']} images, fitted on {ood['n_fit']}, "
            f"thresholds calibrated on the other {ood['n_calibration']} (a new "
            f"in-distribution image is flagged with probability "
            f"{ood['mahalanobis']['expected_flag_rate']:.1%}); Mahalanobis threshold "
            f"{ood['mahalanobis']['threshold']:.3f} (held-out mean "
            f"{ood['mahalanobis']['mean']:.3f}), latent Mahalanobis threshold "
            f"{ood['latent_mahalanobis']['threshold']:.3f} (mean "
            f"{ood['latent_mahalanobis']['mean']:.3f})."
        )
        if "auroc" in ood:
            lines.append(
                f"AUROC ({ood['auroc']['n_in']} in, {ood['auroc']['n_out']} out): "
                f"Mahalanobis {ood['auroc']['mahalanobis']:.3f}, latent Mahalanobis "
                f"{ood['auroc']['latent_mahalanobis']:.3f}; in-distribution images "
                f"flagged: {ood['in_flagged']['mahalanobis']:.1%} (Mahalanobis), "
                f"{ood['in_flagged']['latent_mahalanobis']:.1%} (latent)."
            )
        if "scored" in ood:
            lines.append(
                f"Scored {ood['scored']} images; flagged {ood['flagged']['mahalanobis']} "
                f"(Mahalanobis), {ood['flagged']['latent_mahalanobis']} (latent Mahalanobis): "
                f"[scores]({ood['scores_csv']})."
            )
    return "\n".join(lines)
