"""Snapshot tests of every screen of the workbench at 80×24 and at 120×36.

The run screens read fake run directories written with the real RunWriter and fixed event
times; the clock, the time zone, the GPU reading and the working directory are fixed too, so the
pictures depend on the workbench alone. Update with ``pytest --snapshot-update`` and look at the
SVGs under ``tests/__snapshots__/test_tui_snapshots/`` before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_tui_fakes import (
    T0,
    finished_attention_run,
    finished_metrics_run,
    finished_schedule_run,
    isolated_config,  # noqa: F401 -- fixture
    live_metrics_run,
    make_app,
    wait_for,
)

from diffusionscope.core.health import GpuHealth, Health, ProcessHealth

SIZES = {"80x24": (80, 24), "120x36": (120, 36)}
GIB = 1024**3
MODEL = "core/zoo/digits-ldm"


class FixedHealth:
    """One busy GPU and the run's process, the same in every picture."""

    def read(self, pid: int | None) -> Health:
        gpu = GpuHealth(0, "NVIDIA H100 80GB HBM3", 87, 31 * GIB, 80 * GIB, 12 * GIB)
        return Health([gpu], ProcessHealth(4242, 312.0, int(5.25 * GIB), 3), nvml=True)


@pytest.fixture
def fixed_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> Path:
    """A runs root at ``./runs``, UTC, a clock 40 s after the fake runs began, no real GPU;
    settings in a temporary folder (``isolated_config``)."""
    request.getfixturevalue("isolated_config")
    import diffusionscope.core.health as health
    import diffusionscope.tui.screens.run as run_screen
    from diffusionscope.tui.app import WorkbenchApp

    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "core" / "zoo").mkdir(parents=True)
    (tmp_path / MODEL).symlink_to(repo / MODEL)  # the shipped model, as seen from ./
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(run_screen, "wall_clock", lambda: T0 + 40)
    monkeypatch.setattr(health, "gpu_count", lambda nvml=None: 0)
    monkeypatch.setattr(WorkbenchApp, "health_monitor", lambda self: FixedHealth())
    root = tmp_path / "runs"
    root.mkdir()
    yield root
    monkeypatch.delenv("TZ")
    time.tzset()


Scene = Callable[[Path], tuple[object, Callable[..., Awaitable[None]] | None]]
SCENES: dict[str, Scene] = {}


def scene(name: str) -> Callable[[Scene], Scene]:
    def register(function: Scene) -> Scene:
        SCENES[name] = function
        return function

    return register


async def open_run(pilot, run_dir: Path, *, finished: bool = True) -> None:
    pilot.app.open_run(run_dir)
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "updates_drawn", 0) > 0)
    screen = pilot.app.screen
    if finished:
        await wait_for(pilot, lambda: screen.results_drawn)
    else:
        await wait_for(pilot, lambda: screen.health)  # the (fixed) GPU reading is drawn
    await pilot.pause(0.3)


# ---- main screen --------------------------------------------------------------------------


@scene("main")
def _main(root: Path):
    return make_app(root, model=MODEL), None


@scene("main_loaded_form")
def _main_loaded(root: Path):
    async def before(pilot) -> None:
        main = pilot.app.screen
        await wait_for(pilot, lambda: main.query("#modes"))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: main.loaded_summary is not None)
        modes = main.query_one("#modes")
        modes.select("metrics")
        modes.select("schedule")
        await wait_for(pilot, lambda: main.query("#opt-steps"))
        await pilot.pause()
        main.query_one("#opt-steps").focus()
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("main_refusal")
def _main_refusal(root: Path):
    async def before(pilot) -> None:
        main = pilot.app.screen
        await wait_for(pilot, lambda: main.query("#modes"))
        main.query_one("#modes").select("metrics")
        await wait_for(pilot, lambda: main.query("#field-reference"))
        main.show_refusal("reference folder /data/ffhq: no such folder")
        await pilot.pause(0.3)
        pilot.app.clear_notifications()  # the toast would cover the form's foot
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("file_picker")
def _picker(root: Path):
    async def before(pilot) -> None:
        await pilot.press("ctrl+o")
        tree = pilot.app.screen.query_one("#picker-tree")
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.children)
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


# ---- run view -----------------------------------------------------------------------------


@scene("run_starting")
def _starting(root: Path):
    launched = SimpleNamespace(
        pid=4242,
        started=T0 + 28,
        resumed=False,
        from_form=True,
        run_dir=None,
        alive=lambda: True,
        find_run_dir=lambda: None,
        log_tail=lambda n: ["run directory: (not yet)"],
    )

    async def before(pilot) -> None:
        from diffusionscope.tui.screens.run import RunScreen

        pilot.app.push_screen(RunScreen(None, launched))  # type: ignore[arg-type]
        await pilot.pause(1.5)

    return make_app(root, model=MODEL), before


