"""The digits world: prompt grammar, coloured renderings of the real digits, ink measurements.

Prompts name content and attributes ("a thick red seven on a white background") so that
word-level attention and semantic directions have something to find. The same helpers render
the training data, the reference set, and judge generated images in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (20, 150, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 40, 170),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (255, 255, 255), "black": (0, 0, 0)}
THICKNESSES = ("thick", "thin")
IMAGE_SIZE = 32
VOCABULARY = ("a", "on", "background", *DIGIT_WORDS, *COLORS, *BACKGROUNDS, *THICKNESSES)


def make_prompt(
    digit: int, color: str, thickness: str | None = None, background: str = "white"
) -> str:
    words = ["a", thickness, color, DIGIT_WORDS[digit], "on", "a", background, "background"]
    return " ".join(word for word in words if word)


@dataclass(frozen=True)
class DigitSample:
    image: np.ndarray  # [32, 32, 3] uint8
    digit: int
    color: str
    thickness: str | None
    background: str

    @property
    def prompt(self) -> str:
        return make_prompt(self.digit, self.color, self.thickness, self.background)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits, upscaled to 32x32 ink intensities in [0, 1]."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(images, size=(28, 28), mode="bicubic", align_corners=False)
    big = F.pad(big, (2, 2, 2, 2)).clamp(0, 1)
    return big[:, 0].numpy(), data.target.astype(np.int64)


def _stroke(intensity: np.ndarray, thickness: str | None) -> np.ndarray:
    """Thicken (grey dilation) or thin (grey erosion) the strokes of one ink map."""
    from scipy.ndimage import grey_dilation, grey_erosion

    if thickness == "thick":
        return grey_dilation(intensity, size=(3, 3))
    if thickness == "thin":
        eroded = grey_erosion(intensity, size=(2, 2))
        return np.where(eroded.max() > 0.3, eroded, intensity)
    return intensity


def render(intensity: np.ndarray, color: str, background: str) -> np.ndarray:
    ink = np.asarray(COLORS[color], dtype=np.float32)
    paper = np.asarray(BACKGROUNDS[background], dtype=np.float32)
    alpha = np.clip(intensity * 1.4, 0, 1)[..., None]
    return (paper * (1 - alpha) + ink * alpha + 0.5).astype(np.uint8)


def random_samples(
    count: int, seed: int = 0, indices: np.ndarray | None = None
) -> list[DigitSample]:
    """Deterministic coloured renderings of the real digits with random attributes."""
    rng = np.random.default_rng(seed)
    intensities, labels = _digits()
    pool = np.arange(len(labels)) if indices is None else np.asarray(indices)
    samples = []
    for _ in range(count):
        index = int(rng.choice(pool))
        color = str(rng.choice(list(COLORS)))
        thickness = [None, "thick", "thin"][int(rng.integers(3))]
        background = "black" if rng.random() < 0.25 else "white"
        image = render(_stroke(intensities[index], thickness), color, background)
        samples.append(DigitSample(image, int(labels[index]), color, thickness, background))
    return samples


def background_rgb(image: np.ndarray) -> np.ndarray:
    """The background colour, read from the image border (digits never touch it)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def ink_mask(image: np.ndarray, threshold: float = 80.0) -> np.ndarray:
    """Pixels far from the background colour: the digit's ink, as a bool ``[H, W]`` mask."""
    distance = np.linalg.norm(image.astype(np.float32) - background_rgb(image), axis=-1)
    return distance > threshold


def ink_color_name(image: np.ndarray) -> str:
    """The palette colour nearest to the mean colour of the ink pixels ("none" if no ink)."""
    mask = ink_mask(image)
    if mask.sum() < 4:
        return "none"
    mean = image[mask].astype(np.float32).mean(axis=0)
    names = list(COLORS)
    distances = [np.linalg.norm(mean - np.asarray(COLORS[name])) for name in names]
    return names[int(np.argmin(distances))]


def ink_fraction(image: np.ndarray) -> float:
    """Share of pixels that are ink: a thickness measure."""
    return float(ink_mask(image).mean())


def letters_and_shapes(count: int, seed: int = 3) -> np.ndarray:
    """Coloured letters and outlined shapes on the digits' backgrounds: pictures in the digits'
    palette that no training image resembles, for out-of-distribution checks."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        picture = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), "black" if index % 5 == 0 else "white")
        draw = ImageDraw.Draw(picture)
        color = tuple(int(v) for v in list(COLORS.values())[index % len(COLORS)])
        if index % 2:
            draw.text(
                (8 + rng.integers(0, 6), 4 + rng.integers(0, 6)),
                "ABEKMRWX"[index % 8],
                fill=color,
                font_size=22,
            )
        else:
            box = [
                int(v)
                for v in (
                    rng.integers(2, 10),
                    rng.integers(2, 10),
                    rng.integers(20, 30),
                    rng.integers(20, 30),
                )
            ]
            (draw.ellipse if index % 4 == 0 else draw.rectangle)(box, outline=color, width=3)
        images.append(np.asarray(picture))
    return np.stack(images)
