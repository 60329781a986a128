"""``--batch-size auto``: the largest batch that fits on the GPU, found while the run proceeds.

No sample is generated twice to find it, except the step that ran out of memory. The run starts
at a small batch; after each step the peak memory it took predicts what twice the batch would
take (weights stay, activations double), and the batch doubles while that prediction stays
under ``HEADROOM`` of the GPU's memory. An out-of-memory error halves the batch, retries the same
step, and caps the batch there for the rest of the run. Sample ``i`` is seeded ``seed + i``
whatever batch it falls in, so the samples do not depend on the batch sizes the run went
through (the floating-point results of a batched network may, in the last bits).

Several processes agree on one batch size per step (the smallest any of them proposes) and all
retry a step when any of them ran out of memory, so the step layout stays the same on every
process. Without CUDA there is no memory to probe: ``auto`` is the fixed default there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

HEADROOM = 0.85
START = 8
LIMIT = 1024


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError)


@dataclass
class MemoryProbe:
    """Peak and resident memory of one CUDA device around a step."""

    device: torch.device

    def start_step(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = torch.cuda.memory_allocated(self.device)

    def predicted_fraction_if_doubled(self) -> float:
        peak = torch.cuda.max_memory_allocated(self.device)
        total = torch.cuda.get_device_properties(self.device).total_memory
        return (self.baseline + 2 * max(peak - self.baseline, 0)) / total

    def release(self) -> None:
        torch.cuda.empty_cache()


@dataclass
class AutoBatch:
    """The batch size of the next step. ``probe`` is None where nothing can be measured (then
    the size never grows); ``agree`` turns this process's proposal into the one all use."""

    size: int
    limit: int = LIMIT
    probe: MemoryProbe | None = None
    agree: Callable[[int], int] = field(default=lambda size: size)
    ceiling: int | None = None
    history: list[int] = field(default_factory=list)

    def start_step(self) -> int:
        self.size = self.agree(min(self.size, self.limit, self.ceiling or self.limit))
        if self.probe is not None:
            self.probe.start_step()
        self.history.append(self.size)
        return self.size

    def step_done(self) -> None:
        """Double the batch when twice this step's activations would still fit."""
        if self.probe is None:
            return
        cap = min(self.limit, self.ceiling or self.limit)
        if self.size * 2 <= cap and self.probe.predicted_fraction_if_doubled() < HEADROOM:
            self.size *= 2

    def out_of_memory(self) -> None:
        """Halve the batch for the retry of this step, and never go back above it."""
        if self.probe is not None:
            self.probe.release()
        if self.size <= 1:
            raise RuntimeError("out of GPU memory with a batch of 1")
        self.size //= 2
        self.ceiling = self.size


def distributed_agreement(
    device: torch.device,
) -> tuple[Callable[[int], int], Callable[[bool], bool]]:
    """``(agree on a size, did any process run out of memory)`` across the process group,
    with the collective's tensors on this process's device (NCCL gathers only CUDA tensors)."""
    import torch.distributed as dist

    def reduce(value: int, op: dist.ReduceOp) -> int:
        tensor = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(tensor, op=op)
        return int(tensor.item())

    def agree(size: int) -> int:
        return reduce(size, dist.ReduceOp.MIN)

    def any_failed(failed: bool) -> bool:
        return bool(reduce(int(failed), dist.ReduceOp.MAX))

    return agree, any_failed
