"""Differences between two sets of samples that share their seeds, prompts and reference, with
*paired* intervals.

Sample ``i`` of every point of a campaign (and of two runs with the same seed and prompts) is
made from the same seed and prompt, so the two sides' errors are correlated: most of what makes
one draw of N samples score worse than another moves both sides together. A paired interval
resamples the *same sample indices* on both sides and looks at the spread of the difference;
an unpaired one adds the two sides' spreads as if they were independent, and is wider.

- FID, KID, IS, precision, recall, density, coverage: half-samples without replacement (the
  delete-half jackknife :func:`~diffusionscope.core.metrics.scores.fid_interval` uses), the same
  index sets on both sides. The spread of ``metric_A(S) − metric_B(S)`` over the sets ``S``
  estimates the standard error of the difference at N; the interval is centred on the
  difference of the full-sample values.
- CLIP score: a mean over samples, so the paired bootstrap of the per-sample differences
  (percentile interval).

Hand-written: the bootstrap tools at hand (``scipy.stats.bootstrap``, torchmetrics'
``BootStrapper``) resample with replacement, which duplicates samples and biases FID, and
cannot resample the same indices through a covariance-based statistic on two sides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .frechet import fid_from_features
from .registry import METRIC_FIELDS
from .scores import two_sided_z

LEVEL = 0.95
HALF_SAMPLE_METHOD = "paired half-samples without replacement (same indices on both sides)"
BOOTSTRAP_METHOD = "paired bootstrap of per-sample differences (percentile)"


def half_sample_sets(n: int, resamples: int, seed: int) -> list[np.ndarray]:
    """``resamples`` index sets of ``n // 2`` samples, drawn without replacement."""
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, n // 2, replace=False)) for _ in range(resamples)]


def interval_from_spread(
    difference: float, spread: Sequence[float], level: float = LEVEL
) -> dict[str, Any]:
    """``difference ± z·stderr``, the standard error being the spread of half-sample
    differences (delete-half jackknife: no scale factor at d = n/2)."""
    stderr = float(np.std(np.asarray(spread, dtype=np.float64), ddof=1))
    half = two_sided_z(level) * stderr
    return {"low": difference - half, "high": difference + half, "stderr": stderr}


# --------------------------------------------------------------------------------------------
# FID alone, for direct use and for the simulation that checks the interval
# --------------------------------------------------------------------------------------------


