"""Snapshot tests of the workbench at 120x40: main screen, live run, schedule chart, attention.

The run screens read fake run directories written with the real RunWriter and fixed event
times, so the pictures depend on the TUI alone. Update with ``pytest --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    finished_attention_run,
    finished_schedule_run,
    isolated_config,  # noqa: F401 -- fixture
    live_metrics_run,
    make_app,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_main_screen(snap_compare, runs_root: Path) -> None:
    """Model pane with the digits model preselected, the mode list and an empty form."""
    app = make_app(runs_root, model="core/zoo/digits-ldm")
    assert snap_compare(app, terminal_size=SIZE)


def test_live_run(snap_compare, runs_root: Path) -> None:
    """A metrics run in progress: phase bars with rate/ETA, the FID/KID curve, numbers, log."""
    writer = live_metrics_run(runs_root)
    app = make_app(runs_root)

    async def attach(pilot) -> None:
        pilot.app.open_run(writer.path)
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "updates_drawn", 0) > 0)
        await wait_for(pilot, lambda: len(pilot.app.screen.query("PhaseRow")) == 2)
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=attach)
    finally:
        writer.close()


def test_schedule_chart(snap_compare, runs_root: Path) -> None:
    """log-SNR of two schedules overlaid, read from results.json, with the figure's PNG path."""
    run_dir = finished_schedule_run(runs_root)
    app = make_app(runs_root)

    async def open_chart(pilot) -> None:
        pilot.app.open_run(run_dir)
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "results", None) is not None)
        await pilot.press("2", "g")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_chart)


def test_attention_view(snap_compare, runs_root: Path) -> None:
    """An attention overlay drawn with half-cell blocks, stepped to the next word."""
    run_dir = finished_attention_run(runs_root)
    app = make_app(runs_root)

    async def open_images(pilot) -> None:
        pilot.app.open_run(run_dir)
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "results", None) is not None)
        await pilot.press("3", "w")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_images)
