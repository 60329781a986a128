"""The workbench app and its entry point ``run_app``.

Start-up imports only Textual, textual-plotext, textual-image and the light parts of
``core`` (events, runs, the CLI's parser); torch and diffusers are imported by the worker that
loads a model, so the first screen appears in well under two seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from diffusionscope.core.runs import runs_root as resolve_runs_root
from diffusionscope.tui import settings
from diffusionscope.tui.launcher import LaunchedRun, launch_resume, launch_run, stop_process

#: The stylesheet ships inside the package (``tui/screens.tcss`` links to the top-level file).
CSS_FILE = Path(__file__).resolve().parent / "screens.tcss"
THEMES = ("textual-dark", "nord", "gruvbox", "tokyo-night", "textual-light")


def mode_descriptions() -> dict[str, str]:
    from diffusionscope.core.modes import available_modes

    return {
        name: str(getattr(module, "DESCRIPTION", "")) for name, module in available_modes().items()
    }


class WorkbenchApp(App[int]):
    """Model and modes on the main screen; runs, compare and help one key away."""

    CSS_PATH = CSS_FILE
    TITLE = "diffusionscope"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f2", "runs", "Runs"),
        Binding("f3", "compare", "Compare"),
        Binding("ctrl+t", "next_theme", "Theme"),
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
        remembered = settings.load_settings().get("theme")
        chosen = theme or (remembered if remembered in self.available_themes else None)
        if chosen:
            self.theme = chosen

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Steady cursors when asked (snapshot tests: a blink phase must not decide a picture)."""
        if not self.cursor_blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    def _remember_theme(self, theme: object) -> None:
        saved = settings.load_settings()
        saved["theme"] = getattr(theme, "name", str(theme))
        settings.save_settings(saved)

    def get_default_screen(self) -> Screen:
        from diffusionscope.tui.screens.main import MainScreen

        return MainScreen(self.initial_model, mode_descriptions())

    # ---- runs ---------------------------------------------------------------------------

    def start_run(self, options: list[str], name: str) -> LaunchedRun:
        """Launch ``diffusionscope run OPTIONS`` as a detached child and show its live view."""
        from diffusionscope.tui.screens.run import RunScreen

        launched = launch_run(options, self.runs_root, name)
        self.launched.append(launched)
        self.push_screen(RunScreen(None, launched))
        return launched

    def resume_run(self, run_dir: Path) -> LaunchedRun:
        from diffusionscope.tui.screens.run import RunScreen

        launched = launch_resume(run_dir, self.runs_root)
        self.launched.append(launched)
        self.push_screen(RunScreen(run_dir, launched))
        return launched

    def open_run(self, run_dir: Path) -> None:
        """Attach to a running run or open a finished one; the same view serves both."""
        from diffusionscope.tui.screens.run import RunScreen

        self.push_screen(RunScreen(run_dir))

    def open_last_run(self) -> None:
        if not self.launched:
            self.notify("no run started in this session yet (F2 lists every run)", timeout=3)
            return
        from diffusionscope.tui.screens.run import RunScreen

        last = self.launched[-1]
        self.push_screen(RunScreen(last.find_run_dir(), last))

    def live_runs(self) -> list[LaunchedRun]:
        return [run for run in self.launched if run.alive()]

    # ---- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        from diffusionscope.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_runs(self) -> None:
        from diffusionscope.tui.screens.runs import RunsScreen

        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.runs_root))

    def action_compare(self) -> None:
        from diffusionscope.tui.screens.runs import RunsScreen

        if isinstance(self.screen, RunsScreen):
            self.screen.action_compare()
            return
        self.push_screen(RunsScreen(self.runs_root))
        self.notify("mark two or more finished runs with space, then press c", timeout=4)

    def action_next_theme(self) -> None:
        index = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(index + 1) % len(THEMES)]

    async def action_quit(self) -> None:
        live = self.live_runs()
        if not live:
            self.exit(0)
            return
        from diffusionscope.tui.screens.dialogs import QuitScreen

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
        from diffusionscope.tui.screens.main import MainScreen

        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is not None:
            yield SystemCommand("Load model", "Load the model named on the main screen",
                                main.action_load_model)  # fmt: skip
            yield SystemCommand("Start run", "Start a run of the selected modes",
                                main.action_start_run)  # fmt: skip
            yield SystemCommand("Browse for a model", "Pick a model folder or .safetensors file",
                                main.action_browse)  # fmt: skip
        yield SystemCommand("Runs", "List every run: attach, open, resume, delete",
                            self.action_runs)  # fmt: skip
        yield SystemCommand("Compare runs", "Numbers and curves of finished runs side by side",
                            self.action_compare)  # fmt: skip
        yield SystemCommand("Live run", "Back to the run started last", self.open_last_run)
        yield SystemCommand("Keys", "Every key binding (F1)", self.action_help)


def run_app(model: str | None = None, runs_root: str | None = None) -> int:
    """Open the workbench in this terminal; returns the process exit code."""
    # textual-image asks the terminal for its graphics support and cell size when first
    # imported, which only works before Textual takes over the terminal.
    import textual_image.widget  # noqa: F401

    app = WorkbenchApp(model=model, runs_root=runs_root)
    app.run()
    return int(app.return_code or 0)
