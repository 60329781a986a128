"""What a campaign leaves: the ``sweep`` object of ``results.json`` (axes, each point's
metrics in a single run's shape, paired differences), ``artifacts/sweep.csv``,
``artifacts/fid_clip.png`` and its section of ``report.md``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..modes import ModeResult
from .paired import (
    VALUE_KEYS,
    Samples,
    compare_points,
    half_sample_sets,
    half_sample_values,
    headline,
    statement,
)
from .registry import METRIC_FIELDS
from .rows import load_chunks
from .sweep import point_label

if TYPE_CHECKING:
    from .campaign import Campaign

#: Which direction is better, for picking the best point: the first metric, in the registry's
#: order, that every point holds.
BEST_BY = tuple((f.name, f.better) for f in METRIC_FIELDS if f.name in VALUE_KEYS and f.better)


def write_campaign(campaign: Campaign) -> ModeResult:
    ctx = campaign.ctx
    points = [p for p in campaign.book.points if p["metrics"] is not None]
    best, by = best_point([p["metrics"] for p in points])
    differences = (
        paired_differences(campaign, points, best) if ctx.is_main and len(points) > 1 else []
    )
    sweep = {
        "axes": campaign.axes,
        "points": [{"settings": p["settings"], "metrics": p["metrics"]} for p in points],
        "differences": differences,
    }
    if ctx.is_main:
        ctx.save_csv("sweep.csv", *csv_table(points), "one row per point")
        figure = fid_clip_figure(points, checkpoint_axis="model" in campaign.axes)
        ctx.save_figure(figure, "fid_clip.png", "the campaign's curve")
    summary = {
        "campaign": {
            "points": len(points),
            "axes": list(campaign.axes),
            "best": {"point": best, "by": by, "settings": points[best]["settings"]},
        }
    }
    return ModeResult(results=summary, report=report(sweep, best, by), sections={"sweep": sweep})


def best_point(metrics: list[dict[str, Any]]) -> tuple[int, str | None]:
    for key, better in BEST_BY:
        values = [headline(m, key) for m in metrics]
        if all(v is not None for v in values):
            pick = np.argmin if better == "lower" else np.argmax
            return int(pick(values)), key
    return 0, None


def point_samples(campaign: Campaign, index: int) -> Samples:
    return Samples.of(load_chunks(campaign.point_folder(index))[0])


def pairs(count: int, best: int) -> list[tuple[int, int, str]]:
    """Each adjacent pair, then the best point against every other not adjacent to it (that
    pair is already there)."""
    found = [(i, i + 1, "adjacent") for i in range(count - 1)]
    return found + [(best, k, "best") for k in range(count) if abs(k - best) > 1]


def paired_differences(
    campaign: Campaign, points: list[dict[str, Any]], best: int
) -> list[dict[str, Any]]:
    """``A − B`` for each pair with paired intervals (:mod:`.paired`): the same half-sample
    index sets for every point, so any two can be compared."""
    ctx, options, measures = campaign.ctx, campaign.options, campaign.measures
    samples = [point_samples(campaign, p) for p in range(len(points))]
    n = min(len(s.features) for s in samples)
    sets = half_sample_sets(n, max(options.bootstrap, 2), ctx.seed)
    values = [
        half_sample_values(
            s, measures.reference, options.metrics, sets, ctx.seed, measures.stats_device
        )
        for s in samples
    ]
    found = []
    for a, b, kind in pairs(len(points), best):
        label_a, label_b = (point_label(points[i]["settings"]) for i in (a, b))
        metrics = compare_points(
            points[a]["metrics"], points[b]["metrics"], values[a], values[b], seed=ctx.seed
        )
        for key, entry in metrics.items():
            entry["statement"] = statement(key, entry, label_a, label_b)
        found.append({"a": a, "b": b, "kind": kind, "metrics": metrics})
    return found


def _interval(metrics: dict[str, Any], key: str) -> tuple[float, float] | None:
    """The 95% interval of a point's number: FID's own; a mean's from its std and n."""
    entry = metrics.get(key) or {}
    if key == "fid":
        return tuple(entry["interval"])  # type: ignore[return-value]
    std, n = entry.get("std"), entry.get("n")
    if std is None or not n:
        return None
    mean, half = entry[VALUE_KEYS[key]], 1.96 * std / math.sqrt(n)
    return mean - half, mean + half


