"""The workbench app and its entry point ``run_app``.

Start-up imports only Textual, textual-plotext, textual-image and the light parts of
``core`` (events, runs, the CLI's parser); torch and diffusers are imported by the worker that
loads a model, so the first screen appears in well under two seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ..core.events import StatusEvent
from ..core.runs import EventTail, process_running, run_state
from ..core.runs import runs_root as resolve_runs_root
from . import settings
from .launcher import LaunchedRun, launch_resume, launch_run, stop_process
from .notify import terminal_notification

#: The stylesheet ships inside the package (``tui/screens.tcss`` links to the top-level file).
CSS_FILE = Path(__file__).resolve().parent / "screens.tcss"
THEMES = ("textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light")
#: How often the runs this app started or shows are checked for their end (notifications).
WATCH_SECONDS = 1.0
RUN_INDEX_DELAY = 1.0


@dataclass
class WatchedRun:
    """A run whose end is announced: one this app started, or one shown while it ran."""

    launched: LaunchedRun | None
    run_dir: Path | None
    since: float  # status events written before this belong to an earlier attempt
    tail: EventTail | None = None
    announced: bool = False

    @property
    def name(self) -> str:
        if self.run_dir is not None:
            return self.run_dir.name
        return f"run (pid {self.launched.pid})" if self.launched else "run"


def mode_descriptions() -> dict[str, str]:
    from ..core.modes import available_modes

    return {
        name: str(getattr(module, "DESCRIPTION", "")) for name, module in available_modes().items()
    }


class WorkbenchApp(App[int]):
    """Model and modes on the main screen; runs, compare and help one key away."""

    CSS_PATH = CSS_FILE
    TITLE = "diffusionscope"
    #: Screens get ``-narrow`` under 100 columns and ``-short`` under 32 rows; the stylesheet
    #: stacks and shrinks panes with them so 80×24 shows everything.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding("f1", "help", "Help"),
        # Shown in the main screen's footer; elsewhere 80 columns are kept for the screen's keys.
        Binding("f2", "runs", "Runs", show=False),
        Binding("f3", "compare", "Compare", show=False),
        Binding("ctrl+t", "next_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        model: str | None = None,
        runs_root: str | Path | None = None,
        *,
        image_renderer: str = "auto",
        theme: str | None = None,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.cursor_blink = cursor_blink
        self.initial_model = model
        self.runs_root = Path(resolve_runs_root(runs_root)).resolve()
        self.image_renderer = image_renderer
        self.launched: list[LaunchedRun] = []
        self.watched: list[WatchedRun] = []
        self._health = None
        self._run_index = None
        self._health_lock = threading.Lock()
        remembered = settings.load_settings().get("theme")
        chosen = theme or (remembered if remembered in self.available_themes else None)
        if chosen:
            self.theme = chosen

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_interval(WATCH_SECONDS, self._check_watched)
        # The runs list is read once in the background, after the first screen is up, so F2
        # shows even a thousand runs at once (later refreshes read only what changed).
        self.set_timer(RUN_INDEX_DELAY, self._warm_run_index)

    def run_index(self):
        """The runs root's index, shared by every runs screen of this app."""
        from .run_index import RunIndex

        with self._health_lock:
            if self._run_index is None:
                self._run_index = RunIndex(self.runs_root)
            return self._run_index

    @work(thread=True, exclusive=True, group="list-runs", name="warm-run-index")
    def _warm_run_index(self) -> None:
        self.run_index().refresh()

    def health_monitor(self):
        """One NVML session for the whole app (initialising NVML takes a while on big hosts)."""
        from ..core.health import HealthMonitor

        with self._health_lock:
            if self._health is None:
                self._health = HealthMonitor()
            return self._health

    def on_unmount(self) -> None:
        if self._health is not None:
            self._health.close()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Steady cursors when asked (snapshot tests: a blink phase must not decide a picture)."""
        if not self.cursor_blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    def _remember_theme(self, theme: object) -> None:
        saved = settings.load_settings()
        saved["theme"] = getattr(theme, "name", str(theme))
        settings.save_settings(saved)

    def get_default_screen(self) -> Screen:
        from .screens.main import MainScreen

        return MainScreen(self.initial_model, mode_descriptions())

    # ---- runs ---------------------------------------------------------------------------

    def start_run(self, options: list[str], name: str) -> LaunchedRun:
        """Launch ``diffusionscope run OPTIONS`` as a detached child and show its live view."""
        from .screens.run import RunScreen

        launched = launch_run(options, self.runs_root, name)
        launched.from_form = True
        self.launched.append(launched)
        self.watch_run(launched=launched)
        self.push_screen(RunScreen(None, launched))
        return launched

    def resume_run(self, run_dir: Path) -> LaunchedRun:
        from .screens.run import RunScreen

        launched = launch_resume(run_dir, self.runs_root)
        self.launched.append(launched)
        self.watch_run(launched=launched)
        self.push_screen(RunScreen(run_dir, launched))
        return launched

    def open_run(self, run_dir: Path) -> None:
        """Attach to a running run or open a finished one; the same view serves both."""
        from .screens.run import RunScreen

        if run_state(run_dir) == "running":
            self.watch_run(run_dir=Path(run_dir))
        self.push_screen(RunScreen(run_dir))

    def rerun(self, run_dir: Path, *, edit: bool) -> None:
        """Back to the form, filled with that run's options: Start reruns it, or change one
        thing first (``edit`` puts the cursor in the form)."""
        from .run_model import read_config
        from .screens.main import MainScreen

        config = read_config(run_dir)
        if not config:
            self.notify(f"{run_dir.name}: no readable config.json", severity="error", markup=False)
            return
        while not isinstance(self.screen, MainScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        main = self.screen
        if isinstance(main, MainScreen):
            main.fill_from_config(config, edit=edit)
            what = "change what you like, then" if edit else "press"
            self.notify(
                f"the form holds {run_dir.name}'s options: {what} Start (ctrl+s)",
                timeout=5,
                markup=False,
            )

    def run_refused(self, screen: Screen, message: str) -> None:
        """A run started from the form was refused: back to the form, the error under its field."""
        launched = getattr(screen, "launched", None)
        if launched is None or not launched.from_form:
            return
        from .screens.main import MainScreen

        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is None:
            return
        if self.screen is screen:
            self.pop_screen()
        main.show_refusal(message)

    # ---- notifications ------------------------------------------------------------------

    def watch_run(
        self, *, launched: LaunchedRun | None = None, run_dir: Path | None = None
    ) -> None:
        """Announce this run's end (finished, failed, interrupted, refused) once."""
        known = {w.run_dir for w in self.watched if w.run_dir is not None}
        if run_dir is not None and run_dir in known:
            return
        since = launched.started if launched is not None else time.time()
        self.watched.append(
            WatchedRun(launched, run_dir or (launched.run_dir if launched else None), since)
        )

    @work(thread=True, exclusive=True, group="watch-runs", name="watch-runs")
    def _check_watched(self) -> None:
        for watched in [w for w in self.watched if not w.announced]:
            ended = self._ended(watched)
            if ended is not None:
                watched.announced = True
                self.call_from_thread(self.announce_run_end, watched, *ended)

    def _ended(self, watched: WatchedRun) -> tuple[str, str] | None:
        """``(state, message)`` once the run has ended, else None."""
        launched = watched.launched
        if watched.run_dir is None and launched is not None:
            watched.run_dir = launched.find_run_dir()
            if watched.run_dir is None:
                if launched.alive():
                    return None
                return "failed", launched.failure_message() or "the run process ended at once"
        assert watched.run_dir is not None
        process_gone = (
            not launched.alive() if launched is not None else not process_running(watched.run_dir)
        )
        if watched.tail is None:
            watched.tail = EventTail(watched.run_dir)
        finals = [
            e
            for e in watched.tail.poll()
            if isinstance(e, StatusEvent) and e.state != "running" and e.time >= watched.since
        ]
        if finals:
            return finals[-1].state, finals[-1].message
        if process_gone:
            if launched is not None and launched.resumed and launched.failure_message():
                return "failed", launched.failure_message()
            return "interrupted", "the run's process ended without a final status"
        return None

    def announce_run_end(self, watched: WatchedRun, state: str, message: str) -> None:
        """A toast, the terminal bell and a desktop notification (OSC 9 / OSC 777)."""
        from ..core.text import printable

        detail = message
        if state == "finished" and watched.run_dir is not None:
            from ..core.result_fields import headline_numbers, result_rows
            from ..core.runs import read_events
            from .run_model import read_results

            results = read_results(watched.run_dir)
            if (results or {}).get("sweep"):
                detail = sweep_headline(results["sweep"])
            else:
                events = [
                    e for e in read_events(watched.run_dir) if type(e).__name__ == "MetricEvent"
                ]
                detail = headline_numbers(result_rows(results, events))
        title = f"{watched.name} {state}"
        severity = {"finished": "information", "interrupted": "warning"}.get(state, "error")
        self.notify(
            printable(f"{title}\n{detail}".rstrip()),
            title="diffusionscope",
            severity=severity,
            timeout=10,
            markup=False,
        )  # type: ignore[arg-type]
        driver = self._driver
        if driver is not None:
            driver.write(terminal_notification(f"diffusionscope: {title}", detail or state))

    def open_last_run(self) -> None:
        if not self.launched:
            self.notify(
                "no run started in this session yet (F2 lists every run)", timeout=3, markup=False
            )
            return
        from .screens.run import RunScreen

        last = self.launched[-1]
        self.push_screen(RunScreen(last.find_run_dir(), last))

    def live_runs(self) -> list[LaunchedRun]:
        return [run for run in self.launched if run.alive()]

    # ---- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def show_runs(self) -> None:
        """The runs screen: made once and kept (its table of a thousand rows is not rebuilt on
        every F2); when it is already open under other screens, back to it."""
        from .screens.runs import RunsScreen

        if not self.is_screen_installed("runs"):
            self.install_screen(RunsScreen(self.runs_root), "runs")
        runs = self.get_screen("runs")
        if runs in self.screen_stack:
            while self.screen is not runs:
                self.pop_screen()
        else:
            self.push_screen(runs)

    def action_runs(self) -> None:
        self.show_runs()

    def action_compare(self) -> None:
        from .screens.runs import RunsScreen

        if isinstance(self.screen, RunsScreen):
            self.screen.action_compare()
            return
        self.show_runs()
        self.notify(
            "mark two or more finished runs with space, then press c", timeout=4, markup=False
        )

    def action_next_theme(self) -> None:
        index = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(index + 1) % len(THEMES)]

    async def action_quit(self) -> None:
        live = self.live_runs()
        if not live:
            self.exit(0)
            return
        from .screens.dialogs import QuitScreen

        def answered(answer: str | None) -> None:
            if answer is None:
                return
            if answer == "stop":
                for run in live:
                    stop_process(run.pid)
            self.exit(0)

        names = [run.run_dir.name if run.run_dir else f"pid {run.pid}" for run in live]
        self.push_screen(QuitScreen(names), answered)

    # ---- command palette ----------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from .screens.main import MainScreen

        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is not None:
            yield SystemCommand(
                "Load model", "Load the model named on the main screen", main.action_load_model
            )
            yield SystemCommand(
                "Start run", "Start a run of the selected modes", main.action_start_run
            )
            yield SystemCommand(
                "Browse for a model", "Pick a model folder or .safetensors file", main.action_browse
            )
        yield SystemCommand(
            "Runs", "List every run: attach, open, resume, delete", self.action_runs
        )
        yield SystemCommand(
            "Compare runs", "Numbers and curves of finished runs side by side", self.action_compare
        )
        yield SystemCommand("Live run", "Back to the run started last", self.open_last_run)
        # Textual offers its own "Keys" panel; this one is the workbench's help (F1).
        yield SystemCommand("Help", "Every key of every screen (F1)", self.action_help)


def sweep_headline(sweep: dict) -> str:
    """A finished campaign in a line: its points and the best one's FID."""
    from .sweep import FID_KEY, from_results, number_text

    view = from_results(sweep, {})
    if view.best is None:
        return f"{len(view.points)} points"
    best = view.points[view.best]
    return f"{len(view.points)} points; best {best.label}: FID {number_text(best, FID_KEY)}"


def run_app(model: str | None = None, runs_root: str | None = None) -> int:
    """Open the workbench in this terminal; returns the process exit code."""
    # textual-image asks the terminal for its graphics support and cell size when first
    # imported, which only works before Textual takes over the terminal.
    import textual_image.widget  # noqa: F401

    app = WorkbenchApp(model=model, runs_root=runs_root)
    app.run()
    return int(app.return_code or 0)
