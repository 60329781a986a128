"""Device checks for tests: move a network to PyTorch's ``meta`` device, feed it what the code
feeds it, and check with a forward pre-hook where its input lives (a mismatch raises).

``meta`` tensors hold no data, so a forward cannot finish there: a hook that has seen what it
needs raises :class:`Reached` to stop the forward early. Shared by the modes' device tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

META = torch.device("meta")


class Reached(Exception):
    """The checked layer ran with its input on the right device; nothing after it must run."""


def first_tensor(args: tuple, kwargs: dict) -> torch.Tensor:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    raise AssertionError("the layer was called without a tensor")


@contextlib.contextmanager
def input_on(
    layer: nn.Module, device: torch.device = META, stop: bool = True, seen: list | None = None
) -> Iterator[list]:
    """Check, before ``layer`` runs, that its input is on ``device``; ``stop`` ends the
    forward there by raising :class:`Reached`."""
    calls = seen if seen is not None else []

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        tensor = first_tensor(args, kwargs)
        if tensor.device.type != device.type:
            raise AssertionError(
                f"{type(module).__name__} got its input on {tensor.device}, its weights are "
                f"on {device}"
            )
        calls.append(tensor.device)
        if stop:
            raise Reached

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def leaf_layers(module: nn.Module) -> list[nn.Module]:
    """Every module that holds its own weights (parameter-free helpers such as rotary
    embeddings or timestep projections take their inputs wherever they are built)."""
    return [
        m for m in module.modules() if not list(m.children()) and list(m.parameters(recurse=False))
    ]
