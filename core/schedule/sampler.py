"""The timesteps and noise levels a sampler really visits.

A sampler is a scheduler class set to ``n`` inference steps with a ``timestep_spacing``; it is
built from the model's own scheduler config and its timesteps are set exactly as the pipeline
sets them (:mod:`~diffusionscope.core.schedule.pipeline_call`: μ for dynamic shifting, Flux's own
σ grid), then read back: ``timesteps`` (training indices, flow times σ·T, or EDM's c_noise
values, which are *not* indices) and the noise level of each model evaluation, from what the
scheduler samples with (its ``sigmas``; ᾱ at the visited index for DDIM-style classes).

One entry per model evaluation: second-order samplers (Heun, KDPM2, FlowMatchHeun) and PNDM's
Runge-Kutta and warm-up steps evaluate some steps twice, by design.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .curves import build_scheduler, curve_from_scheduler, family_of
from .pipeline_call import TimestepCall

SPACINGS = ("leading", "trailing", "linspace")


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass
class VisitedSteps:
    scheduler_class: str
    steps: int
    spacing: str
    family: str
    timesteps: np.ndarray  # as the scheduler reports them, one per model evaluation
    sigmas: np.ndarray  # noise level of each evaluation (σ; flow: the shifted time); NaN: none
    log_snr: np.ndarray
    indices_are_timesteps: bool  # False for EDM (c_noise) timesteps
    final_sigma: float  # σ the sampler integrates to after its last step (NaN: not held)
    train_steps: int = 1000
    #: σ of the sampler's own schedule at its noisiest training step and the one below it.
    top_sigmas: tuple[float, float] = (np.inf, np.inf)
    multi_stage: bool = False  # evaluates some steps twice by design (order 2, PNDM)
    call: TimestepCall = field(default_factory=TimestepCall)
    pipeline_default: bool = False  # the model's own class and spacing: what pipe() does

    def to_json(self) -> dict[str, Any]:
        return {
            "scheduler_class": self.scheduler_class,
            "steps": self.steps,
            "timestep_spacing": self.spacing,
            "family": self.family,
            "pipeline_default": self.pipeline_default,
            "evaluations": len(self.timesteps),
            "timesteps": [float(t) for t in self.timesteps],
            "sigmas": [_finite_or_none(s) for s in self.sigmas],
            "log_snr": [_finite_or_none(v) for v in self.log_snr],
            "first_timestep": float(self.timesteps[0]),
            "first_sigma": _finite_or_none(self.sigmas[0]),
            "first_log_snr": _finite_or_none(self.log_snr[0]),
            "final_sigma": _finite_or_none(self.final_sigma),
            "mu": self.call.mu,
            "set_timesteps": self.call.to_json(),
        }


def _input_sigmas(scheduler: Any) -> np.ndarray:
    """σ of each evaluation as the model receives it: the pipeline's own loop is replayed
    (``scale_model_input``, then ``step`` with a zero prediction) and σ is read off the input
    scaling 1/√(σ²+1) of these variance-exploding samplers."""
    import torch

    sample = torch.ones(1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    sigmas = []
    for t in scheduler.timesteps:
        scale = float(scheduler.scale_model_input(torch.ones(1, dtype=torch.float64), t)[0])
        sigmas.append(np.sqrt(max(1.0 / scale**2 - 1.0, 0.0)))
        extra = {"generator": generator} if takes_generator else {}
        sample = scheduler.step(torch.zeros_like(sample), t, sample, **extra).prev_sample
    return np.asarray(sigmas)


def _evaluation_sigmas(scheduler: Any, evaluations: int) -> tuple[np.ndarray, float] | None:
    """The σ each model evaluation runs at, and the σ after the last step, from the
    scheduler's own ``sigmas``; ``None`` when it holds no per-step σ's.

    ``sigmas[k]`` belongs to ``timesteps[k]`` for every class but the KDPM2 ones, which
    interleave midpoint evaluations at σ's of ``sigmas_interpol`` (at an offset that differs
    between KDPM2 and its ancestral variant); their ``sigmas`` array repeats each σ, so pairing
    by index would give each midpoint the next step's σ. For them the σ's are read as the model
    receives them (:func:`_input_sigmas`).
    """
    raw = getattr(scheduler, "sigmas", None)
    if raw is None or len(raw) < evaluations:
        return None
    table = np.asarray(raw, dtype=np.float64)
    if getattr(scheduler, "sigmas_interpol", None) is not None:
        return _input_sigmas(scheduler), float(table[-1])
    if len(table) > evaluations + 1:
        return None  # a table of another length (ScoreSdeVe's training σ's) is not per-step
    final = float(table[-1]) if len(table) == evaluations + 1 else float("nan")
    return table[:evaluations], final


def _sigmas_from_alphas(scheduler: Any, timesteps: np.ndarray) -> tuple[np.ndarray, float]:
    """σ = √((1−ᾱ)/ᾱ) at each visited index (log-σ interpolated between indices, as diffusers
    maps σ to t); NaN outside the schedule. After the last step: ``final_alpha_cumprod``."""
    alphas = scheduler.alphas_cumprod.double().numpy()
    with np.errstate(divide="ignore"):
        log_sigma = 0.5 * (np.log1p(-alphas) - np.log(alphas))
    inside = (timesteps >= 0) & (timesteps <= len(alphas) - 1)
    sigmas = np.full(len(timesteps), np.nan)
    sigmas[inside] = np.exp(np.interp(timesteps[inside], np.arange(len(alphas)), log_sigma))
    final_alpha = getattr(scheduler, "final_alpha_cumprod", None)
    final = float("nan")
    if final_alpha is not None:
        value = float(final_alpha)
        final = float(np.sqrt((1 - value) / value)) if value > 0 else float("inf")
    return sigmas, final


def _check_call_accepted(scheduler: Any, call: TimestepCall, kwargs: dict[str, Any]) -> None:
    parameters = inspect.signature(scheduler.set_timesteps).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    for name in kwargs:
        if name not in parameters:
            raise InputError(
                f"{type(scheduler).__name__}: {call.pipeline_class} passes {name} to "
                f"set_timesteps, which this class does not take, so the pipeline cannot run it"
            )


def visited_steps(
    config: dict[str, Any],
    class_name: str | None,
    steps: int,
    spacing: str | None,
    call: TimestepCall | None = None,
    model_family: str | None = None,
) -> VisitedSteps:
    """Set ``steps`` timesteps as the pipeline would and read back what the sampler visits.

    ``model_family`` (the model schedule's family) refuses a sampler of another family: an EDM
    or flow sampler on a DDPM model runs on σ's the model was never trained on.
    """
    call = call or TimestepCall()
    train_steps = int(config.get("num_train_timesteps", 1000))
    if steps <= 0:
        raise InputError(f"--sampler-steps: must be positive, got {steps}")
    if steps > train_steps:
        raise InputError(
            f"--sampler-steps: {steps} is more than the {train_steps} training timesteps"
        )
    if spacing is not None and spacing not in SPACINGS:
        raise InputError(f"--timestep-spacing: expected one of {', '.join(SPACINGS)}")
    overrides = {"timestep_spacing": spacing} if spacing else {}
    scheduler = build_scheduler({**config, **overrides}, class_name)
    name = type(scheduler).__name__
    family = family_of(scheduler)
    if model_family is not None and family != model_family:
        raise InputError(
            f"--sampler {name}: a {family} sampler cannot run on this model's {model_family} "
            "schedule (its noise levels are not the ones the model was trained on)"
        )
    curve = curve_from_scheduler(name, scheduler, call.mu)  # before set_timesteps may edit it
    kwargs = call.kwargs(steps)
    _check_call_accepted(scheduler, call, kwargs)
    try:
        scheduler.set_timesteps(steps, **kwargs)
    except (ValueError, AssertionError) as error:
        raise InputError(f"{name}.set_timesteps({steps}): {error}") from None
    timesteps = np.asarray(scheduler.timesteps, dtype=np.float64)
    held = _evaluation_sigmas(scheduler, len(timesteps))
    if held is not None:
        sigmas, final_sigma = held
    elif getattr(scheduler, "alphas_cumprod", None) is not None and family == "ddpm":
        sigmas, final_sigma = _sigmas_from_alphas(scheduler, timesteps)
    else:
        raise InputError(
            f"{name}: holds neither per-step sigmas nor alphas_cumprod after set_timesteps, so "
            "the noise level of its steps cannot be read"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "flow":
            log_snr = 2 * (np.log1p(-np.minimum(sigmas, 1.0)) - np.log(sigmas))
        else:
            log_snr = -2 * np.log(sigmas)
    settings = dict(scheduler.config)
    return VisitedSteps(
        scheduler_class=name,
        steps=steps,
        spacing=str(settings.get("timestep_spacing", spacing or "")),
        family=family,
        timesteps=timesteps,
        sigmas=sigmas,
        log_snr=log_snr,
        indices_are_timesteps=family != "sigma",
        final_sigma=final_sigma,
        train_steps=train_steps,
        top_sigmas=(float(curve.sigmas[-1]), float(curve.sigmas[-2])),
        multi_stage=int(getattr(scheduler, "order", 1) or 1) > 1 or "skip_prk_steps" in settings,
        call=call,
    )
