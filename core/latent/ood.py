"""Out-of-distribution scores against a reference set.

Two scores, each with the reference's own distribution and a threshold (its 95th percentile):

* **latent z-norm**: VAE latents of the reference give a per-dimension mean and std; a new
  image's score is the RMS of its z-scores. Cheap, and sensitive to colour and texture;
* **feature Mahalanobis**: distance to the reference mean under a Ledoit-Wolf shrinkage
  covariance of feature embeddings (a plain sample covariance is singular with fewer images
  than dimensions, and noisy with barely more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError

MIN_REFERENCE = 100
THRESHOLD_PERCENTILE = 95.0


@dataclass
class ReferenceModel:
    name: str
    scores: np.ndarray  # the reference's own scores
    mean: np.ndarray
    precision: np.ndarray | None = None  # Mahalanobis only
    std: np.ndarray | None = None  # z-norm only
    shrinkage: float | None = None  # Ledoit-Wolf's chosen shrinkage, Mahalanobis only

    def score(self, values: np.ndarray) -> np.ndarray:
        centred = values.reshape(len(values), -1).astype(np.float64) - self.mean
        if self.precision is not None:
            return np.sqrt(np.einsum("ij,jk,ik->i", centred, self.precision, centred))
        return np.sqrt(np.mean((centred / self.std) ** 2, axis=1))

    @property
    def threshold(self) -> float:
        return float(np.percentile(self.scores, THRESHOLD_PERCENTILE))

    def describe(self) -> dict[str, float]:
        return {"mean": float(self.scores.mean()), "std": float(self.scores.std()),
                "p50": float(np.percentile(self.scores, 50)),
                "p95": float(np.percentile(self.scores, 95)),
                "p99": float(np.percentile(self.scores, 99)), "threshold": self.threshold}  # fmt: skip


def _check_count(count: int, what: str) -> None:
    if count < MIN_REFERENCE:
        raise InputError(f"{what}: {count} usable reference images; OOD statistics need at least "
                         f"{MIN_REFERENCE}")  # fmt: skip


def fit_mahalanobis(features: np.ndarray, what: str = "--reference") -> ReferenceModel:
    from sklearn.covariance import LedoitWolf

    _check_count(len(features), what)
    estimator = LedoitWolf().fit(features.astype(np.float64))
    model = ReferenceModel("mahalanobis", np.zeros(0), estimator.location_,
                           precision=estimator.precision_,
                           shrinkage=float(estimator.shrinkage_))  # fmt: skip
    model.scores = model.score(features)
    return model


def fit_latent_znorm(latents: np.ndarray, what: str = "--reference") -> ReferenceModel:
    _check_count(len(latents), what)
    flat = latents.reshape(len(latents), -1).astype(np.float64)
    model = ReferenceModel("latent_znorm", np.zeros(0), flat.mean(axis=0),
                           std=flat.std(axis=0) + 1e-6)  # fmt: skip
    model.scores = model.score(flat)
    return model


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling out (positive, higher score) from in."""
    from sklearn.metrics import roc_auc_score

    labels = np.concatenate([np.zeros(len(in_scores)), np.ones(len(out_scores))])
    return float(roc_auc_score(labels, np.concatenate([in_scores, out_scores])))
