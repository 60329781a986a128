"""How one kind of number is shown: label, unit, display scale, direction, where it sits.

Its own module so that the metric registry (``core/metrics/registry.py``) and the table of
every mode's numbers (``core/result_fields.py``) share it without importing each other.
Torch-free (the workbench imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class ResultField:
    """How one kind of number is shown.

    ``scale`` multiplies the stored value for display and ``unit`` says so (KID is reported
    ×10³ by convention, as in the papers that use it); ``value_key``/``spread_key`` name where
    the number and its spread sit in a ``results.json`` entry, and ``entry`` the entry when it
    is not the field's own (FID∞ is the ``fid_inf`` key of the ``fid`` entry).
    """

    name: str
    label: str
    unit: str = ""
    scale: float = 1.0
    better: Better = None
    value_key: str = "value"
    spread_key: str | None = None
    has_interval: bool = False
    headline: bool = False
    pattern: str | None = None  # a regex for families of names (``terminal_snr:<schedule>``)
    entry: str | None = None

    def matches(self, name: str) -> re.Match[str] | None:
        if self.pattern is None:
            return re.fullmatch(re.escape(self.name), name)
        return re.fullmatch(self.pattern, name)

    @property
    def entry_key(self) -> str:
        """The ``results.json`` entry that holds this number."""
        return self.entry or self.name

    @property
    def direction(self) -> str:
        """``↓`` when lower is better, ``↑`` when higher is, else empty."""
        return {"lower": "↓", "higher": "↑"}.get(self.better or "", "")