@scene("run_live")
def _live(root: Path):
    writer = live_metrics_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, writer.path, finished=False)
        await wait_for(pilot, lambda: len(pilot.app.screen.query("PhaseRow")) == 2)
        await wait_for(pilot, lambda: pilot.app.screen.health)
        await pilot.pause(0.3)
        writer.close()

    return make_app(root, model=MODEL), before


@scene("run_gpu_history")
def _gpu_history(root: Path):
    """The GPU tab of a live run: two GPUs read through a fake NVML module, 40 readings."""
    writer = live_metrics_run(root)

    async def before(pilot) -> None:
        from test_tui_fakes import two_gpu_nvml

        from diffusionscope.core.health import HealthMonitor
        from diffusionscope.tui.widgets.gpu import GpuPane

        await open_run(pilot, writer.path, finished=False)
        screen = pilot.app.screen
        screen.workers.cancel_group(screen, "health")  # the readings below are the only ones
        await pilot.pause(0.3)
        pane = screen.query_one(GpuPane)
        pane.traces.clear()
        monitor = HealthMonitor(two_gpu_nvml())
        for _ in range(40):
            pane.record(monitor.read(None))
        await pilot.press("5")
        await pilot.pause(0.3)
        writer.close()

    return make_app(root, model=MODEL), before


@scene("run_sweep_live")
def _sweep_live(root: Path):
    """A guidance-scale campaign half way: two points done, one running, one to come."""
    from test_tui_fakes import live_sweep_run

    writer = live_sweep_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, writer.path, finished=False)
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.sweep_shown)
        await pilot.pause(0.3)
        writer.close()

    return make_app(root, model=MODEL), before


@scene("run_finished_metrics")
def _finished(root: Path):
    run_dir = finished_metrics_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, run_dir)

    return make_app(root, model=MODEL), before


@scene("run_schedule_chart")
def _schedule(root: Path):
    run_dir = finished_schedule_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, run_dir)
        await pilot.press("2", "g")
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("run_attention_images")
def _attention(root: Path):
    run_dir = finished_attention_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, run_dir)
        await pilot.press("3", "w")
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("run_files")
def _files(root: Path):
    run_dir = finished_metrics_run(root)

    async def before(pilot) -> None:
        await open_run(pilot, run_dir)
        await pilot.press("4")
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


# ---- runs, compare, dialogs ---------------------------------------------------------------


def three_runs(root: Path):
    finished_schedule_run(root, "20240101-000100-schedule-done")
    finished_metrics_run(root, "20240102-000300-metrics-a1b2c3d4")
    finished_metrics_run(
        root,
        "20240102-000400-metrics-e5f6a7b8",
        config={
            "modes": ["metrics"],
            "model": "org/sd-model",
            "num_samples": 64,
            "steps": 50,
            "seed": 1,
        },
    )
    return live_metrics_run(root, "20240103-000000-metrics-live")


@scene("runs")
def _runs(root: Path):
    live = three_runs(root)

    async def before(pilot) -> None:
        await pilot.press("f2")
        await wait_for(pilot, lambda: len(pilot.app.screen.runs) == 4)
        await pilot.pause(0.3)
        live.close()

    return make_app(root, model=MODEL), before


@scene("compare")
def _compare(root: Path):
    three_runs(root).close()

    async def before(pilot) -> None:
        from diffusionscope.tui.screens.compare import CompareScreen

        pilot.app.push_screen(
            CompareScreen(
                [
                    root / "20240102-000400-metrics-e5f6a7b8",
                    root / "20240102-000300-metrics-a1b2c3d4",
                ]
            )
        )
        await pilot.pause(0.5)

    return make_app(root, model=MODEL), before


@scene("help")
def _help(root: Path):
    async def before(pilot) -> None:
        await pilot.press("f1")
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("confirm_delete")
def _confirm(root: Path):
    finished_schedule_run(root)

    async def before(pilot) -> None:
        await pilot.press("f2")
        await wait_for(pilot, lambda: len(pilot.app.screen.runs) == 1)
        await pilot.press("d")
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@scene("quit_running")
def _quit(root: Path):
    async def before(pilot) -> None:
        from diffusionscope.tui.screens.dialogs import QuitScreen

        pilot.app.push_screen(QuitScreen(["20240103-000000-metrics-live"]))
        await pilot.pause(0.3)

    return make_app(root, model=MODEL), before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SCENES)
def test_screen(snap_compare, fixed_world: Path, name: str, size: str) -> None:
    app, before = SCENES[name](fixed_world)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=before)
