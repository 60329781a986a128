"""A run's wall time, read from its event log: every attempt's span, from its ``running``
status event to its last event, summed.

A resumed run's interrupted attempts count (their events are in the same log); the time
between an interruption and the resume does not, since nothing ran then. The current attempt
ends ``now`` (its last event, ``finished``, follows the results that report this number).
"""

from __future__ import annotations

from collections.abc import Iterable

from .events import Event, StatusEvent


def attempt_spans(events: Iterable[Event]) -> list[tuple[float, float]]:
    """``(first, last)`` event time of each attempt; an attempt starts at a ``running`` status
    (events before the first one belong to the first attempt)."""
    spans: list[list[float]] = []
    for event in events:
        if not spans or (isinstance(event, StatusEvent) and event.state == "running"):
            spans.append([event.time, event.time])
        spans[-1][1] = max(spans[-1][1], event.time)
    return [(first, last) for first, last in spans]


def run_seconds(events: Iterable[Event], now: float) -> float:
    """The run's wall time: the earlier attempts' spans plus the last one's up to ``now``."""
    spans = attempt_spans(events)
    if not spans:
        return 0.0
    *earlier, (current, _) = spans
    return sum(last - first for first, last in earlier) + max(now - current, 0.0)
