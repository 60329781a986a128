"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

All four rest on k-nearest-neighbour balls around each sample, so they are computed together:

1. real × real, in row blocks: each real sample's 6 smallest distances (itself included) give
   its k=3 radius (precision, recall) and its k=5 radius (density, coverage) at once;
2. fake × fake, likewise: each fake sample's k=3 radius (recall);
3. real × fake, in row blocks of real samples: every test at once -- precision (is a fake
   inside some real k=3 ball), recall (is a real inside some fake k=3 ball), density (how many
   real k=5 balls hold each fake), coverage (does a real k=5 ball hold any fake).

Three passes over distance blocks instead of seven, and never an N×N matrix: a block is
``BLOCK_ROWS × N`` floats. Conventions follow the reference code: precision/recall use
``d ≤ radius``, prdc's density/coverage ``d < radius``.

Squared distances come from one matrix product per block (``|x|² + |y|² − 2 x·y``), which is
what ``torch.cdist`` does for large inputs, without its square root (comparisons are the same).
Such distances carry rounding error (a point's distance to itself is not exactly 0), so pass 3
is laid out like pass 1 -- real samples as rows, the same blocks, the same columns order -- and
a set compared with itself gets, bit for bit, the very distances its radii came from: precision,
recall, density and coverage are then exactly 1. (With the fake samples as rows, the transposed
products round differently, and density of a set against itself came out at 1.01.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

BLOCK_ROWS = 1024
NEIGHBOURS = 6  # the sample itself and its 5 nearest: enough for k=3 and k=5


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float


def _squared_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=1)


def _distance_blocks(
    rows: torch.Tensor, columns: torch.Tensor, block: int = 0
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, squared distances of rows[start:start+block] to every column)``."""
    block = block or BLOCK_ROWS
    row_norms, column_norms = _squared_norms(rows), _squared_norms(columns)
    for start in range(0, rows.shape[0], block):
        part = rows[start : start + block]
        squared = torch.addmm(column_norms[None, :], part, columns.T, alpha=-2.0)
        squared.add_(row_norms[start : start + block, None]).clamp_(min=0)
        yield start, squared


def nearest_radii(features: torch.Tensor, ks: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Squared distance from each sample to its k-th nearest other sample, for each k."""
    largest = max(ks)
    if features.shape[0] <= largest:
        raise ValueError(f"need more than {largest} samples for k={largest} neighbours")
    radii = {
        k: torch.empty(features.shape[0], dtype=features.dtype, device=features.device) for k in ks
    }
    for start, squared in _distance_blocks(features, features):
        # The smallest value of a row is the sample's (near-zero) distance to itself.
        nearest = torch.topk(squared, largest + 1, dim=1, largest=False, sorted=True).values
        for k in ks:
            radii[k][start : start + squared.shape[0]] = nearest[:, k]
    return radii


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    k_pr: int = 3,
    k_dc: int = 5,
    device: str | torch.device | None = None,
) -> PRDC:
    """Precision, recall (k=``k_pr``), density and coverage (k=``k_dc``) in three passes.

    Computed in float32 on ``device`` (default: where ``real`` is), without TF32.
    """
    from .features import full_float32

    device = torch.device(device) if device is not None else real.device
    real = real.to(device, torch.float32).contiguous()
    fake = fake.to(device, torch.float32).contiguous()
    with torch.inference_mode(), full_float32():
        real_radii = nearest_radii(real, tuple(sorted({k_pr, k_dc})))
        fake_radius = nearest_radii(fake, (k_pr,))[k_pr]
        real_pr, real_dc = real_radii[k_pr], real_radii[k_dc]
        fake_in_real_ball = torch.zeros(fake.shape[0], dtype=torch.bool, device=device)
        real_in_fake_ball = torch.zeros(real.shape[0], dtype=torch.bool, device=device)
        covered = torch.zeros(real.shape[0], dtype=torch.bool, device=device)
        inside_count = torch.zeros((), dtype=torch.int64, device=device)
        for start, squared in _distance_blocks(real, fake):
            stop = start + squared.shape[0]
            fake_in_real_ball |= (squared <= real_pr[start:stop, None]).any(dim=0)
            real_in_fake_ball[start:stop] = (squared <= fake_radius[None, :]).any(dim=1)
            strictly_inside = squared < real_dc[start:stop, None]
            inside_count += strictly_inside.sum()
            covered[start:stop] = strictly_inside.any(dim=1)
        return PRDC(
            precision=float(fake_in_real_ball.double().mean()),
            recall=float(real_in_fake_ball.double().mean()),
            density=float(inside_count) / (k_dc * fake.shape[0]),
            coverage=float(covered.double().mean()),
        )


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result.precision, result.recall


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result.density, result.coverage
