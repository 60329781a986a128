"""The headless progress display: the whole run's line, then one rich bar per phase, on stderr.

It is an event listener, so what the CLI shows is exactly what the run directory records. The
first line is the run's overall progress (:mod:`diffusionscope.core.overall`, the same line as
the workbench's header): percent of the planned work, elapsed, and an ETA that counts down
between events. Messages may quote user input (prompts, paths), so they are printed without
markup and without terminal escape sequences.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from .events import Event, LogEvent, MetricEvent, PlanEvent, ProgressEvent, SeriesEvent
from .overall import OverallProgress, format_seconds
from .text import printable

SERIES_PRINT_SECONDS = 1.0
LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
OVERALL = "overall"
#: The overall bar's resolution (rich bars need a whole total).
OVERALL_STEPS = 1000


def format_rate(speed: float | None, unit: str) -> str:
    """``3.20 img/s``, or ``42.0 s/task`` when a unit takes over ten seconds (never 0.00/s)."""
    if not speed:
        return ""
    if speed < 0.1:
        return f"{1 / speed:.1f} s/{unit}"
    return f"{speed:.2f} {unit}/s"


class DetailColumn(ProgressColumn):
    """The text after each bar: for a phase its count, rate, elapsed and ETA (rich's own
    estimate of that bar); for the overall line its percent, elapsed and the run's ETA."""

    def __init__(self, display: ProgressDisplay) -> None:
        super().__init__()
        self.display = display

    def render(self, task: Task) -> Text:
        if task.fields.get("overall"):
            return Text(self.display.overall_text(), no_wrap=True)
        rate = format_rate(task.speed, task.fields.get("unit", "it"))
        eta = format_seconds(task.time_remaining) if not task.finished else "00:00"
        elapsed = format_seconds(task.elapsed, round_up=False)
        total = int(task.total or 0)
        parts = [f"{int(task.completed)}/{total}", rate, elapsed, f"eta {eta}"]
        return Text("  ".join(p for p in parts if p), no_wrap=True)


class ProgressDisplay:
    def __init__(self, console: Console | None = None, clock=time.time) -> None:
        self.console = console or Console(file=sys.stderr)
        self.clock = clock
        self.overall = OverallProgress()
        self.progress = Progress(
            TextColumn("{task.description:<30.30}", markup=False),
            BarColumn(bar_width=14),
            DetailColumn(self),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self._series_printed: dict[str, float] = {}

    def overall_text(self) -> str:
        now = self.clock()
        line = self.overall.at(now)
        eta = "estimating" if line.eta is None else format_seconds(line.eta)
        elapsed = format_seconds(line.elapsed, round_up=False)
        return f"{line.fraction * 100:3.0f}%  elapsed {elapsed}  ETA {eta}"

    def _series_due(self, event: SeriesEvent) -> bool:
        """Curves are for plots; the console shows at most one point per curve a second."""
        last = self._series_printed.get(event.series, 0.0)
        if event.time - last < SERIES_PRINT_SECONDS:
            return False
        self._series_printed[event.series] = event.time
        return True

    def handle(self, event: Event) -> None:
        self.overall.apply(event)
        if isinstance(event, PlanEvent | ProgressEvent):
            self._start()
            self._update_overall()
        if isinstance(event, ProgressEvent):
            self._progress(event)
        elif isinstance(event, LogEvent):
            if event.level != "debug":
                prefix = f"{event.mode}: " if event.mode else ""
                first_line = event.message.splitlines()[0] if event.message else ""
                self._line(f"{prefix}{first_line}", LEVEL_STYLES[event.level])
        elif isinstance(event, MetricEvent):
            n = f" (N={event.n})" if event.n else ""
            self._line(f"{event.mode}: {event.name} = {event.value:.6g}{n}")
        elif isinstance(event, SeriesEvent) and self._series_due(event):
            self._line(f"{event.mode}: {event.series} @ {event.x:g} = {event.y:.6g}", "dim")

    def _line(self, text: str, style: str = "") -> None:
        self.console.print(
            printable(text), style=style, markup=False, highlight=False, soft_wrap=True
        )

    def _start(self) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if OVERALL not in self.tasks:
            self.tasks[OVERALL] = self.progress.add_task(
                "whole run", total=OVERALL_STEPS, overall=True
            )

    def _update_overall(self) -> None:
        fraction = self.overall.at(self.clock()).fraction
        self.progress.update(self.tasks[OVERALL], completed=round(fraction * OVERALL_STEPS))

    def _progress(self, event: ProgressEvent) -> None:
        key = f"{event.mode}:{event.phase}"
        if key not in self.tasks:
            label = f"{event.mode} {event.phase}".strip()
            self.tasks[key] = self.progress.add_task(label, total=event.total, unit=event.unit)
        self.progress.update(self.tasks[key], completed=event.done, total=event.total)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False
