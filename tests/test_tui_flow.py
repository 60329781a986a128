"""End to end on the shipped digits model: load, pick schedule + metrics, run, watch, open.

Also: a run started by the headless CLI in another process is listed and attached to, and an
interrupted one is resumed from the runs screen. Every child is killed at teardown.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    async_test,
    cli_run,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    make_app,
    wait_for,
    wait_for_run_dir,
)

from diffusionscope.core.modes import available_modes
from diffusionscope.core.runs import list_runs, run_state

pytestmark = pytest.mark.usefixtures("isolated_config")

FLOW_MODES = ["schedule", "metrics"]
N = 16


def digits_model() -> str:
    from diffusionscope.core.zoo import DIGITS_LDM

    return str(DIGITS_LDM)


def metrics_options() -> dict[str, str]:
    """Small and quick: N samples of a few sampler steps, the digits feature network."""
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    return {
        "num_samples": str(N),
        "steps": "2",
        "batch_size": "8",
        "features": "digits",
        "reference": str(DIGITS_REFERENCE),
    }


def metrics_cli_options() -> list[str]:
    flags = {
        "num_samples": "-n",
        "steps": "--steps",
        "batch_size": "--batch-size",
        "features": "--features",
        "reference": "--reference",
    }
    return [part for key, value in metrics_options().items() for part in (flags[key], value)]


def test_the_flow_modes_are_present() -> None:
    assert set(FLOW_MODES) <= set(available_modes())


@async_test
async def test_load_pick_start_watch_finish_and_open(runs_root: Path) -> None:
    app = make_app(runs_root, model=digits_model())
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: main.loaded_summary is not None)
        assert any("StableDiffusionPipeline" in line for line in main.loaded_summary)

        modes = main.query_one("#modes")
        for mode in FLOW_MODES:
            modes.select(mode)
        await wait_for(pilot, lambda: main.query("#field-num_samples"))
        # A list field (features) takes a value once its parts are composed.
        await wait_for(pilot, lambda: main.query("#opt-features #label"))
        for dest, value in metrics_options().items():
            main.mode_pane.set_value(dest, value)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        screen = app.screen
        launched = app.launched[-1]
        try:
            assert launched.run_dir is None or launched.run_dir.parent == runs_root.resolve()
            await wait_for(pilot, lambda: screen.model is not None and screen.model.phases)
            await wait_for(pilot, lambda: screen.query("PhaseRow"))
            await wait_for(
                pilot, lambda: screen.query_one("#live-chart").curves.get("fid"), timeout=600
            )
            await wait_for(pilot, lambda: screen.model.state != "running", timeout=900)
            assert screen.model.state == "finished", screen.model.message
            await wait_for(pilot, lambda: screen.results is not None)
            await pilot.pause()
            fid_points = screen.query_one("#live-chart").curves["fid"]
            assert fid_points[-1][0] == N and all(y > 0 for _, y in fid_points)
            metric_names = [str(k.value) for k in screen.query_one("#metrics-table").rows]
            assert any("fid" in name for name in metric_names)

            # The result: schedule curves in the charts tab, every figure listed with its path.
            await pilot.press("2")
            titles = [title for title, _, _ in screen.chart_list(screen.model.snapshot())]
            assert any("log-SNR" in title for title in titles)
            assert screen.query_one("#result-chart").curves
            await pilot.press("4")
            files = screen.query_one("#files-table")
            paths = [str(files.get_row_at(i)[1]) for i in range(files.row_count)]
            assert any(p.endswith("results.json") for p in paths)
            assert any(p.endswith(".png") for p in paths)
            for rel in paths:
                assert (runs_root / rel).is_file()
        finally:
            kill_group(launched.process)


@async_test
async def test_runs_screen_attaches_to_a_headless_cli_run(runs_root: Path) -> None:
    """A shell user's ``diffusionscope run`` shows up as running and is followed to the end."""
    child = cli_run(
        runs_root,
        "--modes",
        "metrics",
        "--model",
        digits_model(),
        "--name",
        "shell-ab12cd",
        *metrics_cli_options(),
    )
    try:
        run_dir = wait_for_run_dir(runs_root, "ab12cd")
        os.killpg(child.pid, signal.SIGSTOP)  # hold it mid-run while the TUI attaches
        app = make_app(runs_root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            runs = app.screen
            await wait_for(pilot, lambda: run_dir.name in runs.runs)
            assert runs.runs[run_dir.name].state == "running"
            await pilot.press("enter")
            screen = app.screen
            assert screen.run_dir == run_dir
            await wait_for(pilot, lambda: screen.model is not None and screen.updates_drawn > 0)
            assert screen.model.state == "running"
            os.killpg(child.pid, signal.SIGCONT)
            await wait_for(pilot, lambda: screen.model.state != "running", timeout=900)
            assert screen.model.state == "finished", screen.model.message
            await wait_for(pilot, lambda: screen.query_one("#live-chart").curves.get("fid"))
        assert child.wait(timeout=60) == 0
    finally:
        kill_group(child)


@async_test
async def test_an_interrupted_run_is_resumed_from_the_runs_screen(runs_root: Path) -> None:
    child = cli_run(
        runs_root,
        "--modes",
        "metrics",
        "--model",
        digits_model(),
        "--name",
        "cut-ef34ab",
        *metrics_cli_options(),
    )
    try:
        run_dir = wait_for_run_dir(runs_root, "ef34ab")
        os.killpg(child.pid, signal.SIGTERM)  # the CLI records it as interrupted
        child.wait(timeout=120)
    finally:
        kill_group(child)
    assert run_state(run_dir) == "interrupted"
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: run_dir.name in app.screen.runs)
        await pilot.press("r")
        screen = app.screen
        assert type(screen).__name__ == "RunScreen" and screen.run_dir == run_dir
        launched = app.launched[-1]
        try:
            await wait_for(
                pilot,
                lambda: screen.model is not None and screen.model.state in ("finished", "failed"),
                timeout=900,
            )
            assert screen.model.state == "finished", screen.model.message
        finally:
            kill_group(launched.process)
    assert [info.state for info in list_runs(runs_root)] == ["finished"]
