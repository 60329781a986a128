"""Reference sets: an image folder (features extracted and cached) or precomputed statistics.

A folder's features are cached per (content hash, extractor, resize policy, numerics: device
type, memory layout and PyTorch version), so a second run
against the same reference -- even a copied folder -- skips the extraction. A ``.npz`` with
``mu`` and ``sigma`` (as pytorch-fid and clean-fid write them) gives FID only, unless it also
holds ``features`` (as ``--save-features`` writes them).

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

MIN_REFERENCE_IMAGES = 2
FOLDER_BATCH = 256  # images read per step from folders, on both sides of a comparison


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


def validate_reference(path: str, expected_dim: int | None = None) -> None:
    """Cheap checks before a run: the folder has two readable images; the ``.npz`` holds a
    finite, symmetric, positive semi-definite covariance of the extractor's dimension."""
    file = Path(path).expanduser()
    if file.suffix.lower() == ".npz":
        load_npz_stats(file, expected_dim)
        return
    require_readable_images(file, "reference folder")


def load_npz_stats(path: Path, expected_dim: int | None = None) -> ReferenceStats:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"reference {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"reference {path}: not a readable .npz file ({error})") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise InputError(
            f"reference {path}: .npz has no 'mu' and 'sigma' arrays (has: "
            f"{', '.join(sorted(arrays)) or 'nothing'})"
        )
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"reference {path}: mu {mu.shape} and sigma {sigma.shape} do not match")
    check_statistics(path, mu, sigma)
    if expected_dim is not None and mu.shape[0] != expected_dim:
        raise InputError(
            f"reference {path}: statistics are {mu.shape[0]}-d but the feature extractor gives "
            f"{expected_dim}-d features (computed with another extractor?)"
        )
    features = arrays.get("features")
    n = int(arrays["n"]) if "n" in arrays else (len(features) if features is not None else 0)
    skipped = int(arrays["skipped"]) if "skipped" in arrays else 0
    return ReferenceStats(
        str(path), mu, sigma, n, features=features, logits=arrays.get("logits"), skipped=skipped
    )


def folder_batch_size(args: Any) -> int:
    """Folders (the reference and ``--generated``) are read in batches of one size, so a folder
    compared with itself gives bit-identical features on both sides."""
    size = getattr(args, "batch_size", None)
    return size if isinstance(size, int) else FOLDER_BATCH


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
    folder: str, extractor: Any, batch_size: int, progress: Any = None, log: Any = None
) -> ReferenceStats:
    """Statistics (and features, logits) of an image folder: cached, or extracted with every
    image at its own size, decoded on threads ahead of the extractor."""
    root = Path(folder).expanduser()
    paths = find_images(root, what="reference folder")
    digest = folder_content_hash(root, paths)
    recipe = f"{extractor.resize_policy}|{getattr(extractor, 'numerics', '')}"
    policy = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    cache_file = cache_dir() / f"{digest[:20]}-{extractor.name}-{policy}.npz"
    if cache_file.is_file():
        cached = load_npz_stats(cache_file)
        if cached.dim != extractor.num_features:
            raise InputError(
                f"reference cache {cache_file}: {cached.dim}-d statistics disagree with the "
                f"{extractor.num_features}-d {extractor.name} features; delete the file"
            )
        cached.source, cached.content_hash, cached.cached = str(root), digest, True
        if cached.skipped and log is not None:
            log(f"reference folder {root}: skipped {cached.skipped} unreadable file(s)", "warning")
        return cached
    features, logits, skipped = [], [], 0
    done = 0
    for images, _, bad in iter_decoded(paths, batch_size):
        skipped += len(bad)
        if images:
            f, lg = extract(extractor, images, with_logits=extractor.has_logits)
            features.append(f)
            if lg is not None:
                logits.append(lg)
        done += len(images) + len(bad)
        if progress is not None:
            progress("reference", done, len(paths), "img")
    if skipped and log is not None:
        log(f"reference folder {root}: skipped {skipped} unreadable file(s)", "warning")
    total = sum(len(f) for f in features)
    if total < MIN_REFERENCE_IMAGES:
        raise InputError(
            f"reference folder {root}: only {total} readable image(s) of {len(paths)} files "
            f"({skipped} could not be decoded)"
        )
    all_features = np.concatenate(features)
    all_logits = np.concatenate(logits) if logits else None
    mu, sigma = mean_and_covariance(all_features)
    stats = ReferenceStats(str(root), mu, sigma, total, all_features, all_logits, digest, skipped)
    _write_cache(cache_file, stats)
    return stats


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
