"""Every user-supplied string shows literally: Textual markup in a model path, run name, prompt,
caption or status message neither crashes a screen nor restyles it, and terminal escape
sequences are stripped."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_fakes import (
    SIZE,
    T0,
    _writer,
    async_test,
    isolated_config,  # noqa: F401 -- fixture
    make_app,
    wait_for,
)

from diffusionscope.core.events import ArtifactEvent, LogEvent, MetricEvent, StatusEvent

pytestmark = pytest.mark.usefixtures("isolated_config")

MARKUP = ("[/b]", "[/INST]", "[bold red]x[/]", "[@click=app.quit]q[/]", "$accent")
MODEL = "org/[bold red]x[/]"  # not a folder here: shown whole, as a hub id is
RUN_NAME = "20240101-000000-[b]run[@click=app.quit]x"  # a run folder renamed by hand
MESSAGE = "ValueError: bad token [/INST] in \x1b[2J[bold red]prompt[/]\x1b]52;c;Zm9v\a"


def test_widget_text_loses_escapes_and_keeps_markup_characters() -> None:
    from diffusionscope.tui.text import cell, literal

    raw = "a\x1b[31mred\x1b[0m\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x07 [/b]\nnext"
    assert literal(raw).plain == "aredlink [/b]\nnext"
    assert literal(raw, one_line=True).plain == cell(raw).plain == "aredlink [/b] next"


def markup_run(root: Path) -> Path:
    """A failed run whose every user-named string carries markup (and escapes)."""
    from PIL import Image

    writer = _writer(
        root, RUN_NAME, {"modes": ["attention"], "model": MODEL, "prompt": "[/INST] a red seven"}
    )
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    writer.emit(LogEvent(message="prompt: [/INST] a [bold red]red[/] seven \x1b[2J", time=T0 + 1))
    Image.new("RGB", (16, 16), "red").save(writer.path / "artifacts" / "attention_word-x.png")
    writer.emit(
        ArtifactEvent(
            path="artifacts/attention_word-x.png",
            kind="image",
            caption="'[/b]' at [bold]all[/] steps",
            time=T0 + 2,
        )
    )
    writer.emit(MetricEvent(name="[/b]odd name", value=1.5, mode="attention", time=T0 + 2))
    writer.emit(StatusEvent(state="failed", message=MESSAGE, time=T0 + 3))
    writer.close()
    return writer.path


def visible(widget) -> str:
    return str(widget.render())


@async_test
async def test_markup_in_a_run_shows_literally_everywhere(runs_root: Path) -> None:
    run_dir = markup_run(runs_root)
    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(run_dir)
        screen = app.screen
        await wait_for(pilot, lambda: screen.model is not None and screen.model.state == "failed")
        await pilot.pause()
        header = visible(screen.query_one("#run-header"))
        assert RUN_NAME in header and MODEL in header
        assert "bad token [/INST] in [bold red]prompt[/]" in header and "\x1b" not in header
        log = "\n".join(str(line) for line in screen.query_one("#run-log").lines)
        assert "[/INST] a [bold red]red[/] seven" in log and "\x1b" not in log
        table = screen.query_one("#metrics-table")
        assert "[/b]odd name" in [str(table.get_row(key)[0]) for key in table.rows]
        await pilot.press("3")
        await pilot.pause()
        caption = visible(screen.query_one("#image-caption"))
        assert "'[/b]' at [bold]all[/] steps" in caption
        await pilot.press("4")
        files = screen.query_one("#files-table")
        assert any(RUN_NAME in str(files.get_row_at(i)[1]) for i in range(files.row_count))

        await pilot.press("escape", "f2")
        runs = app.screen
        await wait_for(pilot, lambda: run_dir.name in runs.runs)
        await pilot.pause()
        row = runs.query_one("#runs-table").get_row(run_dir.name)
        assert [str(c).strip() for c in row[:2]] == ["failed", RUN_NAME]  # the whole id
        assert str(row[2]) == f"attention · {MODEL}"
        await pilot.press("d")
        question = visible(app.screen.query_one(".dialog-question"))
        assert f"Delete run {RUN_NAME} and all its files?" in question
        await pilot.press("n")


@async_test
async def test_markup_in_model_paths_and_refusals_shows_literally(runs_root: Path) -> None:
    app = make_app(runs_root, model=MODEL)
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        await pilot.press("ctrl+l")
        summary = main.query_one("#model-summary")
        await wait_for(pilot, lambda: "no such" in visible(summary))
        assert MODEL in visible(summary)
        main.query_one("#modes").select("schedule")
        await pilot.pause()
        await pilot.press("ctrl+s")  # refused in-process: the model names nothing loadable
        await pilot.pause()
        error = visible(main.query_one("#model-error"))
        assert MODEL in error and main.query_one("#model-error").display
        assert MODEL in visible(main.query_one("#form-error"))
        main.show_refusal("reference folder [/INST]: no such folder")
        await pilot.pause()
        assert "[/INST]" in visible(main.query_one("#form-error"))


@async_test
async def test_markup_in_run_names_in_the_quit_and_compare_screens(runs_root: Path) -> None:
    from test_tui_fakes import finished_schedule_run

    from diffusionscope.tui.screens.compare import CompareScreen
    from diffusionscope.tui.screens.dialogs import QuitScreen

    app = make_app(runs_root)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(QuitScreen(["[bold red]x[/]-run", "[/b]"]))
        await pilot.pause()
        text = visible(app.screen.query_one(".dialog-question"))
        assert "  [bold red]x[/]-run\n  [/b]" in text
        await pilot.press("escape")
        runs = [finished_schedule_run(runs_root, f"20240101-00010{i}-[b]{i}[$x]") for i in range(2)]
        app.push_screen(CompareScreen(runs))
        await pilot.pause()
        legend = visible(app.screen.query_one("#compare-title"))
        assert f"A = {runs[0].name}" in legend and f"B = {runs[1].name}" in legend


@pytest.mark.parametrize("text", MARKUP)
def test_widget_helpers_never_parse_markup(text: str) -> None:
    from diffusionscope.tui.text import cell, literal, styled

    assert literal(text).plain == text
    assert cell(text).plain == text
    assert styled((text, "bold"), " ", text).plain == f"{text} {text}"
