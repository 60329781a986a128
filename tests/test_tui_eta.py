"""The whole run's progress and ETA: planned before it starts, counted down between events,
never 00:00 before the end; the same line in the workbench's header and on the CLI.

Time is a fake clock throughout: events carry fixed times and the header is redrawn at chosen
moments, so nothing here depends on how fast this machine is.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from test_tui_fakes import T0, _writer, async_test, isolated_config, make_app, wait_for  # noqa: F401

from diffusionscope.core.events import (
    PlanEvent,
    ProgressEvent,
    StatusEvent,
    planned_phase,
)
from diffusionscope.core.overall import OverallProgress, format_seconds, overall_line

pytestmark = pytest.mark.usefixtures("isolated_config")
PLAN = [
    planned_phase("reference", 100, "img", work=1),
    planned_phase("generate", 64, "img", work=2),
    planned_phase("scores", 1, "stage", work=3),
]


def _events() -> list:
    """A metrics run: plan, reference in two readings, then samples batch by batch."""
    return [
        StatusEvent(state="running", time=T0),
        PlanEvent(mode="metrics", phases=PLAN, time=T0 + 0.1),
        ProgressEvent(
            phase="reference", done=50, total=100, unit="img", mode="metrics", time=T0 + 5
        ),
        ProgressEvent(
            phase="reference", done=100, total=100, unit="img", mode="metrics", time=T0 + 10
        ),
        ProgressEvent(phase="generate", done=8, total=64, unit="img", mode="metrics", time=T0 + 18),
        ProgressEvent(
            phase="generate", done=16, total=64, unit="img", mode="metrics", time=T0 + 26
        ),
    ]


def test_overall_is_planned_then_measured_and_counts_down() -> None:
    progress = OverallProgress()
    progress.apply(StatusEvent(state="running", time=T0))
    progress.apply(PlanEvent(mode="metrics", phases=PLAN, time=T0 + 0.1))
    first = progress.at(T0 + 1)
    assert first.fraction == 0 and first.eta is None  # estimating, not 00:00
    assert (
        "estimating" in overall_line(first) and "00:00" not in overall_line(first).split("ETA")[1]
    )
    for event in _events()[2:]:
        progress.apply(event)
    # By measured time per unit: reference 0.1 s (100 in 10 s), samples 1 s (16 in 16 s),
    # scores at the run's rate of work units (3 units at 132 units / 26 s): 26 s of 74.6.
    scores = 3 * 26 / 132
    assert progress.at(T0 + 26).fraction == pytest.approx(26 / (10 + 64 + scores))
    etas = [progress.at(T0 + 26 + s).eta for s in range(0, 40, 5)]
    assert all(a > b for a, b in zip(etas, etas[1:], strict=False))  # counts down, second by second
    assert all(e >= 1 for e in etas)
    # A stall far past the estimate is estimated again, slower: never zero while running.
    late = progress.at(T0 + 600).eta
    assert late is not None and late >= 1
    progress.apply(StatusEvent(state="finished", time=T0 + 700))
    assert progress.at(T0 + 700).fraction == 1 and progress.at(T0 + 700).eta == 0


def test_a_cached_reference_counts_as_done_once_sampling_starts() -> None:
    progress = OverallProgress()
    for event in _events()[:2] + _events()[4:]:  # no reference progress: read from its cache
        progress.apply(event)
    # The reference took no time: it weighs nothing; samples 1 s each, scores 3 × 16/32 s.
    assert progress.phases[("metrics", "reference")].skipped
    assert progress.at(T0 + 26).fraction == pytest.approx(16 / (64 + 1.5))


def test_time_left_rounds_up_time_spent_rounds_down() -> None:
    assert format_seconds(0.2) == "00:01" and format_seconds(0.0) == "00:00"
    assert format_seconds(59.5, round_up=False) == "00:59" and format_seconds(3661) == "1:01:01"


def test_the_cli_shows_the_same_overall_line() -> None:
    from rich.console import Console

    from diffusionscope.core.progress import ProgressDisplay, format_rate

    now = [T0]
    buffer = io.StringIO()
    display = ProgressDisplay(Console(file=buffer, width=120), clock=lambda: now[0])
    for event in _events():
        display.handle(event)
    now[0] = T0 + 30
    text = display.overall_text()
    assert text.startswith(" 35%") and "elapsed 00:30" in text
    expected = OverallProgress()
    for event in _events():
        expected.apply(event)
    assert f"ETA {format_seconds(expected.at(T0 + 30).eta)}" in text
    display.stop()
    assert "whole run" in buffer.getvalue()
    assert format_rate(0.004, "task") == "250.0 s/task" and format_rate(3.2, "img") == "3.20 img/s"


def _header(screen) -> str:
    return str(screen.query_one("#run-header").render())


def _eta_seconds(header: str) -> int | None:
    match = re.search(r"ETA (\d+):(\d\d)\b", header)
    return int(match[1]) * 60 + int(match[2]) if match else None


@async_test
async def test_header_eta_counts_down_between_events_and_never_reads_zero_early(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diffusionscope.tui.screens.run as run_screen

    clock = [T0]
    monkeypatch.setattr(run_screen, "wall_clock", lambda: clock[0])
    writer = _writer(
        runs_root, "20240101-000000-metrics-eta", {"modes": ["metrics"], "num_samples": 64}
    )
    events = _events()
    for event in events[:2]:
        writer.emit(event)
    app = make_app(runs_root)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(writer.path)
        screen = app.screen
        await wait_for(pilot, lambda: screen.model is not None and screen.model.overall.planned)

        async def at(seconds: float) -> str:
            clock[0] = T0 + seconds
            screen._clock_tick()
            await pilot.pause()
            return _header(screen)

        early = await at(2)
        assert "estimating" in early and "ETA 00:00" not in early
        seen: list[int] = []
        for event in events[2:]:
            writer.emit(event)
            await wait_for(pilot, lambda e=event: screen.model.overall.last_event == e.time)
            between = []
            for offset in (0.5, 1.5, 2.5, 3.5):
                header = await at(event.time - T0 + offset)
                assert "ETA 00:00" not in header, header
                between.append(_eta_seconds(header))
            assert None not in between
            assert between == sorted(between, reverse=True) and between[0] > between[-1]
            seen += between
        # The last event was long ago: still an estimate, never 00:00, before the end.
        assert _eta_seconds(await at(900)) >= 1
        writer.emit(StatusEvent(state="finished", time=T0 + 901))
        await wait_for(pilot, lambda: screen.model.state == "finished")
        await pilot.pause()
        final = _header(screen)
        assert "100%" in final and "ETA 00:00" in final
    writer.close()


def test_planned_phases_have_bars_from_the_start() -> None:
    from diffusionscope.tui.run_model import RunModel

    model = RunModel(Path("."), modes=("metrics",))
    model.apply(_events()[:2])
    phases = {p.phase: (p.done, p.total) for p in model.snapshot().phases}
    assert phases == {"reference": (0, 100), "generate": (0, 64), "scores": (0, 1)}
    # Sampling starts with no word from the reference (read from its cache): that bar is done.
    model.apply(_events()[4:])
    phases = {p.phase: p for p in model.snapshot().phases}
    assert phases["reference"].finished and phases["generate"].done == 16
    assert phases["generate"].rate == pytest.approx(8 / 8)  # between its two events


def test_a_campaigns_points_fill_one_planned_phase() -> None:
    """Two points of 8 samples: ``generate (guidance-scale=…)`` phases add up to the plan."""
    from argparse import Namespace

    from diffusionscope.core.metrics import sweep_points

    assert sweep_points(Namespace(sweep=["guidance-scale=1,3", "steps=2,4,8"])) == 6
    assert sweep_points(Namespace(sweep=None)) == 1
    progress = OverallProgress()
    plan = [planned_phase("generate", 16, "img", work=2), planned_phase("scores", 2, "stage")]
    progress.apply(StatusEvent(state="running", time=T0))
    progress.apply(PlanEvent(mode="metrics", phases=plan, time=T0))
    for point, start in (("guidance-scale=1.0", 0), ("guidance-scale=3.0", 10)):
        for done in (4, 8):
            progress.apply(
                ProgressEvent(
                    phase=f"generate ({point})",
                    done=done,
                    total=8,
                    unit="img",
                    mode="metrics",
                    time=T0 + start + done,
                )
            )
        if start == 0:
            assert progress.at(T0 + 8).fraction == pytest.approx(16 / 34)
            assert progress.at(T0 + 8).eta is not None
        progress.apply(
            ProgressEvent(
                phase=f"scores ({point})",
                done=1,
                total=1,
                unit="stage",
                mode="metrics",
                time=T0 + start + 9,
            )
        )
        # A point's scores do not end the other points' sampling.
        assert not progress.phases[("metrics", "generate")].finished or start == 10
    assert progress.phases[("metrics", "generate")].done == 16
    assert progress.phases[("metrics", "scores")].done == 2


def test_the_planned_bar_of_a_campaign_adds_its_points() -> None:
    from diffusionscope.tui.run_model import RunModel

    model = RunModel(Path("."), modes=("metrics",))
    plan = [planned_phase("generate", 16, "img", work=2), planned_phase("scores", 2, "stage")]
    model.apply([StatusEvent(state="running", time=T0), PlanEvent(mode="metrics", phases=plan)])
    for point in ("guidance-scale=1.0", "guidance-scale=3.0"):
        model.apply(
            [ProgressEvent(phase=f"generate ({point})", done=8, total=8, mode="metrics", time=T0)]
        )
    phases = {p.phase: p.done for p in model.snapshot().phases}
    assert phases["generate"] == 16 and phases["generate (guidance-scale=3.0)"] == 8
    assert phases["scores"] == 0  # not skipped: the points' scores are still to come
