"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both rest on k-nearest-neighbour balls around each sample. Everything is computed in row blocks
of the distance matrix, so 10k×10k features need ``block × N`` floats at a time, never ``N²``.
Conventions follow the reference code: precision/recall use k=3 and ``d ≤ radius``; prdc's
density/coverage use k=5 and ``d < radius``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

BLOCK_ROWS = 1024


def _blocks(x: torch.Tensor, y: torch.Tensor, rows: int = BLOCK_ROWS
            ) -> Iterator[tuple[int, torch.Tensor]]:  # fmt: skip
    for start in range(0, x.shape[0], rows):
        yield start, torch.cdist(x[start : start + rows], y)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample (itself excluded)."""
    radii = torch.empty(features.shape[0], dtype=features.dtype)
    for start, distances in _blocks(features, features):
        # The (k+1)-th smallest includes the zero distance to the sample itself.
        radii[start : start + distances.shape[0]] = distances.kthvalue(k + 1, dim=1).values
    return radii


def _share_inside(queries: torch.Tensor, anchors: torch.Tensor, radii: torch.Tensor,
                  strict: bool) -> torch.Tensor:  # fmt: skip
    """Per query: how many anchors' balls contain it."""
    counts = torch.empty(queries.shape[0], dtype=torch.int64)
    for start, distances in _blocks(queries, anchors):
        inside = distances < radii[None, :] if strict else distances <= radii[None, :]
        counts[start : start + distances.shape[0]] = inside.sum(dim=1)
    return counts


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    real, fake = real.float(), fake.float()
    precision = (_share_inside(fake, real, knn_radii(real, k), strict=False) > 0).float().mean()
    recall = (_share_inside(real, fake, knn_radii(fake, k), strict=False) > 0).float().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    real, fake = real.float(), fake.float()
    radii = knn_radii(real, k)
    density = _share_inside(fake, real, radii, strict=True).sum() / (k * fake.shape[0])
    nearest_fake = torch.empty(real.shape[0], dtype=real.dtype)
    for start, distances in _blocks(real, fake):
        nearest_fake[start : start + distances.shape[0]] = distances.min(dim=1).values
    coverage = (nearest_fake < radii).float().mean()
    return float(density), float(coverage)
