"""Time to the first screen: the workbench vs a bare Textual hello app, as a ratio.

Each measurement is a fresh interpreter (imports are most of start-up), run headless, that
exits as soon as the first screen is ready (Textual's ``Ready`` event). Wall time is taken by
the parent from spawn to exit. The target: the workbench under 2 s before any model loads.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPEATS = 5
TARGET_SECONDS = 2.0

HELLO_APP = """
from textual.app import App
from textual.widgets import Static

class Hello(App):
    def compose(self):
        yield Static("hello")
    def on_ready(self):
        self.exit()

Hello().run(headless=True, size=(120, 40))
"""

WORKBENCH_APP = """
import textual_image.widget  # as run_app does, before Textual owns the terminal
from diffusionscope.tui.app import WorkbenchApp

class FirstScreen(WorkbenchApp):
    def on_ready(self):
        assert type(self.screen).__name__ == "MainScreen"
        self.exit()

FirstScreen(runs_root={runs_root!r}).run(headless=True, size=(120, 40))
"""


def _time_once(code: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return elapsed


def measure(code: str, repeats: int = REPEATS) -> list[float]:
    _time_once(code)  # warm the file cache and bytecode, as a second launch would be
    return [_time_once(code) for _ in range(repeats)]


def main() -> None:
    with tempfile.TemporaryDirectory() as runs_root:
        hello = measure(HELLO_APP)
        ours = measure(WORKBENCH_APP.format(runs_root=runs_root))
    hello_median, ours_median = statistics.median(hello), statistics.median(ours)
    print(f"time to first screen, median of {REPEATS} fresh processes (120x40, headless)")
    print(f"  bare textual hello app : {hello_median:.3f} s  (min {min(hello):.3f})")
    print(f"  diffusionscope TUI     : {ours_median:.3f} s  (min {min(ours):.3f})")
    print(f"  ratio ours / hello     : {ours_median / hello_median:.2f}x")
    verdict = "meets" if ours_median < TARGET_SECONDS else "MISSES"
    print(f"  target < {TARGET_SECONDS:.1f} s        : {verdict}")


if __name__ == "__main__":
    main()
