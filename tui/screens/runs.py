"""Every run under the runs root: sort, filter, attach, open, resume, delete, pick to compare."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from ...core.runs import RunInfo
from ..run_index import SORT_KEYS, ListedRun, RunIndex, matches, sort_runs
from ..text import cell, short_model, styled
from ..widgets.tables import fill_table

REFRESH_SECONDS = 2.0
#: Few columns on purpose: the table measures every cell of every row, and a thousand runs
#: must list in well under half a second. The mark (space) is shown in the status cell.
COLUMNS = (
    ("state", "status"),
    ("name", "run (id for show and --resume)"),
    ("what", "modes · N · model"),
    ("numbers", "results"),
)


def shown_path(path: Path) -> str:
    """A folder as a user would type it: relative to the working directory when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def status_text(info: RunInfo, marked: bool) -> str:
    return f"{'*' if marked else ' '} {info.state}"


def what_text(info: RunInfo) -> str:
    """Modes, N, then the model: the model name is the part that may be cut at 80 columns."""
    parts = [",".join(info.modes) or "?"]
    if info.num_samples is not None:
        parts.append(f"N {info.num_samples}")
    parts.append(short_model(info.model, 30) or "?")
    return " · ".join(parts)


def row_cells(run: ListedRun, marked: bool) -> tuple:
    info = run.info
    return (
        cell(status_text(info, marked)),
        cell(info.name),  # the whole id, never cut: it carries the start time too
        cell(what_text(info)),
        cell(run.headline),
    )


