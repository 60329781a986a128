"""The typed event model shared by the run writer, the CLI progress display and the TUI.

Every line of ``events.jsonl`` is one of these events serialised as a JSON object with a
``type`` key and a wall-clock ``time``; :func:`parse_event` turns such an object back into the
dataclass, so writer and readers can never drift apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

RunState = Literal["running", "finished", "failed", "interrupted"]


@dataclass(frozen=True)
class Event:
    """Base class; ``type`` names the subclass on disk."""

    type: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class StatusEvent(Event):
    """The run's state changed. ``running`` first; a final one of the others last."""

    type: ClassVar[str] = "status"
    state: RunState
    message: str = ""


@dataclass(frozen=True)
class ProgressEvent(Event):
    """``done`` of ``total`` units of ``phase`` (e.g. "generate", "features") are complete."""

    type: ClassVar[str] = "progress"
    phase: str
    done: int
    total: int
    unit: str = "it"
    mode: str = ""


@dataclass(frozen=True)
class PlanEvent(Event):
    """The work a mode will do, written before it starts, so the whole run's progress and ETA
    are known from the first second: one entry per phase, ``{"phase", "total", "unit",
    "work"}``, where ``work`` is the cost of one unit in the run's common work units (a
    denoiser step of one image is 1; a reference image's features about one step). ``point``
    numbers the sweep point the plan is for (None outside a sweep)."""

    type: ClassVar[str] = "plan"
    mode: str
    phases: list[dict[str, Any]] = field(default_factory=list)
    point: int | None = None


def planned_phase(phase: str, total: int, unit: str, work: float = 1.0) -> dict[str, Any]:
    """One entry of a :class:`PlanEvent`: ``total`` units of ``phase``, ``work`` each."""
    return {"phase": phase, "total": int(total), "unit": unit, "work": float(work)}


@dataclass(frozen=True)
class MetricEvent(Event):
    """A finished number; ``n`` is the sample count it rests on, ``extra`` its context."""

    type: ClassVar[str] = "metric"
    name: str
    value: float
    mode: str = ""
    unit: str = ""
    n: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesEvent(Event):
    """One point appended to the named curve ``series`` (e.g. FID at x = N samples)."""

    type: ClassVar[str] = "series"
    series: str
    x: float
    y: float
    mode: str = ""
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class ArtifactEvent(Event):
    """A file was written under ``artifacts/``; ``path`` is relative to the run directory."""

    type: ClassVar[str] = "artifact"
    path: str
    kind: str = "file"  # "figure", "table", "array", "image", "file"
    caption: str = ""
    mode: str = ""


@dataclass(frozen=True)
class LogEvent(Event):
    """A human-readable line for the run's log."""

    type: ClassVar[str] = "log"
    message: str
    level: Literal["debug", "info", "warning", "error"] = "info"
    mode: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        StatusEvent,
        PlanEvent,
        ProgressEvent,
        MetricEvent,
        SeriesEvent,
        ArtifactEvent,
        LogEvent,
    )
}


def parse_event(obj: dict[str, Any]) -> Event:
    """Rebuild an event from its JSON object; unknown keys are ignored for forward compatibility."""
    cls = EVENT_TYPES.get(obj.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {obj.get('type')!r}")
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in obj.items() if k in names}
    for name in NUMBER_FIELDS.get(cls, ()):
        if name in values and values[name] is None:
            values[name] = math.nan  # written as null: JSON holds no infinity or NaN
    return cls(**values)


#: The float fields a writer writes as null when they are not finite.
NUMBER_FIELDS: dict[type[Event], tuple[str, ...]] = {
    MetricEvent: ("value",),
    SeriesEvent: ("x", "y"),
}
