"""A 4-point campaign (``--sweep guidance-scale=1.5,3,5,8``) against 4 separate runs of the
same points, on the digits model, in CPU seconds.

Each side runs as the user runs it: ``diffusionscope run`` processes (the campaign one, the
separate runs four), timed by the CPU time of the finished child processes
(``resource.getrusage(RUSAGE_CHILDREN)``: user + system). Both use the same warm reference
cache, so what the campaign saves is what it shares: one process start, the pipeline, the
feature network and the CLIP model loaded once, the reference statistics read once. It does
more, too: the paired differences of every adjacent pair and of the best point against the
others, and the campaign's figure. The sides alternate and the best of each is kept, so a busy
machine slows both alike; the FIDs of the two sides must be equal, point by point.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SCALES = ("1.5", "3", "5", "8")
COMMON = ["--modes", "metrics", "--quiet", "-n", "64", "--steps", "4", "--batch-size", "32"]
COMMON += ["--metrics", "fid,kid,clip", "--bootstrap", "20"]
REPEATS = 2


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(*options: str) -> None:
    command = [sys.executable, "-m", "diffusionscope", "run", *COMMON, *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def _fid(root: Path) -> dict:
    return json.loads(next(root.iterdir()).joinpath("results.json").read_text())


def campaign(root: Path) -> tuple[float, list[float]]:
    started = _children_cpu()
    _cli("--sweep", f"guidance-scale={','.join(SCALES)}", "--runs-root", str(root))
    spent = _children_cpu() - started
    return spent, [p["metrics"]["fid"]["value"] for p in _fid(root)["sweep"]["points"]]


def separate(root: Path) -> tuple[float, list[float]]:
    started = _children_cpu()
    for scale in SCALES:
        _cli("--guidance-scale", scale, "--runs-root", str(root / scale))
    spent = _children_cpu() - started
    return spent, [_fid(root / scale)["metrics"]["fid"]["value"] for scale in SCALES]


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        os.environ["DIFFUSIONSCOPE_CACHE"] = str(Path(temp) / "cache")
        _cli("--guidance-scale", "3", "--runs-root", str(Path(temp) / "warm"))  # the cache
        best_campaign = best_separate = float("inf")
        for repeat in range(REPEATS):
            spent, swept = campaign(Path(temp) / f"campaign-{repeat}")
            best_campaign = min(best_campaign, spent)
            spent, alone = separate(Path(temp) / f"separate-{repeat}")
            best_separate = min(best_separate, spent)
            assert swept == alone, (swept, alone)  # the same numbers, point by point
    print(f"4 separate runs:      {best_separate:7.2f} CPU s")
    print(f"one 4-point campaign: {best_campaign:7.2f} CPU s")
    print(f"ratio separate / campaign: {best_separate / best_campaign:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
