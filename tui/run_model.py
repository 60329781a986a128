"""What the TUI knows about one run, folded from its events; no Textual here.

A worker thread feeds events in with :meth:`RunModel.apply`; the widgets read a consistent
:class:`RunSnapshot` with :meth:`RunModel.snapshot`. Version counters let a widget skip a
redraw (a plot rebuild is the expensive part) when its part of the run has not changed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.events import (
    ArtifactEvent,
    Event,
    LogEvent,
    MetricEvent,
    PlanEvent,
    ProgressEvent,
    SeriesEvent,
    StatusEvent,
)
from ..core.overall import Overall, OverallProgress
from ..core.runs import CONFIG, RESULTS, read_json
from ..core.text import printable

LOG_LINES_KEPT = 2000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class PhaseProgress:
    """Progress of one phase, with a rate measured from the event times."""

    phase: str
    mode: str
    done: int
    total: int
    unit: str
    first_time: float
    first_done: int
    last_time: float
    seen_time: float | None = None  # its first event, when first_time is an estimate before it
    seen_done: int = 0

    @property
    def rate(self) -> float | None:
        """Units per second: between its events once it has two, else since it began."""
        seen = self.seen_time
        if seen is not None and self.last_time > seen and self.done > self.seen_done:
            return (self.done - self.seen_done) / (self.last_time - seen)
        elapsed = self.last_time - self.first_time
        if elapsed <= 0 or self.done <= self.first_done:
            return None
        return (self.done - self.first_done) / elapsed

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if rate is None or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: str
    caption: str
    mode: str

    @property
    def is_image(self) -> bool:
        return self.path.lower().endswith(IMAGE_SUFFIXES)


@dataclass
class RunSnapshot:
    """A copy of the run's state for one redraw."""

    run_dir: Path
    state: str
    message: str
    phases: list[PhaseProgress]
    series: dict[str, list[tuple[float, float]]]
    series_labels: dict[str, tuple[str, str]]
    metrics: dict[str, MetricEvent]
    artifacts: list[Artifact]
    log: list[str]
    versions: dict[str, int]
    started: float | None = None  # time of the run's first event
    attempt_start: float | None = None  # a resume launched here: when this attempt began
    modes: tuple[str, ...] = ()  # the run's modes, from its config
    overall: Overall | None = None  # the whole run's progress at the snapshot's time

    def current(self, phase: PhaseProgress) -> bool:
        """Whether the phase has moved in this attempt (a resume's old phases have not)."""
        return self.attempt_start is None or phase.last_time >= self.attempt_start

    def eta(self) -> tuple[float | None, bool]:
        """``(seconds, complete)``: the whole run's remaining time, summed over its unfinished
        phases; ``complete`` is False while some mode has not reported any progress yet (its
        time is not in the sum) or a phase has no rate yet."""
        modes_seen = {p.mode for p in self.phases}
        remaining, complete = 0.0, True
        for phase in self.phases:
            if phase.finished:
                continue
            eta = phase.eta if self.current(phase) else None
            if eta is None:
                complete = False
                continue
            remaining += eta
        if self.state != "running":
            return None, True
        if not self.phases:
            return None, False
        return remaining, complete and self._all_modes_seen(modes_seen)

    def _all_modes_seen(self, seen: set[str]) -> bool:
        return all(mode in seen for mode in self.modes) if self.modes else True


