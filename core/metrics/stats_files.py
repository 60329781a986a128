"""Statistics files out and in, and the protocol that travels with every number.

``diffusionscope stats`` writes a ``.npz`` that pytorch-fid and clean-fid read as it is
(``mu``, ``sigma``: float64 mean and covariance), plus ``features`` (KID, precision/recall and
density/coverage need them), ``logits`` where the extractor has them, ``n``, and ``protocol``:
one JSON text (a 0-d unicode array, readable without pickles) naming the extractor, the SHA-256
of its weights, the resize policy, the reference crop, the image count and the caption draw.

Read back as ``--reference``, a file's protocol is compared with the run's: another extractor
or another resize policy is refused in one line. Files without a protocol (pytorch-fid's,
clean-fid's) are taken on trust, their dimension checked. ADM-style reference batches
(``arr_0``: uint8 ``[N, H, W, 3]`` images, as OpenAI's guided-diffusion evaluations ship them)
are images, read in batches straight from the zip member so a 50k batch never sits in memory.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

FORMAT = "diffusionscope-stats/1"
#: The resize of extractors other than Inception: their own image processor's.
OWN_PROCESSOR = "processor"
IMAGE_BATCH_KEY = "arr_0"


# --------------------------------------------------------------------------------------------
# ADM reference batches
# --------------------------------------------------------------------------------------------


def _npy_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def image_batch_shape(path: Path) -> tuple[int, ...] | None:
    """The shape of the ``arr_0`` image batch in ``path``, or None when it holds none; one
    line when ``arr_0`` is not uint8 ``[N, H, W, 3]``. Reads only the array's header."""
    try:
        with zipfile.ZipFile(path) as archive:
            if f"{IMAGE_BATCH_KEY}.npy" not in archive.namelist():
                return None
            with archive.open(f"{IMAGE_BATCH_KEY}.npy") as handle:
                shape, _, dtype = _npy_header(handle)
    except FileNotFoundError:
        raise InputError(f"reference {path}: no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"reference {path}: not a readable .npz file ({error})") from None
    if dtype != np.uint8 or len(shape) != 4 or shape[3] != 3 or shape[0] < 1:
        raise InputError(
            f"reference {path}: arr_0 is {dtype} {shape}; an image batch is uint8 [N, H, W, 3]"
        )
    return tuple(shape)


def iter_image_batch(path: Path, batch_size: int) -> Iterator[tuple[list[np.ndarray], int]]:
    """``(images, 0)`` per ``batch_size`` images of the ``arr_0`` batch, read in order."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{IMAGE_BATCH_KEY}.npy") as handle:
        shape, fortran, dtype = _npy_header(handle)
        if fortran:
            raise InputError(f"reference {path}: arr_0 is stored column-major; save it C-ordered")
        row = int(np.prod(shape[1:]))
        for start in range(0, shape[0], batch_size):
            count = min(batch_size, shape[0] - start)
            block = np.frombuffer(handle.read(row * count), dtype=np.uint8)
            if block.size != row * count:
                raise InputError(f"reference {path}: arr_0 is truncated")
            yield list(block.reshape(count, *shape[1:])), 0


# --------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------


def read_protocol(path: Path, value: np.ndarray | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        protocol = json.loads(str(value))
    except json.JSONDecodeError:
        raise InputError(f"reference {path}: its 'protocol' is not JSON") from None
    if not isinstance(protocol, dict):
        raise InputError(f"reference {path}: its 'protocol' is not a JSON object")
    return protocol


def check_protocol(
    path: Path,
    protocol: dict[str, Any] | None,
    *,
    extractor: str | None = None,
    resize: str | None = None,
) -> None:
    """Refuse statistics made with another extractor or another resize policy."""
    if not protocol:
        return
    theirs = protocol.get("extractor")
    if extractor is not None and theirs is not None and theirs != extractor:
        raise InputError(
            f"reference {path}: statistics of {theirs} features; this run uses {extractor}"
        )
    theirs = protocol.get("resize")
    if resize is not None and theirs is not None and theirs != resize:
        raise InputError(
            f"reference {path}: statistics made with --resize {theirs}; this run uses "
            f"--resize {resize} (FID is comparable only under one policy)"
        )


def effective_resize(features: str, resize: str | None) -> str:
    """The policy ``--features`` and ``--resize`` give: ``resize`` for Inception, else the
    extractor's own processor."""
    return (resize or "tf") if features == "inception" else OWN_PROCESSOR


def resize_name(extractor: Any) -> str:
    """``tf`` or ``clean`` for Inception; ``processor`` (the model's own) for the others."""
    return getattr(extractor, "resize", OWN_PROCESSOR)


def protocol_of(extractor: Any, reference: Any) -> dict[str, Any]:
    """The protocol of numbers computed with ``extractor`` against ``reference``: the
    extractor's side from the extractor, the reference's (crop, count, caption draw) from what
    the reference records of itself (``ReferenceStats.protocol``)."""
    known = dict(reference.protocol or {})
    count = reference.n or known.get("reference_count")
    return {
        "extractor": extractor.name,
        "feature_dim": extractor.num_features,
        "weights_sha256": extractor.weights_sha256,
        "resize": resize_name(extractor),
        "resize_policy": extractor.resize_policy,
        "reference_crop": known.get("reference_crop", "unknown" if known == {} else "none"),
        "reference_count": count or None,
        "reference_source": known.get("reference_source", reference.source),
        "caption_set": known.get("caption_set"),
        "caption_seed": known.get("caption_seed"),
    }


def protocol_line(protocol: dict[str, Any]) -> str:
    """The protocol in one line, for the report and the terminal."""
    seed = protocol.get("caption_seed")
    weights = protocol.get("weights_sha256") or "unknown"
    return (
        f"extractor {protocol.get('extractor')} (weights sha256 {weights}); "
        f"resize {protocol.get('resize')}; crop {protocol.get('reference_crop')}; "
        f"reference count {protocol.get('reference_count')}; "
        f"caption seed {seed if seed is not None else 'none'}"
    )


def with_protocol(result: Any, extractor: Any, reference: Any) -> Any:
    """A metrics run's result with ``protocol`` (``line`` is the one-line form that ends
    ``report.md``)."""
    protocol = protocol_of(extractor, reference)
    protocol["line"] = protocol_line(protocol)
    result.results["protocol"] = protocol
    return result


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_stats(path: Path, stats: Any, protocol: dict[str, Any]) -> None:
    """``mu``, ``sigma``, ``features``, ``logits``, ``n`` and ``protocol``, atomically."""
    from ..atomic import atomic_path

    arrays: dict[str, Any] = {
        "mu": np.asarray(stats.mu, np.float64),
        "sigma": np.asarray(stats.sigma, np.float64),
        "n": np.asarray(stats.n),
        "protocol": np.asarray(json.dumps({"format": FORMAT, **protocol})),
    }
    if stats.features is not None:
        arrays["features"] = stats.features
    if stats.logits is not None:
        arrays["logits"] = stats.logits
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
