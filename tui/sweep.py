"""What the sweep view shows of a campaign run; no Textual here.

A campaign (``--sweep``, a checkpoint series, ``--watch``) writes, per point labelled like
``guidance-scale=3.0``, its live curves as series ``fid@LABEL`` and its final numbers as metric
events ``NAME@LABEL``; when a point ends, one point of each campaign curve (``sweep:fid_clip``:
x = CLIP score, y = FID; ``sweep:<metric>``: x = point index). At the end ``results.json``
holds ``"sweep": {"axes", "points": [{"settings", "metrics"}], "differences"}``. The view is
read from the results once they exist, and from the events while the run goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core.events import MetricEvent
from ..core.metrics import registry
from ..core.metrics.sweep import point_label
from ..core.result_fields import format_number

#: The numbers a point row shows, with the key of its headline value in a single run's
#: results and whether lower is better (the campaign's own choice of the best point), as the
#: metric registry declares them.
_SHOWN = (registry.FID.fields[0], registry.KID.fields[0], registry.CLIP.fields[0])
FID_KEY, KID_KEY, CLIP_KEY = (shown.name for shown in _SHOWN)
COLUMNS = tuple((shown.name, shown.value_key, shown.better == "lower") for shown in _SHOWN)
#: Column labels (CLIP score shortened to fit 80 columns), with the display scale's unit
#: (KID ×10³, as in the results table and on the charts).
LABELS = {
    shown.name: " ".join(
        filter(
            None,
            (
                "CLIP" if shown.name == CLIP_KEY else shown.label,
                shown.unit if shown.scale != 1 else "",
            ),
        )
    )
    for shown in _SHOWN
}
#: Each number and interval is shown multiplied by its field's declared display scale.
SCALES = {shown.name: shown.scale for shown in _SHOWN}
FID_CLIP = "sweep:fid_clip"


@dataclass
class SweepPoint:
    label: str
    state: str  # "done", "running"
    numbers: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    to_best: dict[str, str] = field(default_factory=dict)  # "−1.2 [−2.0, −0.4] ✓"


@dataclass
class SweepView:
    points: list[SweepPoint]
    best: int | None
    checkpoint_axis: bool
    planned: int | None  # points the campaign will measure (None: unknown, e.g. --watch)
    curve: list[tuple[float, float, str]]  # (CLIP, FID, label) of each finished point

    def _no_clip(self) -> bool:
        """Finished points without a CLIP score (no prompts): FID is drawn over the points."""
        done = [p for p in self.points if p.state == "done"]
        return bool(done) and all(CLIP_KEY not in p.numbers for p in done)

    def chart(self) -> tuple[str, dict[str, list[tuple[float, float]]], str]:
        """``(title, curves, x label)``: FID over CLIP score, or over the checkpoints."""
        if self.checkpoint_axis or (not self.curve and self._no_clip()):
            fid = [
                (float(i), p.numbers[FID_KEY])
                for i, p in enumerate(self.points)
                if FID_KEY in p.numbers
            ]
            over = "checkpoints" if self.checkpoint_axis else "points"
            return f"FID over the {over} (x: point number)", {"FID": fid}, "point"
        return "FID–CLIP curve (x: CLIP score, y: FID)", {"FID": [c[:2] for c in self.curve]}, ""


def planned_points(config: dict[str, Any]) -> int | None:
    """How many points the config's ``--sweep`` grid has (the campaign's own reading of it;
    ``config.json`` holds checkpoint globs expanded); None without a grid (``--watch``)."""
    from argparse import Namespace

    from ..core.errors import InputError
    from ..core.metrics.sweep import plan_from_args

    try:
        plan = plan_from_args(Namespace(sweep=config.get("sweep")))
    except InputError:
        return None
    return plan.size if plan is not None else None


def is_sweep(config: dict[str, Any], results: dict | None, series: dict) -> bool:
    return bool(
        config.get("sweep")
        or config.get("watch")
        or (results or {}).get("sweep")
        or any(name.startswith("sweep:") for name in series)
    )


def from_results(sweep: dict[str, Any], config: dict[str, Any]) -> SweepView:
    """The finished campaign, with each point's paired difference to the best."""
    points = []
    for entry in sweep.get("points", []):
        metrics = entry.get("metrics") or {}
        point = SweepPoint(point_label(entry.get("settings") or {}), "done")
        for key, value_key, _ in COLUMNS:
            number = (metrics.get(key) or {}).get(value_key)
            if isinstance(number, int | float):
                point.numbers[key] = float(number)
            interval = _interval(metrics.get(key) or {}, key)
            if interval is not None:
                point.intervals[key] = interval
        points.append(point)
    best = _best(points)
    for pair in sweep.get("differences", []):
        a, b = pair.get("a"), pair.get("b")
        if best is None or best not in (a, b) or a == b:
            continue
        other, sign = (b, -1.0) if a == best else (a, 1.0)
        for key, entry in (pair.get("metrics") or {}).items():
            # Stored as A − B; shown as this point − best.
            low, high = entry["interval"]
            difference = sign * entry["difference"]
            low, high = sorted((sign * low, sign * high))
            mark = " ✓" if entry.get("exceeds_interval") else ""
            points[other].to_best[key] = f"{difference:+.3g} [{low:+.3g}, {high:+.3g}]{mark}"
    curve = [
        (p.numbers[CLIP_KEY], p.numbers[FID_KEY], p.label)
        for p in points
        if CLIP_KEY in p.numbers and FID_KEY in p.numbers
    ]
    return SweepView(points, best, "model" in (sweep.get("axes") or {}), len(points), curve)


