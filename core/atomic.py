"""Atomic file writes: a reader, or a crash, never sees a half-written file.

Everything in a run directory except ``events.jsonl`` is written through these helpers: the
content goes to a temporary file in the same folder, is flushed to disk, then renamed over the
target (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .storage import with_filename

#: ``.<stem>.<8 random characters>.tmp<suffix>``: the names :func:`atomic_path` gives its
#: temporary files (``tempfile.mkstemp`` draws the random part from ``[a-z0-9_]``).
TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]*)?$")


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_path`."""
    return TEMP_NAME.match(Path(path).name) is not None


def remove_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed writer left under ``folder``; the paths removed.

    Only for a folder no live process writes to (the caller holds the run's lock): a live
    writer's temporary file would be removed under it.
    """
    removed = []
    for path in sorted(Path(folder).rglob(".*.tmp*")):
        if path.is_file() and is_temp_file(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; it replaces ``target`` only if the block succeeds.

    Used for writers that want a path rather than bytes (``savefig``, ``np.savez``,
    ``torch.save``). The temporary name keeps the target's suffix, since some writers (NumPy,
    Pillow) pick the format from it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as error:
        # A failed write names no file (ENOSPC from write or fsync): name the one it was for.
        raise with_filename(error, target) from error
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """``obj`` as strict JSON: a number JSON cannot hold (inf, NaN) is written as ``null``, and
    a dict gets a ``notes`` list saying where and what it was (``Infinity`` is not JSON, and
    most readers other than Python's refuse the whole file)."""
    clean, nulls = json_safe(obj)
    if nulls and isinstance(clean, dict):
        clean = {**clean, NOTES_KEY: [*clean.get(NOTES_KEY, []), *null_notes(nulls)]}
    return atomic_write_text(target, json.dumps(clean, indent=2, allow_nan=False) + "\n")


#: The key of a JSON object's notes on values written as null.
NOTES_KEY = "notes"


def json_safe(obj: Any, where: str = "") -> tuple[Any, dict[str, str]]:
    """``obj`` with NumPy/torch values made plain and every non-finite float replaced by None;
    and ``{dotted.path: "inf" | "-inf" | "nan"}`` for each one replaced."""
    nulls: dict[str, str] = {}

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            nulls[path or "."] = str(value)
            return None
        if isinstance(value, dict):
            return {str(k): clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str | int | bool) or value is None:
            return value
        return clean(_json_default(value), path)

    return clean(obj, where), nulls


def null_notes(nulls: dict[str, str]) -> list[str]:
    """One sentence for each value :func:`json_safe` wrote as null."""
    return [
        f"{path} was {value}, written as null (JSON holds no infinity or NaN)"
        for path, value in nulls.items()
    ]


def _json_default(value: Any) -> Any:
    """Serialise the NumPy/torch scalars and paths that results commonly contain."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
