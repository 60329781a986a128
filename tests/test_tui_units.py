"""The TUI's Textual-free parts: the run model, curve extraction, coalescing, the launcher."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    T0,
    async_test,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    live_metrics_run,
    make_app,
    wait_for,
)

from diffusionscope.core.events import (
    ArtifactEvent,
    LogEvent,
    MetricEvent,
    ProgressEvent,
    SeriesEvent,
)
from diffusionscope.tui.curves import finite, group_series, schedule_curves
from diffusionscope.tui.launcher import _alive, find_run_dir, stop_process
from diffusionscope.tui.run_model import RunModel, format_duration
from diffusionscope.tui.screens.run import RunUpdated
from diffusionscope.tui.widgets.images import image_axes


def test_progress_rate_and_eta_come_from_event_times() -> None:
    model = RunModel(Path("run"))
    model.apply(
        [
            ProgressEvent(phase="generate", done=0, total=100, mode="metrics", time=T0),
            ProgressEvent(phase="generate", done=40, total=100, mode="metrics", time=T0 + 10),
        ]
    )
    (phase,) = model.snapshot().phases
    assert phase.rate == pytest.approx(4.0) and phase.eta == pytest.approx(15.0)
    # A phase that starts again (a resumed run) measures its rate afresh.
    model.apply(
        [
            ProgressEvent(phase="generate", done=10, total=100, mode="metrics", time=T0 + 50),
            ProgressEvent(phase="generate", done=30, total=100, mode="metrics", time=T0 + 60),
        ]
    )
    (phase,) = model.snapshot().phases
    assert phase.rate == pytest.approx(2.0) and not phase.finished


def test_run_model_folds_every_event_type() -> None:
    model = RunModel(Path("run"))
    model.apply(
        [
            SeriesEvent(series="fid", x=8, y=90.0, time=T0),
            SeriesEvent(series="fid", x=16, y=70.0, time=T0 + 1),
            MetricEvent(name="fid", value=70.0, mode="metrics", n=16, time=T0 + 2),
            MetricEvent(name="fid", value=65.0, mode="metrics", n=32, time=T0 + 3),
            ArtifactEvent(path="artifacts/a.png", kind="figure", time=T0 + 4),
            ArtifactEvent(path="artifacts/a.png", kind="figure", caption="again", time=T0 + 5),
            LogEvent(message="two\nlines", level="warning", mode="metrics", time=T0 + 65),
        ]
    )
    snap = model.snapshot()
    assert snap.series["fid"] == [(8, 90.0), (16, 70.0)]
    assert snap.metrics["metrics.fid"].value == 65.0
    assert [a.caption for a in snap.artifacts] == ["again"] and snap.artifacts[0].is_image
    # Log times count from the run's first event (the series point at T0), as elapsed does.
    assert snap.log[-2:] == ["+01:05 WARNING metrics: two", "+01:05 WARNING metrics: lines"]
    assert snap.started == T0
    assert snap.versions["series"] == 2 and snap.versions["metrics"] == 2


def test_schedule_curves_from_results_and_from_series() -> None:
    results = {
        "schedule": {
            "schedules": {
                "linear": {
                    "timesteps": [0, 500, 999],
                    "alphas_cumprod": [0.99, 0.5, 0.01],
                    "log_snr": [4.6, 0.0, -4.6],
                    "betas": [1e-4, 1e-3, 2e-2],
                },
                "cosine": {"alphas_cumprod": [0.999, 0.4]},
            }
        }
    }
    curves = schedule_curves(results, {"logsnr:cosine": [(0.0, 6.9), (999.0, -9.0)]})
    assert curves["alphas_cumprod"]["linear"] == [(0, 0.99), (500, 0.5), (999, 0.01)]
    assert curves["alphas_cumprod"]["cosine"] == [(0, 0.999), (1, 0.4)]  # no timesteps: index
    assert set(curves["logsnr"]) == {"linear", "cosine"}  # cosine only from its series
    assert set(curves["betas"]) == {"linear"}
    assert schedule_curves(None, {}) == {}


def test_series_grouping_numbers_and_finite_points() -> None:
    groups = group_series({"fid": [(1, 2)], "logsnr:a": [(0, 1)], "logsnr:b": [(0, 2)]})
    assert groups == {"fid": {"fid": [(1, 2)]}, "logsnr": {"a": [(0, 1)], "b": [(0, 2)]}}
    assert finite([(0, math.inf), (1, math.nan), (2, 3.0)]) == [(2, 3.0)]
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "--:--"


def test_attention_file_names_carry_their_coordinates() -> None:
    assert image_axes("artifacts/attention_word-seven_t-020_layer-up1.png") == {
        "word": "seven",
        "timestep": "020",
        "layer": "up1",
    }
    assert image_axes("latent_slerp_strip.png") == {}
    assert image_axes("attn_t981_w2.png") == {"timestep": "981", "word": "2"}


def test_a_newer_update_replaces_a_queued_one_for_the_same_run_only() -> None:
    assert RunUpdated(1).can_replace(RunUpdated(1))
    assert not RunUpdated(1).can_replace(RunUpdated(2))


@pytest.mark.usefixtures("isolated_config")
@async_test
async def test_a_burst_of_events_is_drawn_in_a_few_coalesced_updates(runs_root: Path) -> None:
    """Thousands of events arrive while keys are pressed; redraws stay few, nothing is lost."""
    writer = live_metrics_run(runs_root)
    burst = 3000

    def write_burst() -> None:
        for i in range(burst):
            writer.series("fid", 33 + i, 100.0 / (i + 1), mode="metrics")
            writer.progress("generate", 33 + i, 33 + burst, unit="img", mode="metrics")

    try:
        app = make_app(runs_root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(writer.path)
            screen = app.screen
            await wait_for(pilot, lambda: screen.updates_drawn > 0)
            thread = threading.Thread(target=write_burst)
            thread.start()
            for key in ("2", "1", "4", "1"):
                await pilot.press(key)
            assert screen.query_one("#run-tabs").active == "live"
            thread.join()
            await wait_for(pilot, lambda: len(screen.model.series["fid"]) == 4 + burst)
            await wait_for(
                pilot, lambda: len(screen.query_one("#live-chart").curves["fid"]) == 4 + burst
            )
            assert screen.updates_drawn < 100, screen.updates_drawn  # 6000 events
    finally:
        writer.close()


def test_find_run_dir_waits_for_the_config(tmp_path: Path) -> None:
    (tmp_path / "20240101-000000-run-abc").mkdir()
    assert find_run_dir(tmp_path, "abc") is None  # created, config not yet written
    (tmp_path / "20240101-000000-run-abc" / "config.json").write_text("{}")
    assert find_run_dir(tmp_path, "abc") == tmp_path / "20240101-000000-run-abc"
    assert find_run_dir(tmp_path / "missing", "abc") is None


def test_stop_process_ends_the_whole_session(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        assert _alive(child.pid)
        assert stop_process(child.pid, timeout=10)
        assert not _alive(child.pid)
    finally:
        kill_group(child)


def test_a_resume_reads_resuming_until_its_process_speaks_and_rates_skip_the_gap() -> None:
    from diffusionscope.core.events import StatusEvent
    from diffusionscope.tui.widgets.run_parts import phase_stats

    model = RunModel(Path("run"), modes=("metrics",))
    model.attempt_start, model.state = T0 + 100, "resuming"
    model.apply(
        [
            StatusEvent(state="running", time=T0),
            ProgressEvent(phase="generate", done=0, total=100, mode="metrics", time=T0),
            ProgressEvent(phase="generate", done=40, total=100, mode="metrics", time=T0 + 10),
            StatusEvent(state="interrupted", message="stopped by SIGTERM", time=T0 + 11),
        ]
    )
    snap = model.snapshot()
    (phase,) = snap.phases
    assert snap.state == "resuming" and snap.message == "was interrupted: stopped by SIGTERM"
    assert not snap.current(phase) and phase_stats(phase, False) == "40/100 it  stopped"
    assert snap.eta() == (None, True)  # no stale ETA while it is not running
    model.apply(
        [
            StatusEvent(state="running", message="resumed", time=T0 + 101),
            ProgressEvent(phase="generate", done=40, total=100, mode="metrics", time=T0 + 101),
            ProgressEvent(phase="generate", done=60, total=100, mode="metrics", time=T0 + 111),
        ]
    )
    snap = model.snapshot()
    (phase,) = snap.phases
    assert snap.state == "running" and snap.current(phase)
    assert phase.rate == pytest.approx(2.0)  # 20 images in 10 s, not 60 in 111 s
    assert snap.eta() == (pytest.approx(20.0), True)


def test_one_eta_for_the_whole_run() -> None:
    model = RunModel(Path("run"), modes=("schedule", "metrics"))
    model.apply(
        [
            ProgressEvent(phase="reference", done=50, total=100, mode="metrics", time=T0),
            ProgressEvent(phase="reference", done=100, total=100, mode="metrics", time=T0 + 5),
            ProgressEvent(phase="generate", done=0, total=64, mode="metrics", time=T0 + 5),
            ProgressEvent(phase="generate", done=16, total=64, mode="metrics", time=T0 + 13),
        ]
    )
    eta, complete = model.snapshot().eta()
    assert eta == pytest.approx(24.0) and not complete  # the schedule mode has not reported yet
    model.apply(
        [
            ProgressEvent(phase="curves", done=1, total=1, mode="schedule", time=T0 + 14),
            ProgressEvent(phase="scores", done=0, total=2, mode="metrics", time=T0 + 14),
        ]
    )
    eta, complete = model.snapshot().eta()
    assert eta == pytest.approx(24.0) and not complete  # scores has no rate yet
    model.apply([ProgressEvent(phase="scores", done=1, total=2, mode="metrics", time=T0 + 16)])
    eta, complete = model.snapshot().eta()
    assert eta == pytest.approx(24.0 + 2.0) and complete


def test_a_phase_first_heard_of_part_way_has_a_rate_from_its_first_event() -> None:
    """One progress event per batch: the first says 16 done; the phase began when the mode's
    previous phase ended, so there is a rate at once; from the second event on, the rate is
    measured between events (the time before the first batch no longer counts)."""
    model = RunModel(Path("run"))
    model.apply(
        [
            ProgressEvent(phase="reference", done=1, total=1, mode="metrics", time=T0),
            ProgressEvent(phase="generate", done=16, total=64, mode="metrics", time=T0 + 8),
        ]
    )
    generate = model.snapshot().phases[1]
    assert generate.rate == pytest.approx(2.0) and generate.eta == pytest.approx(24.0)
    model.apply([ProgressEvent(phase="generate", done=32, total=64, mode="metrics", time=T0 + 12)])
    assert model.snapshot().phases[1].rate == pytest.approx(4.0)
