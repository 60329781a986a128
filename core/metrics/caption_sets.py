"""Caption sets: images with captions, the reference of text-to-image FID (COCO-30k and kin).

``--reference-set FILE`` reads one of:

* the COCO captions JSON (``captions_val2014.json``): ``images[].{id, file_name}`` and
  ``annotations[].{image_id, caption}``;
* a CSV with a header naming the columns ``image`` and ``caption`` (others are ignored);
* JSON Lines, one ``{"image": ..., "caption": ...}`` object a line.

Image names are relative to ``--reference-root`` (default: the file's folder). An image may
have several captions (COCO has about five).

The draw (:func:`draw`) is the COCO-30k protocol: ``N`` distinct images chosen at random with
the seed, and one of each image's captions chosen at random; caption ``i`` is the prompt of
sample ``i``, and the drawn images are the reference. The same seed draws the same pairs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

SUFFIXES = (".json", ".csv", ".jsonl")
COLUMNS = ("image", "caption")


@dataclass(frozen=True)
class CaptionSet:
    source: Path
    root: Path
    #: Image name (relative to ``root``) -> its captions, in the file's order.
    captions: dict[str, tuple[str, ...]]

    @property
    def count(self) -> int:
        return len(self.captions)


@dataclass(frozen=True)
class Draw:
    """The drawn pairs: ``images[i]`` is the reference image of prompt ``captions[i]``."""

    caption_set: CaptionSet
    images: tuple[Path, ...]
    captions: tuple[str, ...]
    seed: int

    def describe(self) -> dict[str, Any]:
        return {
            "caption_set": str(self.caption_set.source),
            "root": str(self.caption_set.root),
            "images_in_set": self.caption_set.count,
            "drawn": len(self.images),
            "caption_seed": self.seed,
        }


def is_caption_set(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def read_caption_set(path: str | Path, root: str | Path | None = None) -> CaptionSet:
    """The caption set in ``path`` (format by suffix); one line for anything malformed."""
    file = Path(path).expanduser()
    where = f"--reference-set {path}"
    if file.suffix.lower() not in SUFFIXES:
        raise InputError(f"{where}: expected a .json (COCO captions), .csv or .jsonl file")
    if not file.is_file():
        raise InputError(f"{where}: no such file")
    folder = Path(root).expanduser() if root is not None else file.parent
    if not folder.is_dir():
        raise InputError(f"--reference-root {folder}: no such folder")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{where}: cannot read it as UTF-8 text ({error})") from None
    reader = {".json": _coco_pairs, ".csv": _csv_pairs, ".jsonl": _jsonl_pairs}
    captions: dict[str, list[str]] = {}
    for image, caption in reader[file.suffix.lower()](text, where):
        captions.setdefault(image, []).append(caption)
    if not captions:
        raise InputError(f"{where}: no captions")
    return CaptionSet(file, folder, {k: tuple(v) for k, v in captions.items()})


def _coco_pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
        files = {item["id"]: str(item["file_name"]) for item in data["images"]}
        notes = [(item["image_id"], str(item["caption"]).strip()) for item in data["annotations"]]
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: not valid JSON ({error})") from None
    except (KeyError, TypeError) as error:
        raise InputError(
            f"{where}: not the COCO captions format (images[].id, file_name; "
            f"annotations[].image_id, caption): missing {error}"
        ) from None
    unknown = [image_id for image_id, _ in notes if image_id not in files]
    if unknown:
        raise InputError(f"{where}: annotation for image id {unknown[0]!r}, not among images[]")
    return [(files[image_id], caption) for image_id, caption in notes]


def _csv_pairs(text: str, where: str) -> list[tuple[str, str]]:
    rows = csv.DictReader(text.splitlines())
    _check_columns(rows.fieldnames or [], where)
    return [(str(row["image"]), str(row["caption"] or "").strip()) for row in rows]


def _jsonl_pairs(text: str, where: str) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: line {number} is not JSON ({error})") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}: line {number} is not a JSON object")
        _check_columns(list(row), f"{where}: line {number}")
        pairs.append((str(row["image"]), str(row["caption"]).strip()))
    return pairs


def _check_columns(names: list[str], where: str) -> None:
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        unknown = [name for name in names if name not in COLUMNS]
        raise InputError(
            f"{where}: no {' or '.join(missing)} column; unknown column(s) "
            f"{', '.join(repr(n) for n in unknown) or 'none'} (a caption set has the columns "
            "image and caption)"
        )


def draw(caption_set: CaptionSet, n: int | None, seed: int) -> Draw:
    """``n`` distinct images (all of them when ``n`` is None) and one caption of each, at
    random with ``seed``; every drawn image must exist under the set's root."""
    names = list(caption_set.captions)
    n = len(names) if n is None else n
    if n > len(names):
        raise InputError(
            f"--reference-set {caption_set.source}: -n {n} is more than its {len(names)} images"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(names))[:n]
    counts = np.asarray([len(caption_set.captions[names[i]]) for i in chosen], dtype=np.int64)
    picks = rng.integers(0, counts) if n else np.zeros(0, np.int64)
    images, captions = [], []
    for index, pick in zip(chosen, picks, strict=True):
        name = names[index]
        path = caption_set.root / name
        if not path.is_file():
            raise InputError(
                f"--reference-set {caption_set.source}: image {name!r} not found under "
                f"{caption_set.root}"
            )
        images.append(path)
        captions.append(caption_set.captions[name][int(pick)])
    return Draw(caption_set, tuple(images), tuple(captions), seed)


def draw_from_args(args: Any, n: int | None) -> Draw:
    """The draw a run, ``fid`` or ``stats`` makes from ``--reference-set``, ``--reference-root``
    and ``--seed`` (the seed the samples start from, so one number reproduces both)."""
    caption_set = read_caption_set(args.reference_set, getattr(args, "reference_root", None))
    # A mode's options hold the seed with the run's own options; the stats command's arguments
    # hold it as ``seed``.
    seed = args.run.seed if hasattr(args, "run") else getattr(args, "seed", 0)
    return draw(caption_set, n, int(seed or 0))
