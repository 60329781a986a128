"""Reference sets: image files (features extracted and cached) or precomputed statistics.

The images come from a folder, from the drawn images of a caption set (``caption_sets.py``),
or from an ADM-style reference batch (a ``.npz`` holding ``arr_0``, uint8 ``[N, H, W, 3]``).
Their features are cached per (content hash, extractor, resize policy, reference crop,
numerics: device type, memory layout and PyTorch version), so a second run against the same
reference -- even a copied folder -- skips the extraction. A ``.npz`` with ``mu`` and ``sigma``
(as pytorch-fid and clean-fid write them) gives FID only, unless it also holds ``features``
(as ``diffusionscope stats`` and ``--save-features`` write them); one that records its protocol
(``stats_files.py``) is refused by a run whose extractor or resize policy differ.

Finding the content hash means reading every byte of the folder, which on a 50k-image set costs
more than loading the cached statistics. So a second, cheaper key sits in front of it: the
folder's *listing* (its absolute path, and every file's relative name, size and modification
time in nanoseconds). An unchanged listing maps straight to the content hash it was last seen
with, and no image is opened; any change to the listing (a file added, removed, rewritten,
touched) re-hashes the content, and a copied folder, whose listing differs, re-hashes once and
finds its statistics by content. The trade-off: a file rewritten in place with the same size
*and* the same nanosecond mtime (a tool that restores mtimes, or a file system with coarse
timestamps) would be taken as unchanged; deleting ``<cache>/reference/listings`` forces a
re-hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..images import (
    content_hash,
    find_images,
    iter_decoded,
    listing_key,
)
from .features import extract
from .frechet import mean_and_covariance
from .inputs import check_statistics, require_readable_images
from .resize import ReferenceCrop

MIN_REFERENCE_IMAGES = 2
#: Folders (the reference and ``--generated``) are read in batches of this one size, whatever
#: ``--batch-size`` (the size of a sampling step) says, so a folder compared with itself gives
#: bit-identical features on both sides.
FOLDER_BATCH = 256


@dataclass
class ReferenceStats:
    source: str
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray | None = None
    logits: np.ndarray | None = None
    content_hash: str | None = None
    skipped: int = 0
    cached: bool = False
    #: The protocol a statistics file records (``stats_files.py``); None for images.
    protocol: dict[str, Any] | None = None

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n": self.n,
            "content_hash": self.content_hash,
            "skipped_files": self.skipped,
            "from_cache": self.cached,
            "has_features": self.features is not None,
        }


def cache_dir() -> Path:
    root = os.environ.get("DIFFUSIONSCOPE_CACHE") or Path.home() / ".cache" / "diffusionscope"
    return Path(root) / "reference"


def validate_reference(
    path: str,
    expected_dim: int | None = None,
    *,
    extractor: str | None = None,
    resize: str | None = None,
) -> None:
    """Cheap checks before a run: the folder has two readable images; a ``.npz`` holds an
    ``arr_0`` image batch, or a finite, symmetric, positive semi-definite covariance of the
    extractor's dimension computed, if the file says so, with the same ``extractor`` and
    ``resize`` policy."""
    file = Path(path).expanduser()
    if file.suffix.lower() == ".npz":
        from .stats_files import image_batch_shape

        if image_batch_shape(file) is None:
            load_npz_stats(file, expected_dim, extractor=extractor, resize=resize)
        return
    require_readable_images(file, "reference folder")


NPZ_KEYS = ("mu", "sigma", "features", "logits", "n", "skipped", "protocol")


def load_npz_stats(
    path: Path,
    expected_dim: int | None = None,
    *,
    extractor: str | None = None,
    resize: str | None = None,
) -> ReferenceStats:
    """``mu``, ``sigma`` (and ``features``, ``logits``, the protocol where present) of a
    statistics ``.npz``; only those arrays are read."""
    from .stats_files import check_protocol, read_protocol

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"reference {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key in NPZ_KEYS}
            names = list(data.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"reference {path}: not a readable .npz file ({error})") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise InputError(
            f"reference {path}: .npz has no 'mu' and 'sigma' arrays (has: "
            f"{', '.join(sorted(names)) or 'nothing'})"
        )
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"reference {path}: mu {mu.shape} and sigma {sigma.shape} do not match")
    protocol = read_protocol(path, arrays.get("protocol"))
    check_protocol(path, protocol, extractor=extractor, resize=resize)
    check_statistics(path, mu, sigma)
    if expected_dim is not None and mu.shape[0] != expected_dim:
        raise InputError(
            f"reference {path}: statistics are {mu.shape[0]}-d but the feature extractor gives "
            f"{expected_dim}-d features (computed with another extractor?)"
        )
    features = arrays.get("features")
    n = int(arrays["n"]) if "n" in arrays else (len(features) if features is not None else 0)
    if protocol and not n:
        n = int(protocol.get("reference_count") or 0)
    skipped = int(arrays["skipped"]) if "skipped" in arrays else 0
    return ReferenceStats(
        str(path),
        mu,
        sigma,
        n,
        features=features,
        logits=arrays.get("logits"),
        skipped=skipped,
        protocol=protocol,
    )


def folder_content_hash(root: Path, paths: list[Path]) -> str:
    """The folder's content hash, from the listing index when the listing is unchanged."""
    import json

    from ..atomic import atomic_write_text

    index = cache_dir() / "listings" / f"{listing_key(paths, root)[:40]}.json"
    try:
        known = json.loads(index.read_text())
        if isinstance(known, dict) and isinstance(known.get("content_hash"), str):
            return known["content_hash"]
    except (OSError, ValueError):
        pass
    digest = content_hash(paths, root)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next run a re-hash
        atomic_write_text(index, json.dumps({"content_hash": digest, "files": len(paths)}))
    return digest


