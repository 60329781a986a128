"""Image folders and image arrays: the one place images enter and leave the engine.

Images travel as uint8 arrays shaped ``[N, H, W, 3]`` (NumPy, the layout PIL and diffusers'
``output_type="np"`` use), or as lists of ``[H, W, 3]`` arrays when they come from folders and
may differ in size (each then keeps its own; :func:`same_size_groups` batches them);
:func:`to_uint8_nchw` gives the ``[N, 3, H, W]`` uint8 tensor torchmetrics' image metrics
expect. Files are decoded as they are shown (:func:`to_rgb`), on threads.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


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


def to_rgb(image: Any) -> np.ndarray:
    """A PIL image as the RGB uint8 ``[H, W, 3]`` array it shows on screen.

    ``Image.convert("RGB")`` is right for most modes (palette, L, LA, RGBA, CMYK, 1-bit) but
    clamps 16-bit greyscale (``I;16``, ``I``) to 255, turning every such image white; those
    are scaled by 255/65535 with rounding (``v·257`` maps back to ``v``; Pillow already reads
    16-bit RGB PNGs as their high bytes, which agrees on such values). The EXIF orientation is
    applied first, so a photo rotated by its camera tag is compared as it is displayed. Alpha is
    dropped, as torch-fidelity and clean-fid do, so statistics stay comparable with theirs.
    """
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:
        wide = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: Path, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 ``[H, W, 3]`` array (see :func:`to_rgb`), resized to ``size``×``size``
    (bicubic) when given; None when the file cannot be decoded, so one broken file never stops
    a run."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = to_rgb(image)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    if size is not None:
        array = resize_square(array, size)
    return array


def decode_workers() -> int:
    """Threads for decoding: Pillow releases the GIL while it decodes, so threads scale."""
    return max(1, min(8, os.cpu_count() or 1))


def iter_decoded(
    paths: Sequence[Path], batch_size: int, size: int | None = None, workers: int | None = None
) -> Iterator[tuple[list[np.ndarray], list[int], list[Path]]]:
    """Yield ``(images, positions, skipped paths)`` per batch of ``paths``: each readable image
    at its own size, the positions in ``paths`` they came from, and the files that could not be
    decoded. Files are decoded on a thread pool, the next batch while the caller works on this
    one, so decoding stays off the caller's critical path."""
    if not paths:
        return
    with ThreadPoolExecutor(max_workers=workers or decode_workers()) as pool:

        def submit(start: int) -> list[Future]:
            return [
                pool.submit(read_image, path, size) for path in paths[start : start + batch_size]
            ]

        pending = submit(0)
        for start in range(0, len(paths), batch_size):
            ahead = submit(start + batch_size) if start + batch_size < len(paths) else []
            images, positions, skipped = [], [], []
            for offset, future in enumerate(pending):
                array = future.result()
                if array is None:
                    skipped.append(paths[start + offset])
                else:
                    images.append(array)
                    positions.append(start + offset)
            yield images, positions, skipped
            pending = ahead


def iter_image_batches(
    paths: Sequence[Path], batch_size: int, size: int | None = None
) -> Iterator[tuple[np.ndarray, list[Path]]]:
    """Yield ``(images [B,H,W,3] uint8, skipped paths)`` per batch of readable files.

    Callers that need one array give ``size``; without it a batch of mixed sizes is brought to
    its largest square (the metrics mode never does this: it uses :func:`iter_decoded`, which
    keeps every image at its own size).
    """
    for images, _, skipped in iter_decoded(paths, batch_size, size):
        if images:
            if len({a.shape for a in images}) > 1:
                target = max(a.shape[0] for a in images)
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


def same_size_groups(images: Sequence[np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    """Images of one size stacked together, with their positions, in order of first
    appearance: a network takes each group as one batch, and every image keeps its own size."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for position, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(position)
    return [(positions, np.stack([images[p] for p in positions])) for positions in groups.values()]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize to ``size``×``size``; returns the image itself when it already fits."""
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8
    )


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def content_hash(paths: Sequence[Path], root: Path | None = None) -> str:
    """A SHA-256 over the files' relative names and the SHA-256 of each file's bytes: it
    identifies a reference set's content, not its location, so a copied folder reuses its
    cached statistics. Files are hashed on threads (hashlib releases the GIL)."""
    with ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        digests = list(pool.map(_file_digest, paths))
    combined = hashlib.sha256()
    for path, file_digest in zip(paths, digests, strict=True):
        name = path.relative_to(root) if root is not None else Path(path.name)
        combined.update(name.as_posix().encode())
        combined.update(b"\0")
        combined.update(file_digest)
    return combined.hexdigest()


def listing_key(paths: Sequence[Path], root: Path) -> str:
    """A SHA-256 over the folder's absolute path and each file's relative name, size and
    modification time (ns): what can be known without reading a byte of any image. Equal
    keys stand in for equal content (see ``metrics/reference.py`` for the trade-off)."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for path in paths:
        stat = path.stat()
        digest.update(
            f"\0{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        )
    return digest.hexdigest()


def to_uint8_nchw(images: np.ndarray) -> Any:
    """``[N,H,W,3]`` uint8 NumPy -> ``[N,3,H,W]`` uint8 torch tensor (torchmetrics' layout)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def float_to_uint8(images: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats -> uint8 with rounding, the quantisation every saved PNG goes through."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(
    images: np.ndarray, columns: int | None = None, pad: int = 2, background: int = 255
) -> Any:
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

    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
