"""The run directory: the single place where a run's configuration, events and results live.

Layout (see ARCHITECTURE.md)::

    <runs-root>/<run-id>/
        config.json      the validated configuration, written once before work starts
        process.json     pid, host and process start time of the process that runs it
        heartbeat        touched every few seconds while that process lives
        events.jsonl     one event a line, appended and flushed per event
        checkpoint/      what resuming needs, written atomically
        results.json     every final number, written atomically at the end only
        artifacts/       figures, tables and arrays, written atomically
        report.md        a readable report linking the figures

Only the process that runs the analysis (rank 0 when several run) writes here. Readers --
the ``runs`` command, the TUI -- use :class:`EventTail` and :func:`list_runs`, which never
write. This module avoids importing torch so the TUI can list runs instantly.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from diffusionscope.core.atomic import atomic_path, atomic_write_json, atomic_write_text
from diffusionscope.core.errors import InputError
from diffusionscope.core.events import (
    ArtifactEvent,
    Event,
    LogEvent,
    MetricEvent,
    ProgressEvent,
    RunState,
    SeriesEvent,
    StatusEvent,
    parse_event,
)

CONFIG = "config.json"
EVENTS = "events.jsonl"
RESULTS = "results.json"
REPORT = "report.md"
PROCESS = "process.json"
HEARTBEAT = "heartbeat"
CHECKPOINT_DIR = "checkpoint"
ARTIFACTS_DIR = "artifacts"

HEARTBEAT_SECONDS = 5.0
#: A run on another host whose heartbeat is older than this is taken to be dead.
HEARTBEAT_STALE_SECONDS = 60.0

DEFAULT_RUNS_ROOT = Path("runs")


def runs_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The runs root: the explicit value, else ``$DIFFUSIONSCOPE_RUNS``, else ``./runs``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("DIFFUSIONSCOPE_RUNS", DEFAULT_RUNS_ROOT))


# --------------------------------------------------------------------------------------------
# Process identity: a pid alone can be reused, so the kernel's start time is recorded with it.
# --------------------------------------------------------------------------------------------


def _process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None when unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    after_name = stat[stat.rfind(")") + 2 :].split()
    return int(after_name[19])  # field 22 overall


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs here: the signal probe is all there is
    # A zombie (exited, not yet reaped by its parent) no longer runs anything.
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def process_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start_ticks": _process_start_ticks(pid)}


def _same_process_alive(identity: dict[str, Any]) -> bool:
    pid = int(identity.get("pid", -1))
    if pid <= 0 or not pid_alive(pid):
        return False
    recorded = identity.get("start_ticks")
    current = _process_start_ticks(pid)
    return recorded is None or current is None or recorded == current


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


def new_run_id(name: str) -> str:
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"


class RunWriter:
    """Writes one run directory. ``enabled=False`` gives a writer that drops everything.

    Non-zero ranks of a multi-process run get a disabled writer, so mode code calls the same
    methods everywhere and never has to ask which rank it is on before writing.
    """

    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.listeners: list[Callable[[Event], None]] = []
        self._events_file = None
        self._lock = threading.Lock()
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    # ---- life cycle ---------------------------------------------------------------------

    @classmethod
    def create(
        cls, root: Path, name: str, config: dict[str, Any], *, enabled: bool = True
    ) -> RunWriter:
        """Make a fresh run directory under ``root`` and write its ``config.json``."""
        root = Path(root)
        run_id = new_run_id(name)
        path = root / run_id
        suffix = 1
        while path.exists():
            suffix += 1
            path = root / f"{run_id}-{suffix}"
        writer = cls(path, enabled=enabled)
        if enabled:
            path.mkdir(parents=True)
            (path / CHECKPOINT_DIR).mkdir()
            (path / ARTIFACTS_DIR).mkdir()
            atomic_write_json(path / CONFIG, config)
        return writer

    @classmethod
    def reopen(cls, path: Path, *, enabled: bool = True) -> RunWriter:
        """Continue writing an existing run (``--resume``); refuses one that is still running."""
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise InputError(f"{path}: not a run directory (no {CONFIG})")
        if enabled and run_state(path) == "running":
            identity = read_json(path / PROCESS) or {}
            raise InputError(f"{path}: run is still running (pid {identity.get('pid', '?')})")
        return cls(path, enabled=enabled)

    def start(self) -> None:
        """Claim the directory for this process: record its identity and start the heartbeat."""
        if not self.enabled:
            return
        atomic_write_json(self.path / PROCESS, process_identity())
        self._events_file = open(self.path / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
        self._touch_heartbeat()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="run-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()

    def close(self) -> None:
        self._heartbeat_stop.set()
        if self._events_file is not None:
            self._events_file.close()
            self._events_file = None

    def _touch_heartbeat(self) -> None:
        (self.path / HEARTBEAT).write_text(f"{time.time():.3f}\n")

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.wait(HEARTBEAT_SECONDS):
            try:
                self._touch_heartbeat()
            except OSError:
                return

    # ---- paths --------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.path / ARTIFACTS_DIR

    def artifact_path(self, name: str) -> Path:
        return self.artifacts_dir / name

    # ---- events -------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Append one event to ``events.jsonl`` and flush it, then tell the listeners."""
        if self.enabled and self._events_file is not None:
            line = json.dumps(event.to_json(), default=_json_fallback)
            with self._lock:
                self._events_file.write(line + "\n")
                self._events_file.flush()
        for listener in self.listeners:
            listener(event)

    def status(self, state: RunState, message: str = "") -> None:
        self.emit(StatusEvent(state=state, message=message))

    def log(self, message: str, level: str = "info", mode: str = "") -> None:
        self.emit(LogEvent(message=message, level=level, mode=mode))  # type: ignore[arg-type]

    def progress(self, phase: str, done: int, total: int, unit: str = "it", mode: str = "") -> None:
        self.emit(ProgressEvent(phase=phase, done=done, total=total, unit=unit, mode=mode))

    def metric(self, name: str, value: float, *, mode: str = "", unit: str = "", n: int | None = None,
               **extra: Any) -> None:  # fmt: skip
        self.emit(
            MetricEvent(name=name, value=float(value), mode=mode, unit=unit, n=n, extra=extra)
        )

    def series(self, series: str, x: float, y: float, *, mode: str = "", x_label: str = "",
               y_label: str = "") -> None:  # fmt: skip
        self.emit(SeriesEvent(series=series, x=float(x), y=float(y), mode=mode, x_label=x_label,
                              y_label=y_label))  # fmt: skip

    # ---- files --------------------------------------------------------------------------

    def announce_artifact(self, path: Path, kind: str = "file", caption: str = "", mode: str = "") -> None:  # fmt: skip
        relative = Path(path).resolve().relative_to(self.path.resolve())
        self.emit(ArtifactEvent(path=relative.as_posix(), kind=kind, caption=caption, mode=mode))

    def save_figure(self, figure: Any, name: str, caption: str = "", mode: str = "",
                    trim: bool = True) -> Path:  # fmt: skip
        """Save a matplotlib figure as ``artifacts/<name>`` (PNG at 150 dpi) and announce it.

        ``trim`` crops the page to what is drawn, at the price of drawing it twice; figures that
        set their own margins pass ``False``.
        """
        target = self.artifact_path(name)
        if self.enabled:
            with atomic_path(target) as tmp:
                figure.savefig(tmp, dpi=150, bbox_inches="tight" if trim else None,
                               format=target.suffix.lstrip("."))  # fmt: skip
            self.announce_artifact(target, "figure", caption, mode)
        return target

    def save_image(self, image: Any, name: str, caption: str = "", mode: str = "") -> Path:
        """Save a PIL image under ``artifacts/`` and announce it."""
        target = self.artifact_path(name)
        if self.enabled:
            with atomic_path(target) as tmp:
                image.save(tmp, format=(target.suffix.lstrip(".") or "png").upper())
            self.announce_artifact(target, "image", caption, mode)
        return target

    def save_csv(self, name: str, header: list[str], rows: Iterable[Iterable[Any]], caption: str = "",
                 mode: str = "") -> Path:  # fmt: skip
        """Save a table as CSV under ``artifacts/`` and announce it."""
        import csv
        import io

        target = self.artifact_path(name)
        if self.enabled:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(header)
            writer.writerows(rows)
            atomic_write_text(target, buffer.getvalue())
            self.announce_artifact(target, "table", caption, mode)
        return target

    def save_npz(self, name: str, caption: str = "", mode: str = "", **arrays: Any) -> Path:
        """Save arrays as a compressed ``.npz`` under ``artifacts/`` and announce it."""
        import numpy as np

        target = self.artifact_path(name)
        if self.enabled:
            with atomic_path(target) as tmp:
                np.savez_compressed(tmp, **arrays)
            self.announce_artifact(target, "array", caption, mode)
        return target

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> Path:
        """Atomically save ``checkpoint/<name>.pt`` (tensors, numbers, strings, lists, dicts)."""
        import torch

        target = self.checkpoint_dir / f"{name}.pt"
        if self.enabled:
            with atomic_path(target) as tmp:
                torch.save(state, tmp)
        return target

    def load_checkpoint(self, name: str) -> dict[str, Any] | None:
        """Load a checkpoint written by :meth:`save_checkpoint`, or None if there is none.

        ``weights_only=True``: a checkpoint holds plain data, so nothing is unpickled blindly.
        """
        import torch

        target = self.checkpoint_dir / f"{name}.pt"
        if not target.is_file():
            return None
        return torch.load(target, map_location="cpu", weights_only=True)

    def write_results(self, results: dict[str, Any]) -> Path:
        target = self.path / RESULTS
        if self.enabled:
            atomic_write_json(target, results)
        return target

    def write_report(self, markdown: str) -> Path:
        target = self.path / REPORT
        if self.enabled:
            atomic_write_text(target, markdown)
        return target


