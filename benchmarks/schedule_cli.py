"""Wall time of ``diffusionscope run --modes schedule`` on the digits folder and on a bare
scheduler config, against the cost of starting Python and importing torch and diffusers'
schedulers the plain way (which also loads torch._dynamo; the schedule mode skips that)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from diffusionscope.core.zoo import DIGITS_LDM


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    baseline = min(
        _seconds([sys.executable, "-c", "import torch, diffusers.schedulers"]) for _ in range(2)
    )
    config = str(DIGITS_LDM / "scheduler" / "scheduler_config.json")
    with tempfile.TemporaryDirectory() as root:
        for label, model in (("model folder", str(DIGITS_LDM)), ("scheduler_config.json", config)):
            seconds = min(
                _seconds(
                    [
                        sys.executable,
                        "-m",
                        "diffusionscope",
                        "run",
                        "--modes",
                        "schedule",
                        "--model",
                        model,
                        "--runs-root",
                        root,
                        "--quiet",
                    ]
                )
                for _ in range(2)
            )
            print(
                f"   {label:<22} {seconds:.2f} s (target < 5 s); plain import "
                f"{baseline:.2f} s; ratio {seconds / baseline:.2f}"
            )
