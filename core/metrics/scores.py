"""Scores computed from features extracted once: every metric sees the same features, so the
numbers are consistent and the extractor runs once per image (torchmetrics' KID and IS would each
run their own Inception pass, with their own resize).

KID and IS are torchmetrics' own implementations, fed the precomputed features through an
identity ``feature`` module; FID uses :mod:`diffusionscope.core.metrics.frechet`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from diffusionscope.core.metrics.frechet import (
    fid_from_features,
    frechet_distance,
    mean_and_covariance,
)


class PrecomputedFeatures(nn.Module):
    """An identity ``feature`` network: torchmetrics receives features instead of images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int = 1000, subsets: int = 100,
        seed: int = 0) -> tuple[float, float, int]:  # fmt: skip
    """KID mean and std over random subsets (torchmetrics, degree-3 polynomial kernel)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = int(min(subset_size, len(real), len(fake)))
    metric = KernelInceptionDistance(feature=PrecomputedFeatures(real.shape[1]),
                                     subsets=subsets, subset_size=size)  # fmt: skip
    metric.update(torch.from_numpy(real).double(), real=True)
    metric.update(torch.from_numpy(fake).double(), real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def inception_score(logits: np.ndarray, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    from torchmetrics.image.inception import InceptionScore

    metric = InceptionScore(feature=PrecomputedFeatures(logits.shape[1]),
                            splits=min(splits, len(logits)))  # fmt: skip
    metric.update(torch.from_numpy(logits).double())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def fid_infinity(fake: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray, points: int = 15,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Chong & Forsyth (2020): FID at ~15 sample counts, each a subset drawn *without*
    replacement, fitted linearly against 1/N; the intercept is FID at infinite N."""
    total = len(fake)
    low = max(total // 5, min(total, 10))
    counts = np.unique(np.linspace(low, total, points).astype(int))
    rng = np.random.default_rng(seed)
    fids = []
    for count in counts:
        subset = fake if count == total else fake[rng.choice(total, count, replace=False)]
        fids.append(fid_from_features(subset, mu_ref, sigma_ref))
    if len(counts) < 2:
        return {"value": fids[-1], "slope": 0.0, "n": counts.tolist(), "fid": fids}
    slope, intercept = np.polyfit(1.0 / counts, fids, 1)
    return {"value": float(intercept), "slope": float(slope), "n": counts.tolist(),
            "fid": [float(f) for f in fids]}  # fmt: skip


def fid_interval(fake: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray, value: float,
                 resamples: int = 50, level: float = 0.95, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """A sampling interval for FID without duplicating samples.

    The classic bootstrap resamples *with* replacement; duplicates shrink the sample covariance
    and bias FID upward. Instead, half-samples are drawn without replacement (the delete-half
    jackknife): the spread of their FIDs estimates the standard error of FID at N.
    """
    from scipy.stats import norm

    total = len(fake)
    if total < 4 or resamples < 2:
        return {"low": value, "high": value, "level": level, "method": "none (too few samples)"}
    rng = np.random.default_rng(seed)
    half = total // 2
    values = [fid_from_features(fake[rng.choice(total, half, replace=False)], mu_ref, sigma_ref)
              for _ in range(resamples)]  # fmt: skip
    stderr = float(np.std(values, ddof=1))
    z = float(norm.ppf(0.5 + level / 2))
    return {"low": value - z * stderr, "high": value + z * stderr, "level": level,
            "stderr": stderr, "resamples": resamples,
            "method": "half-samples without replacement (delete-half jackknife)"}  # fmt: skip


def cmmd(real: np.ndarray, fake: np.ndarray, sigma: float = 10.0, scale: float = 1000.0,
         block: int = 2048) -> float:  # fmt: skip
    """CMMD (Jayasumana et al. 2024): MMD² with a Gaussian kernel on L2-normalised CLIP
    embeddings, σ=10, scaled by 1000 as in the paper; summed in blocks to bound memory."""
    x = torch.nn.functional.normalize(torch.from_numpy(real).double(), dim=1)
    y = torch.nn.functional.normalize(torch.from_numpy(fake).double(), dim=1)
    gamma = 1.0 / (2 * sigma**2)

    def mean_kernel(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for start in range(0, len(a), block):
            distances = torch.cdist(a[start : start + block], b).pow(2)
            total += float(torch.exp(-gamma * distances).sum())
        return total / (len(a) * len(b))

    return scale * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))


__all__ = ["PrecomputedFeatures", "cmmd", "fid_infinity", "fid_interval", "frechet_distance",
           "inception_score", "kid", "mean_and_covariance"]  # fmt: skip
