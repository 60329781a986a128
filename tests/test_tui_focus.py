"""The focused form field is always on screen, named by the help line, and gets what is typed.

Every field of every mode's form is walked with Tab and with Shift+Tab at 80×24 and 120×36;
clicking a field and focusing one from code (as the command palette does) are checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_fakes import async_test, isolated_config, make_app, wait_for  # noqa: F401
from textual.widgets import Input, Select

from diffusionscope.core.modes import available_modes

pytestmark = pytest.mark.usefixtures("isolated_config")
SIZES = [(80, 24), (120, 36)]
#: Typed into a text field; every field accepts it as text (checks may flag it, that is fine).
TYPED = "7"


def _inside(widget, container) -> bool:
    """The widget's whole row is inside the container's visible region and the screen."""
    region = widget.region
    visible = container.region
    screen = widget.screen.region
    return region.height > 0 and visible.contains_region(region) and screen.contains_region(region)


def _help(screen) -> str:
    return str(screen.query_one("#field-help").render())


async def _check_focused(pilot, screen, field_ids: list[str]) -> str:
    """The focused widget is a form field, on screen, named by the help line; returns its id."""
    await pilot.pause()
    focused = screen.app.focused
    if focused is not None and focused.id is None and isinstance(focused.parent, Select):
        focused = focused.parent  # a click opens a list field's choices: the field has focus
    assert focused is not None and focused.id in field_ids, focused
    form = screen.query_one("#mode-form")
    assert _inside(focused, form), (focused.id, focused.region, form.region)
    field = focused.parent.parent
    assert field.spec.flag in _help(screen), (focused.id, _help(screen))
    return str(focused.id)


def _texts(fields: list) -> dict[str, str]:
    """What each field shows: the text of an input, the value of a select or a box."""
    shown = {}
    for field in fields:
        widget = field.query_one(f"#opt-{field.spec.dest}")
        shown[field.spec.dest] = str(widget.value)
    return shown


async def _walk(pilot, screen, key: str, fields: list, *, typing: bool = False) -> list[str]:
    """Press ``key`` once per field; each time the focused field must be on screen and named,
    and with ``typing`` what is typed must land in it and nowhere else."""
    ids = [f"opt-{f.spec.dest}" for f in fields]
    seen: list[str] = []
    for _ in range(len(fields)):
        await pilot.press(key)
        focused = await _check_focused(pilot, screen, ids)
        seen.append(focused)
        if typing and isinstance(screen.app.focused, Input):
            before = _texts(fields)
            await pilot.press("end", *TYPED)
            after = _texts(fields)
            changed = {k for k in after if after[k] != before[k]}
            assert changed == {focused.removeprefix("opt-")}, (focused, changed)
            assert after[focused.removeprefix("opt-")].endswith(TYPED)
    return seen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", sorted(available_modes()))
@async_test
async def test_every_field_is_on_screen_named_and_typed_into(
    mode: str, size: tuple[int, int], runs_root: Path
) -> None:
    app = make_app(runs_root, model="core/zoo/digits-ldm")
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        screen.query_one("#modes").select(mode)
        await wait_for(pilot, lambda: screen.query("#field-seed"))
        await pilot.pause()
        fields = screen.mode_pane.fields
        ids = [f"opt-{f.spec.dest}" for f in fields]
        # Tab from the mode list walks every field in order, each on screen when focused,
        # and what is typed lands in the focused field and nowhere else.
        screen.query_one("#modes").focus()
        assert await _walk(pilot, screen, "tab", fields, typing=True) == ids
        # Shift+Tab back from the Start button walks them in reverse.
        screen.query_one("#start").focus()
        assert await _walk(pilot, screen, "shift+tab", fields) == ids[::-1]
        # Focus from code (the command palette's way) on the field furthest down.
        form = screen.query_one("#mode-form")
        form.scroll_home(animate=False)
        await pilot.pause()
        fields[-1].query_one(f"#opt-{fields[-1].spec.dest}").focus()
        await _check_focused(pilot, screen, ids)
        # A click on the lowest text field in view, cut by the form's bottom edge or not (a
        # click on a select opens its list instead).
        form.scroll_home(animate=False)
        await pilot.pause()
        shown = [
            widget
            for f in fields
            if isinstance(widget := f.query_one(f"#opt-{f.spec.dest}"), Input)
            and form.region.overlaps(widget.region)
        ]
        await pilot.click(shown[-1])
        await _check_focused(pilot, screen, ids)


def test_paths_are_checked_as_typed(tmp_path: Path) -> None:
    """Exists, readable, folder or file as the option wants, .npz where statistics are meant."""
    from diffusionscope.core.options import PROMPTS_FILE, REFERENCE
    from diffusionscope.tui.start_checks import path_problem

    folder, text, stats = tmp_path / "ref", tmp_path / "p.txt", tmp_path / "s.npz"
    folder.mkdir()
    text.write_text("a seven\n")
    stats.write_bytes(b"")
    assert path_problem(REFERENCE, str(folder)) is None
    assert path_problem(REFERENCE, str(stats)) is None
    assert "expected a folder or a .npz" in path_problem(REFERENCE, str(text))
    assert "no such" in path_problem(REFERENCE, str(tmp_path / "missing"))
    assert path_problem(PROMPTS_FILE, str(text)) is None
    assert "a folder; a file is expected" in path_problem(PROMPTS_FILE, str(folder))
    assert path_problem(PROMPTS_FILE, "") is None  # empty: the default


@async_test
async def test_a_bad_path_is_flagged_under_its_field_as_typed(runs_root: Path) -> None:
    app = make_app(runs_root, model="core/zoo/digits-ldm")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.query_one("#modes").select("metrics")
        await wait_for(pilot, lambda: screen.query("#opt-reference"))
        screen.query_one("#opt-reference").focus()
        await pilot.press(*"/no/such/ref")
        field = screen.query_one("#field-reference")
        await wait_for(pilot, lambda: field.has_class("-invalid"))
        assert "no such" in str(field.query_one(".field-error").render())
