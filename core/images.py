"""Image folders and image arrays: the one place images enter and leave the engine.

Images travel as uint8 arrays shaped ``[N, H, W, 3]`` (NumPy, the layout PIL and diffusers'
``output_type="np"`` use); :func:`to_uint8_nchw` gives the ``[N, 3, H, W]`` uint8 tensor that
torchmetrics' image metrics expect.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from diffusionscope.core.errors import InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})


def find_images(folder: str | Path, *, what: str = "image folder") -> list[Path]:
    """Every image file under ``folder`` (recursive, sorted, by suffix); one line if none."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise InputError(f"{what} {folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{what} {folder}: not a folder")
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not paths:
        raise InputError(f"{what} {folder}: no images (png, jpg, webp) found")
    return paths


def read_image(path: Path, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 ``[H, W, 3]`` array, resized to ``size``×``size`` (bicubic) when given;
    None when the file cannot be decoded, so one broken file never stops a run."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def iter_image_batches(
    paths: Sequence[Path], batch_size: int, size: int | None = None
) -> Iterator[tuple[np.ndarray, list[Path]]]:
    """Yield ``(images [B,H,W,3] uint8, skipped paths)`` per batch of readable files.

    Without ``size`` all readable images of a batch must share one shape; mixed sizes need
    ``size``, since metrics compare images at one resolution anyway.
    """
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, skipped = [], []
        for path in chunk:
            array = read_image(path, size)
            (skipped.append(path) if array is None else images.append(array))
        if images:
            shapes = {a.shape for a in images}
            if len(shapes) > 1:
                target = max(s[0] for s in shapes)
                images = [resize_square(a, target) for a in images]
            yield np.stack(images), skipped
        else:
            yield np.zeros((0, 1, 1, 3), dtype=np.uint8), skipped


def load_images(paths: Sequence[Path], size: int | None = None) -> tuple[np.ndarray, list[Path]]:
    """All readable images as one array, and the paths that could not be decoded."""
    arrays, skipped = [], []
    for batch, bad in iter_image_batches(paths, 256, size):
        if len(batch):
            arrays.append(batch)
        skipped += bad
    if not arrays:
        return np.zeros((0, size or 1, size or 1, 3), dtype=np.uint8), skipped
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        target = max(s[0] for s in shapes)
        arrays = [np.stack([resize_square(a, target) for a in batch]) for batch in arrays]
    return np.concatenate(arrays), skipped


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize to ``size``×``size``; returns the image itself when it already fits."""
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8
    )


def content_hash(paths: Sequence[Path], root: Path | None = None) -> str:
    """A SHA-256 over the files' relative names and bytes: identifies a reference set's content,
    not its location, so a copied folder reuses its cached statistics."""
    digest = hashlib.sha256()
    for path in paths:
        name = path.relative_to(root) if root is not None else Path(path.name)
        digest.update(name.as_posix().encode())
        digest.update(b"\0")
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def to_uint8_nchw(images: np.ndarray) -> Any:
    """``[N,H,W,3]`` uint8 NumPy -> ``[N,3,H,W]`` uint8 torch tensor (torchmetrics' layout)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def float_to_uint8(images: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats -> uint8 with rounding, the quantisation every saved PNG goes through."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, pad: int = 2,
              background: int = 255) -> Any:  # fmt: skip
    """Tile ``[N,H,W,3]`` uint8 images into one PIL image, row by row."""
    from PIL import Image

    count, height, width = images.shape[:3]
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    canvas = np.full(
        (rows * height + (rows + 1) * pad, columns * width + (columns + 1) * pad, 3),
        background,
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return Image.fromarray(canvas)


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    from diffusionscope.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
