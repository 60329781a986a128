"""The runs list: re-read only what changed, sort and filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_tui_fakes import (
    T0,
    finished_metrics_run,
    finished_schedule_run,
    live_metrics_run,
)

from diffusionscope.core.events import MetricEvent, StatusEvent
from diffusionscope.core.runs import list_runs
from diffusionscope.tui import run_index
from diffusionscope.tui.run_index import RunIndex, matches, sort_runs


@pytest.fixture
def three_runs(runs_root: Path):
    schedule = finished_schedule_run(runs_root, "20240101-000100-schedule-done")
    metrics = finished_metrics_run(
        runs_root,
        "20240102-000300-metrics-done",
        config={"modes": ["metrics"], "model": "org/sd-model", "num_samples": 64},
    )
    live = live_metrics_run(runs_root, "20240103-000000-metrics-live")
    yield schedule, metrics, live
    live.close()


def test_the_index_lists_what_the_run_directories_say(runs_root: Path, three_runs) -> None:
    listed = RunIndex(runs_root).refresh()
    assert [run.info.name for run in listed] == [info.name for info in list_runs(runs_root)]
    by_name = {run.info.name: run for run in listed}
    schedule, metrics, live = three_runs
    assert by_name[schedule.name].info.state == "finished"
    assert by_name[live.path.name].info.state == "running"  # its process (this one) lives
    done = by_name[metrics.name]
    assert (done.info.model, done.info.modes, done.info.num_samples) == (
        "org/sd-model",
        ["metrics"],
        64,
    )
    assert done.headline == "FID 23.46  FID∞ 19.88  KID×10³ 31.4"
    assert done.info.started == T0


def test_unchanged_runs_are_not_read_again(
    runs_root: Path, three_runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = RunIndex(runs_root)
    index.refresh()
    reads: list[Path] = []
    real_read_json = run_index.read_json
    monkeypatch.setattr(run_index, "read_json", lambda p: reads.append(p) or real_read_json(p))
    opened: list[str] = []
    real_open = open

    def spy_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy_open)
    again = index.refresh()
    assert reads == [] and not [p for p in opened if p.endswith("events.jsonl")]
    assert len(again) == 3

    # A run that grows is read from where the last read stopped, and only it.
    _, metrics, live = three_runs
    before = index._entries[live.path.name].events_offset
    live.emit(MetricEvent(name="fid", value=42.0, mode="metrics", n=32, time=T0 + 40))
    live.emit(StatusEvent(state="failed", message="out of memory", time=T0 + 41))
    grown = {run.info.name: run for run in index.refresh()}
    assert [p for p in opened if p.endswith("events.jsonl")] == [str(live.path / "events.jsonl")]
    entry = index._entries[live.path.name]
    assert entry.events_offset > before
    assert grown[live.path.name].info.state == "failed"
    assert grown[live.path.name].info.message == "out of memory"
    assert grown[live.path.name].info.key_numbers["metrics.fid"] == 42.0

    # A rewritten (shorter) log is read again from its start; a deleted run leaves the list.
    events = metrics / "events.jsonl"
    first_line = events.read_text().splitlines()[0]
    events.write_text(first_line + "\n")
    rewritten = {run.info.name: run for run in index.refresh()}
    assert rewritten[metrics.name].info.message == ""
    assert "metrics.fid" in rewritten[metrics.name].info.key_numbers  # from results.json
    (metrics / "config.json").unlink()
    assert metrics.name not in {run.info.name for run in index.refresh()}


def test_a_torn_last_line_is_read_whole_later(runs_root: Path) -> None:
    run_dir = finished_schedule_run(runs_root)
    events = run_dir / "events.jsonl"
    lines = events.read_text().splitlines(keepends=True)
    events.write_text("".join(lines[:-1]) + lines[-1][:10])  # the final status half written
    index = RunIndex(runs_root)
    (listed,) = index.refresh()
    assert index._entries[run_dir.name].final is None
    with open(events, "a") as handle:
        handle.write(lines[-1][10:])
    (listed,) = index.refresh()
    assert listed.info.state == "finished"


def test_sort_and_filter(runs_root: Path, three_runs) -> None:
    listed = RunIndex(runs_root).refresh()
    schedule, metrics, live = three_runs
    names = lambda runs: [run.info.name for run in runs]  # noqa: E731
    assert names(sort_runs(listed, "date")) == [live.path.name, metrics.name, schedule.name]
    assert names(sort_runs(listed, "date", reverse=True))[0] == schedule.name
    assert names(sort_runs(listed, "state"))[-1] == live.path.name  # finished < running
    assert names(sort_runs(listed, "model"))[0] == live.path.name  # digits-ldm < sd-model
    assert names(sort_runs(listed, "mode"))[-1] == schedule.name
    pick = lambda query: names(r for r in sort_runs(listed, "date") if matches(r, query))  # noqa: E731
    assert pick("state:run") == [live.path.name]
    assert pick("state:fin mode:metrics") == [metrics.name]
    assert pick("model:sd-model") == [metrics.name]
    assert pick("schedule") == [schedule.name]
    assert pick("") == names(sort_runs(listed, "date"))
    assert pick("state:failed") == []


def test_a_config_that_is_not_an_object_is_listed_empty(runs_root: Path) -> None:
    run_dir = finished_schedule_run(runs_root)
    (run_dir / "config.json").write_text(json.dumps(["not", "a", "config"]))
    (listed,) = RunIndex(runs_root).refresh()
    assert listed.info.modes == [] and listed.info.state == "finished"
