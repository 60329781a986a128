"""The sweep view: points, states, intervals and differences to the best; the curve; compare."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_fakes import (
    async_test,
    finished_sweep_run,
    isolated_config,  # noqa: F401 -- fixture
    live_sweep_run,
    make_app,
    wait_for,
)

from diffusionscope.core.runs import read_events
from diffusionscope.tui.run_model import RunModel, read_config, read_results
from diffusionscope.tui.sweep import from_events, from_results, planned_points

pytestmark = pytest.mark.usefixtures("isolated_config")


def test_live_points_are_done_running_and_planned(runs_root: Path) -> None:
    writer = live_sweep_run(runs_root)
    writer.close()
    model = RunModel(writer.path)
    model.apply(read_events(writer.path))
    snap = model.snapshot()
    view = from_events(list(snap.metrics.values()), snap.series, read_config(writer.path))
    assert [(p.label, p.state) for p in view.points] == [
        ("guidance-scale=1.5", "done"),
        ("guidance-scale=3.0", "done"),
        ("guidance-scale=5.0", "running"),
    ]
    assert view.planned == 4 and view.best == 1  # lower FID
    assert view.points[0].intervals["fid"] == (44.0, 52.9)
    assert view.points[0].to_best["fid"].startswith("+8.6")
    title, curves, _ = view.chart()
    assert "FID–CLIP" in title and curves["FID"] == [(0.231, 48.2), (0.262, 39.6)]


def test_final_differences_are_this_point_minus_the_best(runs_root: Path) -> None:
    run = finished_sweep_run(
        runs_root, "20240105-000000-sweep-a", (50.0, 40.0, 41.0), (0.2, 0.25, 0.27)
    )
    view = from_results(read_results(run)["sweep"], read_config(run))
    assert view.best == 1
    # Stored as A − B for pairs (0, 1) and (1, 2): shown as point − best, ✓ beyond the interval.
    assert view.points[0].to_best["fid"] == "+10 [+7.5, +12.5] ✓"
    assert view.points[2].to_best["fid"] == "+1 [-1.5, +3.5]"
    assert planned_points({"sweep": ["steps=1,2", "guidance-scale=1,3,5"]}) == 6
    assert planned_points({"watch": "ckpts"}) is None  # points come as checkpoints appear


@async_test
async def test_compare_overlays_two_sweeps_curves(runs_root: Path) -> None:
    from diffusionscope.tui.screens.compare import CompareScreen

    a = finished_sweep_run(
        runs_root, "20240105-000000-sweep-a", (50.0, 40.0, 41.0), (0.2, 0.25, 0.27)
    )
    b = finished_sweep_run(
        runs_root, "20240105-000100-sweep-b", (45.0, 38.0, 39.5), (0.21, 0.26, 0.28)
    )
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(CompareScreen([a, b]))
        await pilot.pause()
        screen = app.screen
        titles = [title for title, _ in screen.charts]
        assert titles[0].startswith("FID–CLIP")
        curves = screen.charts[0][1]
        assert curves == {
            "A:FID": [(0.2, 50.0), (0.25, 40.0), (0.27, 41.0)],
            "B:FID": [(0.21, 45.0), (0.26, 38.0), (0.28, 39.5)],
        }


@async_test
async def test_the_sweep_tab_opens_first_and_fills_in(runs_root: Path) -> None:
    writer = live_sweep_run(runs_root)
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(writer.path)
        screen = app.screen
        await wait_for(pilot, lambda: screen.sweep_shown)
        table = screen.query_one("#sweep-table")
        assert table.row_count == 3
        assert screen.query_one("#run-tabs").active == "sweep"
        # A third point ends: its row turns done and the curve gains a point, live.
        from diffusionscope.core.events import MetricEvent, SeriesEvent

        writer.emit(MetricEvent(name="fid@guidance-scale=5.0", value=36.0, n=64))
        writer.emit(SeriesEvent(series="sweep:fid_clip", x=0.28, y=36.0))
        chart = screen.query_one("#sweep-chart")
        await wait_for(pilot, lambda: len(chart.curves.get("FID", [])) == 3)
        assert "★" in str(table.get_row_at(2)[0])  # the new best
    writer.close()


def test_a_checkpoint_axis_draws_the_metric_over_the_checkpoints() -> None:
    sweep = {
        "axes": {"model": ["ckpt/checkpoint-100", "ckpt/checkpoint-200"]},
        "points": [
            {"settings": {"model": f"ckpt/checkpoint-{step}"}, "metrics": {"fid": {"value": fid}}}
            for step, fid in ((100, 80.0), (200, 61.5))
        ],
        "differences": [],
    }
    view = from_results(sweep, {})
    title, curves, xlabel = view.chart()
    assert [p.label for p in view.points] == ["model=checkpoint-100", "model=checkpoint-200"]
    assert title.startswith("FID over the checkpoints") and xlabel == "point"
    assert curves == {"FID": [(0.0, 80.0), (1.0, 61.5)]} and view.best == 1


def test_a_finished_campaign_is_announced_by_its_best_point(runs_root: Path) -> None:
    from diffusionscope.tui.app import sweep_headline

    run = finished_sweep_run(runs_root, "20240105-000000-sweep-a", (50.0, 40.0), (0.2, 0.25))
    assert sweep_headline(read_results(run)["sweep"]) == (
        "2 points; best guidance-scale=3.0: FID 40 [36, 44]"
    )


def test_sweep_numbers_are_shown_at_the_registrys_display_scale() -> None:
    """KID is ×10³ in the sweep table, as in the results table and on the charts; FID is not
    scaled. The column says so."""
    from diffusionscope.core.metrics import registry
    from diffusionscope.tui.sweep import FID_KEY, KID_KEY, LABELS, SweepPoint, number_text

    point = SweepPoint(
        "guidance-scale=3.0",
        "done",
        numbers={KID_KEY: 0.0125, FID_KEY: 12.5},
        intervals={KID_KEY: (0.01, 0.015)},
    )
    kid = registry.KID.fields[0]
    assert kid.scale == 1e3 and kid.unit in LABELS[KID_KEY]
    assert number_text(point, KID_KEY) == "12.5 [10, 15]"
    assert number_text(point, FID_KEY) == "12.5" and LABELS[FID_KEY] == registry.FID.label
