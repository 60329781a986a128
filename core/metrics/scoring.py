"""What a metrics run gathered, handed to the final numbers as one object.

:func:`~diffusionscope.core.metrics.outputs.finish` and the output writers take a
:class:`Scoring` instead of nine arguments; each metric's computation reads from it only what
its record says it needs. Arrays are put in sample order once, and tensors made on the
statistics device once, however many metrics read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .reference import ReferenceStats

if TYPE_CHECKING:
    from ..modes import RunContext

#: The collected per-sample array each need is read from (the loop's names for them).
COLLECTED_ARRAYS = {"logits": "logits", "clip_scores": "clip", "clip_embeddings": "cmmd"}


@dataclass
class Scoring:
    """The run's samples, reference and settings, with everything derived from them cached."""

    ctx: RunContext
    options: Any
    extractor: Any
    reference: ReferenceStats
    collected: Any
    curve: list[list[float]]
    elapsed: float
    device: torch.device | str = "cpu"
    throughput: dict[str, Any] | None = None
    _arrays: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def order(self) -> np.ndarray:
        """Collected rows in sample order (processes and resumed steps append out of order)."""
        return np.argsort(np.concatenate(self.collected.indices))

    def ordered(self, name: str) -> np.ndarray | None:
        """The collected array ``name`` (``features``, ``logits``, ``clip``, ``cmmd``) in sample
        order, or None when the run did not collect it."""
        if name not in self._arrays:
            array = self.collected.array(name)
            self._arrays[name] = None if array is None else array[self.order]
        return self._arrays[name]

    @property
    def features(self) -> np.ndarray:
        return self.ordered("features")

    @property
    def n(self) -> int:
        return len(self.features)

    @cached_property
    def generated(self) -> torch.Tensor:
        """The generated images' features on the statistics device."""
        return torch.from_numpy(self.features).to(self.device)

    @cached_property
    def real(self) -> torch.Tensor | None:
        """The reference images' features on the statistics device (None: statistics only)."""
        features = self.reference.features
        return None if features is None else torch.from_numpy(features).to(self.device)

    @cached_property
    def reference_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's mean and covariance on the statistics device."""
        return (
            torch.as_tensor(self.reference.mu, device=self.device),
            torch.as_tensor(self.reference.sigma, device=self.device),
        )

    @property
    def common(self) -> dict[str, Any]:
        """What every extractor-based entry of ``results.json`` records."""
        return {
            "n": self.n,
            "extractor": self.extractor.name,
            "resize_policy": self.extractor.resize_policy,
        }

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once for every metric that reads ``key`` (one PRDC pass serves PR and DC)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def has(self, need: str) -> bool:
        """Whether the run has what a metric's record ``needs`` (``core/metrics/registry.py``)."""
        if need == "reference_features":
            return self.reference.features is not None
        if need == "reference_images":
            return self.reference.content_hash is not None  # images have one, statistics not
        return self.ordered(COLLECTED_ARRAYS[need]) is not None
