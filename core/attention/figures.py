"""Attention figures: heat maps blended over the generated image, and the words × steps grid."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_SIDE = 256  # small images (the digits model's 32 px) are enlarged so maps stay legible


def _heat_colours(values: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    peak = values.max()
    scaled = values / peak if peak > 0 else values
    return (colormaps["inferno"](scaled)[..., :3] * 255).astype(np.float32)


def overlay(image: np.ndarray, heat: np.ndarray | None, alpha: float = 0.6) -> Any:
    """The image (enlarged if small) with ``heat`` blended over it; the plain image if None."""
    from PIL import Image

    base = image.astype(np.float32)
    if heat is not None:
        base = (1 - alpha) * base + alpha * _heat_colours(heat)
    picture = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    if min(picture.size) < MIN_SIDE:
        factor = -(-MIN_SIDE // min(picture.size))
        picture = picture.resize(
            (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
        )
    return picture


def grid_figure(
    image: np.ndarray,
    per_step: np.ndarray,
    aggregate: np.ndarray,
    words: list[str],
    timesteps: list[float],
):
    """Rows are words, columns the selected timesteps and the aggregate, as in DAAM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = len(words), len(timesteps) + 2
    figure, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 1.9 * rows), squeeze=False)
    for row, word in enumerate(words):
        axes[row, 0].imshow(image)
        axes[row, 0].set_ylabel(word, fontsize=11)
        for column, timestep in enumerate(timesteps, start=1):
            axes[row, column].imshow(np.asarray(overlay(image, per_step[row, column - 1])))
            if row == 0:
                axes[row, column].set_title(f"t={timestep:g}", fontsize=9)
        axes[row, -1].imshow(np.asarray(overlay(image, aggregate[row])))
        if row == 0:
            axes[row, 0].set_title("image", fontsize=9)
            axes[row, -1].set_title("mean", fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    return figure
