"""The runs screen and run processes: attach, quit-while-running, stop, delete, compare."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    async_test,
    finished_schedule_run,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    make_app,
    start_fake_run,
    wait_for,
    wait_for_run_dir,
)

from diffusionscope.core.runs import run_state
from diffusionscope.tui.launcher import LaunchedRun, _alive

pytestmark = pytest.mark.usefixtures("isolated_config")


def _runs_table_rows(app) -> dict[str, dict[str, str]]:
    """``{run name: {column key: cell text}}`` of the runs table as shown."""
    table = app.screen.query_one("#runs-table")
    columns = [str(column.value) for column in table.columns]
    return {
        str(key.value): dict(
            zip(columns, (str(c).strip() for c in table.get_row(key)), strict=True)
        )
        for key in table.rows
    }


@async_test
async def test_runs_screen_attaches_to_a_run_of_another_process(
    runs_root: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    child = start_fake_run(runs_root, "fid-abc123", gate)
    try:
        run_dir = wait_for_run_dir(runs_root, "abc123")
        app = make_app(runs_root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            await wait_for(pilot, lambda: run_dir.name in _runs_table_rows(app))
            assert _runs_table_rows(app)[run_dir.name]["state"] == "running"
            await pilot.press("enter")
            screen = app.screen
            assert type(screen).__name__ == "RunScreen" and screen.run_dir == run_dir
            await wait_for(
                pilot,
                lambda: screen.model is not None and len(screen.model.series.get("fid", [])) == 2,
            )
            assert screen.model.state == "running"
            gate.touch()  # let the run finish while we watch
            await wait_for(pilot, lambda: screen.model.state == "finished")
            await wait_for(pilot, lambda: screen.results is not None)
            await pilot.pause()
            assert [x for x, _ in screen.model.series["fid"]] == [8, 16, 24, 32]
            assert screen.query_one("#live-chart").curves["fid"][-1] == (32, 25.0)
            table = screen.query_one("#metrics-table")
            assert "metrics.fid" in [str(k.value) for k in table.rows]
            await pilot.press("escape")
            await wait_for(
                pilot,
                lambda: _runs_table_rows(app).get(run_dir.name, {}).get("state") == "finished",
            )
        child.wait(timeout=60)
        assert child.returncode == 0
    finally:
        kill_group(child)


def _launched(app, runs_root: Path, tmp_path: Path, token: str) -> LaunchedRun:
    """A child the app itself started (as Start does), registered as one of its runs."""
    from test_tui_fakes import fake_run_argv

    from diffusionscope.tui.launcher import _spawn

    argv = fake_run_argv(runs_root, f"fid-{token}", tmp_path / "go")
    launched = _spawn(argv, runs_root, token)
    app.launched.append(launched)
    return launched


@async_test
async def test_quit_during_a_run_leaves_it_running_and_it_finishes(
    runs_root: Path, tmp_path: Path
) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        launched = _launched(app, runs_root, tmp_path, "leave1")
        try:
            run_dir = wait_for_run_dir(runs_root, "leave1")
            await pilot.press("ctrl+q")
            assert type(app.screen).__name__ == "QuitScreen"
            await pilot.press("enter")  # the default: leave it running
            await wait_for(pilot, lambda: not app.is_running)
        except BaseException:
            kill_group(launched.process)
            raise
    try:
        assert _alive(launched.pid), "the run died with the app"
        assert run_state(run_dir) == "running"
        (tmp_path / "go").touch()
        launched.process.wait(timeout=60)
        assert run_state(run_dir) == "finished"
    finally:
        kill_group(launched.process)


@async_test
async def test_quit_and_stop_interrupts_the_run(runs_root: Path, tmp_path: Path) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        launched = _launched(app, runs_root, tmp_path, "stop01")
        try:
            run_dir = wait_for_run_dir(runs_root, "stop01")
            await pilot.press("ctrl+q")
            await pilot.press("escape")  # cancel: still here
            assert app.is_running and type(app.screen).__name__ == "MainScreen"
            await pilot.press("ctrl+q", "s")
            await wait_for(pilot, lambda: not app.is_running)
        except BaseException:
            kill_group(launched.process)
            raise
    try:
        assert not _alive(launched.pid)
        assert run_state(run_dir) == "interrupted"
    finally:
        kill_group(launched.process)


@async_test
async def test_stop_from_the_run_view(runs_root: Path, tmp_path: Path) -> None:
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        launched = _launched(app, runs_root, tmp_path, "stopx1")
        try:
            run_dir = wait_for_run_dir(runs_root, "stopx1")
            app.open_run(run_dir)
            screen = app.screen
            await wait_for(pilot, lambda: screen.model is not None and screen.model.phases)
            await pilot.press("x")
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("n")
            assert _alive(launched.pid)
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: screen.model.state == "interrupted")
            assert not _alive(launched.pid)
        finally:
            kill_group(launched.process)


@async_test
async def test_delete_asks_first(runs_root: Path) -> None:
    run_dir = finished_schedule_run(runs_root)
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: run_dir.name in _runs_table_rows(app))
        await pilot.press("d")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        assert run_dir.is_dir()
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: not run_dir.exists())
        await wait_for(pilot, lambda: run_dir.name not in _runs_table_rows(app))


@async_test
async def test_compare_two_finished_runs(runs_root: Path) -> None:
    first = finished_schedule_run(runs_root, "20240101-000100-schedule-a")
    second = finished_schedule_run(runs_root, "20240101-000200-schedule-b")
    for name in ("results.json", "events.jsonl"):  # B measured another number
        (second / name).write_text((second / name).read_text().replace("0.0047", "0.0123"))
    config = second / "config.json"  # ... on another model, with more steps
    config.write_text(
        json.dumps({**json.loads(config.read_text()), "model": "other/sd-model", "steps": 50})
    )
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: len(_runs_table_rows(app)) == 2)
        await pilot.press("c")  # nothing marked yet: refused with a hint
        assert type(app.screen).__name__ == "RunsScreen"
        await pilot.press("space", "space")
        assert app.screen.marked == [second.name, first.name]
        await pilot.press("f3")
        screen = app.screen
        assert type(screen).__name__ == "CompareScreen"
        table = screen.query_one("#compare-table")
        rows = {
            str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)]
            for i in range(table.row_count)
        }
        # The newer run (B in the list, marked first) is A here: numbers, then B's difference.
        assert rows["terminal SNR"][2:] == ["0.0123", "0.0047", "-0.0076"]
        differs = str(screen.query_one("#compare-differs").render())
        assert (
            "model A other/sd-model · B digits-ldm" in differs
            and "steps A 50 · B default" in differs
        )
        legend = str(screen.query_one("#compare-title").render())
        assert f"A = {second.name}" in legend and f"B = {first.name}" in legend
        chart = screen.query_one("#compare-chart")
        assert {"A:model", "A:cosine", "B:model", "B:cosine"} <= set(chart.curves)
        before = dict(chart.curves)
        await pilot.press("g")
        assert chart.curves != before
        await pilot.press("escape")
        assert type(app.screen).__name__ == "RunsScreen"


def test_children_are_cleaned_up() -> None:
    """No process group started by these tests outlives them (checked via our own children)."""
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_our_stray_child(int(p))]


def _is_our_stray_child(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) == os.getpid() and fields[0] != "Z"
