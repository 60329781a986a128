"""F1: every key the workbench binds, read from the bindings themselves so it cannot go stale."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


def binding_sections() -> list[tuple[str, list[Binding]]]:
    """``(where, bindings)`` for the app and every screen and dialog."""
    from ..app import WorkbenchApp
    from .compare import CompareScreen
    from .dialogs import ConfirmScreen, FilePickerScreen, QuitScreen
    from .main import MainScreen
    from .run import RunScreen
    from .runs import RunsScreen

    places = [
        ("everywhere", WorkbenchApp),
        ("main screen", MainScreen),
        ("run view", RunScreen),
        ("runs screen", RunsScreen),
        ("compare screen", CompareScreen),
        ("file picker", FilePickerScreen),
        ("confirm dialog", ConfirmScreen),
        ("quit dialog", QuitScreen),
        ("help", HelpScreen),
    ]
    return [(where, [b for b in cls.BINDINGS if isinstance(b, Binding)]) for where, cls in places]


def key_label(binding: Binding) -> str:
    names = {
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "space": "space",
        "slash": "/",
    }
    return names.get(binding.key, binding.key)


class HelpScreen(ModalScreen[None]):
    """A table of every key, grouped by where it works."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f1", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(
                "[b]Keys[/b]  (ctrl+p opens the command palette: load, start, runs, "
                "compare, themes)",
                id="help-title",
            )
            yield DataTable(id="help-table", cursor_type="row", show_cursor=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # The page scrolls, not the table: arrows and PageDown move it from the first key,
        # with no Tab into the table first.
        table.can_focus = False
        self.query_one(VerticalScroll).focus()
        table.add_columns("where", "key", "action")
        for where, bindings in binding_sections():
            for binding in bindings:
                what = binding.description or binding.action
                if binding.tooltip:
                    what += f" — {binding.tooltip}"
                table.add_row(where, key_label(binding), what)

    def action_close(self) -> None:
        self.dismiss(None)
