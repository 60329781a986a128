"""One run, live or finished: progress, health, the FID curve, results, log, charts, images, files.

A thread worker tails ``events.jsonl`` with :class:`diffusionscope.core.runs.EventTail` and folds
the events into a :class:`RunModel`; it posts :class:`RunUpdated`, which replaces any such
message still queued, so however fast a run writes, the screen redraws at most a few times a
second and keys never wait behind a backlog of updates. A second worker reads the run
process's GPU, CPU and memory use every few seconds.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Static, TabbedContent, TabPane

from ...core.health import Health, health_lines
from ...core.overall import Overall, overall_line
from ...core.result_fields import result_rows
from ...core.runs import (
    PROCESS,
    REPORT,
    RESULTS,
    EventTail,
    process_running,
    read_json,
)
from ..curves import (
    LIVE_RIGHT,
    SCHEDULE_TITLES,
    at_display_scale,
    group_series,
    live_series,
    live_title,
    schedule_curves,
)
from ..launcher import LaunchedRun, run_pid
from ..run_model import (
    RunModel,
    RunSnapshot,
    format_duration,
    read_config,
    read_results,
)
from ..text import cell, literal, short_model, styled
from ..widgets.chart import CurveChart
from ..widgets.gpu import GpuPane
from ..widgets.images import ImageBrowser
from ..widgets.run_parts import MetricsTable, PhaseBars
from ..widgets.sweep import SweepPane
from ..widgets.tables import fill_table

POLL_SECONDS = 0.2
LIVENESS_SECONDS = 1.0
HEALTH_SECONDS = 2.0
STARTING_LOG_LINES = 3
TABS = ("live", "charts", "images", "files", "gpu", "sweep")
FILE_COLUMNS = (("kind", "kind"), ("path", "path"), ("caption", "caption"))
#: States in which the run's process is (or is about to be) at work.
ACTIVE_STATES = ("running", "resuming", "starting", "reading")
#: The clock elapsed times are read against (snapshot tests fix it).
wall_clock = time.time


class RunUpdated(Message):
    """The run's model changed; a newer one for the same run makes an older one moot."""

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = key

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunUpdated) and message.key == self.key


class HealthUpdated(Message):
    def __init__(self, lines: list[str], reading: Health | None = None) -> None:
        super().__init__()
        self.lines = lines
        self.reading = reading


