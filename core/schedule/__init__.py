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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..options import MAX_STEPS, Option, RunOptions

if TYPE_CHECKING:
    from ..families import ModelConfigs
    from ..modes import ModeResult, RunContext

DESCRIPTION = "noise schedules, sampler timesteps and schedule checks (reads only the config)"
NEEDS_PIPELINE = False


OPTIONS: tuple[Option, ...] = (
    Option(
        "compare",
        "schedules to compare, comma-separated: linear, scaled_linear, cosine, "
        "sigmoid, zero_snr, karras, edm, flow[:SHIFT], or another model's "
        "scheduler_config.json, folder or hub id",
    ),
    Option(
        "sampler",
        "scheduler class for the sampler view",
        unset="the model's own",
        sweepable=True,
    ),
    Option(
        "sampler_steps",
        "inference steps of the sampler view",
        kind="int",
        positive=True,
        unset="--steps",
        maximum=MAX_STEPS,
    ),
    Option(
        "timestep_spacing",
        "timestep spacing of the sampler view",
        kind="choice",
        choices=("leading", "trailing", "linspace"),
        unset="all three",
    ),
    Option("flow_shift", "shift for 'flow' schedules", kind="float", positive=True, sweepable=True),
)


@dataclass(frozen=True)
class Options:
    """What the schedule mode reads: the size and steps Flux's μ and the sampler view depend
    on, and its own options."""

    run: RunOptions
    height: int | None
    width: int | None
    steps: int
    compare: str
    sampler: str | None
    sampler_steps: int | None
    timestep_spacing: str | None
    flow_shift: float | None


def sampler_steps(args: Options) -> int:
    return args.steps if args.sampler_steps is None else int(args.sampler_steps)


def validate(args: Options) -> None:
    from .curves import NAMED_SCHEDULES

    for name in filter(None, (n.strip() for n in (args.compare or "").split(","))):
        base = name.partition(":")[0]
        if base in NAMED_SCHEDULES:
            continue
        from ..loading import classify_source

        try:
            classify_source(name)
        except InputError:
            raise InputError(
                f"--compare: unknown schedule {name!r} (known: {', '.join(NAMED_SCHEDULES)}, or "
                "a scheduler_config.json, model folder or hub id)"
            ) from None
    if args.sampler:
        from .curves import scheduler_class

        scheduler_class(args.sampler)


def check_model(args: Options, model: ModelConfigs | None) -> None:
    """Refuse, in one line, a scheduler this mode cannot analyse: it computes the whole plan
    (schedulers built from the configs, μ, the sampler's steps) without writing anything.
    Called by the CLI with the configs of whatever ``--model`` names (a pipeline folder, hub
    id, single file or bare scheduler config)."""
    if model is None:
        return
    from .plan import plan_schedule

    plan_schedule(args, model)


def planned_work(args: Options) -> list[dict[str, Any]]:
    """Three short stages (whole-run progress)."""
    from ..events import planned_phase

    return [planned_phase("schedules", 3, "stage")]


def run(ctx: RunContext) -> ModeResult:
    from ..modes import ModeResult
    from .report import analyse

    results, report = analyse(ctx)
    return ModeResult(results=results, report=report)
