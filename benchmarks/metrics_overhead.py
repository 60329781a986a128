"""A metrics run on the digits model with streaming and per-step checkpoints, against a bare
loop (pipeline + torchmetrics FID update + one compute) over the same samples.

Both use the same pipeline, feature network, sample count and batch size, in one process, and
exclude reference-set extraction (the run's comes from its cache, warmed first).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import torch

N, BATCH, STEPS = 256, 32, 10


def bare_loop(reference: np.ndarray) -> tuple[float, float]:
    from torchmetrics.image.fid import FrechetInceptionDistance

    from core.generation import GenerationSettings, generate
    from core.loading import load_pipeline
    from core.zoo import DIGITS_LDM, DIGITS_PROMPTS
    from core.zoo.features import load_digits_features

    pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    net = load_digits_features()
    prompts = DIGITS_PROMPTS.read_text().splitlines()
    fid = FrechetInceptionDistance(feature=net, reset_real_features=False)
    fid.update(torch.from_numpy(reference).permute(0, 3, 1, 2), real=True)
    started = time.perf_counter()
    for start in range(0, N, BATCH):
        indices = range(start, min(start + BATCH, N))
        images = generate(pipeline, list(indices), GenerationSettings(steps=STEPS),
                          [prompts[i % len(prompts)] for i in indices])  # fmt: skip
        fid.update(torch.from_numpy(images).permute(0, 3, 1, 2), real=False)
    value = float(fid.compute())
    return time.perf_counter() - started, value


def our_run(root: str) -> tuple[float, float]:
    import json
    from pathlib import Path

    from core.cli import main as cli

    options = ["run", "--modes", "metrics", "--metrics", "fid", "--runs-root", root, "--quiet",
               "-n", str(N), "--batch-size", str(BATCH), "--steps", str(STEPS), "--bootstrap", "0"]  # fmt: skip
    started = time.perf_counter()
    assert cli(options) == 0
    elapsed = time.perf_counter() - started
    run_dir = sorted(Path(root).iterdir())[-1]
    results = json.loads((run_dir / "results.json").read_text())["metrics"]
    chunks = len(list((run_dir / "checkpoint").glob("metrics-chunk-*.npz")))
    print(f"   our run: {len(results['fid']['curve'])} streamed FID points, {chunks} checkpoints")
    return elapsed, results["fid"]["value"]


def main() -> None:
    from core.images import find_images, load_images
    from core.zoo import DIGITS_REFERENCE

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as root:
        os.environ["DIFFUSIONSCOPE_CACHE"] = cache
        from core.cli import main as cli

        cli(["run", "--modes", "metrics", "--metrics", "fid", "--runs-root", root, "--quiet",
             "-n", "8", "--batch-size", "8", "--steps", "2", "--bootstrap", "0"])  # warm cache  # fmt: skip
        reference, _ = load_images(find_images(DIGITS_REFERENCE))
        bare_seconds, bare_fid = bare_loop(reference)
        ours_seconds, ours_fid = our_run(root)
    print(f"   bare loop {bare_seconds:.1f} s (FID {bare_fid:.4f}); ours {ours_seconds:.1f} s "
          f"(FID {ours_fid:.4f})")  # fmt: skip
    print(f"   overhead ratio ours/bare: {ours_seconds / bare_seconds:.3f} (target <= 1.10)")
