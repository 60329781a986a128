"""The run directory: the single place where a run's configuration, events and results live.

Layout (see ARCHITECTURE.md)::

    <runs-root>/<run-id>/
        config.json      the validated configuration, written once before work starts
        lock             flock()ed by the process that runs it, for that process's life
        process.json     pid, host and process start time of the process that runs it
        heartbeat        touched every few seconds while that process lives
        events.jsonl     one event a line, appended and flushed per event
        checkpoint/      what resuming needs, written atomically
        results.json     every final number, written atomically at the end only
        artifacts/       figures, tables and arrays, written atomically
        report.md        a readable report linking the figures

Only the process that runs the analysis (rank 0 when several run) writes here, and it holds the
directory's lock while it does: a second process (two ``--resume`` of one run) is refused.
Readers -- the ``runs`` command, the TUI -- use :class:`EventTail` and :func:`list_runs`, which
write nothing unless asked to clean a dead run's temporary files. This module avoids importing
torch so the TUI can list runs instantly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from .atomic import (
    NOTES_KEY,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    json_safe,
    null_notes,
    remove_temp_files,
)
from .errors import InputError
from .events import (
    ArtifactEvent,
    Event,
    LogEvent,
    MetricEvent,
    PlanEvent,
    ProgressEvent,
    RunState,
    SeriesEvent,
    StatusEvent,
    parse_event,
)
from .storage import describe_write_failure, with_filename

CONFIG = "config.json"
EVENTS = "events.jsonl"
RESULTS = "results.json"
REPORT = "report.md"
PROCESS = "process.json"
HEARTBEAT = "heartbeat"
LOCK = "lock"
CHECKPOINT_DIR = "checkpoint"
ARTIFACTS_DIR = "artifacts"
#: The key of ``config.json`` that lists changes made after the run started (see
#: :meth:`RunWriter.note_config_change`); not an option.
CONFIG_NOTES = "changes"

HEARTBEAT_SECONDS = 5.0
#: A run on another host whose heartbeat is older than this is taken to be dead.
HEARTBEAT_STALE_SECONDS = 60.0
#: How long taking a run's lock waits out a reader's momentary probe before giving up.
LOCK_WAIT_SECONDS = 2.0
#: Recorded and current start times of one process may differ by this much: Linux derives them
#: from a boot time that clock adjustments move by up to a second.
START_TIME_TOLERANCE_SECONDS = 2.0

DEFAULT_RUNS_ROOT = Path("runs")


def runs_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The runs root: the explicit value, else ``$DIFFUSIONSCOPE_RUNS``, else ``./runs``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("DIFFUSIONSCOPE_RUNS", DEFAULT_RUNS_ROOT))


# --------------------------------------------------------------------------------------------
# Process identity: a pid alone can be reused, so the process's start time is recorded with it.
# psutil reads both on Linux, macOS and Windows alike.
# --------------------------------------------------------------------------------------------


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when it cannot be read."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; someone else's


def process_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _process_started(pid)}


def _same_process_alive(identity: dict[str, Any]) -> bool:
    try:
        pid = int(identity.get("pid", -1))
    except (TypeError, ValueError):
        return False
    if pid <= 0 or not pid_alive(pid):
        return False
    recorded, current = identity.get("started"), _process_started(pid)
    if not isinstance(recorded, int | float) or current is None:
        return True  # written before start times were recorded: the pid is all there is
    return abs(recorded - current) <= START_TIME_TOLERANCE_SECONDS


# --------------------------------------------------------------------------------------------
# The lock
# --------------------------------------------------------------------------------------------

#: Errors of file systems that cannot lock (some network mounts): runs go on unlocked there.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunLock:
    """An exclusive ``flock`` on ``<run>/lock``, held by the process that runs the run.

    The kernel drops it when the holder ends, however it ends (SIGKILL included), so it never
    outlives its process and needs no pid bookkeeping; a pid file could only guess. Readers
    probe it with :func:`lock_held`, which holds a shared lock for an instant: :meth:`acquire`
    therefore waits up to :data:`LOCK_WAIT_SECONDS` before it calls the run taken.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self, wait: float = LOCK_WAIT_SECONDS) -> bool:
        """Take the lock; False if another process holds it after ``wait`` seconds."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.02)
                continue
            except OSError as error:
                os.close(fd)
                if error.errno in _NO_LOCKING:
                    return True
                raise
            self._fd = fd
            return True

    def release(self) -> None:
        """Closing the descriptor drops the lock; the file stays for the next holder."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_held(run_dir: Path) -> bool | None:
    """Whether some process holds ``run_dir``'s lock; None when that cannot be told (a run
    from before locks, a file system without locking)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


def new_run_id(name: str) -> str:
    """``<date>-<time>-<name>``; two runs in one second are told apart by :func:`make_run_dir`."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def make_run_dir(root: Path, run_id: str) -> Path:
    """Create ``root/run_id`` -- or ``run_id-2``, ``-3``... when taken -- and return it.

    ``mkdir`` either creates a directory or fails, atomically, so two processes that pick the
    same name in the same second each get their own directory. A runs root that cannot hold
    directories is bad input, reported before anything is written.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"--runs-root {root}: is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--runs-root {root}: cannot create it ({_reason(error)})") from None
    for attempt in itertools.count(1):
        path = root / (run_id if attempt == 1 else f"{run_id}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise InputError(
                f"--runs-root {root}: cannot create a run directory there ({_reason(error)})"
            ) from None
        return path
    raise AssertionError("unreachable")


def check_runs_root(root: Path) -> None:
    """Refuse, before anything is written, a runs root that cannot hold new run directories:
    a file, a folder inside a file, or a folder this process cannot write to (read-only file
    systems included, which even root cannot write to)."""
    root = Path(root)
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = "" if existing == root else f" ({existing} exists)"
    if not existing.is_dir():
        raise InputError(f"--runs-root {root}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = hasattr(os, "ST_RDONLY") and os.statvfs(existing).f_flag & os.ST_RDONLY
        why = "read-only file system" if read_only else "permission denied"
        raise InputError(f"--runs-root {root}: cannot create run directories there ({why}){where}")


class RunWriter:
    """Writes one run directory. ``enabled=False`` gives a writer that drops everything.

    Non-zero ranks of a multi-process run get a disabled writer, so mode code calls the same
    methods everywhere and never has to ask which rank it is on before writing.
    """

    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.listeners: list[Callable[[Event], None]] = []
        self.run_lock = RunLock(self.path)
        self._events_file = None
        self._lock = threading.Lock()
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    # ---- life cycle ---------------------------------------------------------------------

    @classmethod
    def create(
        cls, root: Path, name: str, config: dict[str, Any], *, enabled: bool = True
    ) -> RunWriter:
        """Make a fresh run directory under ``root``, lock it, and write its ``config.json``."""
        run_id = new_run_id(name)
        if not enabled:
            return cls(Path(root) / run_id, enabled=False)
        writer = cls(make_run_dir(Path(root), run_id))
        if not writer.run_lock.acquire():
            raise RuntimeError(f"{writer.path}: a new run directory is locked by another process")
        try:
            (writer.path / CHECKPOINT_DIR).mkdir()
            (writer.path / ARTIFACTS_DIR).mkdir()
            atomic_write_json(writer.path / CONFIG, config)
        except OSError as error:
            # A runs root with no room for even the configuration: nothing is left behind.
            writer.run_lock.release()
            shutil.rmtree(writer.path, ignore_errors=True)
            raise InputError(f"--runs-root {root}: {describe_write_failure(error, root)}") from None
        return writer

    @classmethod
    def reopen(cls, path: Path, *, enabled: bool = True) -> RunWriter:
        """Continue writing an existing run (``--resume``).

        Takes the run's lock first, so of two processes resuming one run exactly one goes on;
        the other is refused, as is a run still running on another host. Then removes the
        temporary files a killed writer left behind: no one else can be writing them now.
        """
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise InputError(f"{path}: not a run directory (no {CONFIG})")
        writer = cls(path, enabled=enabled)
        if not enabled:
            return writer
        try:
            taken = writer.run_lock.acquire()
        except OSError as error:
            raise InputError(f"{path}: cannot lock the run ({_reason(error)})") from None
        if not taken:
            identity = read_json(path / PROCESS) or {}
            pid = identity.get("pid") if _same_process_alive(identity) else None
            by = f" (pid {pid})" if pid else ""
            raise InputError(f"{path}: the run is in use by another process{by}")
        try:
            if (path / RESULTS).is_file():
                raise InputError(f"{path}: run already finished")
            identity = read_json(path / PROCESS) or {}
            if identity.get("host") not in (None, socket.gethostname()) and _heartbeat_fresh(path):
                raise InputError(f"{path}: run is still running on host {identity['host']}")
            remove_temp_files(path)
        except BaseException:
            writer.run_lock.release()
            raise
        return writer

    def start(self) -> None:
        """Claim the directory for this process: record its identity and start the heartbeat."""
        if not self.enabled:
            return
        atomic_write_json(self.path / PROCESS, process_identity())
        _end_torn_line(self.path / EVENTS)
        self._events_file = open(self.path / EVENTS, "a", encoding="utf-8")  # noqa: SIM115
        self._touch_heartbeat()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="run-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()

    def note_config_change(self, changes: dict[str, tuple[Any, Any]], reason: str) -> None:
        """Record in ``config.json`` that options changed (old, new), e.g. ``--device`` on a
        resume: the values are updated and a dated note lists what changed and why."""
        if not self.enabled or not changes:
            return
        config = read_json(self.config_path) or {}
        for key, (_old, new) in changes.items():
            config[key] = new
        config.setdefault(CONFIG_NOTES, []).append(
            {
                "time": datetime.now().isoformat(timespec="seconds"),
                "reason": reason,
                "changed": {key: {"from": old, "to": new} for key, (old, new) in changes.items()},
            }
        )
        atomic_write_json(self.config_path, config)

    def close(self) -> None:
        self._heartbeat_stop.set()
        if self._events_file is not None:
            self._events_file.close()
            self._events_file = None
        self.run_lock.release()

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
            record, nulls = json_safe(event.to_json())
            if nulls:
                record[NOTES_KEY] = null_notes(nulls)
            line = json.dumps(record, default=_json_fallback, allow_nan=False)
            with self._lock:
                self._append_event(line)
        for listener in self.listeners:
            listener(event)

    def _append_event(self, line: str) -> None:
        """One whole line or none: a write the disk refuses part-way is cut back off, so a
        full disk leaves no torn event (and the error names ``events.jsonl``)."""
        handle = self._events_file
        assert handle is not None
        size = os.fstat(handle.fileno()).st_size
        try:
            handle.write(line + "\n")
            handle.flush()
        except OSError as error:
            with contextlib.suppress(OSError, ValueError):
                handle.close()
            self._events_file = None
            with contextlib.suppress(OSError):
                os.truncate(self.path / EVENTS, size)
            raise with_filename(error, self.path / EVENTS) from error

    def status(self, state: RunState, message: str = "") -> None:
        self.emit(StatusEvent(state=state, message=message))

    def log(self, message: str, level: str = "info", mode: str = "") -> None:
        self.emit(LogEvent(message=message, level=level, mode=mode))  # type: ignore[arg-type]

    def progress(self, phase: str, done: int, total: int, unit: str = "it", mode: str = "") -> None:
        self.emit(ProgressEvent(phase=phase, done=done, total=total, unit=unit, mode=mode))

    def plan(self, mode: str, phases: list[dict[str, Any]], point: int | None = None) -> None:
        """Announce a mode's planned phases (see :class:`PlanEvent`) before it starts."""
        self.emit(PlanEvent(mode=mode, phases=phases, point=point))

    def metric(
        self,
        name: str,
        value: float,
        *,
        mode: str = "",
        unit: str = "",
        n: int | None = None,
        **extra: Any,
    ) -> None:
        self.emit(
            MetricEvent(name=name, value=float(value), mode=mode, unit=unit, n=n, extra=extra)
        )

    def series(
        self,
        series: str,
        x: float,
        y: float,
        *,
        mode: str = "",
        x_label: str = "",
        y_label: str = "",
    ) -> None:
        self.emit(
            SeriesEvent(
                series=series, x=float(x), y=float(y), mode=mode, x_label=x_label, y_label=y_label
            )
        )

    # ---- files --------------------------------------------------------------------------

    def announce_artifact(
        self, path: Path, kind: str = "file", caption: str = "", mode: str = ""
    ) -> None:
        relative = Path(path).resolve().relative_to(self.path.resolve())
        self.emit(ArtifactEvent(path=relative.as_posix(), kind=kind, caption=caption, mode=mode))

    def save_figure(
        self, figure: Any, name: str, caption: str = "", mode: str = "", trim: bool = True
    ) -> Path:
        """Save a matplotlib figure as ``artifacts/<name>`` (PNG at 150 dpi) and announce it.

        ``trim`` crops the page to what is drawn, at the price of drawing it twice; figures that
        set their own margins pass ``False``.
        """
        target = self.artifact_path(name)
        if self.enabled:
            with atomic_path(target) as tmp:
                figure.savefig(
                    tmp,
                    dpi=150,
                    bbox_inches="tight" if trim else None,
                    format=target.suffix.lstrip("."),
                )
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

    def save_csv(
        self,
        name: str,
        header: list[str],
        rows: Iterable[Iterable[Any]],
        caption: str = "",
        mode: str = "",
    ) -> Path:
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


