"""The schedule mode's run: gather curves, visited steps and checks; write figures and tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffusionscope.core.modes import RunContext
from diffusionscope.core.schedule import sampler_steps
from diffusionscope.core.schedule.checks import Check, sampler_checks, schedule_checks
from diffusionscope.core.schedule.curves import (
    NAMED_SCHEDULES,
    NoiseCurve,
    build_scheduler,
    curve_from_scheduler,
    named_curve,
    validate_config,
)
from diffusionscope.core.schedule.sampler import SPACINGS, VisitedSteps, visited_steps

JSON_STRIDE = 10  # results.json keeps every 10th timestep; the CSV keeps them all
SERIES_STRIDE = 10


def _source_name(source: str) -> str:
    path = Path(source)
    if path.name == "scheduler_config.json" and path.parent.name == "scheduler":
        return path.parent.parent.name or source
    return path.stem if path.suffix == ".json" else (path.name or source)


def load_curves(ctx: RunContext) -> tuple[dict[str, Any], list[NoiseCurve]]:
    from diffusionscope.core.loading import load_scheduler_config

    args = ctx.args
    config = load_scheduler_config(args.model)
    validate_config(config, f"scheduler config of {args.model}")
    curves = [curve_from_scheduler(_source_name(args.model), build_scheduler(config))]
    for name in filter(None, (n.strip() for n in (args.compare or "").split(","))):
        if name.partition(":")[0] in NAMED_SCHEDULES:
            curves.append(named_curve(name, args.flow_shift))
        else:
            other = load_scheduler_config(name)
            validate_config(other, f"scheduler config of {name}")
            curves.append(curve_from_scheduler(_source_name(name), build_scheduler(other)))
    return config, curves


def analyse(ctx: RunContext) -> tuple[dict[str, Any], str]:
    args = ctx.args
    ctx.progress("schedules", 0, 3, unit="stage")
    config, curves = load_curves(ctx)
    model_curve = curves[0]
    steps = sampler_steps(args)
    spacings = [args.timestep_spacing] if args.timestep_spacing else list(SPACINGS)
    if model_curve.family == "flow" and not args.timestep_spacing:
        spacings = [None]  # flow samplers have no timestep_spacing setting
    visited = [visited_steps(config, args.sampler, steps, spacing) for spacing in spacings]
    ctx.progress("schedules", 1, 3, unit="stage")

    checks: list[dict[str, Any]] = []
    for curve in curves:
        for check in schedule_checks(curve):
            checks.append({"schedule": curve.name, **check.to_json()})
    for steps_seen in visited:
        for check in sampler_checks(model_curve, steps_seen):
            checks.append({"schedule": model_curve.name, "sampler": steps_seen.spacing,
                           **check.to_json()})  # fmt: skip

    _emit_numbers(ctx, curves, visited)
    _write_artifacts(ctx, curves, model_curve, visited)
    ctx.progress("schedules", 3, 3, unit="stage")
    results = {
        "source": args.model,
        "schedules": {curve.name: curve.to_json(JSON_STRIDE) for curve in curves},
        "sampler": [steps_seen.to_json() for steps_seen in visited],
        "checks": checks,
    }
    return results, _report(curves, visited, checks)


def _emit_numbers(ctx: RunContext, curves: list[NoiseCurve], visited: list[VisitedSteps]) -> None:
    for curve in curves:
        for t, value in zip(curve.timesteps[::SERIES_STRIDE], curve.log_snr[::SERIES_STRIDE],
                            strict=True):  # fmt: skip
            if np.isfinite(value):
                ctx.series(f"logsnr:{curve.name}", float(t), float(value),
                           x_label="training timestep", y_label="log-SNR")  # fmt: skip
        ctx.metric(f"terminal_snr:{curve.name}", curve.terminal_snr)
    for steps_seen in visited:
        ctx.metric(f"first_sigma:{steps_seen.spacing}", float(steps_seen.sigmas[0]),
                   timestep=float(steps_seen.timesteps[0]))  # fmt: skip


def _write_artifacts(ctx: RunContext, curves: list[NoiseCurve], model_curve: NoiseCurve,
                     visited: list[VisitedSteps]) -> None:  # fmt: skip
    from diffusionscope.core.schedule.plots import (
        comparison_figure,
        noise_schedule_figure,
        sampler_figure,
    )

    for name, figure, caption in (
        ("noise_schedule.png", noise_schedule_figure(curves), "ᾱ, log-SNR and β per timestep"),
        ("schedule_comparison.png", comparison_figure(curves), "log-SNR overlay"),
        ("sampler_timesteps.png", sampler_figure(model_curve, visited), "visited steps"),
    ):
        ctx.save_figure(figure, name, caption, trim=False)  # margins set in plots.py
    rows = []
    for curve in curves:
        betas = curve.betas if curve.betas is not None else np.full(len(curve.timesteps), np.nan)
        for values in zip(curve.timesteps, curve.normalised_time, curve.alphas_cumprod,
                          curve.log_snr, curve.sigmas, betas, strict=True):  # fmt: skip
            rows.append([curve.name, *(f"{v:.9g}" for v in values)])
    ctx.save_csv("schedule_curves.csv", ["schedule", "timestep", "normalised_time",
                 "alphas_cumprod", "log_snr", "sigma", "beta"], rows, "every curve")  # fmt: skip
    sampler_rows = [
        [s.scheduler_class, s.spacing, index, f"{t:.6g}", f"{sigma:.9g}", f"{snr:.9g}"]
        for s in visited
        for index, (t, sigma, snr) in enumerate(zip(s.timesteps, s.sigmas, s.log_snr, strict=True))
    ]
    ctx.save_csv("sampler_timesteps.csv", ["scheduler", "spacing", "step", "timestep", "sigma",
                 "log_snr"], sampler_rows, "visited steps")  # fmt: skip


def _report(curves: list[NoiseCurve], visited: list[VisitedSteps], checks: list[dict]) -> str:
    lines = ["![noise schedule](artifacts/noise_schedule.png)", "",
             "![comparison](artifacts/schedule_comparison.png)", "",
             "![sampler](artifacts/sampler_timesteps.png)", "",
             "| schedule | family | class | log-SNR start | log-SNR end | terminal SNR |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for curve in curves:
        finite = curve.log_snr[np.isfinite(curve.log_snr)]
        lines.append(f"| {curve.name} | {curve.family} | {curve.scheduler_class} | "
                     f"{finite[0]:.3f} | {curve.log_snr[-1]:.3f} | {curve.terminal_snr:.3g} |")  # fmt: skip
    lines += ["", "| sampler | steps | spacing | first timestep | first σ |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for s in visited:
        lines.append(f"| {s.scheduler_class} | {s.steps} | {s.spacing} | {s.timesteps[0]:g} | "
                     f"{s.sigmas[0]:.4g} |")  # fmt: skip
    lines += [
        "",
        "| check | schedule | verdict | detail | fields |",
        "| --- | --- | --- | --- | --- |",
    ]
    for check in checks:
        name = check["name"] + (f" ({check['sampler']})" if check.get("sampler") else "")
        lines.append(f"| {name} | {check['schedule']} | **{check['verdict']}** | "
                     f"{check['detail']} | {', '.join(check['fields'])} |")  # fmt: skip
    return "\n".join(lines)


__all__ = ["Check", "analyse"]