class RunScreen(Screen):
    """Live view of a running run, and the result view of a finished one."""

    BINDINGS = [
        Binding("escape", "back", "Back", show=False),
        Binding("x", "stop_run", "Stop", tooltip="stop the run (it can be resumed)"),
        Binding("1", "show_tab('live')", "Live", show=False),
        Binding("2", "show_tab('charts')", "Charts", show=False),
        Binding("3", "show_tab('images')", "Images", show=False),
        Binding("4", "show_tab('files')", "Files", show=False),
        Binding("5", "show_tab('gpu')", "GPU", show=False),
        Binding("6", "show_tab('sweep')", "Sweep", show=False),
        Binding("g", "next_chart", "Chart", tooltip="next chart"),
        Binding("m", "toggle_log", "Log", tooltip="the log on the whole screen, following it"),
        Binding("right_square_bracket", "step_image(1)", "Image", tooltip="next image"),
        Binding(
            "left_square_bracket", "step_image(-1)", "Prev", tooltip="previous image", show=False
        ),
        Binding("w", "step_axis('word')", "Word", tooltip="next word, same timestep and layer"),
        Binding("t", "step_axis('timestep')", "Step", tooltip="next timestep, same word and layer"),
        Binding("l", "step_axis('layer')", "Layer", tooltip="next layer, same word and timestep"),
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
        self.health: list[str] = []
        self.refused: str | None = None
        self.results_drawn = False  # the last redraw had results.json (tests wait for it)
        self.sweep_shown = False

    # ---- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="run-header")
        yield Static("", id="run-health")
        with TabbedContent(id="run-tabs", initial="live"):
            with TabPane("1 Live", id="live"):
                yield PhaseBars(id="phases")
                yield Static("", id="small-n")
                with Horizontal(id="live-middle"):
                    yield CurveChart(id="live-chart")
                    yield MetricsTable(id="metrics-table")
                yield Log(id="run-log", max_lines=2000)
            with TabPane("2 Charts", id="charts"):
                yield Static("", id="chart-title")
                yield CurveChart(id="result-chart")
            with TabPane("3 Images", id="images"):
                yield ImageBrowser(getattr(self.app, "image_renderer", "auto"), id="image-browser")
            with TabPane("4 Files", id="files"):
                yield DataTable(id="files-table", cursor_type="row")
            with TabPane("5 GPU", id="gpu"):
                yield GpuPane(id="gpu-pane")
            with TabPane("6 Sweep", id="sweep"):
                yield SweepPane(id="sweep-pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Hidden (stylesheet) until the run's config says it is a metrics run.
        self.query_one("#live-chart", CurveChart).placeholder = "waiting for the first FID point"
        self.query_one("#run-health", Static).display = False
        self._set_header("starting" if self.run_dir is None else "reading")
        self.tail_run()
        self.watch_health()
        if self.run_dir is None:
            self.set_interval(1.0, self._starting_tick)
        self.set_interval(1.0, self._clock_tick)

    def _clock_tick(self) -> None:
        """Elapsed time and ETA move on between events (a long batch writes none)."""
        if self.model is not None and self.model.state in ("running", "resuming"):
            snap = self.model.snapshot(light=True, now=wall_clock())
            self._set_header(snap.state, snap.message, snap)

    @property
    def config(self) -> dict:
        return read_config(self.run_dir) if self.run_dir else {}

    @property
    def is_metrics_run(self) -> bool:
        return "metrics" in (self.config.get("modes") or [])

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
                message = self.launched.failure_message() or "the run process ended at once"
                self.app.call_from_thread(self._refused, message)
                return
            time.sleep(POLL_SECONDS)
        config = read_config(self.run_dir)
        model = RunModel(self.run_dir, modes=tuple(config.get("modes") or ()))
        if self.launched is not None and self.launched.resumed:
            model.attempt_start = self.launched.started
            model.state = "resuming"
        tail = EventTail(self.run_dir)
        model.apply(tail.poll())  # the state read so far, before anyone looks at it
        if model.state not in ACTIVE_STATES and not (self.launched and self.launched.alive()):
            self.results = read_results(self.run_dir)  # a run already over: one drawing of it
        self.model = model
        self.app.call_from_thread(self._show_chart_for_mode)
        self.post_message(RunUpdated(id(self)))
        last_liveness = 0.0
        while not worker.is_cancelled:
            process_gone = False
            now = time.monotonic()
            if model.state == "running" and now - last_liveness >= LIVENESS_SECONDS:
                last_liveness = now
                # Checked before reading events, so a final status written just before the
                # process exited is still read below and wins over "interrupted".
                process_gone = not process_running(self.run_dir)
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
                if model.state == "resuming":  # the resume was refused before it began
                    model.set_state(
                        "failed",
                        self.launched.failure_message() if self.launched else "resume refused",
                    )
                self.results = read_results(self.run_dir)
                self.post_message(RunUpdated(id(self)))
                return
            if changed:
                self.post_message(RunUpdated(id(self)))
            time.sleep(POLL_SECONDS)

    @work(thread=True, exclusive=True, group="health", name="run-health")
    def watch_health(self) -> None:
        """GPU use per device and the run process's own GPU memory, CPU and RAM."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        monitor = self.app.health_monitor()  # type: ignore[attr-defined]
        while not worker.is_cancelled:
            pid = self._run_pid()
            reading = monitor.read(pid) if pid is not None else None
            lines = health_lines(reading) if reading is not None else []
            if lines != self.health or reading is not None:
                self.post_message(HealthUpdated(lines, reading))
            deadline = time.monotonic() + HEALTH_SECONDS
            while time.monotonic() < deadline and not worker.is_cancelled:
                time.sleep(0.1)

    def _run_pid(self) -> int | None:
        """The run process to watch: ours while it lives, else the one a running run recorded
        on this host; none once the run is over."""
        if self.launched is not None:
            return self.launched.pid if self.launched.alive() else None
        if self.run_dir is None or self.model is None or self.model.state != "running":
            return None
        identity = read_json(self.run_dir / PROCESS) or {}
        if identity.get("host") != socket.gethostname():
            return None
        return run_pid(self.run_dir)

    # ---- drawing ------------------------------------------------------------------------

    def on_run_updated(self, message: RunUpdated) -> None:
        if self.model is None:
            return
        self.redraw(self.model.snapshot(now=wall_clock()))

    def on_health_updated(self, message: HealthUpdated) -> None:
        self.health = message.lines
        panes = self.query("#run-health")
        if not panes:  # the screen is going away
            return
        pane = panes.first(Static)
        pane.update(literal("\n".join(message.lines)))
        pane.display = bool(message.lines)
        if message.reading is not None:
            self.query_one(GpuPane).record(message.reading)

    def _changed(self, snap: RunSnapshot, *parts: str) -> bool:
        key = ",".join(parts)
        version = sum(snap.versions[p] for p in parts) + (1000000 if self.results else 0)
        if self._drawn.get(key) == version:
            return False
        self._drawn[key] = version
        return True

    def redraw(self, snap: RunSnapshot) -> None:
        self.updates_drawn += 1
        self.results_drawn = self.results is not None
        self._set_header(snap.state, snap.message, snap)
        if self._changed(snap, "progress", "state"):
            self.query_one("#phases", PhaseBars).update_phases(
                [(phase, snap.current(phase) and snap.state == "running") for phase in snap.phases]
            )
        if self._changed(snap, "series"):
            self._draw_live_chart(snap)
        if self._changed(snap, "series", "state"):
            self._draw_result_chart(snap)
        if self._changed(snap, "metrics", "series", "state"):
            self.query_one("#metrics-table", MetricsTable).update_rows(
                result_rows(self.results, snap.metrics.values(), snap.series)
            )
        if self._changed(snap, "series", "metrics", "state"):  # (a key of its own)
            self._draw_sweep(snap)
            self._small_n_note()
        if self._changed(snap, "log"):
            log = self.query_one("#run-log", Log)
            new = snap.versions["log"] - self._drawn.get("log-lines", 0)
            self._drawn["log-lines"] = snap.versions["log"]
            log.write_lines(snap.log[-new:] if new < len(snap.log) else snap.log)
        self.query_one("#live-middle").set_class(snap.state not in ACTIVE_STATES, "-over")
        if self._changed(snap, "artifacts", "state") and self.run_dir is not None:
            self.query_one(ImageBrowser).set_images(self.run_dir, snap.artifacts)
            self._draw_files(snap)
        if self._changed(snap, "series", "artifacts", "state"):
            self.refresh_bindings()  # keys offered depend on charts, images and state

    def _small_n_note(self) -> None:
        """A warning when the samples are fewer than the features have dimensions: FID and
        KID are then strongly biased (even negative), and their intervals say little."""
        metrics = (self.results or {}).get("metrics") or {}
        n, dim = metrics.get("n_generated"), (metrics.get("features") or {}).get("dim")
        note = self.query_one("#small-n", Static)
        small = isinstance(n, int) and isinstance(dim, int) and n < dim
        note.display = small
        if small:
            note.update(
                literal(
                    f"small N: {n} samples < {dim} feature dimensions: FID and KID are biased "
                    "(even negative) and their intervals rough; live values differ more"
                )
            )

    def _draw_sweep(self, snap: RunSnapshot) -> None:
        """A campaign's points and curve; its tab is shown first the first time it is seen."""
        from ..sweep import from_events, from_results, is_sweep

        config = self.config
        tabs = self.query_one("#run-tabs", TabbedContent)
        if not is_sweep(config, self.results, snap.series):
            tabs.hide_tab("sweep")
            return
        tabs.show_tab("sweep")
        final = (self.results or {}).get("sweep")
        view = (
            from_results(final, config)
            if final
            else from_events(list(snap.metrics.values()), snap.series, config)
        )
        self.query_one(SweepPane).show(view)
        if not self.sweep_shown:
            self.sweep_shown = True
            tabs.active = "sweep"

    def _show_chart_for_mode(self) -> None:
        """Only a metrics run has a live FID/KID curve; other runs give its room to the table."""
        metrics = self.is_metrics_run
        self.query_one("#live-middle").set_class(metrics, "-metrics")
        self.query_one("#live-middle").set_class(not metrics, "-table-only")

    def _draw_live_chart(self, snap: RunSnapshot) -> None:
        live = live_series(snap.series)
        # The curve takes its room once it has a point; until then the table and log have it.
        self.query_one("#live-middle").set_class(bool(live), "-curve")
        # No x label: the title names the axis, and 24 rows need every line for the curve.
        # Drawn at the table's scale (KID ×10³), the legend saying so.
        scaled, names = at_display_scale(live)
        right = [names.get(name, name) for name in LIVE_RIGHT]
        self.query_one("#live-chart", CurveChart).show(
            scaled, title=live_title(snap.series), right=right
        )

    def _set_header(self, state: str, message: str = "", snap: RunSnapshot | None = None) -> None:
        name = self.run_dir.name if self.run_dir else "(new run)"
        config = self.config
        modes = ",".join(config.get("modes") or []) or "?"
        model = short_model(str(config.get("model") or config.get("generated") or "")) or "?"
        detail = f"  {message}" if message and state != "running" else ""
        facts = [f"model {model}", f"modes {modes}"]
        if config.get("num_samples"):
            facts.append(f"N {config['num_samples']}")
        lines: list[str | tuple[str, str]] = [(name, "bold"), "  ", (state, _state_style(state))]
        lines += [detail, "\n", "  ".join(facts)]
        overall = snap.overall if snap is not None else None
        if overall is not None and snap is not None and snap.started is not None:
            if state not in ACTIVE_STATES and overall.eta is None:
                overall = replace(overall, eta=0.0 if state == "finished" else None)
            lines += ["\n", overall_text(overall, state)]
        self.query_one("#run-header", Static).update(styled(*lines))
        self.sub_title = f"{name}: {state}"

    # ---- starting and refusal -----------------------------------------------------------

    def _starting_tick(self) -> None:
        """While the run process has not made its directory: how long, and what it says."""
        if self.run_dir is not None or self.launched is None or self.refused is not None:
            return
        seconds = wall_clock() - self.launched.started
        self.query_one("#run-header", Static).update(
            styled(
                ("(new run)", "bold"),
                "  ",
                ("starting", _state_style("starting")),
                f"  {format_duration(seconds)}\n",
                f"run process pid {self.launched.pid}: importing torch and checking the options",
            )
        )
        log = self.query_one("#run-log", Log)
        tail = self.launched.log_tail(STARTING_LOG_LINES)
        if tail:
            log.clear()
            log.write_lines(tail)

    def _refused(self, message: str) -> None:
        """The run process refused the options before making a run directory."""
        self.refused = message
        self.model = RunModel(Path("."))
        self.model.set_state("failed", message)
        self.redraw(self.model.snapshot())
        self.app.run_refused(self, message)  # type: ignore[attr-defined]

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
        parts: list[str | tuple[str, str]] = []
        for index, (chart_name, _, _) in enumerate(charts):
            if parts:
                parts.append("  ")
            marker = "▶ " if index == self.chart_index else "  "
            parts.append(
                (marker + chart_name, "reverse")
                if index == self.chart_index
                else marker + chart_name
            )
        # The figures' file paths are on the Images and Files tabs: here they would push the
        # chart (and its legend) off an 80×24 screen.
        if any(a.kind == "figure" for a in snap.artifacts):
            parts.append("  (PNG files: tabs 3 and 4)")
        title.update(styled(*parts))

    def _draw_files(self, snap: RunSnapshot) -> None:
        assert self.run_dir is not None
        rows = [
            (None, [cell(a.kind), cell(f"{self.run_dir.name}/{a.path}"), cell(a.caption)])
            for a in snap.artifacts
        ]
        for name, kind in ((RESULTS, "results"), (REPORT, "report")):
            if (self.run_dir / name).is_file():
                rows.append((None, [cell(kind), cell(f"{self.run_dir.name}/{name}"), cell("")]))
        fill_table(self.query_one("#files-table", DataTable), FILE_COLUMNS, rows)

    # ---- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys are offered only where they do something: stop while the run runs, image keys
        where there are images (and the axis keys where the images vary along that axis)."""
        browser = self.query(ImageBrowser)
        entries = browser.first().entries if browser else []
        if action == "step_axis" and parameters:
            # Offered where the images have word/timestep/layer coordinates (attention); an
            # axis they do not vary along says so when pressed, never nothing at all.
            return bool(browser) and any(
                browser.first().has_axis(axis) for axis in ("word", "timestep", "layer")
            )
        if action == "step_image":
            return len(entries) > 1
        if action == "next_chart":
            return self.model is not None and len(self.chart_list(self.model.snapshot())) > 1
        if action == "stop_run":
            return (
                self.model is not None
                and self.model.state in ("running", "resuming")
                or (self.model is None and self.launched is not None)
            )
        return True

    def action_back(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        self.app.pop_screen()

    def action_toggle_log(self) -> None:
        """``m``: the log fills the screen (and follows new lines); again, back."""
        if self.maximized is not None:
            self.minimize()
            return
        self.action_show_tab("live")
        log = self.query_one("#run-log", Log)
        log.auto_scroll = True
        self.maximize(log, container=False)
        log.scroll_end(animate=False)

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
        browser = self.query_one(ImageBrowser)
        if not browser.has_axis(axis):
            self.notify(f"this run's images do not vary by {axis}", timeout=3)
        elif not browser.step_axis(axis):
            self.notify(f"no other {axis} for this image", timeout=2)

    def action_stop_run(self) -> None:
        from .dialogs import ConfirmScreen

        pid = (
            self.launched.pid
            if self.launched
            else (run_pid(self.run_dir) if self.run_dir else None)
        )
        if pid is None or self.model is None or self.model.state not in ("running", "resuming"):
            self.notify("this run is not running", timeout=2)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.stop_worker(pid)

        name = self.run_dir.name if self.run_dir else ""
        self.app.push_screen(
            ConfirmScreen(
                styled(
                    "Stop run ", (name, "bold"), "?\nIt can be resumed later from the runs screen."
                )
            ),
            confirmed,
        )

    @work(thread=True, group="stop")
    def stop_worker(self, pid: int) -> None:
        from ..launcher import stop_process

        stop_process(pid)
        self.app.call_from_thread(self.notify, f"run stopped (pid {pid})", timeout=3)


def overall_text(overall: Overall, state: str) -> str:
    """The whole run's line in the header: the CLI's line, with "stopped" for a run that is
    not running (no ETA to count down)."""
    if state in ACTIVE_STATES or state == "finished":
        return overall_line(overall)
    return overall_line(replace(overall, eta=None)).replace("ETA estimating", "stopped")


def _state_style(state: str) -> str:
    return {
        "running": "bold $accent",
        "finished": "bold $success",
        "failed": "bold $error",
        "interrupted": "bold $warning",
        "starting": "bold $secondary",
        "resuming": "bold $secondary",
    }.get(state, "bold")
