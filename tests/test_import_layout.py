"""The folders are the import graph: every import inside the package is relative and resolves to
a file by its path alone, and the engine refuses to load under any name but ``diffusionscope``.

A reader (an editor, a dependency grapher) that knows nothing of the install's package mapping
can then follow every import, and ``python -m core.cli`` from the repository root cannot load a
second engine whose classes are not ours.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("diffusionscope", "core", "tui")


def _sources(folders: tuple[str, ...] = PACKAGE_FOLDERS) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _is_module(target: Path) -> bool:
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _resolves(path: Path, node: ast.ImportFrom) -> bool:
    """Whether ``from .x import y`` in ``path`` names a module or package by its location alone.

    The repository root holds ``core/`` and ``tui/`` side by side, as they install under
    ``diffusionscope``: ``from ..core.runs import RunWriter`` in ``tui/app.py`` is
    ``core/runs.py`` by location and ``diffusionscope.core.runs`` at run time.

    ``from . import name`` resolves when each name is a module beside ``path`` or is defined in
    the package's ``__init__.py``."""
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    if base != REPO and (REPO not in base.parents or not (base / "__init__.py").is_file()):
        return False
    if node.module:
        return _is_module(base.joinpath(*node.module.split(".")))
    init = (base / "__init__.py").read_text()
    return all(_is_module(base / alias.name) or alias.name in init for alias in node.names)


def _absolute_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []
    return [alias.name for alias in node.names]


def test_imports_inside_the_package_are_relative() -> None:
    absolute = [
        f"{path.relative_to(REPO)}:{node.lineno} imports {name}"
        for path in _sources()
        for node in _imports(path)
        for name in _absolute_names(node)
        if name.split(".")[0] in PACKAGE_FOLDERS
    ]
    assert not absolute, absolute


def test_every_relative_import_resolves_to_a_file_by_its_path() -> None:
    relative = [
        (path, node)
        for path in _sources(("core", "tui"))
        for node in _imports(path)
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert len(relative) > 100  # the engine is wired by these imports, so there are many
    unresolved = [f"{p.relative_to(REPO)}:{n.lineno}" for p, n in relative if not _resolves(p, n)]
    assert not unresolved, unresolved


@pytest.mark.parametrize("module", ["core.cli", "tui.app"])
def test_a_second_import_name_is_refused_in_one_line(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "diffusionscope" in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""
