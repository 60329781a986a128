"""The main screen: loading a model in a worker, recent models, the mode form and its checks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_tui_fakes import SIZE, async_test, isolated_config, make_app, wait_for  # noqa: F401

from diffusionscope.core.errors import InputError
from diffusionscope.core.options import Option
from diffusionscope.tui.settings import config_dir

pytestmark = pytest.mark.usefixtures("isolated_config")


@async_test
async def test_load_shows_the_summary_and_remembers_the_model(
    tiny_pipeline_dir: Path, runs_root: Path
) -> None:
    app = make_app(runs_root, model=str(tiny_pipeline_dir))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        summary = app.screen.query_one("#model-summary")
        await wait_for(pilot, lambda: app.screen.loaded_summary is not None, timeout=120)
        text = str(summary.render())
        assert "StableDiffusionPipeline" in text and "unet" in text and "M params" in text
        assert "resolution 16 px" in text and "scheduler" in text
        recent = app.screen.query_one("#recent")
        assert recent.option_count == 1
        assert str(recent.get_option_at_index(0).prompt) == str(tiny_pipeline_dir)
    saved = json.loads((config_dir() / "tui.json").read_text())
    assert saved["recent_models"] == [str(tiny_pipeline_dir)]


@async_test
async def test_recent_model_fills_the_input(runs_root: Path) -> None:
    config_dir().mkdir(parents=True)
    (config_dir() / "tui.json").write_text(json.dumps({"recent_models": ["org/model-a", "b"]}))
    app = make_app(runs_root, model="something/else")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#recent").focus()
        await pilot.press("down", "enter")
        assert app.screen.query_one("#model-source").value == "b"


@async_test
async def test_bad_model_is_one_line_in_the_summary(runs_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-pipeline"
    folder.mkdir()
    app = make_app(runs_root, model=str(folder))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        summary = app.screen.query_one("#model-summary")
        await wait_for(pilot, lambda: "model_index.json" in str(summary.render()))
        assert app.screen.loaded_summary is None


def _fake_mode(name: str) -> SimpleNamespace:
    """A mode as the CLI sees one: its own options and a validate that refuses bad input."""

    def validate(args: argparse.Namespace) -> None:
        if getattr(args, f"{name}_levels") > 10:
            raise InputError(f"--{name}-levels: at most 10, got {getattr(args, f'{name}_levels')}")

    options = (
        Option(f"{name}_levels", "levels to try", kind="int", default=3),
        Option(f"{name}_fast", "skip the slow part", kind="bool"),
    )
    return SimpleNamespace(DESCRIPTION=f"the {name} stand-in", NEEDS_PIPELINE=False,
                           OPTIONS=options, validate=validate)  # fmt: skip


@pytest.fixture
def stand_in_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Two stand-in modes registered with the CLI, so the form is tested apart from real modes."""
    import diffusionscope.core.cli
    import diffusionscope.core.modes

    modes = {"metrics": _fake_mode("metrics"), "schedule": _fake_mode("schedule")}
    monkeypatch.setattr(diffusionscope.core.modes, "available_modes", lambda: modes)
    monkeypatch.setattr(diffusionscope.core.cli, "available_modes", lambda: modes)
    return modes


@async_test
async def test_mode_form_checks_inline_and_starts_with_cli_arguments(
    stand_in_modes: dict, runs_root: Path, tmp_path: Path
) -> None:
    config = tmp_path / "scheduler_config.json"
    config.write_text(json.dumps({"_class_name": "DDPMScheduler", "num_train_timesteps": 1000}))
    app = make_app(runs_root, model=str(config))
    started: list[tuple[list[str], str]] = []
    app.start_run = lambda argv, name: started.append((argv, name))  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        modes = screen.query_one("#modes")
        assert [str(o.value) for o in modes._options] == ["metrics", "schedule"]
        modes.select("schedule")
        await wait_for(pilot, lambda: screen.query("#field-schedule_levels"))
        assert not screen.query("#field-num_samples")  # schedule reads no shared option
        modes.select("metrics")
        await wait_for(pilot, lambda: screen.query("#field-num_samples"))
        fields = [f.spec.dest for f in screen.mode_pane.fields]
        assert fields[:2] == ["num_samples", "reference"] and "schedule_fast" in fields

        # A value the CLI's type would refuse is flagged as it is typed, before anything runs.
        screen.mode_pane.set_value("num_samples", "twelve")
        await pilot.pause()
        field = screen.query_one("#field-num_samples")
        assert field.has_class("-invalid") and str(field.query_one(".field-error").render()) == (
            "--num-samples: expected a whole number, got 'twelve'"
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert started == []

        # A value only the mode's own validate() refuses is shown under its field too.
        screen.mode_pane.set_value("num_samples", "12")
        screen.mode_pane.set_value("schedule_levels", "11")
        await pilot.pause()
        assert not field.has_class("-invalid")
        await pilot.press("ctrl+s")
        levels = screen.query_one("#field-schedule_levels")
        await wait_for(pilot, lambda: levels.has_class("-invalid"))
        assert "at most 10" in str(screen.query_one("#form-error").render())
        assert started == []

        screen.mode_pane.set_value("schedule_levels", "4")
        screen.mode_pane.set_value("schedule_fast", True)
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: started)
    argv, name = started[0]
    assert name == "metrics-schedule"
    assert argv[:2] == ["--modes", "metrics,schedule"] and ["--model", str(config)] == argv[6:8]
    assert {"--num-samples", "12", "--schedule-levels", "4", "--schedule-fast"} <= set(argv)
    assert "--metrics-fast" not in argv  # unticked boxes and empty fields keep CLI defaults
