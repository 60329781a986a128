"""Final numbers of a metrics run, with what each rests on, and the figures and tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..modes import ModeResult
from .frechet import mean_and_covariance
from .registry import FID, KID, METRICS, Metric, selected
from .scoring import Scoring


def finish(scoring: Scoring) -> ModeResult:
    """Every final number the run's ``--metrics`` asked for, each computed by its registry
    record on ``scoring.device`` (the run's GPU, or the CPU), then the outputs and report."""
    ctx = scoring.ctx
    results = _run_section(scoring)
    ctx.progress("scores", 0, 1, "stage")
    for metric in _computable(scoring, selected(scoring.options.metrics)):
        entries = metric.compute(scoring)
        results.update(entries)
        _emit(scoring, metric, entries)
    ctx.progress("scores", 1, 1, "stage")
    _write_outputs(scoring, results)
    return ModeResult(results=results, report=_report(results))


def _run_section(scoring: Scoring) -> dict[str, Any]:
    """What every metrics result says about the run: sizes, extractor, reference, timing."""
    extractor, reference = scoring.extractor, scoring.reference
    return {
        "n_generated": scoring.n,
        "n_reference": reference.n,
        "features": {
            "name": extractor.name,
            "dim": extractor.num_features,
            "resize_policy": extractor.resize_policy,
        },
        "reference": reference.describe(),
        "seconds": scoring.elapsed,
        "throughput": scoring.throughput or {},
        "statistics_device": str(scoring.device),
    }


def _computable(scoring: Scoring, metrics: tuple[Metric, ...]) -> list[Metric]:
    """The metrics whose needs the run meets; a reference missing what some need is said once."""
    source = scoring.reference.source
    if not scoring.has("reference_features"):
        skipped = [m.name for m in metrics if "reference_features" in m.needs]
        if skipped:
            scoring.ctx.warn(
                f"reference {source} holds statistics only: "
                f"{', '.join(skipped)} need features and are skipped"
            )
    out = []
    for metric in metrics:
        missing = [need for need in metric.needs if not scoring.has(need)]
        if missing == ["reference_images"]:
            scoring.ctx.warn(
                f"reference {source}: {metric.label} needs the reference images; skipped"
            )
        if not missing:
            out.append(metric)
    return out


def _emit(scoring: Scoring, metric: Metric, entries: dict[str, Any]) -> None:
    """One ``metric`` event per number of the record, with its spread or interval."""
    for field in metric.fields:
        entry = entries.get(field.entry_key)
        if entry is None:
            continue
        extra = {}
        if field.spread_key:
            extra["std"] = entry[field.spread_key]
        if field.has_interval:
            extra["interval"] = entry["interval"]
        scoring.ctx.metric(field.name, entry[field.value_key], n=scoring.n, **extra)


def _write_outputs(scoring: Scoring, results: dict[str, Any]) -> None:
    """The live curve's CSV and figure, and with ``--save-features`` both sides' features."""
    ctx, curve = scoring.ctx, scoring.curve
    if not ctx.is_main:
        return
    if curve:
        ctx.save_csv(
            "fid_curve.csv",
            ["n", FID.name, KID.name],
            [[int(n), f"{fid:.6f}", "" if math.isnan(k) else f"{k:.6f}"] for n, fid, k in curve],
            "FID and KID over N",
        )
        ctx.save_figure(_curve_figure(curve, results.get(FID.name)), "fid_curve.png", "FID over N")
    if scoring.options.save_features:
        _save_features(scoring)


def _save_features(scoring: Scoring) -> None:
    reference = scoring.reference
    real = {"mu": reference.mu, "sigma": reference.sigma, "n": np.asarray(reference.n)}
    if reference.features is not None:
        real["features"] = reference.features
    scoring.ctx.save_npz("features_real.npz", "reference features", **real)
    mu, sigma = mean_and_covariance(scoring.features)
    generated = {
        "features": scoring.features,
        "mu": mu,
        "sigma": sigma,
        "n": np.asarray(scoring.n),
        "indices": np.concatenate(scoring.collected.indices)[scoring.order],
    }
    logits = scoring.ordered("logits")
    if logits is not None:
        generated["logits"] = logits
    scoring.ctx.save_npz("features_generated.npz", "generated features", **generated)


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


def _report(results: dict[str, Any]) -> str:
    lines = [
        f"Features: **{results['features']['name']}** ({results['features']['dim']}-d; "
        f"{results['features']['resize_policy']}); {results['n_generated']} generated vs "
        f"{results['n_reference']} reference images.",
        "",
        "| metric | value | detail |",
        "| --- | --- | --- |",
    ]
    for metric in METRICS:
        if any(key in results for key in metric.result_keys):
            lines += metric.report(metric, results)
    lines += [
        "",
        "![FID curve](artifacts/fid_curve.png)",
        "",
        "![samples](artifacts/sample_grid.png)",
    ]
    return "\n".join(lines)
