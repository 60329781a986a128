"""The runs list, kept up to date cheaply: each run is re-read only when its files change.

The runs screen refreshes every couple of seconds. Reading every run's whole ``events.jsonl``
each time costs seconds once there are many runs or one long run (40 000 events). Here each run
is remembered with the sizes and modification times of the files its row depends on
(``config.json``, ``events.jsonl``, ``results.json``, ``process.json``); an unchanged run is
reused as it is, a growing event log is read from where the last read stopped, and only a run
with no final status asks whether its process is still alive. No Textual here.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.events import MetricEvent, StatusEvent, parse_event
from ..core.result_fields import headline_numbers, result_rows
from ..core.runs import CONFIG, EVENTS, RESULTS, RunInfo, read_json, run_state

#: Only these event lines are parsed when listing; the writer puts ``type`` first, so the rest
#: (progress, series, log: nearly all of a long run) are skipped by a prefix test.
_WANTED = (b'{"type": "status"', b'{"type": "metric"', b'{"type":"status"', b'{"type":"metric"')


def _signature(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@dataclass
class _Entry:
    """What is known about one run directory, and the file signatures it was read at."""

    path: Path
    config_sig: tuple[int, int] | None = None
    results_sig: tuple[int, int] | None = None
    events_offset: int = 0
    events_inode: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] | None = None
    first_time: float | None = None
    final: StatusEvent | None = None
    metrics: dict[str, MetricEvent] = field(default_factory=dict)
    pending: bytes = b""
    listed: ListedRun | None = None  # the row as last built; rebuilt when anything changed

    def read_events(self) -> bool:
        """Fold in the event lines appended since the last read (all of them after a rewrite);
        True when there was anything new."""
        events_path = os.path.join(self.path, EVENTS)
        try:
            stat = os.stat(events_path)
        except OSError:
            return False
        if stat.st_ino != self.events_inode or stat.st_size < self.events_offset:
            self.events_inode, self.events_offset, self.pending = stat.st_ino, 0, b""
            self.first_time, self.final, self.metrics = None, None, {}
        if stat.st_size == self.events_offset:
            return False
        with open(events_path, "rb") as handle:
            handle.seek(self.events_offset)
            chunk = handle.read(stat.st_size - self.events_offset)
        self.events_offset += len(chunk)
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for index, line in enumerate(lines):
            if self.first_time is None and index == 0 and line.strip():
                self.first_time = _event_time(line)
            if not line.startswith(_WANTED):
                continue
            try:
                event = parse_event(json.loads(line))
            except ValueError:
                continue
            if isinstance(event, StatusEvent):
                self.final = event if event.state != "running" else None
            elif isinstance(event, MetricEvent):
                self.metrics[f"{event.mode}.{event.name}"] = event
        return True

    def build(self) -> ListedRun:
        # As core.runs.run_state decides: results.json (written last) means finished whatever
        # the log's tail says; else the final status; else whether its process still runs.
        if self.final is not None:
            state = "finished" if self.results_sig is not None else self.final.state
        else:
            state = run_state(self.path, [])
        rows = result_rows(self.results, self.metrics.values())
        info = RunInfo(
            path=self.path,
            state=state,
            model=str(self.config.get("model") or self.config.get("generated") or ""),
            modes=list(self.config.get("modes") or []),
            num_samples=self.config.get("num_samples"),
            started=self.first_time if self.first_time is not None else _name_time(self.path),
            key_numbers={row.key: row.value for row in rows},
            message=self.final.message if self.final else "",
        )
        return ListedRun(info, headline_numbers(rows))


def _event_time(line: bytes) -> float | None:
    try:
        value = json.loads(line).get("time")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _name_time(path: Path) -> float | None:
    """A run directory's name starts with its creation time (``YYYYmmdd-HHMMSS-``)."""
    try:
        return datetime.strptime(path.name[:15], "%Y%m%d-%H%M%S").timestamp()
    except ValueError:
        return None


@dataclass
class ListedRun:
    """A row of the runs list: the run and its headline numbers, as text."""

    info: RunInfo
    headline: str


class RunIndex:
    """Every run directory under a root, re-read only where something changed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # the app warms it while a runs screen may refresh it

    def refresh(self) -> list[ListedRun]:
        """The runs, newest first."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> list[ListedRun]:
        try:
            names = [entry.name for entry in os.scandir(self.root) if entry.is_dir()]
        except OSError:
            return []
        listed = []
        root = str(self.root)
        for name in names:
            folder = os.path.join(root, name)  # strings, not Paths: this loop runs 1 000 times
            config_sig = _signature(os.path.join(folder, CONFIG))
            if config_sig is None:
                self._entries.pop(name, None)
                continue
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = _Entry(self.root / name)
            path = entry.path
            changed = False
            if entry.config_sig != config_sig:
                config = read_json(path / CONFIG)
                entry.config = config if isinstance(config, dict) else {}
                entry.config_sig, changed = config_sig, True
            results_sig = _signature(os.path.join(folder, RESULTS))
            if results_sig != entry.results_sig:
                results = read_json(path / RESULTS) if results_sig else None
                entry.results = results if isinstance(results, dict) else None
                entry.results_sig, changed = results_sig, True
            changed |= entry.read_events()
            if changed or entry.listed is None or entry.final is None:
                entry.listed = entry.build()
            listed.append(entry.listed)
        for gone in set(self._entries) - set(names):
            del self._entries[gone]
        listed.sort(key=lambda run: run.info.path.name, reverse=True)
        return listed


# --------------------------------------------------------------------------------------------
# Sorting and filtering
# --------------------------------------------------------------------------------------------

SORT_KEYS = ("date", "state", "model", "mode")


def sort_runs(runs: list[ListedRun], key: str, reverse: bool = False) -> list[ListedRun]:
    """Runs by ``date`` (newest first), ``state``, ``model`` or ``mode``; ties newest first."""
    by_date = sorted(runs, key=lambda r: (r.info.started or 0.0, r.info.name), reverse=True)
    if key == "date":
        return list(reversed(by_date)) if reverse else by_date
    field_of = {
        "state": lambda r: r.info.state,
        "model": lambda r: Path(r.info.model).name.lower() or r.info.model.lower(),
        "mode": lambda r: ",".join(r.info.modes),
    }[key]
    return sorted(by_date, key=field_of, reverse=reverse)


def matches(run: ListedRun, query: str) -> bool:
    """Whether ``run`` fits a filter such as ``state:running model:digits metrics 2024-06``.

    ``state:``, ``model:``, ``mode:``, ``name:`` and ``date:`` match their field (a prefix for
    the state, a substring otherwise); a bare word matches any of them. Every term must match.
    """
    info = run.info
    date = datetime.fromtimestamp(info.started).strftime("%Y-%m-%d %H:%M") if info.started else ""
    fields = {
        "state": info.state,
        "model": info.model,
        "mode": ",".join(info.modes),
        "name": info.name,
        "date": date,
    }
    for term in query.lower().split():
        key, sep, value = term.partition(":")
        if sep and key in fields:
            text = fields[key].lower()
            ok = text.startswith(value) if key == "state" else value in text
        else:
            ok = any(term in text.lower() for text in fields.values())
        if not ok:
            return False
    return True
