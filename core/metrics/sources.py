"""Where a metrics run's images come from: the model (sample ``i`` seeded ``seed + i``, prompt
``i mod len``) or a folder of existing images; and the prompts file both read."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..generation import GenerationSettings, generate
from ..images import decode_workers, find_images, make_grid, read_image, resize_square


class PipelineImages:
    """Samples from the model: sample ``i`` uses seed ``seed + i`` and prompt ``i mod len``."""

    def __init__(
        self, pipeline: Any, prompts: list[str] | None, settings: GenerationSettings, seed: int
    ) -> None:
        self.pipeline = pipeline
        self.prompts = prompts
        self.settings = settings
        self.seed = seed

    def prefetch(self, indices: range) -> None:
        """Nothing to prepare: samples are made on demand."""

    def batch(self, indices: range) -> tuple[np.ndarray, list[str] | None, np.ndarray]:
        """Images, their prompts, and their sample indices."""
        prompts = None
        if self.prompts is not None:
            prompts = [self.prompts[i % len(self.prompts)] for i in indices]
        seeds = [self.seed + i for i in indices]
        images = generate(self.pipeline, seeds, self.settings, prompts)
        return images, prompts, np.asarray(list(indices), dtype=np.int64)

    def close(self) -> None:
        pass


class FolderImages:
    """Existing images (``--generated DIR``), in sorted path order, each at its own size (as the
    reference folder's are); unreadable ones skipped. Files are decoded on a thread pool, the
    next batch while the current one is extracted."""

    def __init__(self, folder: str) -> None:
        self.paths = find_images(folder, what="generated folder")
        self.skipped: dict[int, Path] = {}
        self._pool = ThreadPoolExecutor(max_workers=decode_workers())
        self._pending: dict[int, Future] = {}

    def prefetch(self, indices: range) -> None:
        for index in indices:
            if index < len(self.paths) and index not in self._pending:
                self._pending[index] = self._pool.submit(read_image, self.paths[index])

    def batch(self, indices: range) -> tuple[list[np.ndarray], None, np.ndarray]:
        """Readable images, no prompts, and the indices of the files they came from."""
        self.prefetch(indices)
        images, kept = [], []
        for index in indices:
            image = self._pending.pop(index).result()
            if image is None:
                self.skipped[index] = self.paths[index]
            else:
                images.append(image)
                kept.append(index)
        return images, None, np.asarray(kept, dtype=np.int64)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def read_prompts(path: str) -> list[str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"--prompts-file {path}: no such file")
    prompts = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise InputError(f"--prompts-file {path}: no prompts (one prompt a line)")
    return prompts


def grid_of(images: np.ndarray | list[np.ndarray]) -> Any:
    """The first samples as one picture (images of other sizes shown at the first's size)."""
    images = list(images[:64])
    side = images[0].shape[0]
    return make_grid(
        np.stack(
            [
                resize_square(image, side) if image.shape[:2] != (side, side) else image
                for image in images
            ]
        )
    )
