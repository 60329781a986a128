"""Turning a run's series events and ``results.json`` into named curves; no Textual here.

Modes publish curves two ways: ``series`` events while they run (``logsnr:<schedule>``, and
``fid``, ``kid``: the metrics whose registry record streams, ``core/metrics/registry.py``) and
arrays in ``results.json`` at the end (the schedule mode's ``alphas_cumprod``/``log_snr``/
``betas`` per schedule). Both are read generically -- by series
name prefix and by array key -- so a mode that adds a curve shows up without a TUI change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.metrics import registry
from ..core.result_fields import format_number

Curve = list[tuple[float, float]]

#: The schedule quantities, by the names modes may use for them.
SCHEDULE_KINDS: dict[str, tuple[str, ...]] = {
    "alphas_cumprod": ("alphas_cumprod", "alpha_bar", "alphas_bar"),
    "logsnr": ("logsnr", "log_snr", "lambda"),
    "betas": ("betas", "beta"),
}
SCHEDULE_TITLES = {
    "alphas_cumprod": "alphas_cumprod (ᾱ_t)",
    "logsnr": "log-SNR  log(ᾱ_t / (1-ᾱ_t))",
    "betas": "betas (β_t)",
}
#: The live chart of the metrics mode, from its metric registry: FID on the left axis, KID
#: (much smaller) on the right.
LIVE_LEFT = registry.LIVE_LEFT
LIVE_RIGHT = registry.LIVE_RIGHT


def series_group(name: str) -> str:
    """``logsnr:cosine`` belongs to the ``logsnr`` chart; ``fid`` is its own chart."""
    return name.split(":", 1)[0]


def live_title(series: Mapping[str, Curve]) -> str:
    """The live chart's title: the left axis's metric where it stands, and what each axis is."""
    left = " and ".join(registry.BY_NAME[name].label for name in LIVE_LEFT)
    right = " and ".join(registry.BY_NAME[name].label for name in LIVE_RIGHT)
    first = series.get(LIVE_LEFT[0]) if LIVE_LEFT else None
    if first:
        n, value = first[-1]
        shown = format_number(value)
        return f"{left} {shown} at N={int(n)}  ·  {left} and {right} (right) over N"
    return f"{left} (left axis) and {right} (right) over N samples"


def live_series(series: Mapping[str, Curve]) -> dict[str, Curve]:
    """The series the live chart draws, by the registry's streaming metrics."""
    return {name: points for name, points in series.items() if name in LIVE_LEFT + LIVE_RIGHT}


def series_label(name: str) -> str:
    return name.split(":", 1)[1] if ":" in name else name


def group_series(series: Mapping[str, Curve]) -> dict[str, dict[str, Curve]]:
    """Series by chart: one chart per prefix, one line per series."""
    groups: dict[str, dict[str, Curve]] = {}
    for name, points in series.items():
        groups.setdefault(series_group(name), {})[series_label(name)] = list(points)
    return groups


def _kind_of(key: str) -> str | None:
    lowered = key.lower()
    for kind, names in SCHEDULE_KINDS.items():
        if lowered in names:
            return kind
    return None


def _numbers(value: Any) -> list[float] | None:
    if (
        isinstance(value, list)
        and len(value) > 1
        and all(isinstance(v, int | float) for v in value)
    ):
        return [float(v) for v in value]
    return None


def _item_label(name: str, items: list[Any], index: int) -> str:
    """A list entry named by what tells it from its siblings (``sampler trailing`` for the
    sampler view's spacings), not by its position (``sampler[2]``)."""
    item = items[index]
    if not isinstance(item, dict):
        return f"{name}[{index}]"
    scalars = [k for k, v in item.items() if isinstance(v, str | int | float)]
    telling = [
        k
        for k in scalars
        if len({str(other.get(k)) for other in items if isinstance(other, dict)}) == len(items)
    ]
    if not telling:
        return f"{name}[{index}]"
    return f"{name} {item[telling[0]]}"


def schedule_curves(
    results: Mapping[str, Any] | None, series: Mapping[str, Curve] | None = None
) -> dict[str, dict[str, Curve]]:
    """``{kind: {schedule: curve}}`` for kind in alphas_cumprod, logsnr, betas.

    Arrays are found anywhere under ``results["schedule"]``: a dict holding an
    ``alphas_cumprod``-like list is one schedule, named by its ``name`` key or the key it sits
    under; its ``timesteps`` list, when present, is the x axis. Series events named
    ``<kind>:<schedule>`` fill in whatever the results do not have (a run still going).
    """
    curves: dict[str, dict[str, Curve]] = {kind: {} for kind in SCHEDULE_KINDS}
    section = (results or {}).get("schedule") if results else None

    def visit(node: Any, name: str) -> None:
        if isinstance(node, dict):
            label = str(node.get("name") or name)
            xs = _numbers(node.get("timesteps")) or _numbers(node.get("t"))
            for key, value in node.items():
                kind = _kind_of(str(key))
                ys = _numbers(value)
                if kind and ys:
                    x = xs if xs and len(xs) == len(ys) else list(range(len(ys)))
                    curves[kind][label] = list(zip(x, ys, strict=True))
                elif isinstance(value, dict | list):
                    visit(value, str(key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                visit(item, _item_label(name, node, index))

    if section is not None:
        visit(section, "model")
    for name, points in (series or {}).items():
        kind = _kind_of(series_group(name))
        if kind and series_label(name) not in curves[kind]:
            curves[kind][series_label(name)] = list(points)
    return {kind: found for kind, found in curves.items() if found}


def finite(points: Iterable[tuple[float, float]]) -> Curve:
    """Drop points plotext cannot draw (inf log-SNR at t=0, NaN from a failed batch)."""
    return [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]


def at_display_scale(curves: Mapping[str, Curve]) -> tuple[dict[str, Curve], dict[str, str]]:
    """Each curve at the scale its number is shown in the results table (KID ×10³), and the
    names it is drawn under (``kid ×10³``): a chart and its table never disagree by 1000."""
    from ..core.result_fields import field_for

    scaled: dict[str, Curve] = {}
    names: dict[str, str] = {}
    for name, points in curves.items():
        description = field_for(series_label(name))[0]
        unit = f" {description.unit}" if description.unit.startswith("×") else ""
        names[name] = f"{name}{unit}"
        scaled[names[name]] = [(x, y * description.scale) for x, y in points]
    return scaled, names
