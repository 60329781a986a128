"""What each final number of a run is: its name, unit, display scale, interval and direction.

Declared once here (the metrics mode's numbers in its registry, ``core/metrics/registry.py``)
so the headless ``show`` command, the workbench's result table and the
compare screen show every number the same way: one row per metric, in the same units, with
the same interval. Torch-free (the workbench imports it).

Rows come from two places, both written by the run: ``metric`` events (every mode emits its
headline numbers as events, names such as ``fid`` or ``terminal_snr:cosine``) and
``results.json``, whose metrics section holds the detail an event lacks (FID's bootstrap
interval, KID's spread; its structure is documented in ``core/metrics/__init__.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from .metrics.registry import METRIC_FIELDS, STREAMING
from .result_field import Better, ResultField

__all__ = ["Better", "ResultField", "FIELDS", "ResultRow", "field_for", "result_rows"]

#: Every number a mode reports, in the order a reader wants them (headline numbers first).
FIELDS: tuple[ResultField, ...] = (
    *METRIC_FIELDS,  # the metrics mode's, from its registry (core/metrics/registry.py)
    ResultField("terminal_snr", "terminal SNR", pattern=r"terminal_snr(?::(?P<tag>.+))?"),
    ResultField("first_sigma", "first σ", pattern=r"first_sigma(?::(?P<tag>.+))?"),
    ResultField("entropy_early", "map entropy, first step", unit="nats"),
    ResultField("entropy_late", "map entropy, last step", unit="nats"),
    ResultField(
        "max_mean_ratio", "step max/mean", better="lower", pattern=r"(?P<tag>.+)_max_mean_ratio"
    ),
    ResultField("inversion_mse", "inversion MSE", better="lower"),
    ResultField("inversion_psnr", "inversion PSNR", unit="dB", better="higher"),
    ResultField("inversion_label_agreement", "inversion label agreement", better="higher"),
    ResultField("direction_monotone_share", "monotone directions", better="higher"),
    ResultField("direction_mean_spearman", "direction Spearman ρ", better="higher"),
    ResultField("ood_threshold", "OOD threshold", pattern=r"ood_(?P<tag>.+)_threshold"),
    ResultField("auroc", "OOD AUROC", better="higher", pattern=r"auroc_(?P<tag>.+)"),
)
#: The metrics whose running curves stand in for their final numbers while a run goes on.
LIVE_NAMES = tuple(metric.name for metric in STREAMING)
#: The metrics mode's sections of ``results.json`` that hold one metric each.
METRICS_SECTION = "metrics"
#: Sections of ``results.json`` that are about the run, not a mode.
NOT_MODES = ("run", "model")


@functools.lru_cache(maxsize=4096)
def field_for(name: str) -> tuple[ResultField, str]:
    """The description of ``name`` and the tag it carries (``cosine`` of
    ``terminal_snr:cosine``); an unknown name gets a plain description of its own."""
    for candidate in FIELDS:
        match = candidate.matches(name)
        if match:
            return candidate, (match.groupdict().get("tag") or "")
    return ResultField(name, name.replace("_", " ")), ""


@dataclass
class ResultRow:
    """One metric of one mode, ready to show."""

    mode: str
    name: str
    value: float
    n: int | None = None
    spread: float | None = None
    interval: tuple[float, float] | None = None
    interval_level: float | None = None
    live: bool = False  # a running value (the curve's last point), not the final number
    description: ResultField = dataclass_field(init=False)
    tag: str = dataclass_field(init=False)

    def __post_init__(self) -> None:
        self.description, self.tag = field_for(self.name)

    @property
    def key(self) -> str:
        return f"{self.mode}.{self.name}" if self.mode else self.name

    @property
    def label(self) -> str:
        tag = f" ({self.tag})" if self.tag else ""
        return f"{self.description.label}{tag}"

    @property
    def unit(self) -> str:
        return self.description.unit

    @property
    def value_text(self) -> str:
        return format_number(self.value * self.description.scale)

    @property
    def detail_text(self) -> str:
        """The interval or spread, in the same units as the value."""
        scale = self.description.scale
        if self.interval is not None:
            low, high = (format_number(v * scale) for v in self.interval)
            level = f"{self.interval_level:.0%} " if self.interval_level else ""
            return f"{level}[{low}, {high}]"
        if self.spread is not None:
            return f"± {format_number(self.spread * scale)}"
        return "live" if self.live else ""

    @property
    def n_text(self) -> str:
        return "" if self.n is None else str(self.n)


def format_number(value: Any) -> str:
    """Four significant digits (trailing zeros dropped), without exponents between 10⁻³ and
    10⁶: ``12.35``, ``0.0047``, ``727.5``, ``14200``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.3e}"
    digits = max(0, 3 - int(math.floor(math.log10(magnitude))))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _interval(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    interval = entry.get("interval")
    if isinstance(interval, list | tuple) and len(interval) == 2:
        low, high = (_number(v) for v in interval)
        if low is not None and high is not None:
            return low, high
    if isinstance(interval, Mapping):  # {"low", "high"} is accepted as well
        low, high = _number(interval.get("low")), _number(interval.get("high"))
        if low is not None and high is not None:
            return low, high
    return None


def rows_from_metrics_section(
    section: Mapping[str, Any], mode: str = METRICS_SECTION
) -> list[ResultRow]:
    """One row per metric held in a metrics section of ``results.json``, read where the
    metric registry says each number sits."""
    rows: list[ResultRow] = []
    for described in METRIC_FIELDS:
        entry = section.get(described.entry_key)
        if isinstance(entry, Mapping):
            value = _number(entry.get(described.value_key))
            if value is None and described.entry is None:
                value = _number(entry.get("value", entry.get("mean")))
            if value is None:
                continue
            spread = _number(entry.get(described.spread_key)) if described.spread_key else None
            rows.append(
                ResultRow(
                    mode,
                    described.name,
                    value,
                    n=_int(entry.get("n")),
                    spread=spread,
                    interval=_interval(entry) if described.has_interval else None,
                    interval_level=_number(entry.get("interval_level")),
                )
            )
        elif described.entry is None and (value := _number(entry)) is not None:
            rows.append(ResultRow(mode, described.name, value))
    return rows


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def result_rows(
    results: Mapping[str, Any] | None,
    metric_events: Iterable[Any] = (),
    live_series: Mapping[str, list[tuple[float, float]]] | None = None,
) -> list[ResultRow]:
    """Every metric of a run, one row each, headline numbers first.

    ``results`` is ``results.json`` (None while running); ``metric_events`` the run's
    :class:`~diffusionscope.core.events.MetricEvent` objects (the last of a name wins);
    ``live_series`` the running curves, whose last ``fid``/``kid`` points stand in for a
    final number that has not arrived yet.
    """
    rows: dict[str, ResultRow] = {}
    for event in metric_events:
        extra = getattr(event, "extra", None) or {}
        row = ResultRow(
            event.mode,
            event.name,
            float(event.value),
            n=event.n,
            spread=_number(extra.get("std")),
            interval=_interval(extra) if field_for(event.name)[0].has_interval else None,
        )
        rows[row.key] = row
    for mode, section in (results or {}).items():
        if mode in NOT_MODES or not isinstance(section, Mapping):
            continue
        if mode == METRICS_SECTION:
            for row in rows_from_metrics_section(section, mode):
                rows[row.key] = row  # the file has the detail (interval level, spread)
        elif not any(key.startswith(f"{mode}.") for key in rows):
            for name, value in section.items():  # a run without metric events: its scalars
                number = _number(value)
                if number is not None:
                    rows.setdefault(f"{mode}.{name}", ResultRow(mode, name, number))
    for series, points in (live_series or {}).items():
        key = f"{METRICS_SECTION}.{series}"
        if series in LIVE_NAMES and points and key not in rows:
            n, value = points[-1]
            rows[key] = ResultRow(METRICS_SECTION, series, float(value), n=int(n), live=True)
    order = {f.name: i for i, f in enumerate(FIELDS)}

    def rank(row: ResultRow) -> tuple[int, int]:
        position = order.get(row.description.name, len(order))
        return (0 if row.description.headline else 1, position)

    return sorted(rows.values(), key=rank)


def headline_numbers(rows: Iterable[ResultRow], limit: int = 3) -> str:
    """``FID 12.34  KID 5.678×10³`` for lists: the first few rows, labelled and with units."""
    parts = []
    for row in list(rows)[:limit]:
        if row.unit.startswith("×"):  # a display scale belongs to the name: KID×10³ 5.678
            parts.append(f"{row.label}{row.unit} {row.value_text}")
        else:
            parts.append(f"{row.label} {row.value_text}{' ' + row.unit if row.unit else ''}")
    return "  ".join(parts)


def results_table(rows: Iterable[ResultRow]) -> list[str]:
    """The rows as aligned plain-text lines (``diffusionscope show``): the columns the workbench
    shows -- metric, value, unit, interval or spread, N."""
    rows = list(rows)
    if not rows:
        return ["  no results yet"]
    cells = [("metric", "value", "unit", "interval", "N")] + [
        (row.label, row.value_text, row.unit, row.detail_text, row.n_text) for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(5)]
    lines = []
    for line in cells:
        padded = [
            line[0].ljust(widths[0]),
            line[1].rjust(widths[1]),
            line[2].ljust(widths[2]),
            line[3].ljust(widths[3]),
            line[4].rjust(widths[4]),
        ]
        lines.append(("  " + "  ".join(padded)).rstrip())
    return lines
