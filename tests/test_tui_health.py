"""GPU and process health beside a run, read through a fake NVML (no GPU here), and psutil."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_tui_fakes import (
    SIZE,
    async_test,
    isolated_config,  # noqa: F401 -- fixture
    kill_group,
    live_metrics_run,
    make_app,
    wait_for,
)

from diffusionscope.core import health
from diffusionscope.core.health import (
    NO_GPU,
    HealthMonitor,
    format_bytes,
    gpu_count,
    health_lines,
)

GIB = 1024**3


class NVMLError(Exception):
    pass


def fake_nvml(processes: dict[int, list[tuple[int, int | None]]], *, fail_init: bool = False):
    """An object with the pynvml calls the monitor makes: two GPUs, ``processes`` per GPU as
    ``(pid, used bytes)``. ``fail_init`` stands for a host without an NVIDIA driver."""
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    gpus = [
        ("NVIDIA H100 80GB HBM3", 87, 30 * GIB, 80 * GIB),
        (b"NVIDIA A10", 3, 1 * GIB, 24 * GIB),
    ]
    return SimpleNamespace(
        calls=calls,
        NVMLError=NVMLError,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: gpus[h][0],
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=gpus[h][1], memory=0),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(
            used=gpus[h][2], total=gpus[h][3], free=gpus[h][3] - gpus[h][2]
        ),
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in processes.get(h, [])
        ],
    )


@pytest.fixture
def worker_process():
    """A run process with one worker child, as ``accelerate launch`` would start."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        import psutil

        parent = psutil.Process(process.pid)
        for _ in range(200):
            if parent.children():
                break
            psutil.wait_procs([], timeout=0.05)
        yield process, parent.children()[0].pid
    finally:
        kill_group(process)


def test_gpus_and_the_run_process_tree(worker_process) -> None:
    process, child = worker_process
    nvml = fake_nvml({0: [(process.pid, 2 * GIB), (child, 3 * GIB), (424242, 20 * GIB)]})
    monitor = HealthMonitor(nvml)
    reading = monitor.read(process.pid)
    first, second = reading.gpus
    assert reading.nvml and (first.name, first.utilization) == ("NVIDIA H100 80GB HBM3", 87)
    assert (first.memory_used, first.memory_total) == (30 * GIB, 80 * GIB)
    assert first.process_memory == 5 * GIB  # the run and its worker, not the other process
    assert second.name == "NVIDIA A10" and second.process_memory == 0
    assert reading.process.pid == process.pid and reading.process.processes == 2
    assert reading.process.rss > 0
    assert reading.process.cpu_percent is None  # psutil measures between two readings
    assert monitor.read(process.pid).process.cpu_percent is not None
    lines = health_lines(reading)
    assert lines[0] == "GPU0 H100 80GB HBM3   87%  30.0 GiB/80.0 GiB  run 5.0 GiB"
    assert lines[-1].startswith(f"run pid {process.pid} +1  CPU --%  RAM ")  # and one worker
    monitor.close()
    assert nvml.calls == ["init", "shutdown"]


def test_unknown_per_process_memory_is_said_unknown(worker_process) -> None:
    process, _ = worker_process
    monitor = HealthMonitor(fake_nvml({0: [(process.pid, None)]}))
    assert monitor.read(process.pid).gpus[0].process_memory is None
    assert "run" not in health_lines(monitor.read(process.pid))[0]


def test_without_an_nvidia_driver_only_the_process_is_shown(worker_process) -> None:
    process, _ = worker_process
    nvml = fake_nvml({}, fail_init=True)
    monitor = HealthMonitor(nvml)
    reading = monitor.read(process.pid)
    assert not reading.nvml and reading.gpus == []
    lines = health_lines(reading)
    assert len(lines) == 2 and lines[0] == NO_GPU and lines[1].startswith("run pid")
    assert gpu_count(fake_nvml({}, fail_init=True)) == 0 and gpu_count(fake_nvml({})) == 2
    assert health_lines(HealthMonitor(nvml).read(None)) == [NO_GPU]  # one line says so


def test_byte_sizes() -> None:
    assert [format_bytes(n) for n in (512, 2048, 5 * 1024**2, 3 * GIB, None)] == [
        "512 B",
        "2.0 KiB",
        "5.0 MiB",
        "3.0 GiB",
        "?",
    ]


@pytest.mark.usefixtures("isolated_config")
@async_test
async def test_the_run_view_shows_gpu_health_of_a_running_run(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake run's process is this test process (it wrote process.json): its GPU memory."""
    monkeypatch.setattr(health, "load_nvml", lambda: fake_nvml({1: [(os.getpid(), 7 * GIB)]}))
    writer = live_metrics_run(runs_root)
    try:
        app = make_app(runs_root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(writer.path)
            screen = app.screen
            await wait_for(pilot, lambda: len(screen.health) == 3)
            await pilot.pause()
            pane = screen.query_one("#run-health")
            text = str(pane.render())
            assert pane.display and "GPU1 A10" in text and "run 7.0 GiB" in text
            assert f"run pid {os.getpid()}" in text
    finally:
        writer.close()


@pytest.mark.usefixtures("isolated_config")
@async_test
async def test_no_driver_no_gpu_lines_and_a_finished_run_no_pane(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_tui_fakes import finished_schedule_run

    monkeypatch.setattr(health, "load_nvml", lambda: fake_nvml({}, fail_init=True))
    writer = live_metrics_run(runs_root)
    done = finished_schedule_run(runs_root)
    try:
        app = make_app(runs_root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(writer.path)
            screen = app.screen
            await wait_for(pilot, lambda: screen.health)
            assert [line.split()[0] for line in screen.health] == ["no", "run"]
            await pilot.press("escape")
            app.open_run(done)
            finished = app.screen
            await wait_for(pilot, lambda: finished.results is not None)
            await pilot.pause(0.3)
            assert finished.health == [] and not finished.query_one("#run-health").display
    finally:
        writer.close()
