"""Out-of-distribution scores against a reference set.

Two scores, each with a threshold, both computed the same way in two spaces: the model's own VAE latents (``latent_mahalanobis``:
sensitive to colour and texture, needs no feature network) and the chosen feature extractor's
embeddings (``mahalanobis``: sensitive to content).

The score is the distance to the nearest of k cluster means of the reference, under one
Ledoit-Wolf shrinkage covariance of the within-cluster residuals: Lee et al. (2018)'s
class-conditional score with k-means clusters in place of labels (as in Sehwag et al. 2021,
SSD), since a reference folder has no labels. A single Gaussian fails on far-out inputs: noise
images land near the global mean of a classifier's features, between the classes, where only
per-cluster means see them as strangers (on the digits: AUROC 0.66 with one Gaussian, 0.97 with
ten clusters). Shrinkage, because a sample covariance is singular with fewer images than
dimensions.

The threshold comes from a held-out part of the reference (split conformal calibration, Vovk et
al. 2005; Angelopoulos & Bates 2021): the model is fitted on 75% of the reference and the
threshold is an order statistic of the other 25%'s scores, which score as any new
in-distribution image does. The reference's own scores are lower than a new image's (the
cluster means and covariance were fitted to them), so their 95th percentile flags more than 5%
of new in-distribution images: on the digits (1000 new renderings against the shipped
reference) 9.2% in feature space and 15.7% in VAE-latent space, against 7.7% and 5.3% with the
held-out threshold. With ``m`` held-out scores, the ``k = ceil(0.95 (m + 1))``-th smallest is
exceeded by a new in-distribution score with probability ``(m + 1 - k) / (m + 1)`` on average
over calibration draws (4.8% for m = 250; one draw varies around it by about
``sqrt(p (1 - p) / (m + 2))``, 1.3 points).

In latent space the score is computed on :func:`latent_summary` of each latent: the latent
itself up to 8 x 8 (the shipped model: the numbers above are unchanged), else each channel's
block means and standard deviations on an 8 x 8 grid, at most ``2·C·64`` numbers (2048 for
Flux's 16 channels) at any image size. A covariance over the whole latent grows with the
square of its size (550 GB at Flux-1024); ``python -m benchmarks ood_scale`` measures the
summary's fit and score at SD 1.5, SDXL and Flux sizes. On the digits rendered at 64 px (16 x 16
latents, where the whole-latent covariance is still affordable) the summary separates noise
(AUROC 1.000 both) and letters and shapes (0.9990 vs 0.9998) as well, and flags 5.3% of 1000
new in-distribution images (4.3% with the whole latent; 4.8% expected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MIN_REFERENCE = 100
MAX_CLUSTERS = 10
IMAGES_PER_CLUSTER = 20  # fewer clusters for small references: each mean from ~20 images
THRESHOLD_PERCENTILE = 95.0
HELD_OUT_SHARE = 0.25  # of the reference, scored but not fitted: the threshold's calibration
SPLIT_SEED = 0


@dataclass
class ReferenceModel:
    name: str
    scores: np.ndarray  # the held-out part's scores (the calibration set)
    centres: np.ndarray  # [k, dims] cluster means
    precision: np.ndarray  # of the within-cluster residuals
    shrinkage: float  # Ledoit-Wolf's chosen shrinkage
    fitted: int = 0  # reference images the clusters and covariance were fitted on
    summary: Callable[[np.ndarray], np.ndarray] | None = None  # e.g. :func:`latent_summary`

    def score(self, values: np.ndarray) -> np.ndarray:
        return self.distance(_flat(values, self.summary))

    def distance(self, flat: np.ndarray) -> np.ndarray:
        """The score of vectors already summarised (rows of ``_flat``)."""
        squared = [
            np.einsum("ij,jk,ik->i", flat - centre, self.precision, flat - centre)
            for centre in self.centres
        ]
        return np.sqrt(np.min(squared, axis=0))

    @property
    def _rank(self) -> int:
        """k of the calibration order statistic used as threshold (1-based, at most m)."""
        m = len(self.scores)
        return min(m, int(np.ceil(THRESHOLD_PERCENTILE / 100 * (m + 1))))

    @property
    def threshold(self) -> float:
        return float(np.sort(self.scores)[self._rank - 1])

    @property
    def expected_flag_rate(self) -> float:
        """The share of new in-distribution images above the threshold, in expectation."""
        m = len(self.scores)
        return (m + 1 - self._rank) / (m + 1)

    def describe(self) -> dict[str, float]:
        return {
            "mean": float(self.scores.mean()),
            "std": float(self.scores.std()),
            "p50": float(np.percentile(self.scores, 50)),
            "p95": float(np.percentile(self.scores, 95)),
            "p99": float(np.percentile(self.scores, 99)),
            "threshold": self.threshold,
            "fitted": self.fitted,
            "dims": int(self.centres.shape[1]),
            "calibration": len(self.scores),
            "expected_flag_rate": self.expected_flag_rate,
        }


def _check_count(count: int, what: str) -> None:
    if count < MIN_REFERENCE:
        raise InputError(
            f"{what}: {count} usable reference images; OOD statistics need at least {MIN_REFERENCE}"
        )


def split(count: int, held_out: float = HELD_OUT_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(fit, calibration) indices of a reference of ``count`` images: a seeded shuffle, so the
    split does not follow the folder's order (files sorted by digit or by date)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    calibration = max(1, int(round(count * held_out)))
    return np.sort(order[calibration:]), np.sort(order[:calibration])


def fit_mahalanobis(
    features: np.ndarray,
    what: str = "--reference",
    name: str = "mahalanobis",
    summary: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ReferenceModel:
    """Fit the score on one part of the reference and calibrate its threshold on the rest;
    ``summary`` maps each input (e.g. a VAE latent) to the vector the score is computed on."""
    _check_count(len(features), what)
    flat = _flat(features, summary)
    fit, calibration = split(len(flat))
    model = _fit(flat[fit], name)
    model.summary = summary
    model.scores = model.distance(flat[calibration])
    return model


def _flat(values: np.ndarray, summary: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    vectors = summary(values) if summary is not None else values
    return vectors.reshape(len(vectors), -1).astype(np.float64)


LATENT_GRID = 8  # latents wider than this are summarised on an 8 x 8 grid of blocks
SUMMARY_BATCH = 64


def latent_summary(latents: np.ndarray, grid: int = LATENT_GRID) -> np.ndarray:
    """What the latent score sees of each ``[C, h, w]`` latent: the latent itself when it is at
    most ``grid`` wide and high (the shipped model's 4 x 8 x 8); otherwise each channel's mean
    and standard deviation over each block of a ``grid`` x ``grid`` partition, ``2·C·grid²``
    numbers whatever the latent's size (512 at SD 1.5 or SDXL, 2048 at SD3 or Flux).

    A dense covariance over the whole latent (``p = C·h·w``) needs ``p²`` numbers: 2.1 GB at SD
    1.5-512, 550 GB at Flux-1024. The block means keep the layout (where colour and shape
    sit), the block standard deviations keep the texture that averaging would wipe out (noise
    and over-sharpened images differ from the reference there first). Computed in batches in
    float32, so a large reference is never copied whole."""
    import torch
    import torch.nn.functional as F

    if latents.ndim != 4 or max(latents.shape[2:]) <= grid:
        return latents.reshape(len(latents), -1)
    out = []
    for start in range(0, len(latents), SUMMARY_BATCH):
        batch = torch.as_tensor(latents[start : start + SUMMARY_BATCH]).float()
        mean = F.adaptive_avg_pool2d(batch, grid)
        square = F.adaptive_avg_pool2d(batch * batch, grid)
        spread = (square - mean * mean).clamp(min=0).sqrt()
        out.append(torch.cat([mean.flatten(1), spread.flatten(1)], dim=1).double().numpy())
    return np.concatenate(out)


def _fit(flat: np.ndarray, name: str) -> ReferenceModel:
    from sklearn.cluster import KMeans
    from sklearn.covariance import LedoitWolf

    clusters = max(1, min(MAX_CLUSTERS, len(flat) // IMAGES_PER_CLUSTER))
    kmeans = KMeans(clusters, n_init=10, random_state=0).fit(flat)
    centres = kmeans.cluster_centers_
    estimator = LedoitWolf(assume_centered=True).fit(flat - centres[kmeans.labels_])
    return ReferenceModel(
        name, np.zeros(0), centres, estimator.precision_, float(estimator.shrinkage_), len(flat)
    )


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling out (positive, higher score) from in."""
    from sklearn.metrics import roc_auc_score

    labels = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    return float(roc_auc_score(labels, np.concatenate([in_scores, out_scores])))
