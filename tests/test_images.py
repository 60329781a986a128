"""Images that are not what we made: 16-bit, palette, grey+alpha, CMYK and EXIF-rotated files
are read as the pictures they show; folders of any sizes are read in parallel, each image at its
own size."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusionscope.core.images import (
    iter_decoded,
    listing_key,
    read_image,
    same_size_groups,
)


def _gradient(height: int = 12, width: int = 20) -> np.ndarray:
    """An RGB picture with distinct values everywhere, and a marker in its top-left corner."""
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([rows * 20 % 256, cols * 12 % 256, (rows + cols) * 7 % 256], axis=-1)
    image[:3, :3] = (255, 0, 0)
    return image.astype(np.uint8)


def test_16_bit_grey_png_is_scaled_not_clamped(tmp_path: Path) -> None:
    """Pillow's convert("RGB") clamps I;16 to 255: every such image would read as white."""
    values = np.array([[0, 257, 32896], [45000, 65278, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    image = read_image(path)
    expected = np.round(values / 257).astype(np.uint8)
    assert image.shape == (2, 3, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], expected)


def _png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + pixels[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_16_bit_rgb_png_keeps_its_colours(tmp_path: Path) -> None:
    eight = _gradient()
    path = tmp_path / "rgb16.png"
    _png_rgb16(path, eight.astype(np.uint16) * 257)  # the 16-bit form of the 8-bit picture
    np.testing.assert_array_equal(read_image(path), eight)


def test_palette_images_with_and_without_transparency(tmp_path: Path) -> None:
    picture = Image.fromarray(_gradient())
    palette = picture.quantize(colors=16)
    plain, transparent = tmp_path / "palette.png", tmp_path / "palette-alpha.png"
    palette.save(plain)
    palette.save(transparent, transparency=0)
    expected = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(read_image(plain), expected)
    np.testing.assert_array_equal(read_image(transparent), expected)


def test_grey_with_alpha_is_grey(tmp_path: Path) -> None:
    grey = _gradient()[:, :, 1]
    alpha = np.full_like(grey, 90)
    path = tmp_path / "la.png"
    Image.fromarray(np.stack([grey, alpha], axis=-1), mode="LA").save(path)
    image = read_image(path)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey)


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((255, 0, 0, 0), (0, 255, 255)),
        ((0, 255, 255, 0), (255, 0, 0)),
        ((0, 0, 0, 128), (127, 127, 127)),
        ((0, 0, 0, 0), (255, 255, 255)),
    ],
)
def test_cmyk_jpeg_colours(tmp_path: Path, cmyk: tuple, rgb: tuple) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), cmyk).save(path, quality=100)
    assert Image.open(path).mode == "CMYK"
    image = read_image(path).astype(int)
    assert np.abs(image - np.asarray(rgb)).max() <= 3


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_270),
        (8, Image.Transpose.ROTATE_90),
    ],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, turn) -> None:
    stored = Image.fromarray(_gradient())
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rotated-{orientation}.png"
    stored.save(path, exif=exif)
    shown = np.asarray(stored.transpose(turn))
    image = read_image(path)
    assert image.shape == shown.shape
    np.testing.assert_array_equal(image, shown)


def test_folder_batches_keep_every_image_at_its_own_size(tmp_path: Path) -> None:
    sizes = [(32, 32), (48, 64), (32, 32), (40, 56), (48, 64)]
    paths = []
    for index, (height, width) in enumerate(sizes):
        path = tmp_path / f"{index}.png"
        Image.new("RGB", (width, height), (index * 40, 0, 0)).save(path)
        paths.append(path)
    (tmp_path / "5.png").write_bytes(b"not a png")
    paths.append(tmp_path / "5.png")
    batches = list(iter_decoded(paths, batch_size=4, workers=2))
    assert [positions for _, positions, _ in batches] == [[0, 1, 2, 3], [4]]
    assert batches[1][2] == [tmp_path / "5.png"]
    shapes = [image.shape[:2] for images, _, _ in batches for image in images]
    assert shapes == sizes
    groups = same_size_groups(batches[0][0])
    assert [positions for positions, _ in groups] == [[0, 2], [1], [3]]
    assert groups[0][1].shape == (2, 32, 32, 3)


def test_listing_key_changes_with_any_file_change(tmp_path: Path) -> None:
    import os

    path = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(path)
    before = listing_key([path], tmp_path)
    assert listing_key([path], tmp_path) == before
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert listing_key([path], tmp_path) != before
