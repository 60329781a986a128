"""Schedule mode: noise schedules of the model and of alternatives, the steps a sampler visits,
and checks for known flaws. It reads only the configs -- never the weights.

The sampler's timesteps are set as the model's pipeline sets them (μ for dynamic shifting from
the image size, Flux's own σ grid); what cannot be analysed is refused by :func:`check_model`
in one line before anything is written.

``results["schedule"]``::

    {"source": str,                          # what --model named
     "pipeline_class": str | None,
     "mu": float | None,                     # dynamic shift's μ (Flux.1-dev), else None
     "set_timesteps": {"pipeline_class", "mu", "image_seq_len", "height", "width",
                       "custom_sigmas"},     # what the pipeline passes besides the step count
     "schedules": {name: {"family": "ddpm|sigma|flow", "scheduler_class": str,
                          "mu", "shift",     # flow only: μ and the static-equivalent shift
                          "timesteps": [...], "alphas_cumprod": [...], "log_snr": [...],
                          "sigmas": [...], "betas": [...] | None}},   # every 10th timestep
     "sampler": [{"scheduler_class", "steps", "timestep_spacing", "family",
                  "pipeline_default",        # the model's own class and spacing: pipe()'s steps
                  "evaluations",             # model calls; second-order samplers call twice
                  "timesteps", "sigmas", "log_snr", "first_timestep", "first_sigma",
                  "first_log_snr", "final_sigma", "mu", "set_timesteps"}],
     "checks": [{"name", "verdict": "pass|warn|fail|info", "value", "detail", "fields"}]}

Non-finite numbers (σ of an out-of-range step, log-SNR of pure noise) are ``null``. Full-resolution
curves are in ``artifacts/schedule_curves.csv``; ``series`` events named ``logsnr:<schedule>``
(x = training timestep) carry the log-SNR curves for live plots.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from diffusionscope.core.errors import InputError

if TYPE_CHECKING:
    from diffusionscope.core.families import ModelConfigs
    from diffusionscope.core.modes import ModeResult, RunContext

DESCRIPTION = "noise schedules, sampler timesteps and schedule checks (reads only the config)"
NEEDS_PIPELINE = False
DEFAULT_SAMPLER_STEPS = 50


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--compare",
        default="",
        help="schedules to compare, comma-separated: linear, scaled_linear, cosine, sigmoid, "
        "zero_snr, karras, edm, flow[:SHIFT], or another model's scheduler_config.json, folder "
        "or hub id",
    )
    group.add_argument("--sampler", default=None, help="scheduler class for the sampler view "
                       "(default: the model's own)")  # fmt: skip
    group.add_argument("--sampler-steps", type=int, default=None,
                       help=f"inference steps (default: --steps or {DEFAULT_SAMPLER_STEPS})")  # fmt: skip
    group.add_argument("--timestep-spacing", default=None,
                       help="leading | trailing | linspace (default: all three)")  # fmt: skip
    group.add_argument("--flow-shift", type=float, default=None, help="shift for 'flow' schedules")


def sampler_steps(args: argparse.Namespace) -> int:
    if args.sampler_steps is not None:
        return int(args.sampler_steps)
    return args.steps or DEFAULT_SAMPLER_STEPS


def validate(args: argparse.Namespace) -> None:
    from diffusionscope.core.schedule.curves import NAMED_SCHEDULES
    from diffusionscope.core.schedule.sampler import SPACINGS

    steps = sampler_steps(args)
    if steps <= 0:
        raise InputError(f"--sampler-steps: must be positive, got {steps}")
    if args.timestep_spacing and args.timestep_spacing not in SPACINGS:
        raise InputError(f"--timestep-spacing: expected one of {', '.join(SPACINGS)}")
    if args.flow_shift is not None and args.flow_shift <= 0:
        raise InputError(f"--flow-shift: must be positive, got {args.flow_shift}")
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
    if args.sampler:
        from diffusionscope.core.schedule.curves import scheduler_class

        scheduler_class(args.sampler)
    if args.model is not None:
        from diffusionscope.core.loading import classify_source

        if classify_source(args.model) not in ("folder", "hub"):
            # A pipeline is checked by check_model, called by the CLI with its configs.
            from diffusionscope.core.families import read_model_configs

            check_model(
                args, read_model_configs(args.model, getattr(args, "single_file_config", None))
            )


def check_model(args: argparse.Namespace, model: ModelConfigs) -> None:
    """Refuse, in one line, a scheduler this mode cannot analyse: it computes the whole plan
    (schedulers built from the configs, μ, the sampler's steps) without writing anything."""
    from diffusionscope.core.schedule.plan import plan_schedule

    plan_schedule(args, model)


def run(ctx: RunContext) -> ModeResult:
    from diffusionscope.core.modes import ModeResult
    from diffusionscope.core.schedule.report import analyse

    results, report = analyse(ctx)
    return ModeResult(results=results, report=report)