def _json_fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class EventTail:
    """Reads the events of a run incrementally; each :meth:`poll` returns only new events.

    Only complete lines are consumed, so a line being written concurrently is picked up whole
    on a later poll. Polling is cheap and never blocks: the TUI calls it from a worker.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EVENTS
        self._offset = 0
        self._pending = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        events: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                events.append(parse_event(json.loads(line)))
            except ValueError:
                continue  # a foreign or damaged line never stops a reader
        return events


def read_events(run_dir: Path) -> list[Event]:
    return EventTail(run_dir).poll()


def final_status(events: Iterable[Event]) -> StatusEvent | None:
    """The last status event if it ends the run (finished, failed or interrupted)."""
    last: StatusEvent | None = None
    for event in events:
        if isinstance(event, StatusEvent):
            last = event
    return last if last is not None and last.state != "running" else None


def run_state(run_dir: Path, events: list[Event] | None = None) -> RunState:
    """``finished``/``failed``/``interrupted`` from the final status event when there is one;
    otherwise ``running`` while the recorded process lives (same pid *and* start time on this
    host, or a fresh heartbeat from another host), else ``interrupted``."""
    run_dir = Path(run_dir)
    final = final_status(events if events is not None else read_events(run_dir))
    if final is not None:
        return final.state
    identity = read_json(run_dir / PROCESS)
    if not identity:
        return "interrupted"
    if identity.get("host") == socket.gethostname():
        return "running" if _same_process_alive(identity) else "interrupted"
    try:
        age = time.time() - (run_dir / HEARTBEAT).stat().st_mtime
    except OSError:
        return "interrupted"
    return "running" if age < HEARTBEAT_STALE_SECONDS else "interrupted"


@dataclass
class RunInfo:
    """What the runs list shows about one run."""

    path: Path
    state: RunState
    model: str = ""
    modes: list[str] = field(default_factory=list)
    num_samples: int | None = None
    started: float | None = None
    key_numbers: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def run_info(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    config = read_json(run_dir / CONFIG) or {}
    events = read_events(run_dir)
    state = run_state(run_dir, events)
    final = final_status(events)
    key_numbers: dict[str, float] = {}
    for event in events:
        if isinstance(event, MetricEvent):
            key = f"{event.mode}.{event.name}" if event.mode else event.name
            key_numbers[key] = event.value
    started = events[0].time if events else None
    return RunInfo(
        path=run_dir,
        state=state,
        model=str(config.get("model") or config.get("generated") or ""),
        modes=list(config.get("modes") or []),
        num_samples=config.get("num_samples"),
        started=started,
        key_numbers=key_numbers,
        message=final.message if final else "",
    )


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run directory under ``root``, newest first."""
    root = runs_root(root)
    if not root.is_dir():
        return []
    runs = [run_info(path) for path in root.iterdir() if (path / CONFIG).is_file()]
    return sorted(runs, key=lambda info: info.path.name, reverse=True)