def reference_from_folder(
    folder: str,
    extractor: Any,
    batch_size: int,
    progress: Any = None,
    log: Any = None,
    crop: ReferenceCrop | None = None,
) -> ReferenceStats:
    """Statistics (and features, logits) of an image folder: cached, or extracted with every
    image at its own size (after the reference crop), decoded on threads ahead of the
    extractor."""
    root = Path(folder).expanduser()
    paths = find_images(root, what="reference folder")
    return reference_from_files(root, paths, extractor, batch_size, progress, log, crop)


def cache_file_for(digest: str, extractor: Any, crop: ReferenceCrop) -> Path:
    """Where the statistics of content ``digest`` under this protocol are cached."""
    recipe = f"{extractor.resize_policy}|{getattr(extractor, 'numerics', '')}"
    if crop.active:  # keys without a crop stay those of earlier versions
        recipe += f"|crop {crop.describe()}"
    policy = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    return cache_dir() / f"{digest[:20]}-{extractor.name}-{policy}.npz"


def reference_from_files(
    root: Path,
    paths: list[Path],
    extractor: Any,
    batch_size: int,
    progress: Any = None,
    log: Any = None,
    crop: ReferenceCrop | None = None,
) -> ReferenceStats:
    """Statistics of image files under ``root`` (a folder's, or a caption set's drawn images),
    cached by content; an ADM ``arr_0`` batch is one such file (``stats_files.py``)."""
    crop = crop or ReferenceCrop()
    digest = folder_content_hash(root, paths)
    cache_file = cache_file_for(digest, extractor, crop)
    where = f"reference {root if len(paths) != 1 else paths[0]}"
    if cache_file.is_file():
        cached = load_npz_stats(cache_file)
        if cached.dim != extractor.num_features:
            raise InputError(
                f"reference cache {cache_file}: {cached.dim}-d statistics disagree with the "
                f"{extractor.num_features}-d {extractor.name} features; delete the file"
            )
        cached.source, cached.content_hash, cached.cached = str(root), digest, True
        if cached.skipped and log is not None:
            log(f"{where}: skipped {cached.skipped} unreadable file(s)", "warning")
        return cached
    count = len(paths)
    if count == 1 and paths[0].suffix.lower() == ".npz":
        from .stats_files import image_batch_shape, iter_image_batch

        count = image_batch_shape(paths[0])[0]
        batches: Any = iter_image_batch(paths[0], batch_size)
    else:
        batches = ((images, len(bad)) for images, _, bad in iter_decoded(paths, batch_size))

    def report(done: int) -> None:
        if progress is not None:
            progress("reference", done, count, "img")

    features, logits, skipped, total = _extract_all(batches, extractor, crop, where, report)
    if skipped and log is not None:
        log(f"{where}: skipped {skipped} unreadable file(s)", "warning")
    if total < MIN_REFERENCE_IMAGES:
        raise InputError(
            f"{where}: only {total} readable image(s) of {count} ({skipped} could not be decoded)"
        )
    mu, sigma = mean_and_covariance(features)
    stats = ReferenceStats(str(root), mu, sigma, total, features, logits, digest, skipped)
    _write_cache(cache_file, stats)
    return stats


def _extract_all(
    batches: Any, extractor: Any, crop: ReferenceCrop, where: str, progress: Any
) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """Features and logits of every image of ``batches`` (``(images, skipped count)``), after
    the reference crop; and the numbers skipped and kept."""
    features, logits, skipped, done = [], [], 0, 0
    for images, bad in batches:
        skipped += bad
        for image in images:
            crop.check_size(image.shape[1], image.shape[0], f"an image of {where}")
        images = [crop.apply(image) for image in images]
        if images:
            f, lg = extract(extractor, images, with_logits=extractor.has_logits)
            features.append(f)
            if lg is not None:
                logits.append(lg)
        done += len(images) + bad
        progress(done)
    total = sum(len(f) for f in features)
    all_features = (
        np.concatenate(features) if features else np.zeros((0, extractor.num_features), np.float32)
    )
    return all_features, (np.concatenate(logits) if logits else None), skipped, total


def _write_cache(path: Path, stats: ReferenceStats) -> None:
    from ..atomic import atomic_path

    arrays = {
        "mu": stats.mu,
        "sigma": stats.sigma,
        "n": np.asarray(stats.n),
        "features": stats.features,
        "skipped": np.asarray(stats.skipped),
    }
    if stats.logits is not None:
        arrays["logits"] = stats.logits
    try:
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass  # a read-only cache only costs the next run an extraction
