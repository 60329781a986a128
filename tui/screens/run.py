"""One run, live or finished: progress, the FID curve, metrics, log, charts, images, files.

A thread worker tails ``events.jsonl`` with :class:`diffusionscope.core.runs.EventTail` and folds the events
into a :class:`RunModel`; it posts :class:`RunUpdated`, which replaces any such message still
queued, so however fast a run writes, the screen redraws at most a few times a second and keys
never wait behind a backlog of updates.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Static, TabbedContent, TabPane

from diffusionscope.core.runs import REPORT, RESULTS, EventTail, run_state
from diffusionscope.tui.curves import (
    LIVE_LEFT,
    LIVE_RIGHT,
    SCHEDULE_TITLES,
    group_series,
    metric_rows,
    schedule_curves,
)
from diffusionscope.tui.launcher import LaunchedRun, run_pid
from diffusionscope.tui.run_model import RunModel, RunSnapshot, read_config, read_results
from diffusionscope.tui.widgets.chart import CurveChart
from diffusionscope.tui.widgets.images import ImageBrowser
from diffusionscope.tui.widgets.run_parts import MetricsTable, PhaseBars

POLL_SECONDS = 0.2
LIVENESS_SECONDS = 1.0
TABS = ("live", "charts", "images", "files")


class RunUpdated(Message):
    """The run's model changed; a newer one for the same run makes an older one moot."""

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = key

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunUpdated) and message.key == self.key


