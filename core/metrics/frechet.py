"""The Fréchet distance between two Gaussians, in float64, without complex square roots.

``tr sqrt(Σ1 Σ2)`` is the sum of square roots of the eigenvalues of ``Σ1 Σ2``, which equal those
of the symmetric PSD matrix ``Lᵀ Σ2 L`` where ``Σ1 = L Lᵀ``: one Cholesky factorisation and one
symmetric eigenvalue problem. ``scipy.linalg.sqrtm`` (pytorch-fid) works on the non-symmetric
product with a Schur decomposition and returns complex values that must be truncated;
torchmetrics computes the general eigenvalues of ``Σ1 Σ2``. Both are slower and less stable.
A rank-deficient ``Σ1`` (fewer samples than dimensions) has no Cholesky factor; then its PSD
square root from ``eigh`` takes L's place (``sqrt(Σ1) Σ2 sqrt(Σ1)`` has the same eigenvalues).

Everything runs on the device the inputs are on (the run's GPU, for the final statistics), in
float64; NumPy inputs are read on ``device``.
"""

from __future__ import annotations

import numpy as np
import torch


def _float64(
    value: np.ndarray | torch.Tensor, device: str | torch.device | None = None
) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    return tensor.to(device if device is not None else tensor.device, torch.float64)


def mean_and_covariance_tensors(
    features: np.ndarray | torch.Tensor, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance in float64 on ``device`` (default: where the input is)."""
    x = _float64(features, device)
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / max(x.shape[0] - 1, 1)
    return mu, sigma


def mean_and_covariance(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance in float64 (as pytorch-fid's ``np.cov(rowvar=False)``)."""
    mu, sigma = mean_and_covariance_tensors(features)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``tr sqrt(Σ1 Σ2)`` for symmetric PSD ``Σ1``, ``Σ2`` (float64 tensors)."""
    factor, info = torch.linalg.cholesky_ex(sigma1)
    if int(info) != 0:
        values, vectors = torch.linalg.eigh(sigma1)
        factor = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    product = factor.T @ sigma2 @ factor
    product = (product + product.T) / 2  # exact symmetry for eigvalsh
    eigenvalues = torch.linalg.eigvalsh(product)
    return float(eigenvalues.clamp(min=0).sqrt().sum())


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
    device: str | torch.device | None = None,
) -> float:
    """``|μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr sqrt(Σ1 Σ2)``; exactly 0 for identical statistics
    (the formula itself leaves rounding noise of ~1e-10 there)."""
    m1, s1 = _float64(mu1, device), _float64(sigma1, device)
    m2, s2 = _float64(mu2, m1.device), _float64(sigma2, m1.device)
    if m1.shape != m2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature dimensions differ: {tuple(m1.shape)} vs {tuple(m2.shape)}")
    if torch.equal(m1, m2) and torch.equal(s1, s2):
        return 0.0
    difference = float(((m1 - m2) ** 2).sum())
    value = difference + float(torch.trace(s1) + torch.trace(s2)) - 2 * trace_sqrt_product(s1, s2)
    return max(value, 0.0)


def fid_from_features(
    generated: np.ndarray | torch.Tensor,
    mu_ref: np.ndarray | torch.Tensor,
    sigma_ref: np.ndarray | torch.Tensor,
    device: str | torch.device | None = None,
) -> float:
    mu, sigma = mean_and_covariance_tensors(generated, device)
    return frechet_distance(mu, sigma, mu_ref, sigma_ref, device=mu.device)
