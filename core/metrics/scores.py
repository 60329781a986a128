"""Scores computed from features extracted once: every metric sees the same features, so the
numbers are consistent and the extractor runs once per image (torchmetrics' KID and IS would each
run their own Inception pass, with their own resize).

KID gives torchmetrics' numbers (see :func:`kid` for why it is computed here); IS is
torch-fidelity's function on the logits; FID uses :mod:`diffusionscope.core.metrics.frechet`.
Each takes a ``device``: the final statistics of a GPU run are computed there, in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .frechet import (
    frechet_distance,
    mean_and_covariance,
)
from .halfsamples import ChunkedFeatures


class PrecomputedFeatures(nn.Module):
    """An identity ``feature`` network: torchmetrics receives features instead of images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _kernel_sums(
    x: torch.Tensor, y: torch.Tensor, block: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column sums of KID's kernel ``k(x, y) = (x·y / d + 1)³``, in row blocks."""
    rows = torch.empty(len(x), dtype=x.dtype, device=x.device)
    columns = torch.zeros(len(y), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), block):
        kernel = _kernel(x[start : start + block], y)
        rows[start : start + block] = kernel.sum(dim=1)
        columns += kernel.sum(dim=0)
    return rows, columns


def _kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T).div_(x.shape[1]).add_(1).pow_(3)


def _off_diagonal_sum(x: torch.Tensor) -> torch.Tensor:
    kernel = _kernel(x, x)
    return kernel.sum() - kernel.diagonal().sum()


class _OwnTerm:
    """``Σ_{i≠j} k(x_i, x_j)`` over subsets of one set.

    A whole set: one number. A subset of most of a set that is small enough to hold its kernel
    (``COMPLEMENT_LIMIT`` samples): the full kernel's sum, less what the few left-out samples
    contribute (``T − 2 Σ_E R + Σ_{E×E} K − Σ_subset diag``). Otherwise the subset's own
    kernel matrix, as torchmetrics computes it."""

    COMPLEMENT_LIMIT = 4096

    def __init__(self, features: torch.Tensor, size: int) -> None:
        self.features, self.size, n = features, size, len(features)
        self.whole = _off_diagonal_sum(features) if size == n else None
        self.kernel = None
        if self.whole is None and n <= self.COMPLEMENT_LIMIT and size * 2 >= n:
            self.kernel = _kernel(features, features)
            self.rows = self.kernel.sum(dim=1)
            self.total = self.rows.sum()
            self.diagonal = self.kernel.diagonal().clone()

    def __call__(self, order: torch.Tensor) -> torch.Tensor:
        """The term for the subset ``order[:size]`` of a random permutation ``order``."""
        if self.whole is not None:
            return self.whole
        if self.kernel is None:
            return _off_diagonal_sum(self.features[order[: self.size]])
        left_out = order[self.size :]
        inside = (
            self.total - 2 * self.rows[left_out].sum() + self.kernel[left_out][:, left_out].sum()
        )
        return inside - self.diagonal[order[: self.size]].sum()