def fid_difference(
    features_a: np.ndarray | torch.Tensor,
    features_b: np.ndarray | torch.Tensor,
    mu_ref: Any,
    sigma_ref: Any,
    *,
    paired: bool = True,
    resamples: int = 50,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """``FID(A) − FID(B)`` with its interval: paired (the same half-sample on both sides) or,
    for comparison, unpaired (independent half-samples; the two spreads added)."""
    a = torch.as_tensor(features_a, dtype=torch.float64)
    b = torch.as_tensor(features_b, dtype=torch.float64)
    mu, sigma = torch.as_tensor(mu_ref), torch.as_tensor(sigma_ref)
    difference = fid_from_features(a, mu, sigma) - fid_from_features(b, mu, sigma)
    sets_a = half_sample_sets(len(a), resamples, seed)
    if paired:
        spread = [
            fid_from_features(a[s], mu, sigma) - fid_from_features(b[s], mu, sigma) for s in sets_a
        ]
        return {"difference": difference, **interval_from_spread(difference, spread, level)}
    sets_b = half_sample_sets(len(b), resamples, seed + 1)
    spread_a = [fid_from_features(a[s], mu, sigma) for s in sets_a]
    spread_b = [fid_from_features(b[s], mu, sigma) for s in sets_b]
    stderr = float(np.hypot(np.std(spread_a, ddof=1), np.std(spread_b, ddof=1)))
    half = two_sided_z(level) * stderr
    return {
        "difference": difference,
        "low": difference - half,
        "high": difference + half,
        "stderr": stderr,
    }


def clip_difference(
    scores_a: np.ndarray, scores_b: np.ndarray, resamples: int = 1000, level: float = LEVEL, seed=0
) -> dict[str, Any]:
    """Mean CLIP score of A less B's, with the paired bootstrap's percentile interval."""
    differences = np.asarray(scores_a, np.float64) - np.asarray(scores_b, np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {
        "difference": float(differences.mean()),
        "low": float(low),
        "high": float(high),
        "stderr": float(means.std(ddof=1)),
    }


# --------------------------------------------------------------------------------------------
# Every metric of two points
# --------------------------------------------------------------------------------------------


@dataclass
class Samples:
    """One side's per-sample data in sample order: features, and logits and CLIP scores where
    the run has them."""

    features: np.ndarray
    logits: np.ndarray | None = None
    clip: np.ndarray | None = None

    @classmethod
    def of(cls, collected: Any) -> Samples:
        """A run's checkpointed rows (:class:`~.rows.Collected`), in sample order."""
        return cls(
            features=collected.in_sample_order("features"),
            logits=collected.in_sample_order("logits"),
            clip=collected.in_sample_order("clip"),
        )


@dataclass
class HalfSampleValues:
    """Each metric's value on each half-sample set of one side (the same sets for every side
    of a comparison)."""

    values: dict[str, list[float]]
    samples: Samples


def half_sample_values(
    samples: Samples,
    reference: Any,
    metrics: Sequence[str],
    sets: list[np.ndarray],
    seed: int,
    device: torch.device | str = "cpu",
) -> HalfSampleValues:
    """The metrics that rest on the whole set of samples, on each of ``sets``."""
    compute = _subset_metrics(samples, reference, metrics, seed, device)
    values: dict[str, list[float]] = {}
    for indices in sets:
        for key, value in compute(torch.from_numpy(indices)).items():
            values.setdefault(key, []).append(value)
    return HalfSampleValues(values, samples)


def _subset_metrics(
    samples: Samples, reference: Any, metrics: Sequence[str], seed: int, device: Any
) -> Callable[[torch.Tensor], dict[str, float]]:
    from .prdc import prdc
    from .scores import inception_score, kid

    features = torch.from_numpy(samples.features).to(device, torch.float64)
    mu = torch.as_tensor(reference.mu, dtype=torch.float64, device=device)
    sigma = torch.as_tensor(reference.sigma, dtype=torch.float64, device=device)
    real = reference.features
    real_t = None if real is None else torch.as_tensor(real, device=device).to(torch.float64)
    logits = samples.logits

    def compute(indices: torch.Tensor) -> dict[str, float]:
        subset = features[indices.to(features.device)]
        out: dict[str, float] = {}
        if "fid" in metrics:
            out["fid"] = fid_from_features(subset, mu, sigma)
        if real_t is not None and "kid" in metrics:
            # 20 reference subsets, as the live KID curve: the same ones on both sides (one seed),
            # so what they vary cancels in the difference.
            size = min(1000, len(subset))
            out["kid"] = kid(real_t, subset, subset_size=size, subsets=20, seed=seed)["mean"]
        if real_t is not None and ("pr" in metrics or "dc" in metrics):
            found = prdc(real_t, subset, k_pr=3, k_dc=5)
            wanted = {"precision": "pr", "recall": "pr", "density": "dc", "coverage": "dc"}
            out.update({k: float(getattr(found, k)) for k, m in wanted.items() if m in metrics})
        if logits is not None and "is" in metrics:
            chosen = torch.from_numpy(logits[indices.numpy()])
            # Splits of at least ten samples: a split of one sample has an IS of exactly 1.
            splits = max(1, min(10, len(chosen) // 10))
            out["is"] = inception_score(chosen, splits=splits, seed=seed)["mean"]
        return out

    return compute


#: Where each metric's headline number sits in its ``results.json`` entry, as the metric
#: registry declares it (FID∞ sits inside ``fid`` and has no paired interval of its own).
VALUE_KEYS = {f.name: f.value_key for f in METRIC_FIELDS if f.entry_key == f.name}


def headline(results: dict[str, Any], key: str) -> float | None:
    entry = results.get(key)
    if not isinstance(entry, dict):
        return None
    value = entry.get(VALUE_KEYS[key])
    return None if value is None else float(value)


def compare_points(
    results_a: dict[str, Any],
    results_b: dict[str, Any],
    a: HalfSampleValues,
    b: HalfSampleValues,
    *,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """``A − B`` for every metric both results hold, with its paired interval and whether the
    difference is larger than it (the interval excludes zero)."""
    found: dict[str, dict[str, Any]] = {}
    for key in VALUE_KEYS:
        value_a, value_b = headline(results_a, key), headline(results_b, key)
        if value_a is None or value_b is None:
            continue
        difference = value_a - value_b
        if key == "clip_score":
            if a.samples.clip is None or b.samples.clip is None:
                continue
            interval = clip_difference(a.samples.clip, b.samples.clip, level=level, seed=seed)
            method = BOOTSTRAP_METHOD
        elif key in a.values and key in b.values:
            spread = np.subtract(a.values[key], b.values[key])
            interval = interval_from_spread(difference, spread, level)
            method = HALF_SAMPLE_METHOD
        else:
            continue
        low, high = interval["low"], interval["high"]
        found[key] = {
            "difference": difference,
            "interval": [low, high],
            "level": level,
            "method": method,
            "exceeds_interval": bool(low > 0 or high < 0),
        }
    return found


def statement(key: str, entry: dict[str, Any], a: str, b: str) -> str:
    """One plain sentence about one difference."""
    low, high = entry["interval"]
    verdict = (
        "larger than its interval: a real difference"
        if entry["exceeds_interval"]
        else "within its interval: not distinguishable"
    )
    return (
        f"{key}: {a} − {b} = {entry['difference']:+.4g} "
        f"({entry['level']:.0%} paired interval [{low:+.4g}, {high:+.4g}]), {verdict}"
    )
