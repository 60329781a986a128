"""Run one benchmark (``python -m benchmarks frechet``) or all of them (no argument).

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


def main(argv: list[str]) -> int:
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
