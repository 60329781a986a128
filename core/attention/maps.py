"""Word heat maps from captured buffers (DAAM-style) and the measures that make them numbers.

A word's map at one resolution group is the sum of its tokens' rows; maps of every group are
upsampled bilinearly to the image size and summed (Tang et al. 2023, DAAM), then normalised to
sum to one so maps of different words, steps and models compare as distributions.

A map with no mass at all (a word no captured layer attended, or nothing captured at a step) is
not a distribution: its measures are NaN, never the entropy 0 that would read as perfectly sharp
attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .capture import CaptureBuffers
from .words import Word


def _upsample(maps: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """``[..., h*w]`` -> ``[..., H, W]``."""
    lead = maps.shape[:-1]
    spatial = maps.reshape(-1, 1, *grid)
    up = F.interpolate(spatial, size=size, mode="bilinear", align_corners=False)
    return up.reshape(*lead, *size)


def _normalise(maps: np.ndarray) -> np.ndarray:
    totals = maps.sum(axis=(-2, -1), keepdims=True)
    return maps / np.where(totals > 0, totals, 1.0)


@dataclass
class WordMaps:
    """Normalised maps for each chosen word: ``per_step [W, K, H, W']``, ``aggregate [W, H, W']``
    and per group ``by_group[(h, w)] [W, K, h, w]`` at the group's own resolution."""

    words: list[str]
    per_step: np.ndarray
    aggregate: np.ndarray
    by_group: dict[tuple[int, int], np.ndarray]


def word_maps(buffers: CaptureBuffers, words: list[Word], image_size: tuple[int, int]) -> WordMaps:
    per_step = np.zeros((len(words), len(buffers.selected_steps), *image_size))
    aggregate = np.zeros((len(words), *image_size))
    by_group: dict[tuple[int, int], np.ndarray] = {}
    for grid, selected in buffers.selected.items():
        rows = [list(word.positions) for word in words]
        chosen = torch.stack([selected[:, r].sum(dim=1) for r in rows])  # [W, K, h*w]
        total = torch.stack([buffers.total[grid][r].sum(dim=0) for r in rows])  # [W, h*w]
        by_group[grid] = _normalise(chosen.reshape(*chosen.shape[:2], *grid).double().numpy())
        per_step += _upsample(chosen, grid, image_size).double().numpy()
        aggregate += _upsample(total, grid, image_size).double().numpy()
    return WordMaps([w.text for w in words], _normalise(per_step), _normalise(aggregate), by_group)


def _empty(p: np.ndarray) -> np.ndarray:
    """Which flattened maps ``[..., pixels]`` carry no mass."""
    return ~(p.sum(axis=-1) > 0)


def entropy(maps: np.ndarray) -> np.ndarray:
    """Shannon entropy of each normalised map over its pixels, divided by log(pixels): 1 is
    uniform (diffuse), 0 is a single pixel (sharp); NaN for an all-zero map."""
    p = maps.reshape(*maps.shape[:-2], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
    return np.where(_empty(p), np.nan, h / np.log(p.shape[-1]))


def top_mass(maps: np.ndarray, share: float = 0.10) -> np.ndarray:
    """Share of a map's mass in its brightest ``share`` of pixels; NaN for an all-zero map."""
    flat = maps.reshape(*maps.shape[:-2], -1)
    p = np.sort(flat, axis=-1)[..., ::-1]
    count = max(1, int(round(share * p.shape[-1])))
    return np.where(_empty(flat), np.nan, p[..., :count].sum(axis=-1))


def overlap(first: np.ndarray, second: np.ndarray) -> float:
    """Histogram intersection of two normalised maps: 1 for identical, 0 for disjoint; NaN
    when either map is all zero."""
    if not (first.sum() > 0 and second.sum() > 0):
        return float("nan")
    return float(np.minimum(first, second).sum())


def mass_inside(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of each map's mass on the pixels of ``mask`` (e.g. a digit's ink)."""
    return (maps * mask).sum(axis=(-2, -1))
