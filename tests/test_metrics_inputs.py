"""Folders on both sides of a comparison: every image reaches the extractor the same way, so a
folder compared with itself gives FID 0 and precision, recall, density and coverage exactly 1,
for square, non-square and mixed sizes; the reference cache re-reads nothing unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusionscope.core.cli import main
from diffusionscope.core.zoo import DIGITS_REFERENCE

COUNT = 30


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path / "cache"))


def _digits(count: int = COUNT) -> list[np.ndarray]:
    paths = sorted(DIGITS_REFERENCE.glob("*.png"))[:count]
    return [np.asarray(Image.open(path).convert("RGB")) for path in paths]


def _on_canvas(image: np.ndarray, height: int, width: int, offset: int) -> np.ndarray:
    canvas = np.full((height, width, 3), 255, np.uint8)
    top, left = offset % (height - 31), (3 * offset) % (width - 31)
    canvas[top : top + 32, left : left + 32] = image
    return canvas


SIZES = {
    "square": [(32, 32)],
    "non-square": [(48, 64)],
    "mixed": [(32, 32), (48, 64), (56, 40)],
}


@pytest.fixture(params=sorted(SIZES))
def folder(request, tmp_path: Path) -> Path:
    target = tmp_path / request.param
    target.mkdir()
    sizes = SIZES[request.param]
    for index, image in enumerate(_digits()):
        height, width = sizes[index % len(sizes)]
        picture = image if (height, width) == (32, 32) else _on_canvas(image, height, width, index)
        Image.fromarray(picture).save(target / f"{index:03d}.png")
    return target


def test_a_folder_against_itself(folder: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "runs"
    code = main(
        [
            "run",
            "--modes",
            "metrics",
            "--runs-root",
            str(root),
            "--quiet",
            "--generated",
            str(folder),
            "--reference",
            str(folder),
            "--features",
            "digits",
            "--metrics",
            "fid,pr,dc",
            "--bootstrap",
            "4",
            "--json",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)["metrics"]
    assert results["n_generated"] == results["n_reference"] == COUNT
    assert results["fid"]["value"] == 0.0
    for key in ("precision", "recall", "density", "coverage"):
        assert results[key]["value"] == 1.0, key
    assert main(["fid", str(folder), str(folder), "--features", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == 0.0


def test_generated_folder_refuses_a_resize(tmp_path: Path, runs_root: Path, capsys) -> None:
    code = main(
        [
            "run",
            "--modes",
            "metrics",
            "--runs-root",
            str(runs_root),
            "--generated",
            str(DIGITS_REFERENCE),
            "--reference",
            str(DIGITS_REFERENCE),
            "--height",
            "64",
        ]
    )
    assert code == 2
    assert "used at their own size" in capsys.readouterr().err
    assert not list(runs_root.iterdir())


# ---- the reference cache ----------------------------------------------------------------------


def _copy_reference(target: Path, count: int = 12) -> Path:
    target.mkdir()
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:count]:
        shutil.copy2(path, target)
    return target


def test_unchanged_reference_folder_is_not_read_again(tmp_path: Path, monkeypatch) -> None:
    import diffusionscope.core.images as images
    from diffusionscope.core.metrics import reference
    from diffusionscope.core.metrics.features import get_extractor

    folder = _copy_reference(tmp_path / "ref")
    extractor = get_extractor("digits")
    first = reference.reference_from_folder(str(folder), extractor, 8)
    assert not first.cached

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged folder was read again")

    monkeypatch.setattr(images, "_file_digest", no_reading)
    monkeypatch.setattr(images, "read_image", no_reading)
    again = reference.reference_from_folder(str(folder), extractor, 8)
    assert again.cached and again.content_hash == first.content_hash
    np.testing.assert_array_equal(again.features, first.features)


def test_changed_or_copied_reference_folder_is_hashed_again(tmp_path: Path, monkeypatch) -> None:
    import diffusionscope.core.images as images
    from diffusionscope.core.metrics import reference
    from diffusionscope.core.metrics.features import get_extractor

    folder = _copy_reference(tmp_path / "ref")
    extractor = get_extractor("digits")
    first = reference.reference_from_folder(str(folder), extractor, 8)
    hashed: list[Path] = []
    digest = images._file_digest
    monkeypatch.setattr(images, "_file_digest", lambda path: hashed.append(path) or digest(path))

    # A copy elsewhere: new listing, same content -> hashed once, statistics found by content.
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    copied = reference.reference_from_folder(str(copy), extractor, 8)
    assert copied.cached and copied.content_hash == first.content_hash and len(hashed) == 12

    # A file rewritten in place: new listing, new content -> new statistics.
    hashed.clear()
    victim = sorted(folder.glob("*.png"))[0]
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(victim)
    changed = reference.reference_from_folder(str(folder), extractor, 8)
    assert len(hashed) == 12 and not changed.cached
    assert changed.content_hash != first.content_hash
    assert not np.array_equal(changed.features[0], first.features[0])
