"""The schedule mode's run: gather curves, visited steps and checks; write figures and tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..modes import RunContext
from .checks import Check, sampler_checks, schedule_checks
from .curves import NoiseCurve
from .plan import plan_schedule
from .sampler import VisitedSteps

JSON_STRIDE = 10  # results.json keeps every 10th timestep; the CSV keeps them all
SERIES_STRIDE = 10


def analyse(ctx: RunContext) -> tuple[dict[str, Any], str]:
    from ..families import read_model_configs

    args = ctx.options
    ctx.progress("schedules", 0, 3, unit="stage")
    model = read_model_configs(args.run.model, args.run.single_file_config)
    plan = plan_schedule(args, model)
    curves, visited, model_curve = plan.curves, plan.visited, plan.model_curve
    for note in plan.notes:
        ctx.log(note)
    ctx.progress("schedules", 1, 3, unit="stage")

    checks: list[dict[str, Any]] = []
    for curve in curves:
        for check in schedule_checks(curve):
            checks.append({"schedule": curve.name, **check.to_json()})
    for steps_seen in visited:
        for check in sampler_checks(model_curve, steps_seen):
            checks.append(
                {"schedule": model_curve.name, "sampler": steps_seen.spacing, **check.to_json()}
            )

    _emit_numbers(ctx, curves, visited)
    _write_artifacts(ctx, curves, model_curve, visited)
    ctx.progress("schedules", 3, 3, unit="stage")
    results = {
        "source": args.run.model,
        "pipeline_class": model.pipeline_class or None,
        "mu": plan.call.mu,
        "set_timesteps": plan.call.to_json(),
        "schedules": {curve.name: curve.to_json(JSON_STRIDE) for curve in curves},
        "sampler": [steps_seen.to_json() for steps_seen in visited],
        "checks": checks,
    }
    return results, _report(curves, visited, checks, plan.notes)


def _emit_numbers(ctx: RunContext, curves: list[NoiseCurve], visited: list[VisitedSteps]) -> None:
    for curve in curves:
        for t, value in zip(
            curve.timesteps[::SERIES_STRIDE], curve.log_snr[::SERIES_STRIDE], strict=True
        ):
            if np.isfinite(value):
                ctx.series(
                    f"logsnr:{curve.name}",
                    float(t),
                    float(value),
                    x_label="training timestep",
                    y_label="log-SNR",
                )
        ctx.metric(f"terminal_snr:{curve.name}", curve.terminal_snr)
    for steps_seen in visited:
        if np.isfinite(steps_seen.sigmas[0]):
            ctx.metric(
                f"first_sigma:{steps_seen.spacing or 'flow'}",
                float(steps_seen.sigmas[0]),
                timestep=float(steps_seen.timesteps[0]),
            )
    for curve in curves:
        if curve.mu is not None:
            ctx.metric(f"mu:{curve.name}", curve.mu)


def _write_artifacts(
    ctx: RunContext, curves: list[NoiseCurve], model_curve: NoiseCurve, visited: list[VisitedSteps]
) -> None:
    from .plots import (
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
        for values in zip(
            curve.timesteps,
            curve.normalised_time,
            curve.alphas_cumprod,
            curve.log_snr,
            curve.sigmas,
            betas,
            strict=True,
        ):
            rows.append([curve.name, *(f"{v:.9g}" for v in values)])
    ctx.save_csv(
        "schedule_curves.csv",
        ["schedule", "timestep", "normalised_time", "alphas_cumprod", "log_snr", "sigma", "beta"],
        rows,
        "every curve",
    )
    sampler_rows = [
        [s.scheduler_class, s.spacing, index, f"{t:.6g}", f"{sigma:.9g}", f"{snr:.9g}"]
        for s in visited
        for index, (t, sigma, snr) in enumerate(zip(s.timesteps, s.sigmas, s.log_snr, strict=True))
    ]
    ctx.save_csv(
        "sampler_timesteps.csv",
        ["scheduler", "spacing", "step", "timestep", "sigma", "log_snr"],
        sampler_rows,
        "visited steps",
    )


def _report(
    curves: list[NoiseCurve], visited: list[VisitedSteps], checks: list[dict], notes: list[str]
) -> str:
    lines = [
        *(f"- {note}" for note in notes),
        *([""] if notes else []),
        "![noise schedule](artifacts/noise_schedule.png)",
        "",
        "![comparison](artifacts/schedule_comparison.png)",
        "",
        "![sampler](artifacts/sampler_timesteps.png)",
        "",
        "| schedule | family | class | shift | log-SNR start | log-SNR end | terminal SNR |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for curve in curves:
        finite = curve.log_snr[np.isfinite(curve.log_snr)]
        shift = "" if curve.shift is None else f"{curve.shift:.4g}"
        if curve.mu is not None:
            shift += f" (μ={curve.mu:.4g})"
        lines.append(
            f"| {curve.name} | {curve.family} | {curve.scheduler_class} | {shift} | "
            f"{finite[0]:.3f} | {curve.log_snr[-1]:.3f} | {curve.terminal_snr:.3g} |"
        )
    lines += [
        "",
        "| sampler | steps | evaluations | spacing | first timestep | first σ |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in visited:
        lines.append(
            f"| {s.scheduler_class} | {s.steps} | {len(s.timesteps)} | "
            f"{s.spacing or '–'} | {s.timesteps[0]:g} | {s.sigmas[0]:.4g} |"
        )
    lines += [
        "",
        "| check | schedule | verdict | detail | fields |",
        "| --- | --- | --- | --- | --- |",
    ]
    for check in checks:
        name = check["name"] + (f" ({check['sampler']})" if check.get("sampler") else "")
        lines.append(
            f"| {name} | {check['schedule']} | **{check['verdict']}** | "
            f"{check['detail']} | {', '.join(check['fields'])} |"
        )
    return "\n".join(lines)


__all__ = ["Check", "analyse"]
