"""Starting, finding and stopping run processes; no Textual here so tests can use it directly.

A run is a child of ``python -m diffusionscope run`` in its own session (``start_new_session``), so
a dropped SSH connection or a closed TUI does not take it down; its stdout and stderr go to a
log file under the runs root, because the TUI's terminal may be gone long before it ends.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import PROG
from ..core.runs import CONFIG, PROCESS, pid_alive, read_json
from ..core.text import printable

#: Where the launcher's per-child stdout/stderr logs go, inside the runs root.
LAUNCH_LOG_DIR = ".launch-logs"


@dataclass
class LaunchedRun:
    """A run process this app started; ``run_dir`` is known once the child has created it."""

    process: subprocess.Popen[bytes]
    token: str
    runs_root: Path
    log_path: Path
    run_dir: Path | None = None
    argv: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)  # wall clock, as event times are
    resumed: bool = False
    from_form: bool = False  # started from the main screen's form (a refusal goes back there)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def find_run_dir(self) -> Path | None:
        """The run directory the child made for this launch, once it exists."""
        if self.run_dir is None:
            self.run_dir = find_run_dir(self.runs_root, self.token)
        return self.run_dir

    def log_tail(self, count: int) -> list[str]:
        """The last ``count`` non-empty lines the child wrote to its stdout/stderr log."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        lines = [printable(line) for line in text.splitlines() if line.strip()]
        return lines[-count:]

    def failure_message(self) -> str:
        """The child's last stderr line: for a run refused before it made a directory."""
        lines = self.log_tail(1)
        return lines[-1].removeprefix(f"{PROG}: error: ") if lines else ""


def core_command(*args: str) -> list[str]:
    """``python -m diffusionscope ARGS`` with this interpreter, so the child sees the same packages."""
    return [sys.executable, "-m", "diffusionscope", *args]


def new_token() -> str:
    return secrets.token_hex(4)


def _spawn(argv: list[str], runs_root: Path, token: str) -> LaunchedRun:
    runs_root.mkdir(parents=True, exist_ok=True)
    log_dir = runs_root / LAUNCH_LOG_DIR
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / f"{token}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    return LaunchedRun(process, token, runs_root, log_path, argv=argv)


def launch_run(options: Sequence[str], runs_root: Path, name: str) -> LaunchedRun:
    """Start ``diffusionscope run OPTIONS`` on a fresh run directory named ``<name>-<token>``."""
    token = new_token()
    argv = core_command(
        "run", *options, "--runs-root", str(runs_root), "--name", f"{name}-{token}", "--quiet"
    )
    return _spawn(argv, Path(runs_root), token)


def launch_resume(run_dir: Path, runs_root: Path) -> LaunchedRun:
    """Continue an interrupted run in a new child process, writing into the same directory."""
    token = new_token()
    launched = _spawn(core_command("run", "--resume", str(run_dir), "--quiet"), runs_root, token)
    launched.run_dir = Path(run_dir)
    launched.resumed = True
    return launched


def find_run_dir(runs_root: Path, token: str) -> Path | None:
    """The run directory whose name carries ``token`` and whose config has been written."""
    try:
        candidates = [p for p in Path(runs_root).iterdir() if p.name.endswith(token)]
    except OSError:
        return None
    ready = [p for p in candidates if (p / CONFIG).is_file()]
    return sorted(ready)[-1] if ready else None


def run_pid(run_dir: Path) -> int | None:
    """The pid recorded by the process that runs ``run_dir`` (it may have exited since)."""
    identity = read_json(Path(run_dir) / PROCESS) or {}
    pid = identity.get("pid")
    return int(pid) if isinstance(pid, int) else None


def stop_process(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process (the CLI marks the run interrupted and resumable), then SIGKILL.

    Returns True once the process is gone. The child leads its own session, so its process
    group is signalled too (workers it may have forked go with it).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return not _alive(pid)


def _signal(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    """Reap our own child first (so it does not linger as a zombie), then probe any pid."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child
    return pid_alive(pid)
