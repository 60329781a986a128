"""The whole run's progress and ETA, folded from its events; shared by the CLI and the workbench.

Each mode announces its phases before it starts (:class:`~diffusionscope.core.events.PlanEvent`),
each in its own unit with a cost in common work units (a denoiser step of one image is 1), so
the run's total work is known from its first second. Progress events then say how far each
phase is. The ETA is the remaining work of every phase at its measured rate (a phase not yet
begun at the rate the run has shown so far, in work units a second); between events it counts
down with the clock, and when a phase runs past its estimate it is estimated again from the
phase's rate including the time since its last event, so it never reads zero before the end.

Rich's and tqdm's per-bar estimates know one bar only; this one spans every mode and phase,
which is why it is written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .events import Event, PlanEvent, ProgressEvent, StatusEvent

#: Below this many seconds left, a countdown that has run out is estimated again.
OVERDUE_SECONDS = 1.0


@dataclass
class PhaseWork:
    """One phase: its planned size, how far it is, and the first reading its rate starts at."""

    mode: str
    phase: str
    total: int
    unit: str
    work: float  # work units per unit of this phase
    done: int = 0
    first_time: float | None = None  # the first reading of this attempt (rate measured from it)
    first_done: int = 0
    last_time: float | None = None
    skipped: bool = False  # over without a word (a reference read from its cache): no cost

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done)

    def rate(self, now: float | None = None) -> float | None:
        """Units a second since this attempt's first reading; up to ``now`` when given (a
        phase that has stalled since its last event is slower than its events said)."""
        if self.first_time is None or self.last_time is None or self.done <= self.first_done:
            return None
        end = max(self.last_time, now) if now is not None else self.last_time
        if end <= self.first_time:
            return None
        return (self.done - self.first_done) / (end - self.first_time)


@dataclass(frozen=True)
class Overall:
    """What the header and the CLI show: the fraction of planned work done, elapsed seconds
    and the ETA (None while estimating: no phase has a measured rate yet)."""

    fraction: float
    elapsed: float | None
    eta: float | None
    planned: bool  # the run announced a plan (older runs did not: fraction from phases alone)


class OverallProgress:
    """Folds plan, progress and status events; :meth:`at` gives the overall line at a time."""

    def __init__(self) -> None:
        self.phases: dict[tuple[str, str], PhaseWork] = {}
        self.started: float | None = None  # the run's first status
        self.attempt: float | None = None  # the current attempt's "running" status
        self.last_event: float | None = None  # the last progress
        self.last_mark: float | None = None  # the last progress or the attempt's start
        self.state = "running"
        self.ended: float | None = None  # the final status's time
        self._points: dict[tuple[str, str], dict[str, int]] = {}  # per-point parts of a phase
        self.planned = False

    # ---- folding ------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if isinstance(event, StatusEvent):
            self._status(event)
        elif isinstance(event, PlanEvent):
            self._plan(event)
        elif isinstance(event, ProgressEvent):
            self._progress(event)

    def _status(self, event: StatusEvent) -> None:
        if self.started is None:
            self.started = event.time
        self.state = event.state
        self.ended = None if event.state == "running" else event.time
        if event.state == "running":
            self.attempt = self.last_mark = event.time
            for phase in self.phases.values():  # the stopped time is not work done
                phase.first_time = None

    def _plan(self, event: PlanEvent) -> None:
        self.planned = True
        for entry in event.phases:
            key = (event.mode, str(entry.get("phase", "")))
            phase = self.phases.get(key)
            if phase is None:
                phase = self.phases[key] = PhaseWork(event.mode, key[1], 0, "", 1.0)
            phase.total = int(entry.get("total", 0))
            phase.unit = str(entry.get("unit", ""))
            phase.work = float(entry.get("work", 1.0))

    def _progress(self, event: ProgressEvent) -> None:
        base, _, point = event.phase.partition(" (")
        if point and (event.mode, base) in self.phases:
            # A campaign point's phase (``generate (guidance-scale=3.0)``) counts toward the
            # planned phase of all points (``generate``: samples × points).
            self._point_progress(event, base, point.rstrip(")"))
            return
        key = (event.mode, event.phase)
        phase = self.phases.get(key)
        if phase is None:  # not in the plan: it joins it, at the run's measured cost
            phase = self.phases[key] = PhaseWork(
                event.mode, event.phase, event.total, event.unit, self._mean_work()
            )
        if event.done < phase.done:  # started over
            phase.first_time, phase.first_done = event.time, event.done
        elif phase.first_time is None:
            # A phase first heard of part-way (one event per batch) began, as far as can be
            # told, at the run's previous mark (its start or the last progress): measuring
            # from there gives a rate from its first event on, not only from its second.
            mark = self.last_mark
            if mark is not None and mark < event.time and event.done > phase.done:
                phase.first_time, phase.first_done = mark, phase.done
            else:
                phase.first_time, phase.first_done = event.time, event.done
        phase.done, phase.total, phase.last_time = event.done, event.total, event.time
        phase.unit = event.unit
        self.last_event = self.last_mark = event.time
        # A later phase of the same mode has begun: the earlier ones are over (a reference
        # read from its cache never reports progress at all).
        for earlier in self._earlier(phase):
            self._close(earlier)

    @staticmethod
    def _close(phase: PhaseWork) -> None:
        if phase.last_time is None and phase.done == 0:
            phase.skipped = True
        phase.done = max(phase.done, phase.total)

    def _point_progress(self, event: ProgressEvent, base: str, point: str) -> None:
        phase = self.phases[(event.mode, base)]
        parts = self._points.setdefault((event.mode, base), {})
        parts[point] = min(event.done, event.total)
        done = sum(parts.values())
        if phase.first_time is None:
            mark = self.last_mark
            start = mark if mark is not None and mark < event.time else event.time
            phase.first_time, phase.first_done = start, phase.done
        phase.done = min(done, phase.total) if phase.total else done
        phase.last_time = self.last_event = self.last_mark = event.time
        for earlier in self._earlier(phase):  # the shared ones (reference); not other points'
            if (earlier.mode, earlier.phase) not in self._points:
                self._close(earlier)

    def _earlier(self, phase: PhaseWork) -> list[PhaseWork]:
        same = [p for p in self.phases.values() if p.mode == phase.mode]
        return same[: same.index(phase)]

    def _mean_work(self) -> float:
        works = [p.work for p in self.phases.values()]
        return sum(works) / len(works) if works else 1.0

    # ---- reading ------------------------------------------------------------------------

    def _costs(self) -> dict[tuple[str, str], float]:
        """Seconds (or, before any measurement, work units) one unit of each phase costs: its
        own measured rate, else the run's rate in work units; a skipped phase costs nothing."""
        work_rate = self._work_rate()
        costs = {}
        for key, phase in self.phases.items():
            rate = phase.rate()
            if phase.skipped:
                costs[key] = 0.0
            elif rate:
                costs[key] = 1.0 / rate
            else:
                costs[key] = phase.work / work_rate if work_rate else phase.work
        return costs

    def fraction(self) -> float:
        """The share of the run's time done, by each phase's measured cost per unit (planned
        work units weigh phases only until rates are measured)."""
        costs = self._costs()
        total = sum(p.total * costs[k] for k, p in self.phases.items())
        done = sum(min(p.done, p.total) * costs[k] for k, p in self.phases.items())
        return min(1.0, done / total) if total > 0 else 0.0

    def _work_rate(self) -> float | None:
        """Work units a second over every phase measured in this attempt."""
        work, seconds = 0.0, 0.0
        for phase in self.phases.values():
            if phase.rate() is not None:
                assert phase.first_time is not None and phase.last_time is not None
                work += (phase.done - phase.first_done) * phase.work
                seconds += phase.last_time - phase.first_time
        return work / seconds if work > 0 and seconds > 0 else None

    def _remaining(self, now: float | None) -> float | None:
        """Seconds of work left at the last event's rates (``now``: rates up to now)."""
        work_rate = self._work_rate()
        if work_rate is None:
            return None
        seconds = 0.0
        for phase in self.phases.values():
            if phase.finished:
                continue
            rate = phase.rate(now)
            seconds += phase.remaining / rate if rate else phase.remaining * phase.work / work_rate
        return seconds

    def eta(self, now: float) -> float | None:
        """Seconds left at ``now``: the estimate at the last event counted down, estimated
        again (slower) once that has run out; None while nothing has been measured."""
        if self.state != "running":
            return 0.0 if self.state == "finished" else None
        remaining = self._remaining(None)
        if remaining is None or self.last_event is None:
            return None
        countdown = remaining - max(0.0, now - self.last_event)
        if countdown >= OVERDUE_SECONDS:
            return countdown
        again = self._remaining(now) or 0.0
        return max(again - max(0.0, now - self.last_event), OVERDUE_SECONDS)

    def at(self, now: float) -> Overall:
        fraction = 1.0 if self.state == "finished" else self.fraction()
        end = now if self.state == "running" else (self.ended or self.last_event or now)
        elapsed = end - self.started if self.started is not None else None
        return Overall(fraction, elapsed, self.eta(now), self.planned)


def overall_line(overall: Overall, width: int = 20) -> str:
    """``[██████░░░░]  42%  elapsed 03:12  ETA 04:10`` (ETA "estimating" before any rate)."""
    filled = round(overall.fraction * width)
    bar = "█" * filled + "░" * (width - filled)
    eta = "estimating" if overall.eta is None else format_seconds(overall.eta)
    return (
        f"{bar} {overall.fraction * 100:3.0f}%  elapsed "
        f"{format_seconds(overall.elapsed, round_up=False)}  ETA {eta}"
    )


def format_seconds(seconds: float | None, *, round_up: bool = True) -> str:
    """``MM:SS`` or ``H:MM:SS``; ``--:--`` when unknown. Time left is rounded up, so only the
    end reads 00:00; time spent is rounded down."""
    if seconds is None:
        return "--:--"
    whole = int(seconds) + (1 if round_up and seconds % 1 > 0 else 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def fold(events: list[Any]) -> OverallProgress:
    """An overall progress read from a list of events (a run directory's log)."""
    progress = OverallProgress()
    for event in events:
        progress.apply(event)
    return progress
