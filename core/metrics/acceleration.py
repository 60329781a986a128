"""Throughput settings for the pipeline while the metrics mode samples from it.

- ``channels_last`` for the denoiser and the VAE on CUDA: convolutions on tensor cores read
  NHWC, and PyTorch would otherwise convert every activation on the way in and out. Not on
  the CPU, where it would only change the summation order of the numbers.
- ``--compile``: ``torch.compile`` of the denoiser (UNet or transformer), where nearly all of
  the sampling time goes. Off by default: the first steps pay for the compilation (reported as
  warm-up), and each new batch shape compiles again.

The pipeline is shared with the other modes of the same run, so both are undone on leaving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

COMPILE_BACKEND = "inductor"


def denoiser_of(pipeline: Any) -> nn.Module | None:
    """The network every sampling step runs: ``unet`` or ``transformer`` (diffusers' names)."""
    for name in ("unet", "transformer"):
        module = getattr(pipeline, name, None)
        if isinstance(module, nn.Module):
            return module
    return None


def _has_convolutions(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


@contextlib.contextmanager
def accelerated(pipeline: Any, device: str, compile_denoiser: bool = False) -> Iterator[list[str]]:
    """Apply the settings; yield what was applied (for the run's log and results)."""
    applied: list[str] = []
    laid_out: list[nn.Module] = []
    denoiser = denoiser_of(pipeline)
    if str(device).startswith("cuda"):
        for module in (denoiser, getattr(pipeline, "vae", None)):
            if isinstance(module, nn.Module) and _has_convolutions(module):
                module.to(memory_format=torch.channels_last)
                laid_out.append(module)
        if laid_out:
            applied.append("channels_last")
    compiled = compile_denoiser and denoiser is not None
    if compiled:
        denoiser.compile(backend=COMPILE_BACKEND)
        applied.append(f"torch.compile({type(denoiser).__name__}, backend={COMPILE_BACKEND})")
    try:
        yield applied
    finally:
        if compiled:
            # nn.Module.compile() keeps the compiled call here; None restores the plain one.
            denoiser._compiled_call_impl = None
        for module in laid_out:
            module.to(memory_format=torch.contiguous_format)
