"""Two or more finished runs side by side: every number with its difference, curves overlaid."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from diffusionscope.core.events import SeriesEvent
from diffusionscope.core.runs import read_events
from diffusionscope.tui.curves import SCHEDULE_TITLES, flatten_numbers, schedule_curves
from diffusionscope.tui.run_model import format_number, read_results
from diffusionscope.tui.widgets.chart import CurveChart


def compare_rows(results: list[dict]) -> list[tuple[str, list[float | None]]]:
    """Every number any run has, in first-seen order, with None where a run lacks it."""
    tables = [dict(flatten_numbers(r, skip=("run", "model"))) for r in results]
    names: list[str] = []
    for table in tables:
        names += [name for name in table if name not in names]
    return [(name, [table.get(name) for table in tables]) for name in names]


def run_series(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for event in read_events(run_dir):
        if isinstance(event, SeriesEvent):
            series.setdefault(event.series, []).append((event.x, event.y))
    return series


class CompareScreen(Screen):
    """A table of numbers (first run, each other run, and its difference) and overlaid curves."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "next_chart", "Next chart"),
    ]

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(p) for p in run_dirs]
        self.chart_index = 0
        self.charts: list[tuple[str, dict]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="compare-title")
        yield DataTable(id="compare-table", cursor_type="row")
        yield CurveChart(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        names = [p.name for p in self.run_dirs]
        results = [read_results(p) or {} for p in self.run_dirs]
        table = self.query_one(DataTable)
        table.add_column("number", key="number")
        for index, name in enumerate(names):
            table.add_column(f"{chr(65 + index)}: {name[-28:]}", key=f"run{index}")
            if index:
                table.add_column(f"{chr(65 + index)}−A", key=f"diff{index}")
        for name, values in compare_rows(results):
            cells = [name, format_number(values[0]) if values[0] is not None else "-"]
            for value in values[1:]:
                cells.append(format_number(value) if value is not None else "-")
                both = value is not None and values[0] is not None
                cells.append(f"{value - values[0]:+.4g}" if both else "")
            table.add_row(*cells)
        self.charts = self._charts(results)
        legend = "  ".join(f"{chr(65 + i)} = {n}" for i, n in enumerate(names))
        self.query_one("#compare-title", Static).update(legend)
        self._draw()

    def _charts(self, results: list[dict]) -> list[tuple[str, dict]]:
        """Per curve kind, every run's lines (schedules of each run, prefixed by its letter)."""
        by_title: dict[str, dict] = {}
        for index, (run_dir, result) in enumerate(zip(self.run_dirs, results, strict=True)):
            letter = chr(65 + index)
            series = run_series(run_dir)
            for kind, curves in schedule_curves(result, series).items():
                for label, points in curves.items():
                    by_title.setdefault(SCHEDULE_TITLES[kind], {})[f"{letter}:{label}"] = points
            for name, points in series.items():
                if name in ("fid", "kid"):
                    by_title.setdefault(f"{name} over N", {})[f"{letter}:{name}"] = points
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
