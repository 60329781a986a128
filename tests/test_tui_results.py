"""Results described once: one row per metric, units, the FID interval, KID ×10³, the same rows
in the workbench's result table, in ``diffusionscope show`` and on the compare screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_fakes import (
    METRICS_RESULTS,
    SIZE,
    async_test,
    finished_metrics_run,
    isolated_config,  # noqa: F401 -- fixture
    make_app,
    wait_for,
)

from diffusionscope.core.events import MetricEvent
from diffusionscope.core.result_fields import (
    format_number,
    headline_numbers,
    result_rows,
    results_table,
)

EXPECTED_KEYS = [
    "metrics.fid",
    "metrics.fid_inf",
    "metrics.kid",
    "metrics.is",
    "metrics.precision",
    "metrics.recall",
    "metrics.density",
    "metrics.coverage",
    "metrics.clip_score",
]


def test_one_row_per_metric_from_results_json() -> None:
    rows = result_rows({"run": {"seed": 0}, "metrics": METRICS_RESULTS})
    assert [row.key for row in rows] == EXPECTED_KEYS  # headline numbers (FID, FID∞, KID) first
    fid, fid_inf, kid = rows[:3]
    assert (fid.label, fid.value_text, fid.detail_text, fid.n_text) == (
        "FID",
        "23.46",
        "95% [21.25, 26.5]",
        "64",
    )
    assert fid_inf.label == "FID∞" and fid_inf.value_text == "19.88"
    # KID is shown ×10³ (its spread too), and the unit says so.
    assert (kid.value_text, kid.unit, kid.detail_text) == ("31.4", "×10³", "± 2.1")
    assert fid.description.better == "lower" and rows[3].description.better == "higher"


def test_metric_events_give_the_rows_of_a_run_without_results() -> None:
    events = [
        MetricEvent(name="fid", value=30.0, mode="metrics", n=32, extra={"interval": [28, 33]}),
        MetricEvent(name="terminal_snr:cosine", value=0.0047, mode="schedule"),
        MetricEvent(name="inversion_psnr", value=31.25, mode="latent", unit="dB"),
    ]
    rows = {row.key: row for row in result_rows(None, events)}
    assert rows["metrics.fid"].detail_text == "[28, 33]"
    assert rows["schedule.terminal_snr:cosine"].label == "terminal SNR (cosine)"
    assert rows["latent.inversion_psnr"].unit == "dB"


def test_live_curve_points_stand_in_for_numbers_not_yet_final() -> None:
    series = {"fid": [(8.0, 90.0), (16.0, 70.25)], "kid": [(16.0, 0.05)]}
    rows = {row.key: row for row in result_rows(None, [], series)}
    assert rows["metrics.fid"].live and rows["metrics.fid"].n == 16
    assert rows["metrics.fid"].detail_text == "live" and rows["metrics.fid"].value_text == "70.25"
    assert rows["metrics.kid"].value_text == "50"
    final = [MetricEvent(name="fid", value=65.0, mode="metrics", n=16)]
    assert not {row.key: row for row in result_rows(None, final, series)}["metrics.fid"].live


def test_numbers_are_readable() -> None:
    assert [format_number(v) for v in (727.5, 14200.0, 0.0047, 23.4567, 0.0, 3)] == [
        "727.5",
        "14200",
        "0.0047",
        "23.46",
        "0",
        "3",
    ]
    assert format_number(1.5e-5) == "1.500e-05" and format_number(2.5e7) == "2.500e+07"
    rows = result_rows({"metrics": METRICS_RESULTS})
    assert headline_numbers(rows) == "FID 23.46  FID∞ 19.88  KID×10³ 31.4"
    table = results_table(rows)
    assert table[0].split() == ["metric", "value", "unit", "interval", "N"]
    assert len(table) == 1 + len(EXPECTED_KEYS)


@pytest.mark.usefixtures("isolated_config")
@async_test
async def test_the_finished_run_table_shows_one_row_per_metric_and_the_fid_interval(
    runs_root: Path,
) -> None:
    run_dir = finished_metrics_run(runs_root)
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(run_dir)
        screen = app.screen
        await wait_for(pilot, lambda: screen.results is not None)
        await pilot.pause()
        table = screen.query_one("#metrics-table")
        keys = [str(key.value) for key in table.rows]
        assert keys == EXPECTED_KEYS
        cells = {key: [str(c) for c in table.get_row(key)] for key in keys}
        assert cells["metrics.fid"] == ["FID", "23.46", "", "95% [21.25, 26.5]", "64"]
        assert cells["metrics.kid"] == ["KID", "31.4", "×10³", "± 2.1", "64"]
        assert screen.query_one("#live-chart").display  # a metrics run keeps its FID curve


def test_show_prints_the_same_rows(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffusionscope.core.cli import main

    run_dir = finished_metrics_run(runs_root)
    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.split()[:2] == ["metric", "value"])
    fid = out[header + 1].split()
    assert fid[:2] == ["FID", "23.46"] and "[21.25," in fid and fid[-1] == "64"
    assert out[header + 3].split()[:3] == ["KID", "31.4", "×10³"]


@pytest.mark.usefixtures("isolated_config")
@async_test
async def test_compare_marks_the_better_run_by_each_metrics_direction(runs_root: Path) -> None:
    """B has a lower FID and a higher precision (both better: ✓) and a higher KID and a lower
    recall (both worse: no ✓); a direction read the wrong way round moves the marks."""
    from diffusionscope.tui.screens.compare import CompareScreen

    first = finished_metrics_run(runs_root, "20240101-000300-metrics-a")
    second = finished_metrics_run(
        runs_root,
        "20240101-000400-metrics-b",
        numbers={
            "fid": {**METRICS_RESULTS["fid"], "value": 20.0},
            "kid": {**METRICS_RESULTS["kid"], "mean": 0.0414},
            "precision": {**METRICS_RESULTS["precision"], "value": 0.875},
            "recall": {**METRICS_RESULTS["recall"], "value": 0.25},
        },
    )
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(CompareScreen([first, second]))
        table = app.screen.query_one("#compare-table")
        await wait_for(pilot, lambda: table.row_count > 0)
        cells = {str(key.value): [str(c) for c in table.get_row(key)] for key in table.rows}
    # metric, unit, A, B, B−A
    assert cells["metrics.fid"] == ["FID ↓", "", "23.46", "20", "-3.457 ✓"]
    assert cells["metrics.precision"] == ["precision ↑", "", "0.75", "0.875", "+0.125 ✓"]
    assert cells["metrics.kid"] == ["KID ↓", "×10³", "31.4", "41.4", "+10"]
    assert cells["metrics.recall"] == ["recall ↑", "", "0.5", "0.25", "-0.25"]
    assert cells["metrics.is"][-1] == "0"  # the same number: no difference to mark
