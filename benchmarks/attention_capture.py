"""Generation with attention capture vs without.

1. The digits model: the time ratio at 25 steps, and the peak memory at 25 and 100 steps, each
   configuration in a fresh process so peaks do not mix (it must not grow with the steps).
2. Tiny random SD3 (joint attention over CLIP + T5 tokens) and Flux (double- and single-stream
   blocks; 4096 image tokens at its default 256 px, where its 32-wide blocks are almost all
   attention, and 256 at 64 px): the capture-over-plain time ratio, plain and captured runs
   interleaved in one process so that load from other processes on the host falls on both
   sides alike; the ratio is the median of the per-pair ratios, in wall-clock and CPU time.
   Each at two loads: every other step captured (4 steps), and the mode's defaults (4 steps
   captured of 25).
3. What capture holds per selected step for SD3-Medium and Flux.1-dev at 1024 x 1024, computed
   from their released configs (the values below are copied from the hub's config.json files).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, torch
torch.set_num_threads(2)
from diffusionscope.core.attention.capture import capture_text_attention
from diffusionscope.core.generation import GenerationSettings, generate
from diffusionscope.core.loading import load_pipeline
from diffusionscope.core.zoo import DIGITS_LDM
steps, capture = int(sys.argv[1]), sys.argv[2] == "1"
pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
pipeline.set_progress_bar_config(disable=True)
settings = GenerationSettings(steps=steps)
prompt = ["a red seven on a white background"]
generate(pipeline, [0], settings, prompt)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for repeat in range(2):
    if capture:
        with capture_text_attention(pipeline, [0, steps // 3, 2 * steps // 3, steps - 1], (32, 32)):
            generate(pipeline, [repeat], settings, prompt)
    else:
        generate(pipeline, [repeat], settings, prompt)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": peak / 1024, "growth_mb": (peak - base) / 1024}))
"""

#: The fields of the released configs that decide the capture's size (hub config.json files of
#: stabilityai/stable-diffusion-3-medium-diffusers and black-forest-labs/FLUX.1-dev).
RELEASED = {
    "SD3-Medium": {
        "pipeline": "StableDiffusion3Pipeline",
        "components": ["transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"],
        "transformer": (
            "SD3Transformer2DModel",
            {"sample_size": 128, "patch_size": 2, "in_channels": 16},
        ),
        "vae": {"block_out_channels": [128, 256, 512, 512], "latent_channels": 16},
        "text_encoder": {"max_position_embeddings": 77},
    },
    "Flux.1-dev": {
        "pipeline": "FluxPipeline",
        "components": ["transformer", "vae", "text_encoder", "text_encoder_2"],
        "transformer": ("FluxTransformer2DModel", {"patch_size": 1, "in_channels": 64}),
        "vae": {"block_out_channels": [128, 256, 512, 512], "latent_channels": 16},
        "text_encoder": {"max_position_embeddings": 77},
    },
}