class RunScreen(Screen):
    """Live view of a running run, and the result view of a finished one."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "stop_run", "Stop run"),
        Binding("1", "show_tab('live')", "Live"),
        Binding("2", "show_tab('charts')", "Charts"),
        Binding("3", "show_tab('images')", "Images"),
        Binding("4", "show_tab('files')", "Files"),
        Binding("g", "next_chart", "Next chart"),
        Binding("right_square_bracket", "step_image(1)", "Next image"),
        Binding("left_square_bracket", "step_image(-1)", "Prev image"),
        Binding("w", "step_axis('word')", "Next word"),
        Binding("t", "step_axis('timestep')", "Next timestep"),
        Binding("l", "step_axis('layer')", "Next layer"),
    ]

    def __init__(self, run_dir: Path | None, launched: LaunchedRun | None = None) -> None:
        super().__init__()
        self.launched = launched
        self.run_dir = Path(run_dir) if run_dir else None
        self.model: RunModel | None = None
        self.results: dict | None = None
        self.chart_index = 0
        self._drawn: dict[str, int] = {}
        self.updates_drawn = 0

    # ---- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="run-header")
        with TabbedContent(id="run-tabs", initial="live"):
            with TabPane("Live", id="live"):
                yield PhaseBars(id="phases")
                with Horizontal(id="live-middle"):
                    yield CurveChart(id="live-chart")
                    yield MetricsTable(id="metrics-table")
                yield Log(id="run-log", max_lines=2000)
            with TabPane("Charts", id="charts"):
                yield Static("", id="chart-title")
                yield CurveChart(id="result-chart")
            with TabPane("Images", id="images"):
                yield ImageBrowser(getattr(self.app, "image_renderer", "auto"), id="image-browser")
            with TabPane("Files", id="files"):
                yield DataTable(id="files-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#live-chart", CurveChart).placeholder = "waiting for FID points"
        files = self.query_one("#files-table", DataTable)
        files.add_column("kind", key="kind")
        files.add_column("path", key="path")
        files.add_column("caption", key="caption")
        self._set_header("starting" if self.run_dir is None else "reading")
        self.tail_run()

    # ---- tailing (thread worker) --------------------------------------------------------

    @work(thread=True, exclusive=True, group="tail", name="tail-run")
    def tail_run(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        while self.run_dir is None:
            if worker.is_cancelled:
                return
            found = self.launched.find_run_dir() if self.launched else None
            if found is not None:
                self.run_dir = found
                break
            if self.launched is not None and not self.launched.alive():
                self.model = RunModel(Path("."))
                self.model.set_state("failed", self.launched.failure_message() or "run refused")
                self.post_message(RunUpdated(id(self)))
                return
            time.sleep(POLL_SECONDS)
        model = RunModel(self.run_dir)
        self.model = model
        tail = EventTail(self.run_dir)
        last_liveness = 0.0
        while not worker.is_cancelled:
            process_gone = False
            now = time.monotonic()
            if model.state == "running" and now - last_liveness >= LIVENESS_SECONDS:
                last_liveness = now
                # Checked before reading events, so a final status written just before the
                # process exited is still read below and wins over "interrupted".
                process_gone = run_state(self.run_dir, []) != "running"
            changed = model.apply(tail.poll())
            if process_gone and model.state == "running":
                changed |= model.set_state(
                    "interrupted", "the run's process ended without a final status"
                )
            # A resumed run's log starts with the old attempt's final status: keep reading
            # while the process this screen started is still going.
            child_running = self.launched is not None and self.launched.alive()
            if model.state != "running" and not child_running:
                changed |= model.apply(tail.poll())
                self.results = read_results(self.run_dir)
                self.post_message(RunUpdated(id(self)))
                return
            if changed:
                self.post_message(RunUpdated(id(self)))
            time.sleep(POLL_SECONDS)

    # ---- drawing ------------------------------------------------------------------------

    def on_run_updated(self, message: RunUpdated) -> None:
        if self.model is None:
            return
        self.redraw(self.model.snapshot())

    def _changed(self, snap: RunSnapshot, *parts: str) -> bool:
        key = ",".join(parts)
        version = sum(snap.versions[p] for p in parts) + (1000000 if self.results else 0)
        if self._drawn.get(key) == version:
            return False
        self._drawn[key] = version
        return True

    def redraw(self, snap: RunSnapshot) -> None:
        self.updates_drawn += 1
        self._set_header(snap.state, snap.message)
        if self._changed(snap, "progress"):
            self.query_one("#phases", PhaseBars).update_phases(snap.phases)
        if self._changed(snap, "series"):
            live = {
                name: pts for name, pts in snap.series.items() if name in LIVE_LEFT + LIVE_RIGHT
            }
            labels = snap.series_labels.get("fid", ("", ""))
            self.query_one("#live-chart", CurveChart).show(
                live, title="FID / KID over N", xlabel=labels[0] or "N samples",
                right=LIVE_RIGHT,
            )  # fmt: skip
        if self._changed(snap, "series", "state"):
            self._draw_result_chart(snap)
        if self._changed(snap, "metrics", "state"):
            self.query_one("#metrics-table", MetricsTable).update_rows(
                metric_rows(snap.metrics, self.results)
            )
        if self._changed(snap, "log"):
            log = self.query_one("#run-log", Log)
            new = snap.versions["log"] - self._drawn.get("log-lines", 0)
            self._drawn["log-lines"] = snap.versions["log"]
            log.write_lines(snap.log[-new:] if new < len(snap.log) else snap.log)
        if self._changed(snap, "artifacts", "state") and self.run_dir is not None:
            self.query_one(ImageBrowser).set_images(self.run_dir, snap.artifacts)
            self._draw_files(snap)

    def _set_header(self, state: str, message: str = "") -> None:
        name = self.run_dir.name if self.run_dir else "(new run)"
        config = read_config(self.run_dir) if self.run_dir else {}
        modes = ",".join(config.get("modes") or [])
        model = Path(str(config.get("model") or "")).name
        detail = f"  {message}" if message and state != "running" else ""
        self.query_one("#run-header", Static).update(
            f"[b]{name}[/b]  [{_state_style(state)}]{state}[/]{detail}\n"
            f"model {model or '?'}  modes {modes or '?'}  N {config.get('num_samples') or '-'}"
        )
        self.sub_title = f"{name}: {state}"

    # ---- charts -------------------------------------------------------------------------

    def chart_list(self, snap: RunSnapshot) -> list[tuple[str, dict, bool]]:
        """``(title, curves, log_y)`` for every chart this run can show."""
        charts: list[tuple[str, dict, bool]] = []
        schedule = schedule_curves(self.results, snap.series)
        for kind, curves in schedule.items():
            charts.append((SCHEDULE_TITLES[kind], curves, kind == "betas"))
        schedule_prefixes = {"alphas_cumprod", "logsnr", "betas", "log_snr"}
        for group, curves in group_series(snap.series).items():
            if group not in schedule_prefixes:
                charts.append((group, curves, False))
        return charts

    def _draw_result_chart(self, snap: RunSnapshot) -> None:
        charts = self.chart_list(snap)
        chart = self.query_one("#result-chart", CurveChart)
        title = self.query_one("#chart-title", Static)
        if not charts:
            chart.show({}, title="charts")
            title.update("no curves in this run yet")
            return
        self.chart_index %= len(charts)
        name, curves, logy = charts[self.chart_index]
        chart.show(curves, title=name, logy=logy)
        names = "  ".join(
            f"[reverse]{c[0]}[/]" if i == self.chart_index else c[0] for i, c in enumerate(charts)
        )
        prefix = f"{self.run_dir.name}/" if self.run_dir else ""
        saved = [prefix + a.path for a in snap.artifacts if a.kind == "figure"]
        title.update(names + (f"\nPNG: {', '.join(saved)}" if saved else ""))

    def _draw_files(self, snap: RunSnapshot) -> None:
        table = self.query_one("#files-table", DataTable)
        table.clear()
        assert self.run_dir is not None
        for artifact in snap.artifacts:
            table.add_row(artifact.kind, f"{self.run_dir.name}/{artifact.path}", artifact.caption)
        for name, kind in ((RESULTS, "results"), (REPORT, "report")):
            if (self.run_dir / name).is_file():
                table.add_row(kind, f"{self.run_dir.name}/{name}", "")

    # ---- actions ------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#run-tabs", TabbedContent).active = tab

    def action_next_chart(self) -> None:
        self.chart_index += 1
        self.action_show_tab("charts")
        if self.model is not None:
            self._draw_result_chart(self.model.snapshot())

    def action_step_image(self, delta: int) -> None:
        self.action_show_tab("images")
        self.query_one(ImageBrowser).step(delta)

    def action_step_axis(self, axis: str) -> None:
        self.action_show_tab("images")
        if not self.query_one(ImageBrowser).step_axis(axis):
            self.notify(f"no other {axis} for this image", timeout=2)

    def action_stop_run(self) -> None:
        from diffusionscope.tui.screens.dialogs import ConfirmScreen

        pid = (
            self.launched.pid
            if self.launched
            else (run_pid(self.run_dir) if self.run_dir else None)
        )
        if pid is None or self.model is None or self.model.state != "running":
            self.notify("this run is not running", timeout=2)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.stop_worker(pid)

        self.app.push_screen(ConfirmScreen(f"Stop run {self.run_dir.name if self.run_dir else ''}?"
                                           "\nIt can be resumed later from the runs screen."),
                             confirmed)  # fmt: skip

    @work(thread=True, group="stop")
    def stop_worker(self, pid: int) -> None:
        from diffusionscope.tui.launcher import stop_process

        stop_process(pid)
        self.app.call_from_thread(self.notify, f"run stopped (pid {pid})", timeout=3)


def _state_style(state: str) -> str:
    return {"running": "bold $accent", "finished": "bold $success", "failed": "bold $error",
            "interrupted": "bold $warning"}.get(state, "b")  # fmt: skip
