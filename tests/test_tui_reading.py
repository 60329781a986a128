"""Reading at 80×24: ids whole, numbers at their chart's scale, a small-N note, the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_tui_fakes import (
    async_test,
    finished_metrics_run,
    isolated_config,  # noqa: F401 -- fixture
    live_metrics_run,
    make_app,
    wait_for,
)

from diffusionscope.tui.curves import at_display_scale

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_curves_are_drawn_at_the_tables_scale() -> None:
    scaled, names = at_display_scale({"fid": [(8.0, 90.0)], "kid": [(8.0, 0.05)]})
    assert names == {"fid": "fid", "kid": "kid ×10³"}
    assert scaled == {"fid": [(8.0, 90.0)], "kid ×10³": [(8.0, 50.0)]}


@async_test
async def test_live_kid_axis_and_table_agree(runs_root: Path) -> None:
    writer = live_metrics_run(runs_root)
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(writer.path)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.updates_drawn > 0)
        chart = screen.query_one("#live-chart")
        await wait_for(pilot, lambda: "kid ×10³" in chart.curves)
        await pilot.pause()
        assert chart.curves["kid ×10³"][-1] == (32.0, pytest.approx(0.05 * 8 / 32 * 1e3))
    writer.close()


def test_cli_runs_never_cuts_an_id(runs_root: Path, capsys, monkeypatch) -> None:
    from diffusionscope.core.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    long_name = "20261206-134719-metrics-guidance-sweep-a1b2c3d4"
    finished_metrics_run(runs_root, long_name)
    assert main(["runs", "--runs-root", str(runs_root)]) == 0
    out = capsys.readouterr().out
    assert long_name in out and max(len(line) for line in out.splitlines()) <= 80


@async_test
async def test_small_n_is_said_and_the_log_maximises_and_follows(runs_root: Path) -> None:
    run = finished_metrics_run(runs_root)
    results = json.loads((run / "results.json").read_text())
    results["metrics"].update({"n_generated": 64, "features": {"name": "inception", "dim": 2048}})
    (run / "results.json").write_text(json.dumps(results))
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(run)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.results_drawn)
        await pilot.pause()
        note = screen.query_one("#small-n")
        await wait_for(pilot, lambda: note.display)
        assert "64 samples < 2048 feature dimensions" in str(note.render())
        log = screen.query_one("#run-log")
        await pilot.press("m")
        await pilot.pause()
        assert screen.maximized is log and log.region.height > 15 and log.auto_scroll
        await pilot.press("escape")  # back to the view, not off the screen
        assert screen.maximized is None and app.screen is screen


def test_w_from_a_words_map_over_the_selected_steps_goes_to_the_next_words() -> None:
    """The map over the selected steps has no timestep in its name: ``w`` keeps that kind."""
    from types import SimpleNamespace

    from diffusionscope.tui.widgets.images import ImageBrowser, image_axes

    names = [
        "attention_word-red.png",
        "attention_word-red_t-010.png",
        "attention_word-seven.png",
        "attention_word-seven_t-010.png",
    ]
    browser = ImageBrowser.__new__(ImageBrowser)
    browser.entries = [SimpleNamespace(axes=image_axes(n), path=n) for n in names]
    browser.index = 0
    browser._show = lambda: None
    assert browser.step_axis("word") and browser.index == 2
    browser.index = 1
    assert browser.step_axis("word") and browser.index == 3


def test_schedule_lines_are_named_by_what_tells_them_apart() -> None:
    from diffusionscope.tui.curves import schedule_curves

    sampler = [
        {"timestep_spacing": spacing, "steps": 10, "timesteps": [1, 2], "log_snr": [0.5, 0.1]}
        for spacing in ("leading", "trailing")
    ]
    curves = schedule_curves({"schedule": {"sampler": sampler}})
    assert list(curves["logsnr"]) == ["sampler leading", "sampler trailing"]
