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


def _wait_for(condition, timeout: float = 60.0) -> None:
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


def test_reopen_refuses_a_live_run(runs_root: Path) -> None:
    writer = RunWriter.create(runs_root, "live", {})
    writer.start()
    writer.status("running")
    from diffusionscope.core.errors import InputError

    with pytest.raises(InputError, match="in use by another process"):
        RunWriter.reopen(writer.path)
    writer.close()
    RunWriter.reopen(writer.path).close()  # the lock went with the writer
