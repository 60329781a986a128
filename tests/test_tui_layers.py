"""Layering: ``core`` never imports the TUI's libraries, and the TUI starts without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UI_PACKAGES = ("textual", "textual_plotext", "textual_image", "plotext", "diffusionscope.tui")
HEAVY_PACKAGES = ("torch", "diffusers", "transformers", "torchmetrics", "accelerate")


def _imported_top_levels(code: str) -> set[str]:
    script = (
        code
        + "\nimport sys\nprint(' '.join(sorted({'.'.join(m.split('.')[:2]) if m.startswith('diffusionscope.') else m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.split())


def test_core_does_not_import_textual() -> None:
    """Every module under core/ (the zoo's training scripts aside) imports no UI package."""
    modules = sorted(
        "diffusionscope."
        + ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "core").rglob("*.py")
        if "zoo/build" not in path.as_posix() and "__main__" not in path.name
    )
    assert "diffusionscope.core.cli" in modules and "diffusionscope.core.runs" in modules
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    leaked = _imported_top_levels(code) & set(UI_PACKAGES)
    assert not leaked, f"core imports {sorted(leaked)}"


def test_tui_starts_without_torch_or_diffusers() -> None:
    """Opening the app imports no heavy library: they load in the model worker only."""
    code = (
        "import textual_image.widget\n"
        "from diffusionscope.tui.app import WorkbenchApp\n"
        "from diffusionscope.tui.screens import main, run, runs, compare, help, dialogs\n"
    )
    loaded = _imported_top_levels(code)
    assert "textual" in loaded and "diffusionscope.tui" in loaded
    leaked = loaded & set(HEAVY_PACKAGES)
    assert not leaked, f"the TUI imports {sorted(leaked)} at start-up"
