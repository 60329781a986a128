"""Everything the schedule mode computes, from configs alone, before anything is written.

:func:`plan_schedule` builds the model's scheduler (and the ``--compare`` ones), decides each
schedule's family, works out how the pipeline sets its timesteps (μ, custom σ's), and sets the
sampler's timesteps for each spacing. It is cheap (no weights, no figures), so the mode's
``check_model`` runs it to refuse what cannot be analysed in one line, and the run computes the
same plan again to write it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..families import ModelConfigs
from . import Options, sampler_steps
from .curves import (
    NAMED_SCHEDULES,
    NoiseCurve,
    build_scheduler,
    curve_from_scheduler,
    family_of,
    named_curve,
    validate_config,
)
from .pipeline_call import TimestepCall, timestep_call
from .sampler import SPACINGS, VisitedSteps, visited_steps


@dataclass
class SchedulePlan:
    config: dict[str, Any]  # the model's scheduler config as written
    call: TimestepCall  # how the pipeline sets the model's scheduler's timesteps
    curves: list[NoiseCurve]  # the model's first, then --compare
    visited: list[VisitedSteps]
    notes: list[str]

    @property
    def model_curve(self) -> NoiseCurve:
        return self.curves[0]


def source_name(source: str) -> str:
    path = Path(source)
    if path.name == "scheduler_config.json" and path.parent.name == "scheduler":
        return path.parent.parent.name or source
    return path.stem if path.suffix == ".json" else (path.name or source)


def _scheduler_config(model: ModelConfigs) -> dict[str, Any]:
    if model.scheduler:
        return model.scheduler
    from ..loading import load_scheduler_config

    return load_scheduler_config(model.source)  # raises the one line saying what is missing


def _model_curve(
    model: ModelConfigs, height: int | None, width: int | None, name: str
) -> tuple[dict[str, Any], TimestepCall, NoiseCurve]:
    config = _scheduler_config(model)
    validate_config(config, f"scheduler config of {model.source}")
    scheduler = build_scheduler(config)
    family_of(scheduler)
    call = timestep_call(model, dict(scheduler.config), height, width)
    return config, call, curve_from_scheduler(name, scheduler, call.mu)


def _compare_curve(name: str, flow_shift: float | None) -> NoiseCurve:
    if name.partition(":")[0] in NAMED_SCHEDULES:
        return named_curve(name, flow_shift)
    from ..families import read_model_configs

    # Another model: its own default image size decides its μ, if it shifts dynamically.
    return _model_curve(read_model_configs(name), None, None, source_name(name))[2]


def _same_steps(a: VisitedSteps, b: VisitedSteps) -> bool:
    return (
        a.scheduler_class == b.scheduler_class
        and len(a.timesteps) == len(b.timesteps)
        and bool(np.array_equal(a.timesteps, b.timesteps))
        and bool(np.array_equal(a.sigmas, b.sigmas, equal_nan=True))
    )


def plan_schedule(args: Options, model: ModelConfigs) -> SchedulePlan:
    """The whole analysis but the drawing; one :class:`InputError` line for what it cannot do."""
    config, call, model_curve = _model_curve(
        model, args.height, args.width, source_name(model.source)
    )
    curves = [model_curve]
    for name in filter(None, (n.strip() for n in (args.compare or "").split(","))):
        curves.append(_compare_curve(name, args.flow_shift))
    steps = sampler_steps(args)
    own_spacing = config.get("timestep_spacing")
    if args.timestep_spacing:
        spacings: list[str | None] = [args.timestep_spacing]
    elif model_curve.family == "flow":
        spacings = [None]  # flow samplers set σ's, not indices: the spacing does not apply
    else:
        spacings = list(SPACINGS)
    own_class = args.sampler in (None, config.get("_class_name"))
    visited: list[VisitedSteps] = []
    notes: list[str] = []
    for spacing in spacings:
        steps_seen = visited_steps(config, args.sampler, steps, spacing, call, model_curve.family)
        steps_seen.pipeline_default = own_class and (
            spacing is None
            or spacing == own_spacing
            or (own_spacing is None and spacing == steps_seen.spacing)
        )
        twin = next((v for v in visited if _same_steps(v, steps_seen)), None)
        if twin is None:
            visited.append(steps_seen)
            continue
        notes.append(
            f"{steps_seen.scheduler_class} visits the same steps with {twin.spacing} "
            f"and {steps_seen.spacing} spacing (it ignores timestep_spacing): one row"
        )
        if steps_seen.pipeline_default:
            visited[visited.index(twin)] = steps_seen
    if call.describe():
        notes.insert(0, call.describe())
    return SchedulePlan(config, call, curves, visited, notes)
