"""A 4-point campaign (``--sweep guidance-scale=1.5,3,5,8``) against 4 separate runs of the
same points, on the digits model, in CPU seconds (``time.process_time``) of this process.

Both use the same warm reference cache, so what the campaign saves is what it shares: the
pipeline, the feature network and the CLIP model loaded once, the reference statistics read and
moved to the statistics device once. It does more, too: the paired differences of every
adjacent pair and of the best point against the others, and the campaign's figure. The two
alternate and the best of each is kept, so a busy machine slows both alike.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

SCALES = ("1.5", "3", "5", "8")
COMMON = ["--modes", "metrics", "--quiet", "-n", "64", "--steps", "4", "--batch-size", "32"]
COMMON += ["--metrics", "fid,kid,clip", "--bootstrap", "20"]
REPEATS = 2


def campaign(root: Path) -> tuple[float, list[float]]:
    from diffusionscope.core.cli import main as cli

    started = time.process_time()
    sweep = f"guidance-scale={','.join(SCALES)}"
    assert cli(["run", *COMMON, "--sweep", sweep, "--runs-root", str(root)]) == 0
    spent = time.process_time() - started
    results = json.loads(next(root.iterdir()).joinpath("results.json").read_text())
    return spent, [p["metrics"]["fid"]["value"] for p in results["sweep"]["points"]]


def separate(root: Path) -> tuple[float, list[float]]:
    from diffusionscope.core.cli import main as cli

    started = time.process_time()
    for scale in SCALES:
        folder = root / scale
        assert cli(["run", *COMMON, "--guidance-scale", scale, "--runs-root", str(folder)]) == 0
    spent = time.process_time() - started
    fids = [
        json.loads(next((root / s).iterdir()).joinpath("results.json").read_text())["metrics"][
            "fid"
        ]["value"]
        for s in SCALES
    ]
    return spent, fids


def main() -> None:
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as temp:
        os.environ["DIFFUSIONSCOPE_CACHE"] = str(Path(temp) / "cache")
        separate(Path(temp) / "warm")  # fills the reference cache for both
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
