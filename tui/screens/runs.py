"""Every run under the runs root: attach, open, resume, delete, and pick runs to compare."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from diffusionscope.core.runs import RunInfo, list_runs
from diffusionscope.tui.run_model import format_number

REFRESH_SECONDS = 2.0


def key_numbers(info: RunInfo, limit: int = 3) -> str:
    return "  ".join(f"{k}={format_number(v)}" for k, v in list(info.key_numbers.items())[:limit])


class RunsScreen(Screen):
    """A table of runs, refreshed every few seconds from the run directories."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open_run", "Open/attach", priority=True),
        Binding("r", "resume_run", "Resume"),
        Binding("d", "delete_run", "Delete"),
        Binding("space", "mark_run", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.runs: dict[str, RunInfo] = {}
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"runs under {self.root}", id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("mark", " "), ("name", "run"), ("state", "status"), ("model", "model"),
                           ("modes", "modes"), ("n", "N"), ("numbers", "key numbers")):  # fmt: skip
            table.add_column(label, key=key)
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    @work(thread=True, exclusive=True, group="list-runs", name="list-runs")
    def action_refresh(self) -> None:
        runs = list_runs(self.root)
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[RunInfo]) -> None:
        table = self.query_one(DataTable)
        cursor = self.selected_name
        self.runs = {info.name: info for info in runs}
        self.marked = [name for name in self.marked if name in self.runs]
        table.clear()
        for info in runs:
            table.add_row(
                "*" if info.name in self.marked else " ",
                info.name,
                info.state,
                Path(info.model).name or info.model,
                ",".join(info.modes),
                "" if info.num_samples is None else str(info.num_samples),
                key_numbers(info),
                key=info.name,
            )
        if cursor in self.runs:
            table.move_cursor(row=table.get_row_index(cursor))
        count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
        marks = f", {len(self.marked)} marked for compare" if self.marked else ""
        self.query_one("#runs-title", Static).update(f"{count} under {self.root}{marks}")

    @property
    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.runs or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    @property
    def selected(self) -> RunInfo | None:
        name = self.selected_name
        return self.runs.get(name) if name else None

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_run(self) -> None:
        info = self.selected
        if info is not None:
            self.app.open_run(info.path)  # type: ignore[attr-defined]

    def action_resume_run(self) -> None:
        info = self.selected
        if info is None:
            return
        if info.state != "interrupted":
            self.notify(f"only an interrupted run can be resumed ({info.name} is {info.state})",
                        severity="warning", timeout=3)  # fmt: skip
            return
        self.app.resume_run(info.path)  # type: ignore[attr-defined]

    def action_delete_run(self) -> None:
        from diffusionscope.tui.screens.dialogs import ConfirmScreen

        info = self.selected
        if info is None:
            return
        if info.state == "running":
            self.notify("stop a running run before deleting it", severity="warning", timeout=3)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                shutil.rmtree(info.path, ignore_errors=True)
                self.notify(f"deleted {info.name}", timeout=3)
                self.action_refresh()

        self.app.push_screen(ConfirmScreen(f"Delete run {info.name} and all its files?"), confirmed)

    def action_mark_run(self) -> None:
        name = self.selected_name
        if name is None:
            return
        if name in self.marked:
            self.marked.remove(name)
        else:
            self.marked.append(name)
        table = self.query_one(DataTable)
        table.update_cell(name, "mark", "*" if name in self.marked else " ")
        table.action_cursor_down()
        self.query_one("#runs-title", Static).update(
            f"{len(self.runs)} runs under {self.root}, {len(self.marked)} marked for compare"
        )

    def action_compare(self) -> None:
        from diffusionscope.tui.screens.compare import CompareScreen

        finished = [self.runs[n].path for n in self.marked if self.runs[n].state == "finished"]
        if len(finished) < 2:
            self.notify("mark two or more finished runs (space) to compare", severity="warning",
                        timeout=3)  # fmt: skip
            return
        self.app.push_screen(CompareScreen(finished))
