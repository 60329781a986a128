"""Host-side writes (sample PNGs, checkpoint chunks) on one background thread, so the GPU is
not kept waiting while PNGs are encoded and files are fsynced.

Writes run in the order they were submitted (so checkpoint chunks land in order), an error in
one is raised in the run's own thread at the next submit or at :meth:`drain`, and at most
``max_pending`` writes wait at a time, so a slow disk slows the run instead of filling memory.
A kill loses the writes still queued; checkpoint chunks are atomic files, so ``--resume``
redoes their steps and nothing else.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundWriter:
    def __init__(self, max_pending: int = 16) -> None:
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-writer")
        self._pending: deque[Future] = deque()

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(write, *args))

    def drain(self) -> None:
        """Wait for every queued write; raise the first error."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # already failing: finish what is queued, but the run's own error is the one
            with contextlib.suppress(Exception):  # to report
                self.close()