def _memory(steps: int, capture: bool) -> dict:
    """Peak memory of one configuration, in a fresh process so that peaks do not mix."""
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), "1" if capture else "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _interleaved(label: str, pipeline, settings, selected: list[int], pairs: int) -> None:
    """Plain and captured generations alternating, which side first alternating too, so that
    load from other processes falls on both alike; the median of the per-pair ratios."""
    from diffusionscope.core.attention.capture import capture_text_attention
    from diffusionscope.core.generation import generate

    prompt = ["a red seven, on a white background."]

    def timed(capture: bool, seed: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        if capture:
            with capture_text_attention(pipeline, selected, (64, 64)):
                generate(pipeline, [seed], settings, prompt)
        else:
            generate(pipeline, [seed], settings, prompt)
        return time.perf_counter() - wall, time.process_time() - cpu

    timed(False, 0), timed(True, 0)  # warm-up
    walls, cpus = [], []
    for pair in range(pairs):
        first = bool(pair % 2)
        a, b = timed(first, pair), timed(not first, pair)
        captured, plain = (a, b) if first else (b, a)
        walls.append(captured[0] / plain[0])
        cpus.append(captured[1] / plain[1])
    print(
        f"   {label}, {pairs} interleaved pairs: capture/plain time "
        f"ratio, median {statistics.median(walls):.2f} wall-clock ({min(walls):.2f}-"
        f"{max(walls):.2f}), {statistics.median(cpus):.2f} CPU time ({min(cpus):.2f}-"
        f"{max(cpus):.2f}); target <= 1.5"
    )


def _digits(pairs: int = 7) -> None:
    from diffusionscope.core.generation import GenerationSettings
    from diffusionscope.core.loading import load_pipeline
    from diffusionscope.core.zoo import DIGITS_LDM

    pipeline = load_pipeline(str(DIGITS_LDM), "cpu", "fp32").pipeline
    pipeline.set_progress_bar_config(disable=True)
    _interleaved(
        "digits-ldm, steps [0, 8, 16, 24] captured of 25",
        pipeline,
        GenerationSettings(steps=25),
        [0, 8, 16, 24],
        pairs,
    )
    for steps in (25, 100):
        plain, captured = _memory(steps, False), _memory(steps, True)
        print(
            f"   digits-ldm {steps:>3} steps: peak RSS {plain['peak_mb']:.0f} -> "
            f"{captured['peak_mb']:.0f} MB, growth during generation "
            f"{plain['growth_mb']:.1f} -> {captured['growth_mb']:.1f} MB"
        )


#: (family, side, steps, selected steps): every other step captured, the heaviest use; then the
#: attention mode's defaults (``--attention-steps 4`` spread over 25 steps).
FAMILY_CASES = (
    ("sd3", None, 4, "0,3"),
    ("flux_dev", None, 4, "0,3"),
    ("flux_dev", 64, 4, "0,3"),
    ("sd3", None, 25, "4"),
    ("flux_dev", None, 25, "4"),
)


def _families(pairs: int = 9) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from family_pipelines import build_family

    from diffusionscope.core.attention.report import selected_step_indices
    from diffusionscope.core.generation import GenerationSettings
    from diffusionscope.core.loading import load_pipeline

    # One thread: on a shared host a second thread's share of the cores changes from run to
    # run, and with it the ratio; the extra work is the same attention kernel either way.
    torch.set_num_threads(1)
    built: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, side, steps, requested in FAMILY_CASES:
            if name not in built:
                built[name] = load_pipeline(
                    str(build_family(name, Path(folder) / name)), "cpu", "fp32"
                ).pipeline
                built[name].set_progress_bar_config(disable=True)
            settings = GenerationSettings(steps=steps, height=side, width=side)
            selected = selected_step_indices(steps, requested)
            label = (
                f"tiny {name} at {side or 'its default'} px, steps {selected} captured of {steps}"
            )
            _interleaved(label, built[name], settings, selected, pairs if steps < 10 else 5)


def _released() -> None:
    from diffusionscope.core.attention.support import capture_footprint
    from diffusionscope.core.families import ModelConfigs

    for label, spec in RELEASED.items():
        denoiser_class, denoiser_config = spec["transformer"]
        components = {name: ("diffusers", "x") for name in spec["components"]}
        components["transformer"] = ("diffusers", denoiser_class)
        model = ModelConfigs(
            label,
            "folder",
            spec["pipeline"],
            components,
            {
                "transformer": denoiser_config,
                "vae": spec["vae"],
                "text_encoder": spec["text_encoder"],
            },
        )
        footprint = capture_footprint(model, 1024, 1024)
        pixels = sum(h * w for h, w in footprint.groups)
        print(
            f"   {label} at 1024x1024: {footprint.text_tokens} text tokens x {pixels} image "
            f"tokens ({len(footprint.groups)} group {footprint.groups[0][0]}x"
            f"{footprint.groups[0][1]}): {footprint.bytes_per_selected_step:,} bytes "
            f"({footprint.bytes_per_selected_step / 2**20:.1f} MiB) per selected step on the "
            f"host, {footprint.device_bytes / 2**20:.1f} MiB on the device"
        )


def main() -> None:
    _released()
    _families()
    _digits()
