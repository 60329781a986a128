"""The installed wheel, used as a stranger would: read from standard input by ``.ci/run``.

It runs in a second environment that has only the built wheel, from a folder holding its own
``core`` package (whose import fails loudly), so the working directory comes first on the import
path. The workbench opens headless at 80x24 with the stylesheet from the installed package, and a
schedule run started from it (a child ``python -m diffusionscope run`` in that same folder)
finishes with results.
"""

import asyncio
import importlib.metadata
import json
import sys
import time
from pathlib import Path

from diffusionscope.tui.app import CSS_FILE, WorkbenchApp

SHIPPED_TOP_LEVEL = {"diffusionscope", "diffusionscope-0.1.0.dist-info"}


def check_installed_tree() -> None:
    files = importlib.metadata.files("diffusionscope") or []
    top = {f.parts[0] for f in files if not f.parts[0].startswith("..")}
    assert top == SHIPPED_TOP_LEVEL, f"the wheel installs {sorted(top)}"
    assert "site-packages" in str(CSS_FILE) and CSS_FILE.is_file(), CSS_FILE


async def open_workbench_and_run_schedule(runs_root: Path) -> Path:
    app = WorkbenchApp(runs_root=runs_root, cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#model-source") is not None
        launched = app.start_run(["--modes", "schedule"], "wheel")
        deadline = time.monotonic() + 600
        while launched.process.poll() is None:
            assert time.monotonic() < deadline, "the schedule run did not finish in 10 minutes"
            await pilot.pause(0.5)
        assert launched.process.returncode == 0, launched.log_path.read_text()[-2000:]
    [results] = runs_root.glob("*-wheel-*/results.json")
    return results


def main() -> None:
    check_installed_tree()
    results = asyncio.run(open_workbench_and_run_schedule(Path.cwd() / "runs"))
    assert "schedule" in json.loads(results.read_text())
    assert "core" not in sys.modules
    print(f"wheel check: workbench opened, schedule run finished ({results.parent.name})")


main()
