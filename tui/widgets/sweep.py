"""The sweep view of a campaign run: its points as a table, and its curve drawn as points end."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..sweep import CLIP_KEY, FID_KEY, KID_KEY, LABELS, SweepView, number_text
from ..text import cell, literal
from .chart import CurveChart
from .tables import fill_table

#: FID and its difference to the best point first: at 80 columns they are what must show.
COLUMNS = (
    ("point", "point"),
    ("state", "state"),
    (FID_KEY, f"{LABELS[FID_KEY]} [95%]"),
    ("to_best", f"{LABELS[FID_KEY]} − best [paired 95%]"),
    *((key, f"{LABELS[key]} [95%]") for key in (CLIP_KEY, KID_KEY)),
)


class SweepPane(Vertical):
    """A summary line, a row per point, and the FID–CLIP curve (or FID over checkpoints)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="sweep-summary")
        yield DataTable(id="sweep-table", cursor_type="row")
        yield CurveChart(id="sweep-chart")

    def show(self, view: SweepView) -> None:
        done = sum(p.state == "done" for p in view.points)
        planned = f" of {view.planned}" if view.planned else ""
        summary = f"{done}{planned} points done"
        if view.best is not None:
            summary += f" · best {view.points[view.best].label} (✓: differs beyond its interval)"
        self.query_one("#sweep-summary", Static).update(literal(summary, one_line=True))
        # A metric no point has (KID left out of --metrics) takes no room at 80 columns.
        keys = [k for k in (FID_KEY, CLIP_KEY, KID_KEY) if any(k in p.numbers for p in view.points)]
        columns = [c for c in COLUMNS if c[0] not in LABELS or c[0] in keys]
        rows = []
        for index, point in enumerate(view.points):
            best = index == view.best
            by_key = {key: cell(number_text(point, key)) for key in keys}
            by_key["to_best"] = cell("best" if best else point.to_best.get(FID_KEY, ""))
            cells = [
                cell(point.label + (" ★" if best else "")),
                cell(point.state),
                *(by_key[key] for key, _ in columns[2:]),
            ]
            rows.append((point.label, cells))
        fill_table(self.query_one(DataTable), columns, rows)
        title, curves, xlabel = view.chart()
        chart = self.query_one(CurveChart)
        chart.placeholder = "drawn as points finish"
        chart.show(curves, title=title, xlabel=xlabel)