@dataclass
class RunModel:
    """The accumulated state of one run directory."""

    run_dir: Path
    state: str = "running"
    message: str = ""
    phases: dict[tuple[str, str], PhaseProgress] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    series_labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    metrics: dict[str, MetricEvent] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES_KEPT))
    versions: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("state", "progress", "series", "metrics", "artifacts", "log"), 0
        )
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _t0: float | None = None
    #: Set when this app resumed the run: status events written before it belong to the
    #: attempt that was interrupted, so the run reads "resuming" until the new process speaks.
    attempt_start: float | None = None
    modes: tuple[str, ...] = ()
    _attempt_time: float = float("-inf")
    _mode_times: dict[str, float] = field(default_factory=dict)  # last progress time per mode
    overall: OverallProgress = field(default_factory=OverallProgress)
    _point_parts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def apply(self, events: Iterable[Event]) -> bool:
        """Fold events in; True when anything changed."""
        changed = False
        with self._lock:
            for event in events:
                self._apply_one(event)
                changed = True
        return changed

    def set_state(self, state: str, message: str = "") -> bool:
        with self._lock:
            if state == self.state and (not message or message == self.message):
                return False
            self.state = state
            self.message = message or self.message
            self.versions["state"] += 1
            return True

    def _apply_one(self, event: Event) -> None:
        if self._t0 is None:
            self._t0 = event.time
        self.overall.apply(event)
        if isinstance(event, StatusEvent):
            if self.attempt_start is not None and event.time < self.attempt_start:
                self.state = "resuming"
                self.message = f"was {event.state}" + (
                    f": {event.message}" if event.message else ""
                )
            else:
                self.state, self.message = event.state, event.message
            if event.state == "running":
                self._attempt_time = event.time
            self.versions["state"] += 1
            self._log_line(event.time, f"[{event.state}] {event.message}".rstrip())
        elif isinstance(event, ProgressEvent):
            self._count_toward_plan(event)
            key = (event.mode, event.phase)
            phase = self.phases.get(key)
            # A phase measures its rate afresh when it starts over, and in each new attempt
            # of a resumed run (the time the run was stopped is not work done).
            unseen = phase is None or phase.seen_time is None  # none yet, or only planned
            if unseen or event.done < phase.done or phase.first_time < self._attempt_time:
                # A phase first heard of part-way (one event per batch) began, as far as can be
                # told, when its mode's previous progress event was written: measuring from
                # there gives a rate from its first event on, not from its second.
                began = self._mode_times.get(event.mode)
                if (
                    unseen
                    and event.done > 0
                    and began is not None
                    and (self._attempt_time <= began < event.time)
                ):
                    start, start_done = began, 0
                else:
                    start, start_done = event.time, event.done
                phase = PhaseProgress(
                    event.phase,
                    event.mode,
                    event.done,
                    event.total,
                    event.unit,
                    start,
                    start_done,
                    event.time,
                    event.time,
                    event.done,
                )
                self.phases[key] = phase
                base = (event.mode, event.phase.partition(" (")[0])
                self._skip_planned_before(base if base in self._point_parts else key)
            self._mode_times[event.mode] = event.time
            phase.done, phase.total, phase.last_time = event.done, event.total, event.time
            self.versions["progress"] += 1
        elif isinstance(event, PlanEvent):
            # Every planned phase has its bar from the start, at 0, before its first event.
            for entry in event.phases:
                key = (event.mode, str(entry.get("phase", "")))
                if key not in self.phases:
                    total, unit = int(entry.get("total", 0)), str(entry.get("unit", ""))
                    self.phases[key] = PhaseProgress(
                        key[1], event.mode, 0, total, unit, event.time, 0, event.time
                    )
            self.versions["progress"] += 1
        elif isinstance(event, SeriesEvent):
            points = self.series.setdefault(event.series, [])
            points.append((event.x, event.y))
            self.series_labels[event.series] = (event.x_label, event.y_label)
            self.versions["series"] += 1
        elif isinstance(event, MetricEvent):
            key = f"{event.mode}.{event.name}" if event.mode else event.name
            self.metrics[key] = event
            self.versions["metrics"] += 1
        elif isinstance(event, ArtifactEvent):
            artifact = Artifact(event.path, event.kind, event.caption, event.mode)
            self.artifacts = [a for a in self.artifacts if a.path != artifact.path] + [artifact]
            self.versions["artifacts"] += 1
            self._log_line(event.time, f"saved {event.path}")
        elif isinstance(event, LogEvent):
            prefix = (
                f"{event.mode}: " if event.mode and not event.message.startswith(event.mode) else ""
            )
            level = "" if event.level == "info" else f"{event.level.upper()} "
            for line in event.message.rstrip().splitlines() or [""]:
                self._log_line(event.time, f"{level}{prefix}{line}")

    def _count_toward_plan(self, event: ProgressEvent) -> None:
        """A campaign point's phase (``generate (guidance-scale=3.0)``) also moves the planned
        bar of that phase over all points (``generate``: samples × points)."""
        base, _, point = event.phase.partition(" (")
        planned = self.phases.get((event.mode, base))
        if not point or planned is None:
            return
        parts = self._point_parts.setdefault((event.mode, base), {})
        parts[point] = min(event.done, event.total)
        if planned.seen_time is None:
            planned.seen_time, planned.seen_done = event.time, planned.done
        planned.done = min(sum(parts.values()), planned.total or sum(parts.values()))
        planned.last_time = event.time

    def _skip_planned_before(self, key: tuple[str, str]) -> None:
        """Planned phases of the mode before this one that never reported are over (a
        reference read from its cache reports nothing): their bars read done."""
        for other_key, other in list(self.phases.items()):
            if other_key == key:
                break
            fed = (other.mode, other.phase) in self._point_parts
            if other.mode == key[0] and other.seen_time is None and other.done == 0 and not fed:
                other.done = other.total

    def _log_line(self, when: float, text: str) -> None:
        # Time since the run's first event: meaningful across hosts and time zones.
        if self._t0 is None:
            self._t0 = when
        text = printable(text)
        self.log.append(f"+{format_duration(when - self._t0)} {text}")
        self.versions["log"] += 1

    def snapshot(self, *, light: bool = False, now: float | None = None) -> RunSnapshot:
        """A copy for one redraw; ``light`` leaves out the curves, numbers, files and log
        (the header's once-a-second clock needs none of them); ``now`` dates the overall
        progress (elapsed and the ETA counted down to that moment)."""
        with self._lock:
            return RunSnapshot(
                run_dir=self.run_dir,
                state=self.state,
                message=self.message,
                phases=[PhaseProgress(**vars(p)) for p in self.phases.values()],
                series={} if light else {n: list(p) for n, p in self.series.items()},
                series_labels={} if light else dict(self.series_labels),
                metrics={} if light else dict(self.metrics),
                artifacts=[] if light else list(self.artifacts),
                log=[] if light else list(self.log),
                versions=dict(self.versions),
                started=self._t0,
                attempt_start=self.attempt_start,
                modes=self.modes,
                overall=None if now is None else self.overall.at(now),
            )


def read_config(run_dir: Path) -> dict[str, Any]:
    config = read_json(Path(run_dir) / CONFIG)
    return config if isinstance(config, dict) else {}


def read_results(run_dir: Path) -> dict[str, Any] | None:
    results = read_json(Path(run_dir) / RESULTS)
    return results if isinstance(results, dict) else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
