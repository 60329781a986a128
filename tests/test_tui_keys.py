"""Every key the help screen lists is pressed here, in its context, and its effect checked.

The cases are generated from the same binding tables the help screen shows, so a new binding
without an exercise below fails this test instead of going unnoticed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    async_test,
    finished_attention_run,
    finished_schedule_run,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    live_metrics_run,
    make_app,
    wait_for,
)

from diffusionscope.core.atomic import atomic_write_json
from diffusionscope.tui.screens.help import binding_sections, key_label

pytestmark = pytest.mark.usefixtures("isolated_config")

Exercise = Callable[..., Awaitable[None]]
EXERCISES: dict[tuple[str, str], Exercise] = {}


def exercises(where: str, *keys: str) -> Callable[[Exercise], Exercise]:
    def register(function: Exercise) -> Exercise:
        for key in keys:
            EXERCISES[(where, key)] = function
        return function

    return register


def screen_name(app) -> str:
    return type(app.screen).__name__


# ---- everywhere ---------------------------------------------------------------------------


@exercises("everywhere", "f1")
async def _help(app, pilot, root, key) -> None:
    await pilot.press(key)
    assert screen_name(app) == "HelpScreen"
    table = app.screen.query_one("#help-table")
    listed = {
        (str(table.get_row_at(i)[0]), str(table.get_row_at(i)[1])) for i in range(table.row_count)
    }
    assert ("everywhere", "f1") in listed and ("run view", "w") in listed


@exercises("everywhere", "f2")
@exercises("main screen", "f2")
async def _runs(app, pilot, root, key) -> None:
    await pilot.press(key)
    assert screen_name(app) == "RunsScreen"


@exercises("everywhere", "f3")
async def _compare(app, pilot, root, key) -> None:
    await pilot.press(key)  # from the main screen: the runs screen, to pick runs
    assert screen_name(app) == "RunsScreen"


@exercises("everywhere", "ctrl+t")
async def _theme(app, pilot, root, key) -> None:
    before = app.theme
    await pilot.press(key)
    assert app.theme != before
    from diffusionscope.tui.settings import load_settings

    assert load_settings()["theme"] == app.theme  # the next start opens with it


@exercises("everywhere", "ctrl+q")
@exercises("main screen", "ctrl+q")
async def _quit(app, pilot, root, key) -> None:
    await pilot.press(key)  # nothing running: quits at once
    await wait_for(pilot, lambda: not app.is_running)


# ---- main screen --------------------------------------------------------------------------


@exercises("main screen", "ctrl+l")
async def _load(app, pilot, root, key) -> None:
    app.screen.query_one("#model-source").value = str(root / "no-such-model")
    await pilot.press(key)
    summary = app.screen.query_one("#model-summary")
    await wait_for(pilot, lambda: "no such folder" in str(summary.render()))


@exercises("main screen", "ctrl+o")
async def _browse(app, pilot, root, key) -> None:
    await pilot.press(key)
    assert screen_name(app) == "FilePickerScreen"


@exercises("main screen", "ctrl+s")
async def _start(app, pilot, root, key) -> None:
    await pilot.press(key)  # no mode selected: refused inline, nothing launched
    assert "select at least one mode" in str(app.screen.query_one("#form-error").render())
    assert app.launched == []


@exercises("main screen", "f4")
async def _live(app, pilot, root, key) -> None:
    await pilot.press(key)  # nothing started yet: a hint, no screen
    assert screen_name(app) == "MainScreen"
    writer = live_metrics_run(root)
    try:
        from diffusionscope.tui.launcher import LaunchedRun

        app.launched.append(
            LaunchedRun(
                process=_Finished(),
                token="live",
                runs_root=root,
                log_path=root / "log",
                run_dir=writer.path,
            )
        )
        await pilot.press(key)
        assert screen_name(app) == "RunScreen" and app.screen.run_dir == writer.path
    finally:
        writer.close()


class _Finished:
    """Stands in for a Popen whose process has ended."""

    pid = 0

    def poll(self) -> int:
        return 0


# ---- run view -----------------------------------------------------------------------------


async def _open(app, pilot, run_dir: Path):
    app.open_run(run_dir)
    screen = app.screen
    await wait_for(pilot, lambda: screen.model is not None and screen.updates_drawn > 0)
    return screen


@exercises("run view", "escape")
async def _run_back(app, pilot, root, key) -> None:
    await _open(app, pilot, finished_schedule_run(root))
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"


@exercises("run view", "x")
async def _run_stop(app, pilot, root, key) -> None:
    await _open(app, pilot, finished_schedule_run(root))
    await pilot.press(key)  # a finished run: nothing to stop, no dialog
    assert screen_name(app) == "RunScreen"
    writer = live_metrics_run(root)
    try:
        await _open(app, pilot, writer.path)
        await pilot.press(key)  # a running one: asks first (and "n" keeps it)
        assert screen_name(app) == "ConfirmScreen"
        await pilot.press("n")
        assert screen_name(app) == "RunScreen"
    finally:
        writer.close()


@exercises("run view", "1", "2", "3", "4", "5")
async def _run_tabs(app, pilot, root, key) -> None:
    screen = await _open(app, pilot, finished_schedule_run(root))
    tabs = screen.query_one("#run-tabs")
    await pilot.press("4" if key == "1" else "1")
    await pilot.press(key)
    names = {"1": "live", "2": "charts", "3": "images", "4": "files", "5": "gpu"}
    assert tabs.active == names[key]


@exercises("run view", "6")
async def _run_sweep_tab(app, pilot, root, key) -> None:
    from test_tui_fakes import live_sweep_run

    writer = live_sweep_run(root)
    screen = await _open(app, pilot, writer.path)
    await wait_for(pilot, lambda: screen.sweep_shown)
    await pilot.press("1", key)
    assert screen.query_one("#run-tabs").active == "sweep"
    writer.close()


@exercises("run view", "m")
async def _run_log_maximised(app, pilot, root, key) -> None:
    screen = await _open(app, pilot, finished_schedule_run(root))
    await pilot.press(key)
    assert screen.maximized is screen.query_one("#run-log")
    await pilot.press(key)
    assert screen.maximized is None


@exercises("run view", "g")
async def _run_next_chart(app, pilot, root, key) -> None:
    screen = await _open(app, pilot, finished_schedule_run(root))
    await wait_for(pilot, lambda: screen.results is not None)
    chart = screen.query_one("#result-chart")
    await pilot.press("2")
    first = dict(chart.curves)
    await pilot.press(key)
    assert screen.chart_index == 1 and chart.curves != first


@exercises("run view", "]", "[")
async def _run_images(app, pilot, root, key) -> None:
    screen = await _open(app, pilot, finished_attention_run(root))
    browser = screen.query_one("#image-browser")
    await wait_for(pilot, lambda: len(browser.entries) == 4)
    await pilot.press(key)
    assert browser.index == (1 if key == "right_square_bracket" else 3)
    assert screen.query_one("#run-tabs").active == "images"


@exercises("run view", "w", "t", "l")
async def _run_axes(app, pilot, root, key) -> None:
    """Each key steps one axis and holds the others; ``l`` exists where layers do."""
    axis = {"w": "word", "t": "timestep", "l": "layer"}[key]
    plain = finished_attention_run(root)
    if key == "l":  # overlays without a layer axis: the key says so rather than do nothing
        screen = await _open(app, pilot, plain)
        await wait_for(pilot, lambda: len(screen.query_one("#image-browser").entries) == 4)
        await pilot.press(key)
        await pilot.pause()
        assert any("do not vary by layer" in n.message for n in app._notifications)
        await pilot.press("escape")
    run_dir = finished_attention_run(root, "20240101-000300-attention-layers", ("down2", "up1"))
    screen = await _open(app, pilot, run_dir)
    browser = screen.query_one("#image-browser")
    await wait_for(pilot, lambda: len(browser.entries) == 8)
    before = dict(browser.current.axes)
    await pilot.press(key)
    after = browser.current.axes
    assert after[axis] != before[axis]
    assert {k: v for k, v in after.items() if k != axis} == {
        k: v for k, v in before.items() if k != axis
    }


# ---- runs screen --------------------------------------------------------------------------


async def _runs_screen(app, pilot, count: int):
    await pilot.press("f2")
    screen = app.screen
    await wait_for(pilot, lambda: len(screen.runs) == count)
    return screen


@exercises("runs screen", "escape")
async def _runs_back(app, pilot, root, key) -> None:
    await _runs_screen(app, pilot, 0)
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"


@exercises("runs screen", "enter")
async def _runs_open(app, pilot, root, key) -> None:
    run_dir = finished_schedule_run(root)
    await _runs_screen(app, pilot, 1)
    await pilot.press(key)
    assert screen_name(app) == "RunScreen" and app.screen.run_dir == run_dir


@exercises("runs screen", "e")
async def _runs_edit(app, pilot, root, key) -> None:
    finished_schedule_run(root)
    await _runs_screen(app, pilot, 1)
    await pilot.press(key)
    await wait_for(pilot, lambda: screen_name(app) == "MainScreen")
    await wait_for(pilot, lambda: app.screen.mode_pane.selected == ["schedule"])


@exercises("runs screen", "ctrl+u")
async def _runs_clear_filter(app, pilot, root, key) -> None:
    finished_schedule_run(root)
    screen = await _runs_screen(app, pilot, 1)
    await pilot.press("slash", *"zzz")
    assert screen.query_text == "zzz"
    await pilot.press(key)
    assert screen.query_text == "" and screen.query_one("#runs-filter").value == ""


@exercises("runs screen", "r")
async def _runs_resume(app, pilot, root, key) -> None:
    finished_schedule_run(root)
    await _runs_screen(app, pilot, 1)
    await pilot.press(key)  # finished: back to the form, filled to run it again
    await wait_for(pilot, lambda: screen_name(app) == "MainScreen")
    assert app.launched == []
    await pilot.press("f2")
    writer = live_metrics_run(root, "20240101-000300-metrics-cut")
    writer.close()
    # A dead pid on this host: the process that ran it is gone, so it reads as interrupted.
    atomic_write_json(writer.path / "process.json", {"pid": 999999999, "host": _host()})
    await pilot.press("f5")
    screen = app.screen
    await wait_for(pilot, lambda: len(screen.runs) == 2)
    assert screen.runs[writer.path.name].state == "interrupted"
    await pilot.press("up", key)  # newest first: the interrupted run is the top row
    try:
        assert len(app.launched) == 1 and app.launched[0].run_dir == writer.path
        assert "--resume" in app.launched[0].argv and screen_name(app) == "RunScreen"
    finally:
        for launched in app.launched:
            kill_group(launched.process)


def _host() -> str:
    import socket

    return socket.gethostname()


@exercises("runs screen", "d")
async def _runs_delete(app, pilot, root, key) -> None:
    run_dir = finished_schedule_run(root)
    await _runs_screen(app, pilot, 1)
    await pilot.press(key, "y")
    await wait_for(pilot, lambda: not run_dir.exists())


@exercises("runs screen", "space", "c")
async def _runs_mark_compare(app, pilot, root, key) -> None:
    finished_schedule_run(root, "20240101-000100-a")
    finished_schedule_run(root, "20240101-000200-b")
    screen = await _runs_screen(app, pilot, 2)
    await pilot.press("space", "space")
    assert len(screen.marked) == 2
    await pilot.press("c")
    assert screen_name(app) == "CompareScreen"


def _table_order(screen) -> list[str]:
    return [str(key.value) for key in screen.query_one("#runs-table").rows]


@exercises("runs screen", "s")
async def _runs_sort(app, pilot, root, key) -> None:
    done = finished_schedule_run(root, "20240101-000100-schedule-done")
    live = live_metrics_run(root, "20240101-000200-metrics-live")
    try:
        screen = await _runs_screen(app, pilot, 2)
        assert _table_order(screen) == [live.path.name, done.name]  # newest first
        await pilot.press(key)  # by state: finished before running
        assert screen.sort_key == "state"
        assert _table_order(screen) == [done.name, live.path.name]
        assert "sorted by state" in str(screen.query_one("#runs-title").render())
    finally:
        live.close()


@exercises("runs screen", "/")
async def _runs_filter(app, pilot, root, key) -> None:
    finished_schedule_run(root, "20240101-000100-schedule-done")
    live = live_metrics_run(root, "20240101-000200-metrics-live")
    try:
        screen = await _runs_screen(app, pilot, 2)
        await pilot.press(key)
        assert screen.query_one("#runs-filter").has_focus
        await pilot.press(*"state:run")
        assert _table_order(screen) == [live.path.name]
        assert "1 of 2 runs" in str(screen.query_one("#runs-title").render())
        await pilot.press("enter")  # back to the table, filter kept
        assert screen.query_one("#runs-table").has_focus and len(_table_order(screen)) == 1
    finally:
        live.close()


@exercises("runs screen", "f5")
async def _runs_refresh(app, pilot, root, key) -> None:
    screen = await _runs_screen(app, pilot, 0)
    finished_schedule_run(root)
    await pilot.press(key)
    await wait_for(pilot, lambda: len(screen.runs) == 1)


# ---- compare screen -----------------------------------------------------------------------


async def _compare_screen(app, pilot, root):
    from diffusionscope.tui.screens.compare import CompareScreen

    runs = [finished_schedule_run(root, f"20240101-00010{i}-s") for i in range(2)]
    app.push_screen(CompareScreen(runs))
    await pilot.pause()
    return app.screen


@exercises("compare screen", "escape")
async def _compare_back(app, pilot, root, key) -> None:
    await _compare_screen(app, pilot, root)
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"


@exercises("compare screen", "g")
async def _compare_next(app, pilot, root, key) -> None:
    screen = await _compare_screen(app, pilot, root)
    await pilot.press(key)
    assert screen.chart_index == 1


# ---- dialogs ------------------------------------------------------------------------------


async def _picker(app, pilot, root):
    folder = root / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (root / "models" / "one.safetensors").write_bytes(b"")
    app.screen.query_one("#model-source").value = str(folder)
    await pilot.press("ctrl+o")
    tree = app.screen.query_one("#picker-tree")
    await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.children)
    return tree


@exercises("file picker", "escape")
async def _picker_cancel(app, pilot, root, key) -> None:
    await _picker(app, pilot, root)
    before = app.screen_stack[0].query_one("#model-source").value
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"
    assert app.screen.query_one("#model-source").value == before


@exercises("file picker", "ctrl+u")
async def _picker_parent(app, pilot, root, key) -> None:
    tree = await _picker(app, pilot, root)
    before = Path(tree.path).resolve()
    await pilot.press(key)
    assert Path(tree.path).resolve() == before.parent


@exercises("file picker", "f")
async def _picker_folder(app, pilot, root, key) -> None:
    await _picker(app, pilot, root)
    await pilot.press("down")  # the "tiny" folder (folders sort first)
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"
    assert app.screen.query_one("#model-source").value == str(root / "models" / "tiny")


async def _confirm(app, pilot):
    from diffusionscope.tui.screens.dialogs import ConfirmScreen

    answers: list[bool | None] = []
    app.push_screen(ConfirmScreen("sure?"), answers.append)
    await pilot.pause()
    return answers


@exercises("confirm dialog", "y", "n", "escape")
async def _confirm_keys(app, pilot, root, key) -> None:
    answers = await _confirm(app, pilot)
    await pilot.press(key)
    assert answers == [key == "y"]


@exercises("quit dialog", "enter", "s", "escape")
async def _quit_keys(app, pilot, root, key) -> None:
    from diffusionscope.tui.screens.dialogs import QuitScreen

    answers: list[str | None] = []
    app.push_screen(QuitScreen(["some-run"]), answers.append)
    await pilot.pause()
    await pilot.press(key)
    assert answers == [{"enter": "leave", "s": "stop", "escape": None}[key]]


@exercises("help", "escape", "f1")
async def _help_close(app, pilot, root, key) -> None:
    await pilot.press("f1")
    assert screen_name(app) == "HelpScreen"
    page = app.screen.query_one(".help")
    await pilot.press("pagedown")  # at once: no Tab into the table first
    assert page.scroll_y > 0
    await pilot.press(key)
    assert screen_name(app) == "MainScreen"


# ---- the test -----------------------------------------------------------------------------

LISTED = [(where, key_label(b)) for where, bindings in binding_sections() for b in bindings]


def test_help_lists_keys_once_per_place() -> None:
    assert len(LISTED) == len(set(LISTED))


@pytest.mark.parametrize(("where", "key"), LISTED, ids=[f"{w}:{k}" for w, k in LISTED])
@async_test
async def test_every_listed_key(where: str, key: str, runs_root: Path) -> None:
    exercise = EXERCISES.get((where, key))
    assert exercise is not None, f"no test exercises {key!r} ({where})"
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await exercise(app, pilot, runs_root, _press_name(key))


def _press_name(label: str) -> str:
    return {"]": "right_square_bracket", "[": "left_square_bracket", "/": "slash"}.get(label, label)
