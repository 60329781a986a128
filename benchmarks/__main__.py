"""Run one benchmark (``python -m benchmarks frechet``) or all of them (no argument);
``--help`` lists them.

Each benchmark is a module ``benchmarks/<name>.py`` with ``main()`` that measures our code and
its baseline in the same run and prints the ratio. Options after the names go to the
benchmarks whose ``main`` takes an argument list (``python -m benchmarks gpu --out FILE``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_")
    )


def _first_line(name: str) -> str:
    """A benchmark's one-line summary: the first line of its module docstring, read without
    importing it (imports load torch and models)."""
    import ast

    source = (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def usage() -> str:
    lines = [
        "usage: python -m benchmarks [NAME ...] [OPTIONS]",
        "",
        "Runs the named benchmarks (all of them with no name); options go to the benchmarks",
        "whose main() takes an argument list. Benchmarks:",
    ]
    width = max(len(name) for name in available())
    lines += [f"  {name:<{width}}  {_first_line(name)}" for name in available()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    names, options = argv[:split] or available(), argv[split:]
    unknown = [name for name in names if name not in available()]
    if unknown:
        print(
            f"benchmarks: unknown benchmark {unknown[0]!r} (have: {', '.join(available())})",
            file=sys.stderr,
        )
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        entry = importlib.import_module(f"benchmarks.{name}").main
        entry(options) if inspect.signature(entry).parameters else entry()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