class RunsScreen(Screen):
    """A table of runs, refreshed every few seconds from the run directories."""

    BINDINGS = [
        Binding("escape", "back", "Back", show=False),
        Binding("enter", "open_run", "Open", priority=True, tooltip="open a run, or attach to it"),
        Binding(
            "r",
            "rerun",
            "Rerun",
            tooltip="the form filled with this run's options (an interrupted run: resume it)",
        ),
        Binding("e", "edit_run", "Edit", tooltip="edit and run: change the run's options first"),
        Binding("d", "delete_run", "Delete"),
        Binding("space", "mark_run", "Mark", key_display="␣", tooltip="mark for compare"),
        Binding("c", "compare", "Compare", tooltip="compare the marked runs"),
        Binding("s", "next_sort", "Sort", tooltip="sort by date, state, model, mode"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("ctrl+u", "clear_filter", "Clear filter", show=False, priority=True),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.runs: dict[str, RunInfo] = {}
        self.listed: list[ListedRun] = []
        self.marked: list[str] = []
        self.sort_key = "date"
        self.query_text = ""
        self._shown: list[tuple] | None = None
        self._own_index: RunIndex | None = None
        self._rendered: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="runs-title")
        yield Input(
            placeholder="filter: state:running model:digits mode:metrics date:2024-06 "
            "or any word  (/)",
            id="runs-filter",
            compact=True,
        )
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        fill_table(table, COLUMNS, [])
        table.focus()
        self._timer = self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def on_screen_resume(self) -> None:
        self.action_refresh()
        self._timer.resume()

    def on_screen_suspend(self) -> None:
        self._timer.pause()  # the screen is kept between visits: no reading while hidden

    def index(self) -> RunIndex:
        """The app's index when it lists this root (warm from start-up), else one of our own."""
        app_index = getattr(self.app, "run_index", None)
        if app_index is not None and Path(self.root) == Path(self.app.runs_root):  # type: ignore[attr-defined]
            return app_index()
        if self._own_index is None:
            self._own_index = RunIndex(self.root)
        return self._own_index

    @work(thread=True, exclusive=True, group="list-runs", name="list-runs")
    def action_refresh(self) -> None:
        listed = self.index().refresh()
        self.app.call_from_thread(self._show, listed)

    def _show(self, listed: list[ListedRun]) -> None:
        self.listed = listed
        self.runs = {run.info.name: run.info for run in listed}
        self.marked = [name for name in self.marked if name in self.runs]
        self._render_table()

    def _render_table(self) -> None:
        # An unchanged index hands back the very same row objects: nothing to redraw then.
        state = (
            [id(run) for run in self.listed],
            self.sort_key,
            self.query_text,
            tuple(self.marked),
        )
        if state == self._rendered:
            return
        self._rendered = state
        table = self.query_one(DataTable)
        visible = [
            run for run in sort_runs(self.listed, self.sort_key) if matches(run, self.query_text)
        ]
        rows = [row_cells(run, run.info.name in self.marked) for run in visible]
        shown = [tuple(str(c) for c in row) for row in rows]
        if shown != self._shown:
            cursor = self.selected_name
            self._shown = shown
            fill_table(
                table,
                COLUMNS,
                [(run.info.name, row) for run, row in zip(visible, rows, strict=True)],
            )
            if cursor is not None and cursor in {run.info.name for run in visible}:
                table.move_cursor(row=table.get_row_index(cursor))
        self._title(len(visible))

    def _title(self, visible: int | None = None) -> None:
        total = len(self.listed)
        shown = total if visible is None else visible
        count = f"{shown} of {total} runs" if shown != total else f"{total} run{'s' * (total != 1)}"
        marks = f", {len(self.marked)} marked for compare" if self.marked else ""
        self.query_one("#runs-title", Static).update(
            styled(
                f"{count} in {shown_path(self.root)}{marks} · sorted by ", (self.sort_key, "bold")
            )
        )

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

    # ---- sort and filter ----------------------------------------------------------------

    def action_next_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self._render_table()

    def action_filter(self) -> None:
        self.query_one("#runs-filter", Input).focus()

    def action_clear_filter(self) -> None:
        """Ctrl+U empties the filter wherever the cursor is (as in a shell)."""
        self.query_one("#runs-filter", Input).value = ""

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self._render_table()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    # ---- actions ------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.query_one("#runs-filter", Input).has_focus:
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()

    def action_open_run(self) -> None:
        if self.query_one("#runs-filter", Input).has_focus:
            self.query_one(DataTable).focus()
            return
        info = self.selected
        if info is not None:
            self.app.open_run(info.path)  # type: ignore[attr-defined]

    def action_rerun(self) -> None:
        info = self.selected
        if info is None:
            return
        if info.state == "interrupted":
            self.action_resume_run()
            return
        if info.state == "running":
            self.notify("this run is still running (enter attaches)", timeout=3)
            return
        self.app.rerun(info.path, edit=False)  # type: ignore[attr-defined]

    def action_edit_run(self) -> None:
        info = self.selected
        if info is not None:
            self.app.rerun(info.path, edit=True)  # type: ignore[attr-defined]

    def action_resume_run(self) -> None:
        info = self.selected
        if info is None:
            return
        if info.state != "interrupted":
            self.notify(
                f"only an interrupted run can be resumed ({info.name} is {info.state})",
                severity="warning",
                timeout=3,
                markup=False,
            )
            return
        self.app.resume_run(info.path)  # type: ignore[attr-defined]

    def action_delete_run(self) -> None:
        from .dialogs import ConfirmScreen

        info = self.selected
        if info is None:
            return
        if info.state == "running":
            self.notify("stop a running run before deleting it", severity="warning", timeout=3)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                shutil.rmtree(info.path, ignore_errors=True)
                self.notify(f"deleted {info.name}", timeout=3, markup=False)
                self.action_refresh()

        self.app.push_screen(
            ConfirmScreen(styled("Delete run ", (info.name, "bold"), " and all its files?")),
            confirmed,
        )

    def action_mark_run(self) -> None:
        name = self.selected_name
        if name is None:
            return
        if name in self.marked:
            self.marked.remove(name)
        else:
            self.marked.append(name)
        table = self.query_one(DataTable)
        status = status_text(self.runs[name], name in self.marked)
        table.update_cell(name, "state", cell(status))
        if self._shown is not None:
            index = table.get_row_index(name)
            self._shown[index] = (status,) + self._shown[index][1:]
        table.action_cursor_down()
        self._title(table.row_count)

    def action_compare(self) -> None:
        from .compare import CompareScreen

        finished = [self.runs[n].path for n in self.marked if self.runs[n].state == "finished"]
        if len(finished) < 2:
            self.notify(
                "mark two or more finished runs (space) to compare", severity="warning", timeout=3
            )
            return
        self.app.push_screen(CompareScreen(finished))
