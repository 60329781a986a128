"""The pieces of a run's live view: per-phase progress bars and the metrics table."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar

from diffusionscope.tui.run_model import PhaseProgress, format_duration, format_number


def _phase_id(phase: PhaseProgress) -> str:
    raw = f"{phase.mode}-{phase.phase}" if phase.mode else phase.phase
    return "phase-" + "".join(c if c.isalnum() else "-" for c in raw)


class PhaseRow(Horizontal):
    """``mode/phase  [bar]  done/total unit  rate  ETA`` for one phase."""

    def __init__(self, phase: PhaseProgress) -> None:
        super().__init__(id=_phase_id(phase), classes="phase-row")
        self.phase = phase

    def compose(self) -> ComposeResult:
        name = f"{self.phase.mode}/{self.phase.phase}" if self.phase.mode else self.phase.phase
        yield Label(name, classes="phase-name")
        yield ProgressBar(total=None, show_eta=False, classes="phase-bar")
        yield Label("", classes="phase-stats")

    def on_mount(self) -> None:
        self.update_phase(self.phase)

    def update_phase(self, phase: PhaseProgress) -> None:
        self.phase = phase
        bar = self.query_one(ProgressBar)
        bar.update(total=max(phase.total, 1), progress=min(phase.done, max(phase.total, 1)))
        rate = phase.rate
        rate_text = f"{rate:.2f} {phase.unit}/s" if rate is not None else f"-- {phase.unit}/s"
        eta = "done" if phase.finished else f"ETA {format_duration(phase.eta)}"
        self.query_one(".phase-stats", Label).update(
            f"{phase.done}/{phase.total} {phase.unit}  {rate_text}  {eta}"
        )


class PhaseBars(Vertical):
    """One :class:`PhaseRow` per phase, in the order the phases started."""

    def update_phases(self, phases: Iterable[PhaseProgress]) -> None:
        for phase in phases:
            rows = self.query(f"#{_phase_id(phase)}")
            if rows:
                rows.first(PhaseRow).update_phase(phase)
            else:
                self.mount(PhaseRow(phase))


class MetricsTable(DataTable):
    """Metric, value, unit, N; rows are added and updated in place as numbers arrive."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("metric", key="metric")
        self.add_column("value", key="value")
        self.add_column("unit", key="unit")
        self.add_column("N", key="n")

    def update_rows(self, rows: Iterable[tuple[str, float, str, str]]) -> None:
        for name, value, unit, n in rows:
            cells = (name, format_number(value), unit, n)
            if name in self.rows:
                for column, cell in zip(("metric", "value", "unit", "n"), cells, strict=True):
                    self.update_cell(name, column, cell)
            else:
                self.add_row(*cells, key=name)
