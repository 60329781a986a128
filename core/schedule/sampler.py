"""The timesteps and noise levels a sampler really visits.

A sampler is a scheduler class set to ``n`` inference steps with a ``timestep_spacing``; it is
built from the model's own scheduler config, exactly as a pipeline would build it, and read
back: ``timesteps`` (training indices -- or EDM's c_noise values, which are *not* indices) and
the noise level of each visited step from what the scheduler samples with (``sigmas`` for
Euler/DPM-Solver/EDM/flow classes, ᾱ at the visited index otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from diffusionscope.core.errors import InputError
from diffusionscope.core.schedule.curves import build_scheduler, family_of

SPACINGS = ("leading", "trailing", "linspace")


@dataclass
class VisitedSteps:
    scheduler_class: str
    steps: int
    spacing: str
    family: str
    timesteps: np.ndarray  # as the scheduler reports them
    sigmas: np.ndarray  # noise level of each visited step (σ; for flow, t)
    log_snr: np.ndarray
    indices_are_timesteps: bool  # False for EDM (c_noise) timesteps
    final_sigma: float  # last σ the sampler integrates to (after the last step)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheduler_class": self.scheduler_class,
            "steps": self.steps,
            "timestep_spacing": self.spacing,
            "family": self.family,
            "timesteps": [float(t) for t in self.timesteps],
            "sigmas": [float(s) for s in self.sigmas],
            "log_snr": [float(v) if np.isfinite(v) else None for v in self.log_snr],
            "first_timestep": float(self.timesteps[0]),
            "first_sigma": float(self.sigmas[0]),
            "first_log_snr": float(self.log_snr[0]),
            "final_sigma": self.final_sigma,
        }


def visited_steps(config: dict[str, Any], class_name: str | None, steps: int,
                  spacing: str | None) -> VisitedSteps:  # fmt: skip
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
    scheduler.set_timesteps(steps)
    family = family_of(scheduler)
    timesteps = np.asarray(scheduler.timesteps, dtype=np.float64)
    raw_sigmas = getattr(scheduler, "sigmas", None)
    if raw_sigmas is not None and len(raw_sigmas) >= len(timesteps):
        all_sigmas = np.asarray(raw_sigmas, dtype=np.float64)
        sigmas = all_sigmas[: len(timesteps)]
        final_sigma = float(all_sigmas[-1])
    else:
        alphas = scheduler.alphas_cumprod.double().numpy()
        index = np.clip(timesteps.astype(np.int64), 0, len(alphas) - 1)
        sigmas = np.sqrt((1 - alphas[index]) / alphas[index])
        final_sigma = float(sigmas[-1])
    with np.errstate(divide="ignore"):
        if family == "flow":
            log_snr = 2 * (np.log1p(-np.minimum(sigmas, 1 - 1e-12)) - np.log(sigmas))
            log_snr = np.where(sigmas >= 1, -np.inf, log_snr)
        else:
            log_snr = -2 * np.log(sigmas)
    return VisitedSteps(
        scheduler_class=type(scheduler).__name__,
        steps=steps,
        spacing=str(getattr(scheduler.config, "timestep_spacing", spacing or "")),
        family=family,
        timesteps=timesteps,
        sigmas=sigmas,
        log_snr=log_snr,
        indices_are_timesteps=family != "sigma",
        final_sigma=final_sigma,
    )
