"""Packaging: one import name, a wheel that carries everything, and an engine that never
imports the workbench (not even lazily, inside a function)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = {
    "diffusionscope": "diffusionscope",
    "diffusionscope.core": "core",
    "diffusionscope.tui": "tui",
}


def _declared_packages() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == SOURCE_ROOTS
    return set(config["packages"])


def test_every_source_package_is_declared() -> None:
    found = set()
    for name, folder in SOURCE_ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *parts)))
    assert found == _declared_packages()


def test_core_never_imports_the_workbench() -> None:
    """The layering holds in the source itself: no import of the UI anywhere under core/."""
    offenders = []
    for path in (REPO / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")
                if top[0] in ("textual", "textual_plotext", "textual_image", "plotext", "tui") or (
                    top[:2] == ["diffusionscope", "tui"]
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    assert not offenders, offenders


def test_wheel_installs_one_top_level_package_with_its_stylesheet(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("diffusionscope-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        stylesheet = archive.read("diffusionscope/tui/screens.tcss").decode()
    top = {name.split("/")[0] for name in names}
    assert top == {"diffusionscope", wheel.name.split("-py3")[0] + ".dist-info"}
    assert stylesheet == (REPO / "screens.tcss").read_text()
    for shipped in (
        "digits-ldm/unet/diffusion_pytorch_model.safetensors",
        "prompts.txt",
        "digits-clip/tokenizer.json",
        "digits-features/model.safetensors",
    ):
        assert f"diffusionscope/core/zoo/{shipped}" in names
    prefix = "diffusionscope/core/zoo/digits-reference/"
    shipped_reference = [n for n in names if n.startswith(prefix)]
    assert len(shipped_reference) == len(list((REPO / "core/zoo/digits-reference").iterdir()))
    assert "diffusionscope/__main__.py" in names and not any("benchmarks" in n for n in names)
