"""Two or more finished runs side by side: what differed, every number with its difference,
headline numbers first, and the runs' curves overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ...core.events import MetricEvent, SeriesEvent
from ...core.result_fields import ResultRow, format_number, result_rows
from ...core.runs import read_events
from ..curves import LIVE_LEFT, LIVE_RIGHT, SCHEDULE_TITLES, at_display_scale, schedule_curves
from ..run_model import read_config, read_results
from ..sweep import from_results
from ..text import cell, literal, short_model, styled
from ..widgets.chart import CurveChart
from ..widgets.tables import fill_table

#: Settings that change what a run measures, named as a reader knows them, in reading order.
SETTINGS = (
    ("model", "model"),
    ("modes", "modes"),
    ("num_samples", "N"),
    ("steps", "steps"),
    ("seed", "seed"),
    ("guidance_scale", "guidance"),
    ("features", "features"),
    ("reference", "reference"),
    ("prompts_file", "prompts"),
    ("prompt", "prompt"),
    ("height", "height"),
    ("width", "width"),
    ("negative_prompt", "negative prompt"),
    ("dtype", "dtype"),
    ("device", "device"),
)
#: Config entries that differ between any two runs without meaning anything.
NOT_SETTINGS = {"name", "runs_root", "resume", "json", "quiet"}


def letter(index: int) -> str:
    return chr(65 + index)


def setting_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "default" if value is None else str(value)


def differences(configs: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """``(setting, values per run)`` for every setting that is not the same in all runs."""
    known = dict(SETTINGS)
    keys = [key for key, _ in SETTINGS]
    for config in configs:
        keys += [k for k in config if k not in keys and k not in NOT_SETTINGS]
    out = []
    for key in keys:
        values = [setting_text(config.get(key)) for config in configs]
        if len(set(values)) > 1:
            out.append((known.get(key, key.replace("_", " ")), values))
    return out


def compare_rows(
    rows_per_run: list[list[ResultRow]],
) -> list[tuple[ResultRow, list[ResultRow | None]]]:
    """One line per metric any run has (headline numbers first), with each run's row or None."""
    order: dict[str, ResultRow] = {}
    for rows in rows_per_run:
        for row in rows:
            order.setdefault(row.key, row)
    tables = [{row.key: row for row in rows} for rows in rows_per_run]
    first_seen = list(order.values())
    ranked = sorted(first_seen, key=lambda r: result_rows_rank(r, first_seen))
    return [(row, [table.get(row.key) for table in tables]) for row in ranked]


def result_rows_rank(row: ResultRow, rows: list[ResultRow]) -> tuple[int, int]:
    return (0 if row.description.headline else 1, rows.index(row))


def difference_text(row: ResultRow, base: ResultRow | None, other: ResultRow | None) -> str:
    """``other − base`` in the row's display units, with ✓ where the other run is better."""
    if base is None or other is None:
        return ""
    delta = (other.value - base.value) * row.description.scale
    better = (row.description.better == "lower" and delta < 0) or (
        row.description.better == "higher" and delta > 0
    )
    sign = "+" if delta > 0 else ""
    return f"{sign}{format_number(delta)}{' ✓' if better else ''}"


def run_series(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for event in read_events(run_dir):
        if isinstance(event, SeriesEvent):
            series.setdefault(event.series, []).append((event.x, event.y))
    return series


class CompareScreen(Screen):
    """What differed, a table of numbers (each run and its difference to A), overlaid curves."""

    BINDINGS = [
        Binding("escape", "back", "Back", show=False),
        Binding("g", "next_chart", "Chart", tooltip="next chart"),
    ]

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(p) for p in run_dirs]
        self.chart_index = 0
        self.charts: list[tuple[str, dict]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="compare-title")
        yield Static("", id="compare-differs")
        yield DataTable(id="compare-table", cursor_type="row")
        yield CurveChart(id="compare-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        names = [p.name for p in self.run_dirs]
        results = [read_results(p) or {} for p in self.run_dirs]
        events = [read_events(p) for p in self.run_dirs]
        rows_per_run = [
            result_rows(result, [e for e in run_events if isinstance(e, MetricEvent)])
            for result, run_events in zip(results, events, strict=True)
        ]
        columns = [("number", "metric"), ("unit", "unit")]
        for index in range(len(names)):
            columns.append((f"run{index}", letter(index)))
            if index:
                columns.append((f"diff{index}", f"{letter(index)}−A"))
        table_rows = []
        for row, per_run in compare_rows(rows_per_run):
            arrow = f" {row.description.direction}" if row.description.direction else ""
            cells = [cell(row.label + arrow), cell(row.unit)]
            base = per_run[0]
            for index, other in enumerate(per_run):
                cells.append(cell(other.value_text if other is not None else "-"))
                if index:
                    cells.append(cell(difference_text(row, base, other)))
            table_rows.append((row.key, cells))
        fill_table(self.query_one(DataTable), columns, table_rows)
        self.charts = self._charts(results)
        legend = "\n".join(f"{letter(i)} = {name}" for i, name in enumerate(names))
        self.query_one("#compare-title", Static).update(literal(legend))
        self.query_one("#compare-differs", Static).update(self._differs())
        self._draw()

    def _differs(self):
        diffs = differences([read_config(p) for p in self.run_dirs])
        if not diffs:
            return literal("same settings in every run")
        parts: list[str | tuple[str, str]] = [("differs: ", "bold")]
        for position, (name, values) in enumerate(diffs):
            if position:
                parts.append("  │  ")
            shown = " · ".join(
                f"{letter(i)} {short_model(v) if name == 'model' else v}"
                for i, v in enumerate(values)
            )
            parts += [(name, "italic"), f" {shown}"]
        return styled(*parts)

    def _charts(self, results: list[dict]) -> list[tuple[str, dict]]:
        """Per curve kind, every run's lines (schedules of each run, prefixed by its letter)."""
        by_title: dict[str, dict] = {}
        for index, (run_dir, result) in enumerate(zip(self.run_dirs, results, strict=True)):
            series = run_series(run_dir)
            for kind, curves in schedule_curves(result, series).items():
                for label, points in curves.items():
                    by_title.setdefault(SCHEDULE_TITLES[kind], {})[f"{letter(index)}:{label}"] = (
                        points
                    )
            if result.get("sweep"):  # a campaign: its curve, overlaid on the other's
                view = from_results(result["sweep"], read_config(run_dir))
                title, curves, _ = view.chart()
                for label, points in curves.items():
                    by_title.setdefault(title, {})[f"{letter(index)}:{label}"] = points
            for name, points in series.items():
                if name in LIVE_LEFT + LIVE_RIGHT:  # at the table's scale (KID ×10³), named so
                    scaled, names = at_display_scale({name: points})
                    shown = names[name]
                    by_title.setdefault(f"{shown} over N", {})[f"{letter(index)}:{shown}"] = scaled[
                        shown
                    ]
        return list(by_title.items())

    def _draw(self) -> None:
        chart = self.query_one(CurveChart)
        if not self.charts:
            chart.show({}, title="no curves to overlay")
            return
        self.chart_index %= len(self.charts)
        title, curves = self.charts[self.chart_index]
        chart.show(curves, title=f"{title}   [{self.chart_index + 1}/{len(self.charts)}, g: next]")

    def action_next_chart(self) -> None:
        self.chart_index += 1
        self._draw()

    def action_back(self) -> None:
        self.app.pop_screen()
