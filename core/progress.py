"""The headless progress display: rich bars with rate and ETA on stderr, one per phase.

It is an event listener, so what the CLI shows is exactly what the run directory records.
Messages may quote user input (prompts, paths), so they are printed without markup and without
terminal escape sequences.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .events import Event, LogEvent, MetricEvent, ProgressEvent, SeriesEvent
from .text import printable

SERIES_PRINT_SECONDS = 1.0
LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class ProgressDisplay:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        self.progress = Progress(
            TextColumn("{task.description:<22}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self._series_printed: dict[str, float] = {}

    def _series_due(self, event: SeriesEvent) -> bool:
        """Curves are for plots; the console shows at most one point per curve a second."""
        last = self._series_printed.get(event.series, 0.0)
        if event.time - last < SERIES_PRINT_SECONDS:
            return False
        self._series_printed[event.series] = event.time
        return True

    def handle(self, event: Event) -> None:
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

    def _progress(self, event: ProgressEvent) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        key = f"{event.mode}:{event.phase}"
        if key not in self.tasks:
            label = f"{event.mode} {event.phase}".strip()
            self.tasks[key] = self.progress.add_task(label, total=event.total, rate="")
        task_id = self.tasks[key]
        task = self.progress.tasks[self.progress.task_ids.index(task_id)]
        speed = task.speed
        rate = f"{speed:.2f} {event.unit}/s" if speed else ""
        self.progress.update(task_id, completed=event.done, total=event.total, rate=rate)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False
