"""Helpers for the TUI tests (no tests here): fake run directories and a pilot wait.

Fake runs are written with the real :class:`diffusionscope.core.runs.RunWriter` and real event classes, with
fixed event times, so the screens that read them render the same on every machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from diffusionscope.core.atomic import atomic_write_json
from diffusionscope.core.events import (
    ArtifactEvent,
    LogEvent,
    MetricEvent,
    ProgressEvent,
    SeriesEvent,
    StatusEvent,
)
from diffusionscope.core.runs import RunWriter

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
SIZE = (120, 40)


@pytest.fixture
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Recent models and settings go to a temporary folder, never the user's."""
    folder = tmp_path / "config"
    monkeypatch.setenv("DIFFUSIONSCOPE_CONFIG", str(folder))
    return folder


def make_app(runs_root: Path, model: str | None = None):
    from diffusionscope.tui.app import WorkbenchApp

    return WorkbenchApp(
        model=model,
        runs_root=runs_root,
        image_renderer="halfcell",
        theme="textual-dark",
        cursor_blink=False,
    )


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 600.0) -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout``).

    The deadline only bounds a test that is already wrong: it is far above what a loaded
    machine needs, so a passing outcome never depends on the machine's load."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s")
        await pilot.pause(0.05)


def _writer(root: Path, name: str, config: dict) -> RunWriter:
    path = root / name
    path.mkdir(parents=True)
    (path / "checkpoint").mkdir()
    (path / "artifacts").mkdir()
    atomic_write_json(path / "config.json", config)
    writer = RunWriter(path)
    writer.start()  # records this (live) test process: the run reads as running
    return writer


def live_metrics_run(root: Path, name: str = "20240101-000000-metrics-live") -> RunWriter:
    """A metrics run half way through: progress with rates, FID/KID points, some numbers."""
    writer = _writer(
        root, name, {"modes": ["metrics"], "model": "core/zoo/digits-ldm", "num_samples": 64}
    )
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    writer.emit(LogEvent(message="loading core/zoo/digits-ldm", time=T0 + 0.5))
    for i, n in enumerate((8, 16, 24, 32)):
        writer.emit(
            ProgressEvent(
                phase="generate", done=n, total=64, unit="img", mode="metrics", time=T0 + 2 + 4 * i
            )
        )
        fid = 180.0 * (8 / n) ** 0.5 + 20
        writer.emit(
            SeriesEvent(
                series="fid",
                x=n,
                y=fid,
                mode="metrics",
                x_label="N samples",
                y_label="FID",
                time=T0 + 2.5 + 4 * i,
            )
        )
        writer.emit(
            SeriesEvent(series="kid", x=n, y=0.05 * 8 / n, mode="metrics", time=T0 + 2.6 + 4 * i)
        )
    writer.emit(
        ProgressEvent(phase="features", done=32, total=64, unit="img", mode="metrics", time=T0 + 16)
    )
    writer.emit(
        MetricEvent(name="inception_score", value=2.125, mode="metrics", n=32, time=T0 + 16.5)
    )
    writer.emit(LogEvent(message="FID at N=32: 110.0", mode="metrics", time=T0 + 17))
    return writer


