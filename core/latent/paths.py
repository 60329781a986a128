"""Interpolation paths and how smooth a strip of images along one is.

``slerp`` follows the great circle between two points: between two Gaussian noise latents it
keeps the norm a sampler expects (the lerp midpoint of two independent ``N(0, I)`` draws has
norm ~0.71 of theirs, which the denoiser never saw). When the two endpoints are (nearly)
parallel the angle ω is ~0 and slerp's ``sin ω`` denominator vanishes; it then falls back to
lerp, which is the limit of slerp as ω → 0.
"""

from __future__ import annotations

import numpy as np
import torch

PARALLEL_DOT = 0.9995  # cos ω above this: treat the endpoints as parallel and lerp


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    flat_a, flat_b = a.flatten().double(), b.flatten().double()
    norms = flat_a.norm() * flat_b.norm()
    if float(norms) == 0.0:
        return lerp(a, b, t)
    dot = float(torch.clamp(flat_a @ flat_b / norms, -1.0, 1.0))
    if abs(dot) > PARALLEL_DOT:
        return lerp(a, b, t)
    omega = np.arccos(dot)
    sin_omega = np.sin(omega)
    mixed = (np.sin((1 - t) * omega) / sin_omega) * a.double() + (
        np.sin(t * omega) / sin_omega
    ) * b.double()
    return mixed.to(a.dtype)


def path(a: torch.Tensor, b: torch.Tensor, frames: int, method: str) -> list[torch.Tensor]:
    """``frames`` points from ``a`` to ``b`` (both included) by ``slerp`` or ``lerp``."""
    step = slerp if method == "slerp" else lerp
    return [step(a, b, float(t)) for t in np.linspace(0.0, 1.0, frames)]


def smoothness(features: np.ndarray) -> dict[str, float]:
    """Distances between consecutive frames in a feature space: their max/mean ratio (1 for an
    evenly paced strip, large where the strip jumps) and a perceptual-path-length-style figure,
    the mean of (distance / Δt)² with Δt = 1/(frames − 1)."""
    steps = np.linalg.norm(np.diff(features.astype(np.float64), axis=0), axis=1)
    mean = float(steps.mean())
    dt = 1.0 / max(len(features) - 1, 1)
    return {
        "max_mean_ratio": float(steps.max() / mean) if mean > 0 else 1.0,
        "path_length": float(steps.sum()),
        "ppl": float(np.mean((steps / dt) ** 2)),
        "steps": [float(s) for s in steps],
    }
