"""Run one benchmark (``python -m benchmarks frechet``) or all of them (no argument).

Each benchmark is a module ``benchmarks/<name>.py`` with ``main() -> None`` that measures our
code and its baseline in the same process run and prints the ratio.
"""

from __future__ import annotations

import importlib
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
    names = argv or available()
    unknown = [name for name in names if name not in available()]
    if unknown:
        print(f"benchmarks: unknown benchmark {unknown[0]!r} (have: {', '.join(available())})",
              file=sys.stderr)  # fmt: skip
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"benchmarks.{name}").main()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
