"""The FID interval and FID∞ on N × 2048-d features: today's chunked half-samples vs the
per-subset covariances they replace (kept below as the baseline), and PR/DC beside them.

``python -m benchmarks statistics [--n N] [--skip-prdc]`` (default N = 50000). Both sides run
in this process, interleaved, timed with ``time.process_time``; the last line is
``ratio=<old/new>`` for interval + FID∞ (target >= 5 at 50k, >= 3 at 10k). The FID itself is
one function on both sides; the printed intervals and FID∞ differ only by their random
subsets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffusionscope.core.metrics.frechet import fid_from_features, mean_and_covariance
from diffusionscope.core.metrics.halfsamples import ChunkedFeatures
from diffusionscope.core.metrics.prdc import prdc
from diffusionscope.core.metrics.scores import fid_infinity, fid_interval

DIM, REFERENCE_ROWS, RESAMPLES = 2048, 10000, 50


def old_interval(fake, mu, sigma, value, resamples=RESAMPLES, seed=0) -> tuple[float, float]:
    """The interval as it was: 50 half-samples, each its own covariance and square root."""
    rng = np.random.default_rng(seed)
    half = len(fake) // 2
    values = [
        fid_from_features(
            fake[torch.from_numpy(rng.choice(len(fake), half, replace=False))], mu, sigma
        )
        for _ in range(resamples)
    ]
    stderr = float(np.std(values, ddof=1))
    return value - 1.96 * stderr, value + 1.96 * stderr


def old_infinity(fake, mu, sigma, points=15, seed=0) -> float:
    """FID∞ as it was: 15 subset sizes, each its own covariance and square root."""
    total = len(fake)
    counts = np.unique(np.linspace(max(total // 5, min(total, 10)), total, points).astype(int))
    rng = np.random.default_rng(seed)
    fids = [
        fid_from_features(
            fake if n == total else fake[torch.from_numpy(rng.choice(total, n, replace=False))],
            mu,
            sigma,
        )
        for n in counts
    ]
    return float(np.polyfit(1.0 / counts, fids, 1)[1])


def _features(rows: int, seed: int) -> torch.Tensor:
    """Correlated, non-negative, Inception-like features (float32, as a run collects them)."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(1)) / DIM**0.5
    raw = torch.randn(rows, DIM, generator=generator) @ mixing
    return torch.relu(raw + 0.5 + 0.05 * seed).float()


def _timed(function):
    started = time.process_time()
    value = function()
    return time.process_time() - started, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks statistics")
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--skip-prdc", action="store_true")
    args = parser.parse_args(argv or [])
    fake = _features(args.n, seed=2)
    mu, sigma = (torch.from_numpy(x) for x in mean_and_covariance(_features(REFERENCE_ROWS, 1)))
    value = fid_from_features(fake, mu, sigma)
    print(f"   {args.n} x {DIM} features, torch threads {torch.get_num_threads()}, FID {value:.6f}")

    def new():
        chunks = ChunkedFeatures.build(fake, mu, sigma)
        interval = fid_interval(fake, mu, sigma, value, resamples=RESAMPLES, chunks=chunks)
        return interval, fid_infinity(fake, mu, sigma, chunks=chunks)

    t_old_interval, interval_before = _timed(lambda: old_interval(fake, mu, sigma, value))
    t_new, (interval, infinity) = _timed(new)
    t_old_infinity, infinity_before = _timed(lambda: old_infinity(fake, mu, sigma))
    old = t_old_interval + t_old_infinity
    print(
        f"   before: interval [{interval_before[0]:.4f}, {interval_before[1]:.4f}] "
        f"FID∞ {infinity_before:.4f}  {old:.1f} CPU-s"
    )
    print(
        f"   now:    interval [{interval['low']:.4f}, {interval['high']:.4f}] FID∞ "
        f"{infinity['value']:.4f} ± {infinity['stderr']:.4f}  {t_new:.1f} CPU-s "
        f"({interval['chunks']} chunks)"
    )
    whole = infinity["fid"][-1]  # every row, from the chunks' statistics
    print(
        f"   FID {value:.9f}; from the chunks {whole:.9f} ({abs(whole - value) / value:.1e} apart)"
    )
    if not args.skip_prdc:
        real = _features(args.n, seed=1)
        t_prdc, _ = _timed(lambda: prdc(real, fake, k_pr=3, k_dc=5))
        print(f"   PR/DC ({args.n} vs {args.n}): {t_prdc:.1f} CPU-s")
    print(f"ratio={old / t_new:.2f}")
