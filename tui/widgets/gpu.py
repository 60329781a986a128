"""GPU history beside a run, as nvitop draws it: per GPU, utilisation, memory and temperature
over the run as sparklines, with the latest value after each. Readings come from
:class:`diffusionscope.core.health.HealthMonitor` (NVML); where it finds no GPU the pane says so
in one line.

The sparklines are drawn here rather than with Textual's ``Sparkline``: that one scales each
line between its own minimum and maximum, so a steady 30 % would fill the line like 100 %;
here utilisation and memory are drawn on 0-100 % and temperature on 0-100 °C, the scales their
numbers are read on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

from ...core.health import NO_GPU, GpuHealth, Health, format_bytes

#: Readings kept per GPU (at one every two seconds, the last ten minutes).
HISTORY = 300
BLOCKS = " ▁▂▃▄▅▆▇█"
LABEL_WIDTH = 6
VALUE_WIDTH = 20


def sparkline(values: list[float], width: int, ceiling: float = 100.0) -> str:
    """The last ``width`` values as eighth-blocks on ``0..ceiling`` (older ones scroll off)."""
    shown = values[-width:] if width > 0 else []
    cells = []
    for value in shown:
        level = max(0.0, min(1.0, value / ceiling)) if ceiling else 0.0
        cells.append(BLOCKS[round(level * (len(BLOCKS) - 1))])
    return "".join(cells).rjust(max(width, 0), " ")


@dataclass
class GpuTrace:
    """One GPU's readings over the run."""

    name: str
    utilization: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    memory: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))  # percent
    temperature: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    last: GpuHealth | None = None


class GpuPane(Widget, can_focus=False):
    """Every GPU's history; :meth:`record` adds one reading of all of them."""

    DEFAULT_CSS = "GpuPane { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.traces: dict[int, GpuTrace] = {}
        self.readings = 0
        self.found = True

    def record(self, health: Health) -> None:
        self.readings += 1
        self.found = bool(health.gpus)
        for gpu in health.gpus:
            trace = self.traces.get(gpu.index)
            if trace is None:
                trace = self.traces[gpu.index] = GpuTrace(gpu.name.removeprefix("NVIDIA "))
            trace.utilization.append(float(gpu.utilization))
            total = gpu.memory_total
            trace.memory.append(100.0 * gpu.memory_used / total if total else 0.0)
            if gpu.temperature is not None:
                trace.temperature.append(float(gpu.temperature))
            trace.last = gpu
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, 4 * len(self.traces)) if self.found else 1

    def render(self) -> Text:
        if not self.found or not self.traces:
            return Text(NO_GPU if self.readings else "waiting for the first GPU reading")
        width = max(1, self.size.width - LABEL_WIDTH - VALUE_WIDTH - 2)
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, trace in sorted(self.traces.items()):
            gpu = trace.last
            assert gpu is not None
            used = f"{format_bytes(gpu.memory_used)}/{format_bytes(gpu.memory_total)}"
            temp = "--" if gpu.temperature is None else f"{gpu.temperature} °C"
            if text:
                text.append("\n")
            text.append(f"GPU{index} {trace.name}", style="bold")
            for label, values, value in (
                ("util", trace.utilization, f"{gpu.utilization:3d} %"),
                ("mem", trace.memory, used),
                ("temp", trace.temperature, temp),
            ):
                text.append(f"\n {label:<{LABEL_WIDTH - 1}}")
                text.append(sparkline(list(values), width), style="green")
                text.append(f"  {value}")
        return text
