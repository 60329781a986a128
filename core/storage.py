"""A write that the disk refuses: which file, and how much room is left.

A full disk, a quota, a read-only remount or a file made unwritable under a running run is not
a bug in the run: the user frees space (or fixes permissions) and resumes. So such a failure is
reported as one line naming the file and the free space on its file system, and the run is
left ``interrupted`` (every file in a run directory is written atomically, so nothing partial
stays behind) instead of ``failed`` with a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .health import format_bytes

#: The errors a write gets from the storage under it, not from the program.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)


def is_storage_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in STORAGE_ERRNOS


def free_space(path: str | os.PathLike[str]) -> int | None:
    """Bytes free to this user on the file system holding ``path`` (or its nearest existing
    parent); None when it cannot be read."""
    existing = Path(path)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).free
    except OSError:
        return None


def describe_write_failure(error: OSError, fallback: str | os.PathLike[str]) -> str:
    """``cannot write PATH: No space left on device (12.0 KiB free there)``."""
    path = error.filename or fallback
    free = free_space(path)
    room = f"{format_bytes(free)} free there" if free is not None else "free space unknown"
    return f"cannot write {path}: {error.strerror or error} ({room})"


def with_filename(error: OSError, path: str | os.PathLike[str]) -> OSError:
    """``error`` naming ``path`` when it names no file (a failed ``write`` does not)."""
    if error.filename:
        return error
    return type(error)(error.errno, error.strerror, os.fspath(path))
