"""The rows a metrics run keeps per sample, and how they travel: gathered across processes
after each global step, kept in :class:`Collected`, checkpointed as one atomic ``.npz`` chunk
per step, and read back on ``--resume``.

A row is ``[index, features..., logits..., clip score, cmmd embedding...]`` in float64; which
columns a run has is its *layout*."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ..atomic import atomic_path

CHUNK_GLOB = "metrics-chunk-*.npz"


class StepRows(Metric):
    """Rows of one global step, gathered across processes by torchmetrics' state sync."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, rows: torch.Tensor) -> None:
        self.rows.append(rows)

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.rows)  # a list locally, one tensor after a sync


def gather_rows(gather: StepRows, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Every process's rows of this step, on the CPU. They are handed to the sync on this
    process's own device: NCCL (CUDA runs) gathers only CUDA tensors, gloo CPU ones."""
    gather.update(torch.from_numpy(rows).to(device))
    gathered = gather.compute()
    gather.reset()
    return gathered.cpu()


@dataclass
class Collected:
    """Every row so far, as the chunks they arrived in."""

    indices: list[np.ndarray] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    clip: list[np.ndarray] = field(default_factory=list)
    cmmd: list[np.ndarray] = field(default_factory=list)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.indices.append(chunk["indices"])
        self.features.append(chunk["features"])
        for name in ("logits", "clip", "cmmd"):
            if name in chunk and chunk[name].size:
                getattr(self, name).append(chunk[name])

    def array(self, name: str) -> np.ndarray | None:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else None

    def in_sample_order(self, name: str) -> np.ndarray | None:
        """The column ``name`` with its rows sorted by sample index (None if absent)."""
        values = self.array(name)
        if values is None:
            return None
        return values[np.argsort(np.concatenate(self.indices))]

    @property
    def count(self) -> int:
        return int(sum(len(i) for i in self.indices))


def layout(
    num_features: int, num_logits: int | None, with_clip: bool, cmmd_dim: int
) -> list[tuple[str, int]]:
    """The columns of a row and their widths (``num_logits`` None: no logits kept)."""
    widths = [("indices", 1), ("features", num_features)]
    if num_logits is not None:
        widths.append(("logits", num_logits))
    if with_clip:
        widths.append(("clip", 1))
    if cmmd_dim:
        widths.append(("cmmd", cmmd_dim))
    return widths


def split_rows(rows: torch.Tensor, columns: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """A gathered step's rows, in sample order, as one array per column."""
    order = torch.argsort(rows[:, 0])
    values = rows[order].numpy()
    out, start = {}, 0
    for name, width in columns:
        out[name] = values[:, start : start + width]
        start += width
    out["indices"] = out["indices"][:, 0].astype(np.int64)
    if "clip" in out:
        out["clip"] = out["clip"][:, 0]
    return {
        k: (v.astype(np.float32) if k in ("features", "logits", "cmmd") else v)
        for k, v in out.items()
    }


def write_chunk(target: Path, chunk: dict[str, np.ndarray]) -> None:
    with atomic_path(target) as tmp:
        np.savez(tmp, **chunk)


def chunk_path(folder: Path, step_start: int) -> Path:
    return folder / f"metrics-chunk-{step_start:09d}.npz"


def load_chunks(folder: Path) -> tuple[Collected, int, float]:
    """What a checkpoint folder holds: the rows, the next sample to make, and the seconds the
    interrupted processes had spent making them (each chunk records the run's total so far, so
    a resumed run's ``seconds`` counts every attempt, not only the last one)."""
    collected, next_index, seconds = Collected(), 0, 0.0
    for path in sorted(folder.glob(CHUNK_GLOB)):
        with np.load(path, allow_pickle=False) as data:
            chunk = {key: data[key] for key in data.files}
        collected.add(chunk)
        next_index = max(next_index, int(chunk["end"]))
        seconds = max(seconds, float(chunk.get("seconds", 0.0)))
    return collected, next_index, seconds
