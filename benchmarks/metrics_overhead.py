"""A metrics run on the digits model with streaming and per-step checkpoints, against a bare
loop (pipeline + torchmetrics FID update + one compute) over the same samples.

Both are timed end to end in one process -- loading the pipeline and the feature network, the
reference set (the bare loop reads the images, the run its cached features, warmed first),
sampling, FID -- with the same seeds, prompts, sample count, batch size and steps. They
alternate, and the best of each is compared, so a busy machine slows both alike.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch

N, BATCH, STEPS, REPEATS = 256, 32, 10, 2


def bare_loop() -> tuple[float, float]:
    from torchmetrics.image.fid import FrechetInceptionDistance

    from diffusionscope.core.generation import GenerationSettings, generate
    from diffusionscope.core.images import find_images, load_images, to_uint8_nchw
    from diffusionscope.core.loading import load_pipeline
    from diffusionscope.core.metrics.loop import read_prompts
    from diffusionscope.core.zoo import DIGITS_LDM, DIGITS_PROMPTS, DIGITS_REFERENCE
    from diffusionscope.core.zoo.features import load_digits_features

    started = time.perf_counter()
    pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    fid = FrechetInceptionDistance(feature=load_digits_features(), reset_real_features=False)
    reference, _ = load_images(find_images(DIGITS_REFERENCE))
    for start in range(0, len(reference), 256):
        fid.update(to_uint8_nchw(reference[start : start + 256]), real=True)
    prompts = read_prompts(str(DIGITS_PROMPTS))
    for start in range(0, N, BATCH):
        indices = range(start, min(start + BATCH, N))
        images = generate(
            pipeline,
            list(indices),
            GenerationSettings(steps=STEPS),
            [prompts[i % len(prompts)] for i in indices],
        )
        fid.update(to_uint8_nchw(images), real=False)
    value = float(fid.compute())
    return time.perf_counter() - started, value


def our_run(root: Path) -> tuple[float, float, str]:
    from diffusionscope.core.cli import main as cli

    options = [
        "run",
        "--modes",
        "metrics",
        "--metrics",
        "fid,kid",
        "--runs-root",
        str(root),
        "--quiet",
        "-n",
        str(N),
        "--batch-size",
        str(BATCH),
        "--steps",
        str(STEPS),
        "--bootstrap",
        "50",
        "--stream-at",
        "32,64,128",
    ]
    started = time.perf_counter()
    assert cli(options) == 0
    elapsed = time.perf_counter() - started
    run_dir = sorted(root.iterdir())[-1]
    results = json.loads((run_dir / "results.json").read_text())["metrics"]
    chunks = len(list((run_dir / "checkpoint").glob("metrics-chunk-*.npz")))
    detail = (
        f"{len(results['fid']['curve'])} streamed FID+KID points, {chunks} checkpoints, "
        "FID∞ fit, 50 half-sample FIDs, KID"
    )
    return elapsed, results["fid"]["value"], detail


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as root:
        os.environ["DIFFUSIONSCOPE_CACHE"] = cache
        from diffusionscope.core.cli import main as cli

        cli(
            [
                "run",
                "--modes",
                "metrics",
                "--metrics",
                "fid",
                "--runs-root",
                root,
                "--quiet",
                "-n",
                "8",
                "--batch-size",
                "8",
                "--steps",
                "2",
                "--bootstrap",
                "0",
            ]
        )  # warm cache
        bare_times, our_times = [], []
        for _ in range(REPEATS):
            seconds, bare_fid = bare_loop()
            bare_times.append(seconds)
            seconds, our_fid, detail = our_run(Path(root))
            our_times.append(seconds)
    bare, ours = min(bare_times), min(our_times)
    print(f"   {N} samples, batch {BATCH}, {STEPS} steps; ours: {detail}")
    print(
        f"   bare loop {bare:.1f} s (runs {', '.join(f'{t:.1f}' for t in bare_times)}; "
        f"torchmetrics FID {bare_fid:.4f})"
    )
    print(
        f"   ours      {ours:.1f} s (runs {', '.join(f'{t:.1f}' for t in our_times)}; "
        f"FID {our_fid:.4f})"
    )
    print(f"   overhead ratio ours/bare: {ours / bare:.3f} (target <= 1.10)")
