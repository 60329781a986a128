"""Improved precision/recall and density/coverage on 10k×10k 2048-d random features: this
checkout's one blocked pass set (three passes over distance blocks) against the code at
``d76af1f`` (seven passes), time and peak memory, against the N×N float32 matrix neither forms.

Each side runs in its own process (see ``_baseline.py``), so each reports its own peak
memory; the runs alternate, old then new, so other load on the machine hits both.
"""

from __future__ import annotations

import statistics

from benchmarks._baseline import both_sides

N, DIM, REPEATS = 10_000, 2048, 2


def main() -> None:
    old, new = both_sides()
    try:
        results: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(REPEATS):
            for side in (old, new):
                results[side.name].append(side.run({"op": "prdc", "n": N, "dim": DIM}))
    finally:
        old.close()
        new.close()
    full_matrix_mb = N * N * 4 / 2**20
    print(
        f"   {N}x{N} {DIM}-d random features, torch threads 2; one N×N float32 distance "
        f"matrix alone would be {full_matrix_mb:.0f} MB"
    )
    for name, label in (("old", "d76af1f"), ("new", "this checkout")):
        runs = results[name]
        values = ", ".join(f"{v:.4f}" for v in runs[0]["values"])
        extra = max(r["peak_mb"] - r["peak_before_mb"] for r in runs)
        seconds = [r["seconds"] for r in runs]
        listed = ", ".join(f"{t:.1f}" for t in seconds)
        print(
            f"   {name} ({label}): median {statistics.median(seconds):.1f} s "
            f"(runs {listed}); P/R/D/C {values}; peak "
            f"RSS {runs[-1]['peak_mb']:.0f} MB, {extra:.0f} MB above the inputs' "
            f"{runs[0]['inputs_mb']:.0f} MB"
        )
    ratios = [
        o["seconds"] / n["seconds"] for o, n in zip(results["old"], results["new"], strict=True)
    ]
    print(
        f"   speed-up old/new: median of paired runs {statistics.median(ratios):.2f}x "
        f"(pairs {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.5x)"
    )