def csv_table(points: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    names = list(points[0]["settings"]) if points else []
    keys = [k for k in VALUE_KEYS if any(headline(p["metrics"], k) is not None for p in points)]
    header = [*names]
    for key in keys:
        header += [key, f"{key}_low", f"{key}_high"]
    rows = []
    for point in points:
        row = [point["settings"][name] for name in names]
        for key in keys:
            value, interval = headline(point["metrics"], key), _interval(point["metrics"], key)
            row += [value, *(interval or ("", ""))]
        rows.append(row)
    return header, rows


def fid_clip_figure(points: list[dict[str, Any]], checkpoint_axis: bool) -> Any:
    """FID against CLIP score, each point labelled with its setting and with its intervals as
    error bars; over a checkpoint axis (or without CLIP scores), each metric over the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [p["metrics"] for p in points]
    labels = [point_label(p["settings"]) for p in points]
    fid = [headline(m, "fid") for m in metrics]
    clip = [headline(m, "clip_score") for m in metrics]
    has_clip = all(c is not None for c in clip)
    figure, axis = plt.subplots(figsize=(7, 5))
    if checkpoint_axis or not has_clip:
        _over_points(axis, metrics, labels, fid, clip if has_clip else None)
    else:
        fid_bars = _bars(metrics, "fid", fid)
        clip_bars = _bars(metrics, "clip_score", clip)
        axis.errorbar(clip, fid, xerr=clip_bars, yerr=fid_bars, marker="o", capsize=3)
        for x, y, label in zip(clip, fid, labels, strict=True):
            axis.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        axis.set_xlabel("CLIP score (higher: closer to the prompt)")
        axis.set_ylabel("FID (lower: closer to the reference)")
        axis.set_title("FID–CLIP trade-off (95% intervals)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _bars(metrics: list[dict[str, Any]], key: str, values: list[Any]) -> np.ndarray:
    """Asymmetric error bars ``[[below...], [above...]]`` (zero where there is no interval)."""
    below, above = [], []
    for entry, value in zip(metrics, values, strict=True):
        interval = _interval(entry, key)
        below.append(value - interval[0] if interval else 0.0)
        above.append(interval[1] - value if interval else 0.0)
    return np.asarray([below, above])


def _over_points(axis: Any, metrics, labels, fid, clip) -> None:
    positions = np.arange(len(labels))
    axis.errorbar(positions, fid, yerr=_bars(metrics, "fid", fid), marker="o", capsize=3)
    axis.set_ylabel("FID")
    axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    axis.set_title("metrics over the points (95% intervals)")
    if clip is not None:
        twin = axis.twinx()
        bars = _bars(metrics, "clip_score", clip)
        twin.errorbar(positions, clip, yerr=bars, marker="s", color="C2", capsize=3)
        twin.set_ylabel("CLIP score", color="C2")


def report(sweep: dict[str, Any], best: int, by: str | None) -> str:
    points = sweep["points"]
    keys = [k for k in VALUE_KEYS if any(headline(p["metrics"], k) is not None for p in points)]
    lines = [
        f"Campaign of {len(points)} points (same prompts and seeds at every point).",
        "",
        "| point | " + " | ".join(keys) + " |",
        "| --- |" + " --- |" * len(keys),
    ]
    for index, point in enumerate(points):
        cells = [f"{headline(point['metrics'], k):.4g}" for k in keys]
        mark = " (best)" if index == best and by else ""
        lines.append(f"| {point_label(point['settings'])}{mark} | " + " | ".join(cells) + " |")
    lines += ["", f"Best point by {by}: {point_label(points[best]['settings'])}." if by else ""]
    if sweep["differences"]:
        lines += ["", "Paired differences (A − B; the same samples resampled on both sides):", ""]
        for pair in sweep["differences"]:
            lines += [f"- {entry['statement']}" for entry in pair["metrics"].values()]
    lines += ["", "![FID-CLIP](artifacts/fid_clip.png)", "", "Table: artifacts/sweep.csv"]
    return "\n".join(lines)