def from_events(
    metrics: list[MetricEvent], series: dict[str, list[tuple[float, float]]], config: dict
) -> SweepView:
    """The campaign so far: points with final numbers are done, points with curves only are
    running; the FID–CLIP curve fills in as points end."""
    points: dict[str, SweepPoint] = {}
    for name in series:
        if "@" in name:
            label = name.split("@", 1)[1]
            points.setdefault(label, SweepPoint(label, "running"))
    for event in metrics:
        if "@" not in event.name:
            continue
        key, label = event.name.split("@", 1)
        point = points.setdefault(label, SweepPoint(label, "running"))
        if key in LABELS:
            point.numbers[key] = float(event.value)
            interval = event.extra.get("interval")
            if isinstance(interval, list | tuple) and len(interval) == 2:
                point.intervals[key] = (float(interval[0]), float(interval[1]))
        point.state = "done"
    for point in points.values():  # a point with some finals may still be finishing
        if point.state == "done" and not point.numbers:
            point.state = "running"
    shown = list(points.values())
    best = _best([p for p in shown if p.state == "done"])
    done = [p for p in shown if p.state == "done"]
    if best is not None:
        best_point = done[best]
        best = shown.index(best_point)
        for point in done:
            if point is best_point:
                continue
            for key in point.numbers.keys() & best_point.numbers.keys():
                difference = point.numbers[key] - best_point.numbers[key]
                point.to_best[key] = f"{difference:+.3g} (interval at the end)"
    curve = [(x, y, "") for x, y in series.get(FID_CLIP, [])]
    checkpoint = any(str(a).startswith("model=") for a in config.get("sweep") or []) or bool(
        config.get("watch")
    )
    return SweepView(shown, best, checkpoint, planned_points(config), curve)


def _best(points: list[SweepPoint]) -> int | None:
    """The best point by the first metric every point has (FID, KID, then CLIP score)."""
    for key, _, lower in COLUMNS:
        values = [p.numbers.get(key) for p in points]
        if points and all(v is not None for v in values):
            pick = min if lower else max
            return values.index(pick(values))  # type: ignore[type-var]
    return None


def _interval(entry: dict[str, Any], key: str) -> tuple[float, float] | None:
    """A point's 95 % interval: FID's own; a mean's from its spread and N."""
    interval = entry.get("interval")
    if isinstance(interval, list | tuple) and len(interval) == 2:
        return float(interval[0]), float(interval[1])
    std, n = entry.get("std"), entry.get("n")
    mean = entry.get("mean")
    if std is None or not n or mean is None:
        return None
    half = 1.96 * float(std) / math.sqrt(float(n))
    return float(mean) - half, float(mean) + half


def number_text(point: SweepPoint, key: str) -> str:
    value = point.numbers.get(key)
    if value is None:
        return "…" if point.state == "running" else "-"
    scale = SCALES.get(key, 1.0)
    interval = point.intervals.get(key)
    if interval is None:
        return format_number(value * scale)
    low, high = (format_number(bound * scale) for bound in interval)
    return f"{format_number(value * scale)} [{low}, {high}]"
