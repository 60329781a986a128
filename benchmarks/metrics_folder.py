"""The metrics mode on a ``--generated`` folder of 1024 images, against the code at ``d76af1f``.

Both sides run ``diffusionscope run --modes metrics --generated GEN --reference REF --features
digits`` with the default metrics (FID with its curve, FID∞ and 50 half-sample FIDs, KID, IS,
precision/recall, density/coverage), the same folders and options, in their own long-lived
processes (see ``_baseline.py``). Each side first runs once untimed: imports are loaded and the
reference statistics cached, as on any second run against the same reference set. Then the
timed runs alternate, old and new, so that other load on the machine hits both. The time is
``main([...])`` from the call to its return: decoding, extraction, statistics, every file of
the run directory.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._baseline import both_sides

N, REPEATS = 1024, 3


def _make_generated(folder: Path) -> None:
    """1024 digit pictures: the shipped reference set, then shifted copies of its first."""
    from PIL import Image

    from diffusionscope.core.zoo import DIGITS_REFERENCE

    folder.mkdir(parents=True)
    sources = sorted(DIGITS_REFERENCE.glob("*.png"))
    for index in range(N):
        image = np.asarray(Image.open(sources[index % len(sources)]).convert("RGB"))
        if index >= len(sources):
            image = np.roll(image, 1 + index // len(sources), axis=1)
        Image.fromarray(image).save(folder / f"{index:05d}.png")


def main() -> None:
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    work = Path(tempfile.mkdtemp(prefix="metrics-folder-"))
    try:
        generated = work / "generated"
        _make_generated(generated)
        old, new = both_sides({"DIFFUSIONSCOPE_CACHE": str(work / "cache")})
        try:
            times: dict[str, list[float]] = {"old": [], "new": []}
            for repeat in range(REPEATS + 1):
                for side in (old, new):
                    root = work / f"runs-{side.name}-{repeat}"
                    args = [
                        "run",
                        "--modes",
                        "metrics",
                        "--generated",
                        str(generated),
                        "--reference",
                        str(DIGITS_REFERENCE),
                        "--features",
                        "digits",
                        "--quiet",
                        "--runs-root",
                        str(root),
                    ]
                    result = side.run({"op": "metrics", "args": args})
                    if result["code"] != 0:
                        raise RuntimeError(f"{side.name} side: metrics run exited {result['code']}")
                    if repeat:  # the first round only warms imports and the reference cache
                        times[side.name].append(result["seconds"])
        finally:
            old.close()
            new.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [o / n for o, n in zip(times["old"], times["new"], strict=True)]
    print(
        f"   {N} generated images vs the 1000-image digits reference (cached), digits "
        "features, default metrics; torch threads 2"
    )
    for name in ("old", "new"):
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(
            f"   {name} ({'d76af1f' if name == 'old' else 'this checkout'}): median "
            f"{statistics.median(times[name]):.2f} s (runs {runs})"
        )
    print(
        f"   speed-up old/new: median of paired runs {statistics.median(ratios):.2f}x "
        f"(pairs {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.8x)"
    )