def kid(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    subset_size: int = 1000,
    subsets: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """KID (Bińkowski et al. 2018) as torchmetrics computes it -- the unbiased MMD² with the
    kernel ``(x·y/d + 1)³`` over random subsets of ``subset_size`` real and generated samples,
    drawn by the same ``randperm`` calls -- and what its spread means.

    Hand-written rather than torchmetrics' ``KernelInceptionDistance`` because that rebuilds
    three kernel matrices for every subset, also when a subset is a whole set (N ≤ subset
    size, every run of the digits model): a set's own term is then the same for every subset,
    and the cross term is a sum of precomputed row (or column) sums; a subset of most of a
    smaller set is its kernel sum less the left-out samples' part (:class:`_OwnTerm`). The
    numbers are torchmetrics' (tested).

    ``std`` is the standard deviation of one subset's estimate across the subsets (population
    std, as torchmetrics and Bińkowski et al. report it; not a standard error of the mean).
    When every generated subset is the whole generated set the subsets do not vary the model's
    side, and that spread says nothing about the model: ``std`` is None then, and
    ``std_note`` says why.
    """
    real_t, fake_t = _float64(real, device), _float64(fake, device)
    size = int(min(subset_size, len(real_t), len(fake_t)))
    if size < 2:
        raise ValueError("KID needs at least 2 samples on each side")
    real_whole, fake_whole = size == len(real_t), size == len(fake_t)
    real_rows = fake_columns = None
    if real_whole or fake_whole:
        real_rows, fake_columns = _kernel_sums(real_t, fake_t)
    real_own, fake_own = _OwnTerm(real_t, size), _OwnTerm(fake_t, size)
    generator = torch.Generator().manual_seed(seed)
    values = []
    pairs = size * (size - 1)
    for _ in range(subsets):
        real_order = torch.randperm(len(real_t), generator=generator).to(real_t.device)
        fake_order = torch.randperm(len(fake_t), generator=generator).to(fake_t.device)
        real_index, fake_index = real_order[:size], fake_order[:size]
        xx, yy = real_own(real_order), fake_own(fake_order)
        if fake_whole:
            xy = real_rows[real_index].sum()
        elif real_whole:
            xy = fake_columns[fake_index].sum()
        else:
            xy = _kernel(real_t[real_index], fake_t[fake_index]).sum()
        values.append((xx + yy) / pairs - 2 * xy / size**2)
    scores = torch.stack(values)
    result: dict[str, Any] = {"mean": float(scores.mean()), "subset_size": size, "subsets": subsets}
    return {**result, **_kid_spread(scores, None if fake_whole else size, len(fake_t))}


def _kid_spread(scores: torch.Tensor, size: int | None, n_fake: int) -> dict[str, Any]:
    """KID's ``std`` and what it measures; ``size`` None: every generated subset was the
    whole generated set, and the spread says nothing about the model."""
    if size is None:
        return {
            "std": None,
            "std_note": f"none: every generated subset is all {n_fake} samples, so "
            "subsets do not vary the generated side",
        }
    return {
        "std": float(scores.std(unbiased=False)),
        "std_note": f"std of one subset's KID across {len(scores)} subsets of {size} "
        "(population std, as torchmetrics and Bińkowski et al.)",
    }


def inception_score(
    logits: np.ndarray | torch.Tensor,
    splits: int = 10,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Inception Score with torch-fidelity's own function: the samples shuffled with ``seed``,
    cut into ``splits`` parts, ``exp(E KL(p(y|x) || p(y)))`` per part; mean and the population
    std (ddof=0) over the parts, as torch-fidelity and the original IS code report them. With a
    single part there is no spread: ``std`` is None."""
    from torch_fidelity.metric_isc import (
        KEY_METRIC_ISC_MEAN,
        KEY_METRIC_ISC_STD,
        isc_features_to_metric,
    )

    values = _float64(logits, device)
    parts = int(min(splits, len(values)))
    out = isc_features_to_metric(values, splits=parts, shuffle=True, rng_seed=seed)
    result: dict[str, Any] = {"mean": out[KEY_METRIC_ISC_MEAN], "splits": parts}
    if parts < 2:
        result["std"], result["std_note"] = None, "none: one split"
    else:
        result["std"] = out[KEY_METRIC_ISC_STD]
        result["std_note"] = f"std of the IS of {parts} splits (ddof=0, as torch-fidelity)"
    return result


def _float64(value: np.ndarray | torch.Tensor, device: str | torch.device | None) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    return tensor.to(device if device is not None else tensor.device, torch.float64)


def fid_infinity(
    fake: np.ndarray | torch.Tensor,
    mu_ref: np.ndarray | torch.Tensor,
    sigma_ref: np.ndarray | torch.Tensor,
    points: int = 15,
    seed: int = 0,
    device: str | torch.device | None = None,
    chunks: ChunkedFeatures | None = None,
) -> dict[str, Any]:
    """Chong & Forsyth (2020): FID at ~15 sample counts from N/5 to N, each a subset drawn
    *without* replacement (a union of random chunks, :mod:`.halfsamples`), fitted linearly
    against 1/N; the intercept is FID at infinite N, with the fit's standard error.

    A straight line through noisy points can cross 0 below the smallest FID: an intercept
    below 0 is reported as 0 with ``note`` saying so (``fit`` keeps the line's own value)."""
    from scipy.stats import linregress

    chunks = chunks or _chunks(fake, mu_ref, sigma_ref, seed, device)
    total = chunks.count
    low = max(int(np.ceil(total / 5)), min(total, 2))
    counts = np.unique(np.linspace(low, total, points).round().astype(int))
    rng = np.random.default_rng(seed)
    members = [chunks.random_members(rng, int(count)) for count in counts]
    rows = np.asarray([chunks.rows(m) for m in members])
    fids = [chunks.fid(m) for m in members]
    result: dict[str, Any] = {"n": rows.tolist(), "fid": fids, "stderr": None, "note": ""}
    if len(rows) < 3:
        return {**result, "value": fids[-1], "fit": fids[-1], "slope": 0.0}
    fit = linregress(1.0 / rows, fids)
    value = float(fit.intercept)
    result.update(fit=value, slope=float(fit.slope), stderr=float(fit.intercept_stderr))
    result["value"] = max(value, 0.0)
    if value < 0:
        result["note"] = (
            f"the fit's intercept is {value:.4g} ± {fit.intercept_stderr:.2g}; FID cannot be "
            "below 0, so 0 is reported"
        )
    return result


def _chunks(
    fake: np.ndarray | torch.Tensor,
    mu_ref: np.ndarray | torch.Tensor,
    sigma_ref: np.ndarray | torch.Tensor,
    seed: int,
    device: str | torch.device | None,
) -> ChunkedFeatures:
    fake_t = _float64(fake, device)
    return ChunkedFeatures.build(
        fake_t, _float64(mu_ref, fake_t.device), _float64(sigma_ref, fake_t.device), seed=seed
    )


INTERVAL_COVERS = (
    "E[FID at N]: the FID that another N samples of the same model would give on average "
    "against the same reference statistics. Not the FID at infinite N (FID at N is biased "
    "upward, by about fid_inf_slope / N), and the reference's own sampling noise is not in it"
)


def fid_interval(
    fake: np.ndarray | torch.Tensor,
    mu_ref: np.ndarray | torch.Tensor,
    sigma_ref: np.ndarray | torch.Tensor,
    value: float,
    resamples: int = 50,
    level: float = 0.95,
    seed: int = 0,
    device: str | torch.device | None = None,
    chunks: ChunkedFeatures | None = None,
) -> dict[str, Any]:
    """A sampling interval for FID at N, from half-samples without replacement.

    The classic bootstrap resamples *with* replacement; duplicates shrink the sample covariance
    and bias FID upward. Half-samples drawn without replacement (the delete-half jackknife, here
    over random chunks: :mod:`.halfsamples`) vary about as much as FID at N does (they sit
    higher: FID at N/2 has twice the bias, so only their spread is used). The interval is
    ``FID ± z·s`` with ``s`` the half-samples' standard deviation, cut at 0 below (no FID is
    negative, nor is what it covers). It covers :data:`INTERVAL_COVERS`; in simulation
    (``tests/test_statistics.py``) this covers E[FID at N] more nearly at the stated level than
    the half-samples' own percentiles do with 50 resamples.
    """
    chunks = chunks or _chunks(fake, mu_ref, sigma_ref, seed, device)
    if chunks.count < 4 or resamples < 2:
        return {
            "low": value,
            "high": value,
            "level": level,
            "method": "none (too few samples)",
            "covers": "",
        }
    rng = np.random.default_rng(seed)
    half = chunks.count // 2
    values = [chunks.fid(chunks.random_members(rng, half)) for _ in range(resamples)]
    stderr = float(np.std(values, ddof=1))
    z = two_sided_z(level)
    return {
        "low": max(value - z * stderr, 0.0),
        "high": value + z * stderr,
        "level": level,
        "stderr": stderr,
        "resamples": resamples,
        "chunks": chunks.count,
        "method": (
            f"FID ± {z:.2f}·s, cut at 0; s: spread of {resamples} half-sample FIDs without "
            f"replacement (delete-half jackknife over {chunks.count} random chunks)"
        ),
        "covers": INTERVAL_COVERS,
    }


def cmmd(
    real: np.ndarray | torch.Tensor,
    fake: np.ndarray | torch.Tensor,
    sigma: float = 10.0,
    scale: float = 1000.0,
    block: int = 2048,
    device: str | torch.device | None = None,
) -> float:
    """CMMD (Jayasumana et al. 2024): MMD² with a Gaussian kernel on L2-normalised CLIP
    embeddings, σ=10, scaled by 1000 as in the paper; summed in blocks to bound memory."""
    x = torch.nn.functional.normalize(_float64(real, device), dim=1)
    y = torch.nn.functional.normalize(_float64(fake, x.device), dim=1)
    gamma = 1.0 / (2 * sigma**2)

    def mean_kernel(a: torch.Tensor, b: torch.Tensor) -> float:
        total = 0.0
        for start in range(0, len(a), block):
            distances = torch.cdist(a[start : start + block], b).pow(2)
            total += float(torch.exp(-gamma * distances).sum())
        return total / (len(a) * len(b))

    return scale * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y))


__all__ = [
    "PrecomputedFeatures",
    "cmmd",
    "fid_infinity",
    "fid_interval",
    "frechet_distance",
    "inception_score",
    "kid",
    "mean_and_covariance",
]


def two_sided_z(level: float) -> float:
    """The normal quantile of a two-sided interval at ``level`` (1.96 at 0.95): the FID
    interval's and the paired differences' half-width in standard errors."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))
