"""The code as it was before the metrics speed-ups, run beside today's in the same benchmark.

``d76af1f`` (main before the GPU/throughput work, and before the package was renamed: its
modules import as ``core.…``, not ``diffusionscope.core.…``) is checked out as a detached
``git worktree`` in the temporary folder and removed when the benchmark ends. Each side runs in
its own long-lived Python process (a :class:`Side`), with its own working directory, so the two
never share an import: the old side from the worktree (``core`` is found there), the new side
from this checkout. The parent sends each side one job at a time, alternating, so a busy
machine slows both alike; every job returns its own timing and peak memory.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
START_COMMIT = "d76af1f"

#: Runs inside each side's process: reads one JSON job a line, answers one JSON line.
_SERVER = r"""
import importlib, json, os, resource, sys, time
import torch
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
prefix = sys.argv[1]

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def metrics(job):
    cli = importlib.import_module(prefix + ".cli")
    started = time.perf_counter()
    code = cli.main(job["args"])
    return {"seconds": time.perf_counter() - started, "code": code}

def prdc(job):
    module = importlib.import_module(prefix + ".metrics.prdc")
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(job["n"], job["dim"], generator=generator)
    fake = torch.randn(job["n"], job["dim"], generator=generator) * 1.1
    before = peak_mb()
    started = time.perf_counter()
    if hasattr(module, "prdc"):
        found = module.prdc(real, fake)
        values = [found.precision, found.recall, found.density, found.coverage]
    else:
        values = [*module.precision_recall(real, fake), *module.density_coverage(real, fake)]
    return {"seconds": time.perf_counter() - started, "values": values,
            "inputs_mb": 2 * real.numel() * 4 / 2**20, "peak_before_mb": before}

jobs = {"metrics": metrics, "prdc": prdc}
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    result = jobs[job["op"]](job)
    result["peak_mb"] = peak_mb()
    print(json.dumps(result), flush=True)
"""


class Side:
    """One side of a comparison: a Python process importing ``prefix`` from ``cwd``."""

    def __init__(self, name: str, cwd: Path, prefix: str, env: dict[str, str] | None = None):
        self.name = name
        environment = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, prefix],
            cwd=cwd,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read()  # "ready": imports done

    def _read(self) -> dict[str, Any]:
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name} side ended (exit {self.process.wait()})")
            if line.startswith("{"):  # anything else is the run's own chatter on stdout
                return json.loads(line)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def old_tree() -> Path:
    """A detached worktree of :data:`START_COMMIT`, made once per benchmark process."""
    if getattr(old_tree, "path", None):
        return old_tree.path
    folder = Path(tempfile.mkdtemp(prefix="diffusionscope-baseline-")) / START_COMMIT
    subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "worktree",
            "add",
            "--detach",
            "--quiet",
            str(folder),
            START_COMMIT,
        ],
        check=True,
    )

    def remove() -> None:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder.parent, ignore_errors=True)

    atexit.register(remove)
    old_tree.path = folder
    return folder


def both_sides(env: dict[str, str] | None = None) -> tuple[Side, Side]:
    """``(old, new)``: the starting commit's code and this checkout's."""
    return (Side("old", old_tree(), "core", env), Side("new", REPO, "diffusionscope.core", env))
