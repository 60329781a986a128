"""diffusionscope.core.runs: the run directory, the event log and its readers, and dead-run detection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusionscope.core.events import (
    ArtifactEvent,
    LogEvent,
    MetricEvent,
    ProgressEvent,
    SeriesEvent,
    StatusEvent,
    parse_event,
)
from diffusionscope.core.runs import (
    EventTail,
    RunWriter,
    list_runs,
    read_events,
    run_info,
    run_state,
)


def _wait_for(condition, timeout: float = 600.0) -> None:
    """Poll ``condition`` until it holds; fail (not sleep-assert) after a generous deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.05)


def test_run_directory_layout(runs_root: Path) -> None:
    writer = RunWriter.create(runs_root, "demo run", {"model": "m", "modes": ["schedule"]})
    writer.start()
    writer.status("running")
    writer.progress("generate", 1, 4, mode="metrics")
    writer.metric("fid", 12.5, mode="metrics", n=4, extractor="digits")
    writer.series("fid", 4, 12.5, mode="metrics")
    writer.save_csv("curve.csv", ["n", "fid"], [[4, 12.5]], mode="metrics")
    writer.save_checkpoint("state", {"next_index": 4})
    # Events are flushed per event: a reader sees them while the writer is still open.
    assert [type(e) for e in read_events(writer.path)] == [
        StatusEvent,
        ProgressEvent,
        MetricEvent,
        SeriesEvent,
        ArtifactEvent,
    ]
    writer.write_results({"metrics": {"fid": 12.5}})
    writer.write_report("# report\n")
    writer.status("finished")
    writer.close()

    path = writer.path
    assert path.parent == runs_root and path.name.endswith("demo-run")
    assert json.loads((path / "config.json").read_text())["modes"] == ["schedule"]
    assert (path / "checkpoint" / "state.pt").is_file()
    assert writer.load_checkpoint("state") == {"next_index": 4}
    assert (path / "artifacts" / "curve.csv").read_text().splitlines() == ["n,fid", "4,12.5"]
    assert json.loads((path / "results.json").read_text()) == {"metrics": {"fid": 12.5}}
    assert (path / "report.md").read_text() == "# report\n"
    assert not list(path.rglob("*.tmp*")), "no temporary files may remain"
    assert run_state(path) == "finished"
    info = run_info(path)
    assert info.key_numbers == {"metrics.fid": 12.5} and info.modes == ["schedule"]


def test_events_round_trip_through_json() -> None:
    for event in (
        StatusEvent(state="failed", message="bad"),
        ProgressEvent(phase="p", done=1, total=2, unit="img", mode="m"),
        MetricEvent(name="kid", value=0.1, n=5, extra={"std": 0.01}),
        SeriesEvent(series="fid", x=250, y=30.0),
        LogEvent(message="hello", level="warning"),
    ):
        assert parse_event(json.loads(json.dumps(event.to_json()))) == event


def test_tail_reads_only_complete_lines(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    line = json.dumps(LogEvent(message="one").to_json())
    events.write_text(line + "\n" + line[:10])
    tail = EventTail(tmp_path)
    assert [e.message for e in tail.poll()] == ["one"]
    with open(events, "a") as handle:
        handle.write(line[10:] + "\n")
    assert [e.message for e in tail.poll()] == ["one"]
    assert tail.poll() == []


def test_disabled_writer_writes_nothing(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path / "runs", "rank1", {}, enabled=False)
    writer.start()
    writer.status("running")
    writer.write_results({"x": 1})
    assert not (tmp_path / "runs").exists()


CHILD = """
import sys, time
from pathlib import Path
from diffusionscope.core.runs import RunWriter
writer = RunWriter.create(Path(sys.argv[1]), "victim", {"modes": ["schedule"], "model": "m"})
writer.start()
writer.status("running")
for i in range(100000):
    writer.progress("work", i, 100000)
    time.sleep(0.01)
"""


def test_killed_run_is_listed_as_interrupted(runs_root: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(runs_root)])
    try:
        _wait_for(
            lambda: (
                any(runs_root.glob("*/events.jsonl"))
                and len(read_events(next(runs_root.glob("*")))) > 3
            )
        )
        run_dir = next(runs_root.glob("*"))
        assert run_state(run_dir) == "running"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert run_state(run_dir) == "interrupted"
    [info] = list_runs(runs_root)
    assert info.state == "interrupted" and info.path == run_dir
    RunWriter.reopen(run_dir).close()  # the kernel released the killed process's lock


def test_reopen_refuses_a_live_run(runs_root: Path) -> None:
    writer = RunWriter.create(runs_root, "live", {})
    writer.start()
    writer.status("running")
    from diffusionscope.core.errors import InputError

    with pytest.raises(InputError, match="in use by another process"):
        RunWriter.reopen(writer.path)
    writer.close()
    RunWriter.reopen(writer.path).close()  # the lock went with the writer


# --------------------------------------------------------------------------------------------
# Names, locks, torn lines and leftovers
# --------------------------------------------------------------------------------------------


