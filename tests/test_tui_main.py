"""The main screen: loading a model in a worker, recent models, the mode form and its checks."""

from __future__ import annotations

import json
from dataclasses import make_dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_tui_fakes import SIZE, async_test, isolated_config, make_app, wait_for  # noqa: F401

from diffusionscope.core.errors import InputError
from diffusionscope.core.options import Option, RunOptions
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
        await wait_for(pilot, lambda: app.screen.loaded_summary is not None)
        text = str(summary.render())
        assert "StableDiffusionPipeline" in text and "M params in all" in text
        assert "16 px · scheduler" in text and "M unet UNet2DConditionModel" in text
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


def _fake_mode(name: str, shared: tuple[str, ...] = ()) -> SimpleNamespace:
    """A mode as the CLI sees one: its own options, an options type that reads them and the
    ``shared`` options, and a validate that refuses bad input."""

    def validate(options: object) -> None:
        if getattr(options, f"{name}_levels") > 10:
            levels = getattr(options, f"{name}_levels")
            raise InputError(f"--{name}-levels: at most 10, got {levels}")

    options = (
        Option(f"{name}_levels", "levels to try", kind="int", default=3),
        Option(f"{name}_fast", "skip the slow part", kind="bool"),
    )
    fields = [("run", RunOptions), *((dest, object) for dest in shared)]
    fields += [(option.dest, object) for option in options]
    return SimpleNamespace(
        DESCRIPTION=f"the {name} stand-in",
        NEEDS_PIPELINE=False,
        OPTIONS=options,
        Options=make_dataclass(f"{name.title()}Options", fields, frozen=True),
        validate=validate,
        check_model=lambda options, model: None,
        planned_work=lambda options: [],
    )


@pytest.fixture
def stand_in_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    """Two stand-in modes registered with the CLI, so the form is tested apart from real modes."""
    import diffusionscope.core.cli
    import diffusionscope.core.modes

    modes = {
        "metrics": _fake_mode("metrics", ("num_samples", "reference", "steps")),
        "schedule": _fake_mode("schedule"),
    }
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

        # A refusal line naming a field (here as the run process would word it) goes under it.
        screen.mode_pane.set_value("num_samples", "12")
        await pilot.pause()
        assert not field.has_class("-invalid")
        screen.show_refusal("--schedule-levels: at most 10, got 11")
        await pilot.pause()
        assert screen.query_one("#field-schedule_levels").has_class("-invalid")
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


@async_test
async def test_a_refusal_from_the_run_process_comes_back_under_its_field(
    runs_root: Path, tmp_path: Path
) -> None:
    """Checks that need torch run in the run process; its one-line refusal returns to the form,
    under the field it names in words ("reference folder X: no such folder")."""
    from test_tui_flow import digits_model

    # A folder with no images: the form sees a folder (as it checks paths as they are typed);
    # only the run process, listing it, finds nothing to use.
    empty = tmp_path / "no-images-folder"
    empty.mkdir()
    app = make_app(runs_root, model=digits_model())
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        main.query_one("#modes").select("metrics")
        await wait_for(pilot, lambda: main.query("#field-reference"))
        main.mode_pane.set_value("reference", str(empty))
        main.mode_pane.set_value("num_samples", "4")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        await wait_for(pilot, lambda: app.screen is main)
        field = main.query_one("#field-reference")
        assert field.has_class("-invalid")
        message = str(field.query_one(".field-error").render())
        assert "no-images-folder" in message
        assert app.launched[-1].process.wait(timeout=30) == 2
    assert [p.name for p in runs_root.iterdir()] == [".launch-logs"]  # no run directory


TORCH_FREE_SCRIPT = r"""
import asyncio, json, sys, time
from pathlib import Path
from diffusionscope.tui.app import WorkbenchApp

async def main(model, root):
    app = WorkbenchApp(model=model, runs_root=root, image_renderer="halfcell",
                       theme="textual-dark", cursor_blink=False)
    async with app.run_test(size=(120, 36)) as pilot:
        async def until(predicate, timeout=600):
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, "timed out"
                await pilot.pause(0.05)
        main = app.screen
        await pilot.press("ctrl+l")
        await until(lambda: main.loaded_summary is not None)
        after_load = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
        main.query_one("#modes").select("schedule")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(lambda: type(app.screen).__name__ == "RunScreen")
        screen = app.screen
        await until(lambda: screen.model is not None and screen.model.state == "finished", 300)
        after_start = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
        print(json.dumps({"after_load": after_load, "after_start": after_start,
                          "summary": main.loaded_summary}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_the_workbench_never_imports_torch(runs_root: Path, tmp_path: Path) -> None:
    """Load (summary from configs and headers) and Start (a schedule run, watched to its end)
    leave torch, diffusers and transformers out of the workbench's own process."""
    import os
    import subprocess
    import sys

    from test_tui_flow import digits_model

    env = {**os.environ, "DIFFUSIONSCOPE_CONFIG": str(tmp_path / "config")}
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_SCRIPT, digits_model(), str(runs_root)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert any("UNet2DConditionModel" in line for line in report["summary"])
    assert report["after_load"] == [] and report["after_start"] == []


@async_test
async def test_tab_skips_an_empty_form_and_ticks_mark_the_chosen_modes(runs_root: Path) -> None:
    app = make_app(runs_root, model="core/zoo/digits-ldm")
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        modes = main.query_one("#modes")
        modes.focus()
        await pilot.press("tab")
        assert app.focused.id == "start"  # no Tab stop on the empty form in between
        modes.select("schedule")
        await wait_for(pilot, lambda: main.query("#opt-steps"))
        await wait_for(pilot, lambda: main.query_one("#opt-steps").region.height > 0)
        await pilot.pause()
        modes.focus()
        await pilot.press("tab")
        assert app.focused.id == "opt-steps"  # the schedule form's first field
        lines = [modes.render_line(y).text for y in range(len(main.mode_descriptions))]
        assert [line[1] for line in lines] == [" ", "✓", " ", " "]  # not by colour alone
        assert "✓ schedule" in str(main.query_one("#modes-title").render())
