"""GPU and process health of a run, read with NVIDIA's NVML bindings and psutil (no torch).

NVML (``nvidia-ml-py``, imported as ``pynvml``) reports each GPU's utilisation and memory and
the GPU memory of every process using it, which is what nvidia-smi and nvitop show; psutil
reports the CPU and resident memory of the run's process and the workers it started. On a
host without an NVIDIA driver ``nvmlInit`` raises, and the GPU part is simply absent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


def load_nvml() -> ModuleType | None:
    """The ``pynvml`` module, or None when the bindings are not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


@dataclass(frozen=True)
class GpuHealth:
    index: int
    name: str
    utilization: int  # percent of the last sample period the GPU was busy
    memory_used: int  # bytes, every process together
    memory_total: int
    process_memory: int | None  # bytes held by the watched process tree; None: unknown
    temperature: int | None = None  # °C of the GPU die; None where the driver will not say


@dataclass(frozen=True)
class ProcessHealth:
    pid: int
    cpu_percent: float | None  # over the process and its children (100 = one core); None
    # on the first reading of a process (psutil measures CPU between two readings)
    rss: int  # bytes
    processes: int


@dataclass(frozen=True)
class Health:
    gpus: list[GpuHealth] = field(default_factory=list)
    process: ProcessHealth | None = None
    nvml: bool = False  # False: no NVIDIA driver here, the GPU part is not shown


class HealthMonitor:
    """Reads health on demand; keeps NVML initialised and psutil's CPU counters between reads.

    ``nvml`` may be any object with the pynvml functions used here (tests pass a fake).
    """

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml if nvml is not None else load_nvml()
        self.nvml_ready = False
        if self._nvml is not None:
            try:
                self._nvml.nvmlInit()
                self.nvml_ready = True
            except Exception:  # noqa: BLE001 -- NVMLError subclasses: no driver, no library
                self.nvml_ready = False
        self._processes: dict[int, Any] = {}

    def close(self) -> None:
        if self.nvml_ready:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self.nvml_ready = False

    def read(self, pid: int | None = None) -> Health:
        pids = self._process_tree(pid) if pid else []
        process = self._process_health(pid, pids) if pid else None
        gpus = self._gpus(set(pids)) if self.nvml_ready else []
        return Health(gpus=gpus, process=process, nvml=self.nvml_ready)

    # ---- NVML ---------------------------------------------------------------------------

    def _gpus(self, pids: set[int]) -> list[GpuHealth]:
        nvml = self._nvml
        out = []
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception:  # noqa: BLE001 -- a driver that went away: show nothing
            return []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else str(name)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            except Exception:  # noqa: BLE001 -- one GPU that cannot be read is left out
                continue
            out.append(
                GpuHealth(
                    index,
                    name,
                    int(utilization),
                    int(memory.used),
                    int(memory.total),
                    self._process_memory(handle, pids),
                    self._temperature(handle),
                )
            )
        return out

    def _temperature(self, handle: Any) -> int | None:
        try:
            sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
            return int(self._nvml.nvmlDeviceGetTemperature(handle, sensor))
        except Exception:  # noqa: BLE001 -- no sensor reading (some virtual GPUs): unknown
            return None

    def _process_memory(self, handle: Any, pids: set[int]) -> int | None:
        if not pids:
            return None
        try:
            running = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except Exception:  # noqa: BLE001 -- not permitted (containers): unknown
            return None
        used = [p.usedGpuMemory for p in running if p.pid in pids]
        # usedGpuMemory is None where the driver will not say (some containers, Windows).
        known = [int(u) for u in used if u is not None]
        return sum(known) if known or not used else None

    # ---- psutil -------------------------------------------------------------------------

    def _process_tree(self, pid: int) -> list[int]:
        import psutil

        try:
            root = psutil.Process(pid)
            return [pid] + [child.pid for child in root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []

    def _process_health(self, pid: int, pids: list[int]) -> ProcessHealth | None:
        import psutil

        if not pids:
            return None
        cpu, rss, measured = 0.0, 0, pid in self._processes
        for each in pids:
            process = self._processes.get(each)
            try:
                if process is None:
                    process = self._processes[each] = psutil.Process(each)
                cpu += process.cpu_percent(interval=None)  # since the previous read
                rss += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._processes.pop(each, None)
        for gone in set(self._processes) - set(pids):
            del self._processes[gone]
        return ProcessHealth(pid, cpu if measured else None, rss, len(pids))


def gpu_count(nvml: Any = None) -> int:
    """How many NVIDIA GPUs the driver reports (0 without a driver)."""
    monitor = HealthMonitor(nvml)
    try:
        return monitor._nvml.nvmlDeviceGetCount() if monitor.nvml_ready else 0
    except Exception:  # noqa: BLE001
        return 0
    finally:
        monitor.close()


def format_bytes(count: int | None) -> str:
    """A byte count as people read it (``1.5 GiB``): memory in the health line, free disk
    space in a full-disk message."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    raise AssertionError("unreachable")


#: The one line shown for the GPUs where NVML finds none (no driver, or no NVIDIA GPU).
NO_GPU = "no NVIDIA GPU found (NVML has no driver or no device here)"


def health_lines(health: Health) -> list[str]:
    """One line per GPU, then the run process; one line saying so where no GPU was found."""
    lines = [] if health.gpus else [NO_GPU]
    for gpu in health.gpus:
        own = f"  run {format_bytes(gpu.process_memory)}" if gpu.process_memory is not None else ""
        name = gpu.name.removeprefix("NVIDIA ")
        lines.append(
            f"GPU{gpu.index} {name}  {gpu.utilization:3d}%  "
            f"{format_bytes(gpu.memory_used)}/{format_bytes(gpu.memory_total)}{own}"
        )
    if health.process is not None:
        process = health.process
        workers = f" +{process.processes - 1}" if process.processes > 1 else ""
        cpu = "--" if process.cpu_percent is None else f"{process.cpu_percent:.0f}"
        lines.append(f"run pid {process.pid}{workers}  CPU {cpu}%  RAM {format_bytes(process.rss)}")
    return lines
