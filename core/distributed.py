"""Which process this is when a run is split across processes.

``accelerate launch`` and ``torchrun`` both export ``WORLD_SIZE``/``RANK``; when they are
present the process group is joined through accelerate's ``PartialState`` (NCCL on CUDA, gloo on
CPU), so torchmetrics' own state sync can gather statistics. Without them the run is a single
process and nothing distributed is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: range) -> range:
        """This process's share of the sample indices: every ``world_size``-th, from ``rank``."""
        return indices[self.rank :: self.world_size]


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group if a launcher started several processes; else a single process."""
    if launched_world_size() <= 1:
        return DistInfo()
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    return DistInfo(
        rank=state.process_index,
        world_size=state.num_processes,
        local_rank=state.local_process_index,
    )


def barrier(dist: DistInfo) -> None:
    if dist.is_distributed:
        import torch.distributed

        torch.distributed.barrier()
