"""FID of many subsets of one generated set, from per-chunk statistics computed once.

The FID interval (50 half-samples) and FID∞ (15 subset sizes) each need the FID of a subset of
the generated features. Computed directly, every subset costs a covariance over its rows and a
matrix square root: at 50k × 2048-d that is about 65 covariances of 10k-50k rows. Here the rows
are shuffled (seeded) and cut into ``K`` chunks once; each chunk keeps its row count, its sum,
its sum of squared norms and its Gram matrix, all of rows already centred on the set's mean and
rotated into a factor ``L`` of the reference covariance (``Σ_ref = L Lᵀ``, from one ``eigh``).
A subset is a union of chunks: its mean and covariance are sums of the chunks' parts, and
``tr sqrt(Σ_ref^½ Σ_S Σ_ref^½)`` is the sum of square roots of the eigenvalues of
``Lᵀ Σ_S L``, which is already assembled in the rotated basis -- one symmetric eigenvalue
problem per subset, nothing else of size ``d³`` or ``N d²``.

Chunks instead of single rows make the half-samples *grouped* (a delete-half jackknife over
``K`` random groups): with the default ``K`` (32 at 2048-d, bounded by :data:`GRAM_BUDGET`
bytes of Gram matrices; every row its own chunk below 64 rows) the spread of the half-sample
FIDs rests on ``K - 1`` degrees of freedom. The coverage test in ``tests/test_statistics.py``
checks the interval this gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

GRAM_BUDGET = 1 << 30  # bytes of float64 chunk Gram matrices (32 chunks at 2048-d)
MAX_CHUNKS = 64


def chunk_count(rows: int, dims: int) -> int:
    """How many chunks ``rows`` features of ``dims`` dimensions are cut into: as many as the
    Gram budget allows (at most :data:`MAX_CHUNKS`), even, and never more than the rows."""
    budget = max(2, min(MAX_CHUNKS, GRAM_BUDGET // (8 * dims * dims)))
    count = min(rows, budget)
    return count - count % 2 if count > 2 else count


@dataclass
class ChunkedFeatures:
    """Per-chunk statistics of a generated set against one reference, for subset FIDs."""

    sizes: torch.Tensor  # [K] rows per chunk
    sums: torch.Tensor  # [K, d] sums of the centred rows
    squares: torch.Tensor  # [K] sums of the centred rows' squared norms
    rotated_sums: torch.Tensor  # [K, d] sums of the centred rows in the factor basis
    grams: torch.Tensor  # [K, d, d] Gram matrices of the centred rows in the factor basis
    offset: torch.Tensor  # [d] the set's mean less the reference mean
    reference_trace: float
    total_gram: torch.Tensor  # [d, d] the sum of every chunk's

    @classmethod
    def build(
        cls,
        features: torch.Tensor,
        mu_ref: torch.Tensor,
        sigma_ref: torch.Tensor,
        chunks: int | None = None,
        seed: int = 0,
    ) -> ChunkedFeatures:
        """Shuffle the rows with ``seed``, cut them into ``chunks`` parts and sum each part."""
        rows, dims = features.shape
        device = features.device
        mu_ref = mu_ref.to(device, torch.float64)
        sigma_ref = sigma_ref.to(device, torch.float64)
        values, vectors = torch.linalg.eigh((sigma_ref + sigma_ref.T) / 2)
        factor = vectors * values.clamp(min=0).sqrt()
        centre = features.to(torch.float64).mean(dim=0)
        count = chunks or chunk_count(rows, dims)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(rows)).to(device)
        parts = torch.tensor_split(order, count)
        sums = torch.empty(count, dims, dtype=torch.float64, device=device)
        rotated = torch.empty_like(sums)
        squares = torch.empty(count, dtype=torch.float64, device=device)
        grams = torch.empty(count, dims, dims, dtype=torch.float64, device=device)
        for index, part in enumerate(parts):
            centred = features[part].to(torch.float64) - centre
            turned = centred @ factor
            sums[index], rotated[index] = centred.sum(dim=0), turned.sum(dim=0)
            squares[index] = (centred * centred).sum()
            torch.matmul(turned.T, turned, out=grams[index])
        sizes = torch.tensor([len(p) for p in parts], dtype=torch.float64, device=device)
        reference_trace = float(torch.trace(sigma_ref))
        offset = centre - mu_ref
        return cls(sizes, sums, squares, rotated, grams, offset, reference_trace, grams.sum(dim=0))

    @property
    def count(self) -> int:
        return len(self.sizes)

    def _weights(self, members: torch.Tensor | np.ndarray) -> torch.Tensor:
        weights = torch.zeros_like(self.sizes)
        weights[torch.as_tensor(members, device=weights.device)] = 1.0
        return weights

    def _gram_sum(self, weights: torch.Tensor) -> torch.Tensor:
        """The members' Gram matrices summed: the members' own, or the total less the others',
        whichever reads fewer (at most half the chunks)."""
        inside = torch.nonzero(weights).flatten().tolist()
        outside = torch.nonzero(weights == 0).flatten().tolist()
        if len(outside) < len(inside):
            total = self.total_gram.clone()
            for index in outside:
                total -= self.grams[index]
            return total
        total = self.grams[inside[0]].clone()
        for index in inside[1:]:
            total += self.grams[index]
        return total

    def rows(self, members: torch.Tensor | np.ndarray) -> int:
        return int(self._weights(members) @ self.sizes)

    def fid(self, members: torch.Tensor | np.ndarray) -> float:
        """FID of the rows of the chunks ``members`` against the reference (clipped at 0, as
        :func:`~diffusionscope.core.metrics.frechet.frechet_distance`). The chunks' parts are
        summed in place, without a copy of their Gram matrices."""
        weights = self._weights(members)
        n = float(weights @ self.sizes)
        if n < 2:
            raise ValueError("a subset FID needs at least 2 rows")
        shift = weights @ self.sums / n
        turned_shift = weights @ self.rotated_sums / n
        trace = (float(weights @ self.squares) - n * float(shift @ shift)) / (n - 1)
        product = self._gram_sum(weights)
        product -= n * torch.outer(turned_shift, turned_shift)
        product /= n - 1  # eigvalsh reads one triangle: exactly symmetric as it sees it
        root_trace = float(torch.linalg.eigvalsh(product).clamp(min=0).sqrt().sum())
        mean_term = float(((self.offset + shift) ** 2).sum())
        return max(mean_term + trace + self.reference_trace - 2 * root_trace, 0.0)

    def random_members(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` distinct chunks, drawn with ``rng`` (all of them, in order, for ``K``)."""
        if count >= self.count:
            return np.arange(self.count)
        return np.sort(rng.choice(self.count, count, replace=False))
