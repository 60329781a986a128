"""Generation on the digits model with attention capture vs without, at 25 and 100 steps:
time ratio and peak memory, each configuration in a fresh process so peaks do not mix."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads(2)
from diffusionscope.core.attention.capture import capture_cross_attention
from diffusionscope.core.generation import GenerationSettings, generate
from diffusionscope.core.loading import load_pipeline
from diffusionscope.core.zoo import DIGITS_LDM
steps, capture = int(sys.argv[1]), sys.argv[2] == "1"
pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
settings = GenerationSettings(steps=steps)
prompt = ["a red seven on a white background"]
generate(pipeline, [0], settings, prompt)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for repeat in range(5):
    started = time.perf_counter()
    if capture:
        pipeline.scheduler.set_timesteps(steps)
        calls = len(pipeline.scheduler.timesteps)
        with capture_cross_attention(pipeline, [0, calls // 3, 2 * calls // 3, calls - 1], (8, 8), True):
            generate(pipeline, [repeat], settings, prompt)
    else:
        generate(pipeline, [repeat], settings, prompt)
    times.append(time.perf_counter() - started)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": min(times), "peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024}))
"""


def _measure(steps: int, capture: bool) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD, str(steps), "1" if capture else "0"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    for steps in (25, 100):
        plain, captured = _measure(steps, False), _measure(steps, True)
        print(f"   {steps:>3} steps: plain {plain['seconds']:.3f} s, capture "
              f"{captured['seconds']:.3f} s, time ratio {captured['seconds'] / plain['seconds']:.2f} "
              f"(target <= 1.5); peak RSS {plain['peak_mb']:.0f} -> {captured['peak_mb']:.0f} MB, "
              f"growth during generation {plain['growth_mb']:.1f} -> {captured['growth_mb']:.1f} MB")  # fmt: skip