def _schedule(kind: str, steps: int = 1000) -> dict[str, list[float]]:
    if kind == "linear":
        betas = [0.00085 + (0.012 - 0.00085) * i / (steps - 1) for i in range(steps)]
        alphas, prod = [], 1.0
        for beta in betas:
            prod *= 1 - beta
            alphas.append(prod)
    else:
        f = [math.cos(((t / steps) + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(steps + 1)]
        alphas = [f[t + 1] / f[0] for t in range(steps)]
        betas = [min(1 - alphas[0], 0.999)] + [
            min(1 - alphas[t] / alphas[t - 1], 0.999) for t in range(1, steps)
        ]
    every = list(range(0, steps, 20))
    alphas = [max(alphas[t], 1e-12) for t in every]
    return {
        "timesteps": every,
        "alphas_cumprod": alphas,
        "log_snr": [math.log(a / (1 - a)) for a in alphas],
        "betas": [betas[t] for t in every],
    }


def finished_schedule_run(root: Path, name: str = "20240101-000100-schedule-done") -> Path:
    """A finished schedule run: two schedules in results.json, log-SNR series, a figure PNG."""
    from PIL import Image, ImageDraw

    writer = _writer(root, name, {"modes": ["schedule"], "model": "core/zoo/digits-ldm"})
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    curves = {"model": _schedule("linear"), "cosine": _schedule("cosine")}
    for schedule, values in curves.items():
        for t, y in zip(values["timesteps"][::10], values["log_snr"][::10], strict=True):
            writer.emit(
                SeriesEvent(series=f"logsnr:{schedule}", x=t, y=y, mode="schedule", time=T0 + 1)
            )
    figure = Image.new("RGB", (96, 64), "white")
    ImageDraw.Draw(figure).line([(0, 10), (95, 60)], fill="blue", width=3)
    figure.save(writer.artifact_path("schedule_curves.png"))
    writer.emit(
        ArtifactEvent(
            path="artifacts/schedule_curves.png",
            kind="figure",
            caption="noise schedules",
            mode="schedule",
            time=T0 + 2,
        )
    )
    writer.emit(MetricEvent(name="terminal_snr", value=0.0047, mode="schedule", time=T0 + 2))
    writer.write_results(
        {"run": {"modes": ["schedule"]}, "schedule": {"schedules": curves, "terminal_snr": 0.0047}}
    )
    writer.emit(StatusEvent(state="finished", time=T0 + 3))
    writer.close()
    return writer.path


def finished_attention_run(
    root: Path, name: str = "20240101-000200-attention-done", layers: tuple[str, ...] = ()
) -> Path:
    """A finished attention run: per-word, per-timestep overlays as PNG artifacts (and per
    layer group too when ``layers`` names some)."""
    from PIL import Image, ImageDraw

    writer = _writer(root, name, {"modes": ["attention"], "model": "core/zoo/digits-ldm"})
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    for w, word in enumerate(("red", "seven")):
        for t in (10, 20):
            for layer in layers or ("",):
                image = Image.new("RGB", (32, 32), (20, 20, 40))
                draw = ImageDraw.Draw(image)
                draw.ellipse(
                    [4 + 6 * w, 4 + t // 5, 20 + 6 * w, 20 + t // 5], fill=(240, 90 + 60 * w, 30)
                )
                suffix = f"_layer-{layer}" if layer else ""
                rel = f"artifacts/attention_word-{word}_t-{t:03d}{suffix}.png"
                image.save(writer.path / rel)
                writer.emit(
                    ArtifactEvent(
                        path=rel,
                        kind="image",
                        caption=f"'{word}' at t={t}",
                        mode="attention",
                        time=T0 + 1,
                    )
                )
    writer.write_results({"run": {"modes": ["attention"]}, "attention": {"sharpness": 0.42}})
    writer.emit(StatusEvent(state="finished", time=T0 + 2))
    writer.close()
    return writer.path


#: A metrics section of results.json as the metrics mode writes it (see core/metrics/__init__).
METRICS_RESULTS = {
    "n_generated": 64,
    "n_reference": 500,
    "seconds": 81.5,
    "features": {"name": "digits", "dim": 64, "resize_policy": "none"},
    "reference": {
        "source": "digits-reference",
        "n": 500,
        "content_hash": "ab12",
        "skipped_files": [],
        "from_cache": False,
        "has_features": True,
    },
    "fid": {
        "value": 23.4567,
        "n": 64,
        "extractor": "digits",
        "resize_policy": "none",
        "interval": [21.25, 26.5],
        "interval_level": 0.95,
        "interval_method": "bootstrap",
        "fid_inf": 19.875,
        "fid_inf_slope": 250.0,
        "fid_inf_points": [[32, 27.0], [64, 23.5]],
        "curve": [[32, 30.0, 0.05], [64, 23.4567, 0.0314]],
    },
    "kid": {"mean": 0.0314, "std": 0.0021, "subset_size": 64, "n": 64},
    "is": {"mean": 2.125, "std": 0.0625, "splits": 10, "n": 64},
    "precision": {"value": 0.75, "k": 3, "n": 64},
    "recall": {"value": 0.5, "k": 3, "n": 64},
    "density": {"value": 0.875, "k": 5, "n": 64},
    "coverage": {"value": 0.625, "k": 5, "n": 64},
    "clip_score": {"mean": 27.5, "std": 1.5, "n": 64, "model": "digits-clip"},
}


def finished_metrics_run(
    root: Path,
    name: str = "20240101-000300-metrics-done",
    config: dict | None = None,
    numbers: dict | None = None,
) -> Path:
    """A finished metrics run: FID/KID curve points, every final number as a metric event and
    in results.json (with the FID interval), as the metrics mode writes them. ``numbers``
    replaces entries of :data:`METRICS_RESULTS` (a run that measured something else)."""
    results = {**METRICS_RESULTS, **(numbers or {})}
    writer = _writer(
        root,
        name,
        config
        or {
            "modes": ["metrics"],
            "model": "core/zoo/digits-ldm",
            "num_samples": 64,
            "steps": 25,
            "seed": 0,
        },
    )
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    for i, (n, fid, kid) in enumerate(results["fid"]["curve"]):
        writer.emit(
            ProgressEvent(
                phase="generate",
                done=n,
                total=64,
                unit="img",
                mode="metrics",
                time=T0 + 10 * (i + 1),
            )
        )
        writer.emit(
            SeriesEvent(
                series="fid",
                x=n,
                y=fid,
                mode="metrics",
                x_label="N samples",
                time=T0 + 10 * (i + 1),
            )
        )
        writer.emit(SeriesEvent(series="kid", x=n, y=kid, mode="metrics", time=T0 + 10 * (i + 1)))
    fid = results["fid"]
    writer.emit(
        MetricEvent(
            name="fid",
            value=fid["value"],
            mode="metrics",
            n=64,
            extra={"interval": fid["interval"]},
            time=T0 + 30,
        )
    )
    writer.emit(
        MetricEvent(name="fid_inf", value=fid["fid_inf"], mode="metrics", n=64, time=T0 + 30)
    )
    for key in ("kid", "is", "clip_score"):
        entry = results[key]
        writer.emit(
            MetricEvent(
                name=key,
                value=entry["mean"],
                mode="metrics",
                n=64,
                extra={"std": entry.get("std")},
                time=T0 + 30,
            )
        )
    for key in ("precision", "recall", "density", "coverage"):
        writer.emit(
            MetricEvent(name=key, value=results[key]["value"], mode="metrics", n=64, time=T0 + 30)
        )
    writer.write_results(
        {
            "run": {"modes": ["metrics"], "model": "core/zoo/digits-ldm", "seed": 0},
            "metrics": results,
        }
    )
    writer.emit(StatusEvent(state="finished", time=T0 + 31))
    writer.close()
    return writer.path


def kill_group(process: subprocess.Popen | int) -> None:
    """Tests clean up every child they start: the whole process group, then reap."""
    pid = process if isinstance(process, int) else process.pid
    for sig in (signal.SIGCONT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    if isinstance(process, subprocess.Popen):
        process.wait(timeout=30)
    else:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def cli_run(runs_root: Path, *options: str) -> subprocess.Popen:
    """``python -m diffusionscope run`` in its own session, as a user would start it from a shell."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffusionscope",
            "run",
            "--runs-root",
            str(runs_root),
            "--quiet",
            *options,
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def async_test(function):
    """Run an ``async def`` test on a fresh event loop (no asyncio pytest plugin needed)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return asyncio.run(function(*args, **kwargs))

    return wrapper


#: A run process for tests that need one before/besides the real modes: it writes through the
#: real RunWriter, announces a few FID points, then waits for a ``go`` file before finishing,
#: so a test decides when it ends instead of racing it. SIGTERM ends it as interrupted, as
#: the headless CLI does.
FAKE_RUN_SCRIPT = r"""
import pathlib, signal, sys, time
from diffusionscope.core.runs import RunWriter
root, name, gate = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
writer = RunWriter.create(root, name, {"modes": ["metrics"], "model": "fake-model",
                                       "num_samples": 32})
writer.start()
def stop(signum, frame):
    writer.status("interrupted", "stopped by SIGTERM")
    writer.close()
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)
writer.status("running", "started")
for i, n in enumerate((8, 16)):
    writer.progress("generate", n, 32, unit="img", mode="metrics")
    writer.series("fid", n, 100.0 / (i + 1), mode="metrics", x_label="N samples")
while not gate.exists():
    time.sleep(0.05)
for n in (24, 32):
    writer.progress("generate", n, 32, unit="img", mode="metrics")
    writer.series("fid", n, 100.0 * 8 / n, mode="metrics", x_label="N samples")
writer.metric("fid", 25.0, mode="metrics", n=32)
writer.write_results({"run": {"modes": ["metrics"]}, "metrics": {"fid": 25.0}})
writer.status("finished")
writer.close()
"""


def fake_run_argv(runs_root: Path, name: str, gate: Path) -> list[str]:
    return [sys.executable, "-c", FAKE_RUN_SCRIPT, str(runs_root), name, str(gate)]


def start_fake_run(runs_root: Path, name: str, gate: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        fake_run_argv(runs_root, name, gate),
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for_run_dir(runs_root: Path, token: str, timeout: float = 600.0) -> Path:
    """Block until the child has created its run directory and claimed it (running)."""
    from diffusionscope.core.runs import run_state
    from diffusionscope.tui.launcher import find_run_dir

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find_run_dir(runs_root, token)
        if (
            found is not None
            and (found / "process.json").is_file()
            and run_state(found) == "running"
        ):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no running run named *{token} under {runs_root}")


def two_gpu_nvml():
    """A stand-in for the ``pynvml`` module with two GPUs whose utilisation, memory and
    temperature change from one reading to the next along fixed curves (GPU history)."""
    from types import SimpleNamespace

    gib = 1024**3
    reads = {"count": 0}
    names = ("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3")

    def utilization(handle: int):
        reads["count"] += 1
        step = reads["count"] // 2
        busy = 20 + 75 * (0.5 + 0.5 * math.sin(step / 4 + handle))
        return SimpleNamespace(gpu=int(busy if handle == 0 else busy / 3), memory=0)

    def memory(handle: int):
        step = reads["count"] // 2
        used = (8 + min(step, 20) * (1.5 if handle == 0 else 0.4)) * gib
        return SimpleNamespace(used=int(used), total=80 * gib, free=int(80 * gib - used))

    def temperature(handle: int, sensor: int) -> int:
        return 38 + min(reads["count"] // 2, 30) // (1 if handle == 0 else 3)

    return SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: len(names),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: names[h],
        nvmlDeviceGetUtilizationRates=utilization,
        nvmlDeviceGetMemoryInfo=memory,
        nvmlDeviceGetTemperature=temperature,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [],
    )


def live_sweep_run(root: Path, name: str = "20240104-000000-metrics-sweep") -> RunWriter:
    """A metrics campaign over guidance scale half way through, with the events a campaign
    writes (issue shape): two points done (final numbers ``NAME@LABEL``, one point each of
    ``sweep:fid_clip``), the third point's live FID curve, the fourth not begun."""
    config = {
        "modes": ["metrics"],
        "model": "core/zoo/digits-ldm",
        "num_samples": 64,
        "sweep": ["guidance-scale=1.5,3.0,5.0,8.0"],
    }
    writer = _writer(root, name, config)
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    finished = {"1.5": (48.2, 0.231, (44.0, 52.9)), "3.0": (39.6, 0.262, (36.1, 43.4))}
    t = T0
    for index, (scale, (fid, clip, interval)) in enumerate(finished.items()):
        label = f"guidance-scale={scale}"
        for n in (16, 32, 64):
            t += 3
            writer.emit(SeriesEvent(series=f"fid@{label}", x=n, y=fid * (64 / n) ** 0.3, time=t))
        writer.emit(
            MetricEvent(name=f"fid@{label}", value=fid, n=64, extra={"interval": interval}, time=t)
        )
        writer.emit(
            MetricEvent(
                name=f"clip_score@{label}",
                value=clip,
                n=64,
                extra={"interval": [clip - 0.01, clip + 0.01]},
                time=t,
            )
        )
        writer.emit(SeriesEvent(series="sweep:fid_clip", x=clip, y=fid, time=t))
        writer.emit(SeriesEvent(series="sweep:fid", x=index, y=fid, time=t))
    for n in (16, 32):
        t += 3
        writer.emit(
            SeriesEvent(series="fid@guidance-scale=5.0", x=n, y=60.0 * (64 / n) ** 0.3, time=t)
        )
    writer.emit(
        ProgressEvent(
            phase="generate (guidance-scale=5.0)",
            done=32,
            total=64,
            unit="img",
            mode="metrics",
            time=t,
        )
    )
    return writer


def finished_sweep_run(
    root: Path, name: str, fids: tuple[float, ...], clips: tuple[float, ...]
) -> Path:
    """A finished campaign over guidance scale: results.json's ``sweep`` object as the
    campaign writes it (axes, points in a single run's metrics shape, paired differences)."""
    scales = [1.5, 3.0, 5.0][: len(fids)]
    writer = _writer(
        root,
        name,
        {
            "modes": ["metrics"],
            "model": "core/zoo/digits-ldm",
            "num_samples": 64,
            "sweep": [f"guidance-scale={','.join(map(str, scales))}"],
        },
    )
    writer.emit(StatusEvent(state="running", message="started", time=T0))
    points = [
        {
            "settings": {"guidance_scale": scale},
            "metrics": {
                "fid": {"value": fid, "interval": [fid - 4, fid + 4], "n_generated": 64},
                "clip_score": {"mean": clip, "std": 0.04, "n": 64},
            },
        }
        for scale, fid, clip in zip(scales, fids, clips, strict=True)
    ]
    best = fids.index(min(fids))
    differences = []
    for a in range(len(points)):
        for b in range(a + 1, len(points)):
            if b - a == 1 or best in (a, b):
                difference = fids[a] - fids[b]
                differences.append(
                    {
                        "a": a,
                        "b": b,
                        "kind": "adjacent" if b - a == 1 else "best",
                        "metrics": {
                            "fid": {
                                "difference": difference,
                                "interval": [difference - 2.5, difference + 2.5],
                                "level": 0.95,
                                "method": "half-sample",
                                "exceeds_interval": abs(difference) > 2.5,
                            }
                        },
                    }
                )
    for fid, clip in zip(fids, clips, strict=True):
        writer.emit(SeriesEvent(series="sweep:fid_clip", x=clip, y=fid, time=T0 + 5))
    writer.write_results(
        {
            "run": {"modes": ["metrics"], "model": "core/zoo/digits-ldm", "seed": 0},
            "metrics": {"campaign": {"points": len(points)}},
            "sweep": {
                "axes": {"guidance_scale": scales},
                "points": points,
                "differences": differences,
            },
        }
    )
    writer.emit(StatusEvent(state="finished", time=T0 + 10))
    writer.close()
    return writer.path
