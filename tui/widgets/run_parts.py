"""The pieces of a run's live view: per-phase progress bars and the results table."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar

from ...core.progress import format_rate
from ...core.result_fields import ResultRow
from ..run_model import PhaseProgress, format_duration
from ..text import cell, literal
from .tables import fill_table


def _phase_id(phase: PhaseProgress) -> str:
    raw = f"{phase.mode}-{phase.phase}" if phase.mode else phase.phase
    return "phase-" + "".join(c if c.isalnum() else "-" for c in raw)


def phase_stats(phase: PhaseProgress, live: bool) -> str:
    """``done/total unit  rate  ETA``; a phase of a stopped attempt shows no rate or ETA."""
    if phase.finished:
        return f"{phase.done}/{phase.total} {phase.unit}  done"
    if not live:
        return f"{phase.done}/{phase.total} {phase.unit}  stopped"
    rate_text = format_rate(phase.rate, phase.unit) or f"-- {phase.unit}/s"
    return f"{phase.done}/{phase.total} {phase.unit}  {rate_text}  ETA {format_duration(phase.eta)}"


class PhaseRow(Horizontal):
    """``mode/phase  [bar]  done/total unit  rate  ETA`` for one phase."""

    def __init__(self, phase: PhaseProgress, live: bool = True) -> None:
        super().__init__(id=_phase_id(phase), classes="phase-row")
        self.phase = phase
        self.live = live

    def compose(self) -> ComposeResult:
        name = f"{self.phase.mode}/{self.phase.phase}" if self.phase.mode else self.phase.phase
        yield Label(literal(name, one_line=True), classes="phase-name")
        yield ProgressBar(total=None, show_eta=False, show_percentage=False, classes="phase-bar")
        yield Label("", classes="phase-stats")

    def on_mount(self) -> None:
        self.update_phase(self.phase, self.live)

    def update_phase(self, phase: PhaseProgress, live: bool = True) -> None:
        self.phase, self.live = phase, live
        bar = self.query_one(ProgressBar)
        bar.update(total=max(phase.total, 1), progress=min(phase.done, max(phase.total, 1)))
        self.query_one(".phase-stats", Label).update(literal(phase_stats(phase, live)))


class PhaseBars(Vertical):
    """One :class:`PhaseRow` per phase, in the order the phases started."""

    def update_phases(self, phases: Iterable[tuple[PhaseProgress, bool]]) -> None:
        for phase, live in phases:
            rows = self.query(f"#{_phase_id(phase)}")
            if rows:
                rows.first(PhaseRow).update_phase(phase, live)
            else:
                self.mount(PhaseRow(phase, live))


class MetricsTable(DataTable):
    """One row per metric: name, value, unit, interval or spread, and the N it rests on.

    Rows are described by :mod:`diffusionscope.core.result_fields`, so the table shows what
    ``diffusionscope show`` and the compare screen show. A running value (the FID curve's last
    point) is marked ``live`` until the final number replaces it.
    """

    COLUMNS = ("metric", "value", "unit", "interval", "N")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.shown: list[tuple[str, tuple[str, ...]]] = []
        fill_table(self, [(c, c) for c in self.COLUMNS], [])

    def update_rows(self, rows: Iterable[ResultRow]) -> None:
        """Redraw every row (there are a few dozen at most), keeping the cursor's row: rows
        change order and width as final numbers replace live ones. Column widths are given,
        not measured later, so the header is never drawn at the widths of the rows before."""
        cells = [(row.key, self._cells(row)) for row in rows]
        shown = [(key, tuple(str(c) for c in row)) for key, row in cells]
        if shown == self.shown:
            return
        cursor = self.cursor_row
        self.shown = shown
        fill_table(self, [(c, c) for c in self.COLUMNS], cells)
        if cells:
            self.move_cursor(row=min(cursor, len(cells) - 1))

    @staticmethod
    def _cells(row: ResultRow) -> tuple:
        return (
            cell(row.label),
            cell(row.value_text),
            cell(row.unit),
            cell(row.detail_text),
            cell(row.n_text),
        )