def test_runs_with_one_name_in_one_second_get_their_own_directories(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from diffusionscope.core import runs

    monkeypatch.setattr(runs, "new_run_id", lambda name: f"20250101-000000-{name}")
    created: list[Path] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            writer = RunWriter.create(runs_root, "same", {"modes": ["schedule"]})
            created.append(writer.path)
            writer.close()
        except BaseException as error:  # noqa: BLE001 -- reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in created) == sorted(
        ["20250101-000000-same"] + [f"20250101-000000-same-{i}" for i in range(2, 9)]
    )
    assert all(json.loads((p / "config.json").read_text()) for p in created)


def test_the_lock_is_held_while_the_writer_lives(runs_root: Path) -> None:
    from diffusionscope.core.runs import lock_held

    writer = RunWriter.create(runs_root, "locked", {})
    assert lock_held(writer.path) is True
    from diffusionscope.core.errors import InputError

    with pytest.raises(InputError, match="in use by another process"):
        RunWriter.reopen(writer.path)
    writer.close()
    assert lock_held(writer.path) is False
    reopened = RunWriter.reopen(writer.path)
    assert lock_held(writer.path) is True
    reopened.close()


def _finished_run(runs_root: Path) -> Path:
    writer = RunWriter.create(runs_root, "done", {"modes": ["schedule"], "model": "m"})
    writer.start()
    writer.status("running")
    writer.metric("terminal_snr", 0.5, mode="schedule")
    writer.write_results({"schedule": {"terminal_snr": 0.5}})
    writer.status("finished")
    writer.close()
    return writer.path


def test_results_json_means_finished_even_with_a_torn_last_line(runs_root: Path) -> None:
    run_dir = _finished_run(runs_root)
    events = run_dir / "events.jsonl"
    data = events.read_bytes()
    events.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 20])  # cut the final status
    assert [e.type for e in read_events(run_dir)][-1] == "metric"
    assert run_state(run_dir) == "finished"
    assert run_state(run_dir, []) == "finished"  # the workbench's liveness probe
    assert run_info(run_dir).state == "finished"
    assert [info.state for info in list_runs(runs_root)] == ["finished"]


def test_a_resumed_run_ends_a_torn_line_before_appending(runs_root: Path) -> None:
    writer = RunWriter.create(runs_root, "torn", {"modes": ["schedule"], "model": "m"})
    writer.start()
    writer.status("running")
    writer.close()
    with open(writer.path / "events.jsonl", "a") as handle:
        handle.write('{"type": "log", "mess')  # a kill in the middle of a line
    assert run_state(writer.path) == "interrupted"
    reopened = RunWriter.reopen(writer.path)
    reopened.start()
    reopened.log("after the kill")
    reopened.close()
    messages = [e.message for e in read_events(writer.path) if isinstance(e, LogEvent)]
    assert messages == ["after the kill"]


def _leave_temp_files(run_dir: Path) -> list[Path]:
    leftovers = [
        run_dir / ".results.k3j_x9a1.tmp.json",
        run_dir / "checkpoint" / ".state.ab12cd34.tmp.pt",
    ]
    for path in leftovers:
        path.write_bytes(b"half")
    (run_dir / "artifacts" / "keep.tmp.csv").write_text("a user's file, not ours\n")
    return leftovers


def test_resume_removes_a_killed_writers_temp_files(runs_root: Path) -> None:
    writer = RunWriter.create(runs_root, "killed", {"modes": ["schedule"], "model": "m"})
    writer.close()
    leftovers = _leave_temp_files(writer.path)
    RunWriter.reopen(writer.path).close()
    assert not any(path.exists() for path in leftovers)
    assert (writer.path / "artifacts" / "keep.tmp.csv").exists()
    assert (writer.path / "config.json").exists()


def test_listing_removes_temp_files_of_dead_runs_only(runs_root: Path) -> None:
    dead = RunWriter.create(runs_root, "dead", {"modes": ["schedule"], "model": "m"})
    dead.start()
    dead.status("running")
    dead.close()
    live = RunWriter.create(runs_root, "live", {"modes": ["schedule"], "model": "m"})
    live.start()
    live.status("running")
    dead_leftovers, live_temps = _leave_temp_files(dead.path), _leave_temp_files(live.path)
    list_runs(runs_root)
    assert all(path.exists() for path in dead_leftovers), "a plain listing writes nothing"
    states = {
        info.name.split("-")[-1]: info.state for info in list_runs(runs_root, clean_temp_files=True)
    }
    live.close()
    assert states == {"dead": "interrupted", "live": "running"}
    assert not any(path.exists() for path in dead_leftovers)
    assert all(path.exists() for path in live_temps), "a live run's files are its own"


def test_process_identity_tells_a_reused_pid_apart(tmp_path: Path) -> None:
    from diffusionscope.core.runs import _same_process_alive, process_identity

    identity = process_identity()
    assert _same_process_alive(identity)
    assert not _same_process_alive({**identity, "started": identity["started"] - 3600})
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    assert not _same_process_alive({"pid": child.pid, "host": identity["host"]})