def _end_torn_line(events: Path) -> None:
    """End a line a killed writer left half-written, so the next event starts a line of its own
    (readers skip the damaged line; appending to it would damage the next event too)."""
    try:
        with open(events, "rb+") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    except FileNotFoundError:
        pass


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


def _heartbeat_fresh(run_dir: Path) -> bool:
    try:
        age = time.time() - (Path(run_dir) / HEARTBEAT).stat().st_mtime
    except OSError:
        return False
    return age < HEARTBEAT_STALE_SECONDS


def process_running(run_dir: Path) -> bool:
    """Whether a process is running ``run_dir`` now: its lock is held, or (a run from before
    locks) its recorded process lives; on another host, its heartbeat is fresh."""
    run_dir = Path(run_dir)
    held = lock_held(run_dir)
    if held:
        return True
    identity = read_json(run_dir / PROCESS)
    if not isinstance(identity, dict):
        return False
    if identity.get("host") != socket.gethostname():
        return _heartbeat_fresh(run_dir)  # a lock on a shared file system may not be shared
    return False if held is False else _same_process_alive(identity)


def run_state(run_dir: Path, events: list[Event] | None = None) -> RunState:
    """The run's state. ``results.json`` is written last, only by a run that did all its
    work, so it means ``finished`` whatever the event log's tail says (a kill can tear the
    final status line). Otherwise the final status event decides; without one, the run is
    ``running`` while its process is (:func:`process_running`), else ``interrupted``."""
    run_dir = Path(run_dir)
    finished = (run_dir / RESULTS).is_file()
    final = final_status(events if events is not None else read_events(run_dir))
    if final is not None:
        return "finished" if finished else final.state
    if process_running(run_dir):
        return "running"
    return "finished" if finished else "interrupted"


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


def list_runs(root: Path | None = None, *, clean_temp_files: bool = False) -> list[RunInfo]:
    """Every run directory under ``root``, newest first.

    ``clean_temp_files`` also removes the temporary files killed runs left behind, in runs no
    process is running (their lock is taken for the moment it takes).
    """
    root = runs_root(root)
    if not root.is_dir():
        return []
    runs = [run_info(path) for path in root.iterdir() if (path / CONFIG).is_file()]
    if clean_temp_files:
        for info in runs:
            if info.state != "running":
                remove_dead_run_temp_files(info.path)
    return sorted(runs, key=lambda info: info.path.name, reverse=True)


def remove_dead_run_temp_files(run_dir: Path) -> list[Path]:
    """Remove a dead run's leftover temporary files; nothing if a process holds the run or
    the folder cannot be written (someone else's runs)."""
    lock = RunLock(run_dir)
    try:
        if not lock.acquire(wait=0):
            return []
        return remove_temp_files(run_dir)
    except OSError:
        return []
    finally:
        lock.release()
