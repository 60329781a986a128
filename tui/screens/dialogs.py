"""Small modal dialogs: confirm, quit-while-running, and the model file picker."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Label, Static

from ..text import literal


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no; ``n`` and escape say no, so nothing is destroyed by a stray key."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", show=False),
    ]

    def __init__(self, question: str | Content) -> None:
        super().__init__()
        # A plain string is shown literally: it names runs, which users name.
        self.question = question if isinstance(question, Content) else literal(question)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QuitScreen(ModalScreen[str | None]):
    """Quitting with a run live: leave it running (the default), stop it, or stay."""

    BINDINGS = [
        Binding("enter", "answer('leave')", "Leave running", priority=True),
        Binding("s", "answer('stop')", "Stop run"),
        Binding("escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, live_runs: list[str]) -> None:
        super().__init__()
        self.live_runs = live_runs

    def compose(self) -> ComposeResult:
        names = "\n".join(f"  {name}" for name in self.live_runs)
        with Vertical(classes="dialog"):
            yield Static(
                literal(
                    f"A run is still going:\n{names}\n\nIt keeps running after you quit and "
                    "can be attached again from the runs screen."
                ),
                classes="dialog-question",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave running (enter)", id="leave", variant="primary")
                yield Button("Stop it (s)", id="stop", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class ModelFilesTree(DirectoryTree):
    """Folders, and the files a model can be loaded from."""

    SUFFIXES = (".safetensors", ".json", ".ckpt", ".bin", ".pt", ".pth")

    def filter_paths(self, paths):  # type: ignore[override]
        return [
            p
            for p in paths
            if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() in self.SUFFIXES)
        ]


class FilePickerScreen(ModalScreen[str | None]):
    """Pick a diffusers folder (enter on a folder) or a single .safetensors file."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+u", "parent", "Parent folder"),
        Binding("f", "choose_folder", "Use folder"),
    ]

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start if start.is_dir() else Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label("Pick a model folder (f) or a .safetensors file (enter)", id="picker-title")
            yield ModelFilesTree(self.start, id="picker-tree")
            yield Static("", id="picker-path")

    def on_mount(self) -> None:
        self.query_one(ModelFilesTree).focus()

    def _highlighted(self) -> Path | None:
        node = self.query_one(ModelFilesTree).cursor_node
        return node.data.path if node is not None and node.data is not None else None

    def on_tree_node_highlighted(self, event) -> None:
        path = self._highlighted()
        self.query_one("#picker-path", Static).update(literal(path or "", one_line=True))

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(str(event.path))

    def action_choose_folder(self) -> None:
        path = self._highlighted()
        if path is not None:
            self.dismiss(str(path if path.is_dir() else path.parent))

    def action_parent(self) -> None:
        tree = self.query_one(ModelFilesTree)
        tree.path = Path(tree.path).resolve().parent

    def action_cancel(self) -> None:
        self.dismiss(None)
