"""Final numbers of a metrics run, with what each rests on, and the figures and tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..modes import ModeResult, RunContext
from .frechet import fid_from_features, mean_and_covariance
from .halfsamples import ChunkedFeatures
from .prdc import prdc
from .reference import (
    ReferenceStats,
    folder_batch_size,
    reference_from_folder,
)
from .scores import (
    cmmd,
    fid_infinity,
    fid_interval,
    inception_score,
    kid,
)


def finish(
    ctx: RunContext,
    options: Any,
    extractor: Any,
    reference: ReferenceStats,
    collected: Any,
    curve: list[list[float]],
    elapsed: float,
    device: torch.device | str = "cpu",
    throughput: dict[str, Any] | None = None,
) -> ModeResult:
    """Every final number, computed on ``device`` (the run's GPU, or the CPU)."""
    order = np.argsort(np.concatenate(collected.indices))
    features = collected.array("features")[order]
    n = len(features)
    features_t = torch.from_numpy(features).to(device)
    mu_ref = torch.as_tensor(reference.mu, device=device)
    sigma_ref = torch.as_tensor(reference.sigma, device=device)
    common = {"n": n, "extractor": extractor.name, "resize_policy": extractor.resize_policy}
    results: dict[str, Any] = {
        "n_generated": n,
        "n_reference": reference.n,
        "features": {
            "name": extractor.name,
            "dim": extractor.num_features,
            "resize_policy": extractor.resize_policy,
        },
        "reference": reference.describe(),
        "seconds": elapsed,
        "throughput": throughput or {},
        "statistics_device": str(device),
    }
    ctx.progress("scores", 0, 1, "stage")
    if "fid" in options.metrics:
        value = fid_from_features(features_t, mu_ref, sigma_ref)
        chunks = ChunkedFeatures.build(features_t, mu_ref, sigma_ref, seed=ctx.seed)
        infinity = fid_infinity(features_t, mu_ref, sigma_ref, seed=ctx.seed, chunks=chunks)
        interval = fid_interval(
            features_t, mu_ref, sigma_ref, value, options.bootstrap, seed=ctx.seed, chunks=chunks
        )
        del chunks
        results["fid"] = {
            "value": value,
            **common,
            "interval": [interval["low"], interval["high"]],
            "interval_level": interval["level"],
            "interval_method": interval["method"],
            "interval_covers": interval["covers"],
            "fid_inf": infinity["value"],
            "fid_inf_stderr": infinity["stderr"],
            "fid_inf_fit": infinity["fit"],
            "fid_inf_note": infinity["note"],
            "fid_inf_slope": infinity["slope"],
            "fid_inf_points": list(zip(infinity["n"], infinity["fid"], strict=True)),
            "curve": curve_points(curve),
        }
        ctx.metric("fid", value, n=n, interval=[interval["low"], interval["high"]])
        ctx.metric("fid_inf", infinity["value"], n=n)
    reference_features = reference.features
    if reference_features is None:
        skipped = [m for m in ("kid", "pr", "dc") if m in options.metrics]
        if skipped:
            ctx.warn(
                f"reference {reference.source} holds statistics only: "
                f"{', '.join(skipped)} need features and are skipped"
            )
    else:
        real_t = torch.from_numpy(reference_features).to(device)
        if "kid" in options.metrics:
            result = kid(real_t, features_t, seed=ctx.seed)
            results["kid"] = {**result, **common}
            ctx.metric("kid", result["mean"], n=n, std=result["std"])
        if "pr" in options.metrics or "dc" in options.metrics:
            # One pass serves both pairs (k=3 and k=5 from the same 6 nearest neighbours).
            found = prdc(real_t, features_t, k_pr=3, k_dc=5)
            for name, value, k, wanted in (
                ("precision", found.precision, 3, "pr"),
                ("recall", found.recall, 3, "pr"),
                ("density", found.density, 5, "dc"),
                ("coverage", found.coverage, 5, "dc"),
            ):
                if wanted in options.metrics:
                    results[name] = {"value": value, "k": k, **common}
                    ctx.metric(name, value, n=n)
    logits = collected.array("logits")
    if logits is not None and "is" in options.metrics:
        result = inception_score(torch.from_numpy(logits[order]).to(device), seed=ctx.seed)
        results["is"] = {**result, **common}
        ctx.metric("is", result["mean"], n=n, std=result["std"])
    scores = collected.array("clip")
    if scores is not None:
        scores = scores[order]
        results["clip_score"] = {
            "mean": float(scores.mean()),
            "std": float(scores.std()),
            "n": n,
            "model": options.clip_model,
        }
        ctx.metric("clip_score", float(scores.mean()), n=n)
    embeddings = collected.array("cmmd")
    if embeddings is not None and reference.source.lower().endswith(".npz"):
        ctx.warn(f"reference {reference.source}: CMMD needs the reference images; skipped")
    elif embeddings is not None:
        cmmd_extractor = _cmmd_extractor(ctx, options)
        real = reference_from_folder(reference.source, cmmd_extractor, folder_batch_size(ctx.args))
        value = cmmd(real.features, embeddings[order], device=device)
        results["cmmd"] = {"value": value, "n": n, "model": options.clip_model}
        ctx.metric("cmmd", value, n=n)
    ctx.progress("scores", 1, 1, "stage")
    _write_outputs(ctx, options, results, reference, features, logits, order, curve, collected)
    return ModeResult(results=results, report=_report(results))


def _cmmd_extractor(ctx: RunContext, options: Any) -> Any:
    from ..loading import resolve_device
    from .features import get_extractor

    return get_extractor("clip", resolve_device(ctx.args.device), model=options.clip_model)


def curve_points(curve: list[list[float]]) -> list[list[float | None]]:
    return [[n, fid, None if math.isnan(k) else k] for n, fid, k in curve]


def _write_outputs(
    ctx: RunContext,
    options: Any,
    results: dict[str, Any],
    reference: ReferenceStats,
    features: np.ndarray,
    logits: np.ndarray | None,
    order: np.ndarray,
    curve: list[list[float]],
    collected: Any,
) -> None:
    if not ctx.is_main:
        return
    if curve:
        ctx.save_csv(
            "fid_curve.csv",
            ["n", "fid", "kid"],
            [[int(n), f"{fid:.6f}", "" if math.isnan(k) else f"{k:.6f}"] for n, fid, k in curve],
            "FID and KID over N",
        )
        ctx.save_figure(_curve_figure(curve, results.get("fid")), "fid_curve.png", "FID over N")
    if options.save_features:
        real = {"mu": reference.mu, "sigma": reference.sigma, "n": np.asarray(reference.n)}
        if reference.features is not None:
            real["features"] = reference.features
        ctx.save_npz("features_real.npz", "reference features", **real)
        mu, sigma = mean_and_covariance(features)
        generated = {
            "features": features,
            "mu": mu,
            "sigma": sigma,
            "n": np.asarray(len(features)),
            "indices": np.concatenate(collected.indices)[order],
        }
        if logits is not None:
            generated["logits"] = logits[order]
        ctx.save_npz("features_generated.npz", "generated features", **generated)


def _curve_figure(curve: list[list[float]], fid: dict[str, Any] | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = np.asarray(curve, dtype=np.float64)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(points[:, 0], points[:, 1], marker="o", label="FID")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("N generated samples")
    axes[0].set_ylabel("FID")
    axes[0].set_title("FID as samples accumulate")
    if fid is not None:
        axes[0].axhline(
            fid["fid_inf"], color="C3", linestyle="--", label=f"FID∞ {fid['fid_inf']:.3g}"
        )
        fit = np.asarray(fid["fid_inf_points"], dtype=np.float64)
        axes[1].plot(1 / fit[:, 0], fit[:, 1], "o", label="subsets without replacement")
        xs = np.linspace(0, (1 / fit[:, 0]).max(), 50)
        axes[1].plot(xs, fid["fid_inf"] + fid["fid_inf_slope"] * xs, label="linear fit")
        axes[1].set_xlabel("1 / N")
        axes[1].set_ylabel("FID")
        axes[1].set_title("FID∞ (Chong & Forsyth 2020)")
        axes[1].legend()
    if not np.all(np.isnan(points[:, 2])):
        twin = axes[0].twinx()
        twin.plot(points[:, 0], points[:, 2], color="C2", marker="s", label="KID")
        twin.set_ylabel("KID")
    axes[0].legend(loc="upper right")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _stderr(value: float | None) -> str:
    return "" if value is None else f" ± {value:.4f} (fit's standard error)"


def _report(results: dict[str, Any]) -> str:
    lines = [
        f"Features: **{results['features']['name']}** ({results['features']['dim']}-d; "
        f"{results['features']['resize_policy']}); {results['n_generated']} generated vs "
        f"{results['n_reference']} reference images.",
        "",
        "| metric | value | detail |",
        "| --- | --- | --- |",
    ]
    if "fid" in results:
        fid = results["fid"]
        lines.append(
            f"| FID | {fid['value']:.4f} | {fid['interval_level']:.0%} interval "
            f"[{fid['interval'][0]:.4f}, {fid['interval'][1]:.4f}]; FID∞ "
            f"{fid['fid_inf']:.4f}{_stderr(fid['fid_inf_stderr'])} |"
        )
    for key, label in (("kid", "KID"), ("is", "IS")):
        if key in results:
            std = results[key]["std"]
            spread = f"± {std:.5f}" if std is not None else "no spread"
            lines.append(
                f"| {label} | {results[key]['mean']:.5f} | {spread} ({results[key]['std_note']}) |"
            )
    for key in ("precision", "recall", "density", "coverage"):
        if key in results:
            lines.append(f"| {key} | {results[key]['value']:.4f} | k={results[key]['k']} |")
    if "clip_score" in results:
        clip = results["clip_score"]
        lines.append(f"| CLIP score | {clip['mean']:.3f} | ± {clip['std']:.3f}, {clip['model']} |")
    if "cmmd" in results:
        lines.append(f"| CMMD | {results['cmmd']['value']:.5f} | {results['cmmd']['model']} |")
    if "fid" in results:
        fid = results["fid"]
        lines += ["", f"The FID interval covers {fid['interval_covers']}."]
        if fid["fid_inf_note"]:
            lines.append(f"FID∞: {fid['fid_inf_note']}.")
    lines += [
        "",
        "![FID curve](artifacts/fid_curve.png)",
        "",
        "![samples](artifacts/sample_grid.png)",
    ]
    return "\n".join(lines)
