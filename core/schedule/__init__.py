"""Schedule mode: noise schedules of the model and of alternatives, the steps a sampler visits,
and checks for known flaws. It reads only the scheduler config -- never the UNet.

``results["schedule"]``::

    {"source": str,                          # what --model named
     "schedules": {name: {"family": "ddpm|sigma|flow", "scheduler_class": str,
                          "timesteps": [...], "alphas_cumprod": [...], "log_snr": [...],
                          "sigmas": [...], "betas": [...] | None}},   # every 10th timestep
     "sampler": [{"scheduler_class", "steps", "timestep_spacing", "timesteps", "sigmas",
                  "log_snr", "first_timestep", "first_sigma", "first_log_snr", "final_sigma"}],
     "checks": [{"name", "verdict": "pass|warn|fail|info", "value", "detail", "fields"}]}

Full-resolution curves are in ``artifacts/schedule_curves.csv``; ``series`` events named
``logsnr:<schedule>`` (x = training timestep) carry the log-SNR curves for live plots.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from diffusionscope.core.errors import InputError
from diffusionscope.core.options import Option

if TYPE_CHECKING:
    from diffusionscope.core.modes import ModeResult, RunContext

DESCRIPTION = "noise schedules, sampler timesteps and schedule checks (reads only the config)"
NEEDS_PIPELINE = False
DEFAULT_SAMPLER_STEPS = 50


OPTIONS: tuple[Option, ...] = (
    Option(
        "compare",
        "schedules to compare, comma-separated: linear, scaled_linear, cosine, "
        "sigmoid, zero_snr, karras, edm, flow[:SHIFT], or another model's "
        "scheduler_config.json, folder or hub id",
        default="",
    ),  # fmt: skip
    Option(
        "sampler", "scheduler class for the sampler view", default_text="default: the model's own"
    ),  # fmt: skip
    Option(
        "sampler_steps",
        "inference steps of the sampler view",
        kind="int",
        positive=True,
        default_text=f"default: --steps or {DEFAULT_SAMPLER_STEPS}",
    ),  # fmt: skip
    Option(
        "timestep_spacing",
        "timestep spacing of the sampler view",
        kind="choice",
        choices=("leading", "trailing", "linspace"),
        default_text="default: all three",
    ),  # fmt: skip
    Option("flow_shift", "shift for 'flow' schedules", kind="float", positive=True),
)


def sampler_steps(args: argparse.Namespace) -> int:
    if args.sampler_steps is not None:
        return int(args.sampler_steps)
    return args.steps or DEFAULT_SAMPLER_STEPS


def validate(args: argparse.Namespace) -> None:
    from diffusionscope.core.schedule.curves import NAMED_SCHEDULES

    steps = sampler_steps(args)
    for name in filter(None, (n.strip() for n in (args.compare or "").split(","))):
        base = name.partition(":")[0]
        if base in NAMED_SCHEDULES:
            continue
        from diffusionscope.core.loading import classify_source

        try:
            classify_source(name)
        except InputError:
            raise InputError(
                f"--compare: unknown schedule {name!r} (known: {', '.join(NAMED_SCHEDULES)}, or "
                "a scheduler_config.json, model folder or hub id)"
            ) from None
    if args.model is not None:
        from diffusionscope.core.loading import load_scheduler_config
        from diffusionscope.core.schedule.curves import validate_config

        config = load_scheduler_config(args.model)
        validate_config(config, f"scheduler config of {args.model}")
        train_steps = int(config.get("num_train_timesteps", 1000))
        if steps > train_steps:
            raise InputError(
                f"--sampler-steps: {steps} is more than the {train_steps} training timesteps"
            )
        if args.sampler:
            from diffusionscope.core.schedule.curves import scheduler_class

            scheduler_class(args.sampler)


def run(ctx: RunContext) -> ModeResult:
    from diffusionscope.core.modes import ModeResult
    from diffusionscope.core.schedule.report import analyse

    results, report = analyse(ctx)
    return ModeResult(results=results, report=report)
