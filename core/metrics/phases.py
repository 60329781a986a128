"""Wall time of the metrics mode by phase -- ``reference`` (feature extractor and reference
statistics), ``sampling`` (model loading and generation, or reading ``--generated``, with
feature extraction) and ``statistics`` (the final numbers, tables and figures) -- summed over
every attempt of a resumed run.

Each finished phase's total so far is written to the checkpoint at once, so a resumed run adds
its own time to the interrupted attempts'. Sampling is the exception: it is mostly interrupted
mid-way, so its total travels in the sample chunks instead (each chunk records the sampling
seconds so far; the loop passes them in).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json
from ..runs import read_json

PHASES = ("reference", "sampling", "statistics")
CHECKPOINT = "metrics-phases.json"


@dataclass
class PhaseClock:
    ctx: Any
    folder: Path  # the checkpoint folder of the measurement (one per point of a sweep)
    totals: dict[str, float] = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)  # when the running phase began

    @classmethod
    def start(cls, ctx: Any, folder: Path) -> PhaseClock:
        """A clock for this attempt, holding the earlier attempts' totals when resuming."""
        earlier = read_json(folder / CHECKPOINT) if ctx.resume else None
        totals = {name: float(earlier.get(name, 0.0)) for name in PHASES} if earlier else {}
        return cls(ctx, Path(folder), totals)

    def mark(self, phase: str, total: float | None = None) -> None:
        """End ``phase`` now: add the time since the last mark to it (or set its total over
        every attempt to ``total``), then save the totals."""
        now = time.monotonic()
        if total is None:
            total = self.totals.get(phase, 0.0) + now - self.since
        self.totals[phase], self.since = total, now
        if self.ctx.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.folder / CHECKPOINT, self.totals)

    def describe(self) -> dict[str, Any]:
        phases = {name: self.totals.get(name, 0.0) for name in PHASES}
        return {"seconds": sum(phases.values()), "phase_seconds": phases}
