"""Verdicts on a schedule and its sampler, each with the numbers and config fields behind it.

The flaws looked for are the known ones: a terminal SNR above zero (the model never sees pure
noise, Lin et al. 2023), a sampler whose first step starts below the schedule's maximum noise
(leading spacing), zero terminal SNR with epsilon prediction (the prediction is undefined at the
last step), repeated or out-of-range visited timesteps, and a flow-matching sampler whose last
σ does not reach the configured minimum (the shift applied twice).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from diffusionscope.core.schedule.curves import NoiseCurve
from diffusionscope.core.schedule.sampler import VisitedSteps

Verdict = Literal["pass", "warn", "fail", "info"]

#: SNR below this counts as zero: ᾱ_T = 2**-24 is how diffusers stores "zero" for Euler.
ZERO_SNR = 1e-6


@dataclass
class Check:
    name: str
    verdict: Verdict
    value: Any
    detail: str
    fields: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schedule_checks(curve: NoiseCurve) -> list[Check]:
    checks: list[Check] = []
    config_fields = [k for k in ("beta_schedule", "beta_start", "beta_end", "trained_betas",
                                 "rescale_betas_zero_snr", "shift", "sigma_min", "sigma_max")
                     if k in curve.config]  # fmt: skip
    diffs = np.diff(curve.alphas_cumprod)
    decreasing = bool(np.all(diffs < 0))
    worst = float(diffs.max()) if len(diffs) else 0.0
    checks.append(Check(
        "alphas_cumprod strictly decreasing", "pass" if decreasing else "fail",
        decreasing, "every step adds noise" if decreasing
        else f"ᾱ rises or stalls somewhere (largest step {worst:+.3g})", config_fields,
    ))  # fmt: skip
    finite = curve.log_snr[np.isfinite(curve.log_snr)]
    start, end = float(finite[0]), float(curve.log_snr[-1])
    checks.append(Check(
        "log-SNR range", "info", [start, end],
        f"log-SNR from {start:.3f} at t={curve.timesteps[0]:g} to {end:.3f} at "
        f"t={curve.timesteps[-1]:g}", config_fields,
    ))  # fmt: skip
    terminal = curve.terminal_snr
    is_zero = terminal < ZERO_SNR
    checks.append(Check(
        "terminal SNR is zero", "pass" if is_zero else "warn", terminal,
        "the last training step is pure noise" if is_zero
        else f"SNR at the last step is {terminal:.3g} (σ={1 / np.sqrt(terminal):.3g}): the model "
        "never sees pure noise but sampling starts from it (Lin et al. 2023)",
        config_fields,
    ))  # fmt: skip
    prediction = curve.config.get("prediction_type", "epsilon")
    if curve.family != "flow":
        bad = is_zero and prediction == "epsilon"
        exactly_zero = float(curve.alphas_cumprod[-1]) == 0.0
        verdict: Verdict = ("fail" if exactly_zero else "warn") if bad else "pass"
        checks.append(Check(
            "prediction type fits terminal SNR", verdict, prediction,
            "epsilon prediction is undefined at zero terminal SNR (x0 = (x_t - σε)/α with α=0); "
            "use v-prediction" if bad else f"{prediction} prediction",
            ["prediction_type", *config_fields],
        ))  # fmt: skip
    return checks


def sampler_checks(curve: NoiseCurve, visited: VisitedSteps) -> list[Check]:
    checks: list[Check] = []
    fields = ["timestep_spacing", "steps_offset", "num_train_timesteps"]
    schedule_max = float(np.nanmax(curve.sigmas[np.isfinite(curve.sigmas)]))
    first = float(visited.sigmas[0])
    if curve.family == "flow":
        starts_at_max = first >= 1 - 1e-6
        detail = f"first visited t={first:.4f} (pure noise is t=1)"
    else:
        starts_at_max = curve.terminal_snr < ZERO_SNR or first >= 0.99 * schedule_max
        detail = (f"first visited σ={first:.3f} at timestep {visited.timesteps[0]:g}; the "
                  f"schedule's σ_max={schedule_max:.3f}")  # fmt: skip
    checks.append(Check(
        "sampler starts at the schedule's maximum noise", "pass" if starts_at_max else "warn",
        {"first_sigma": first, "schedule_sigma_max": schedule_max},
        detail + ("" if starts_at_max else f" ({visited.spacing} spacing never starts from "
                  "the noisiest step; try timestep_spacing='trailing')"), fields,
    ))  # fmt: skip
    if visited.indices_are_timesteps:
        rounded = np.round(visited.timesteps, 6)
        repeats = int(len(rounded) - len(np.unique(rounded)))
        warm_up = (
            visited.scheduler_class == "PNDMScheduler"
            and repeats == 1
            and (len(rounded) > 2 and rounded[1] == rounded[2])
        )
        train_steps = int(curve.config.get("num_train_timesteps", len(curve.timesteps)))
        outside = int(np.sum((visited.timesteps < 0) | (visited.timesteps > train_steps)))
        ok = (repeats == 0 or warm_up) and outside == 0
        detail = f"{repeats} repeated, {outside} outside [0, {train_steps}]"
        if warm_up:
            detail += " (PNDM's PLMS warm-up evaluates its second timestep twice by design)"
        checks.append(Check(
            "visited timesteps distinct and in range", "pass" if ok else "fail",
            {"repeated": repeats, "out_of_range": outside}, detail, fields,
        ))  # fmt: skip
    else:
        checks.append(Check(
            "visited timesteps distinct and in range", "info", None,
            "this scheduler's timesteps are EDM c_noise values (0.25·ln σ), not indices",
            ["sigma_min", "sigma_max"],
        ))  # fmt: skip
    if curve.family == "flow":
        last = float(visited.sigmas[-1])
        shift = float(curve.config.get("shift", 1.0))
        expected_min = float(curve.sigmas[0])
        ok = last <= expected_min * 1.5 + 1e-6
        checks.append(Check(
            "flow sampler reaches the minimum σ", "pass" if ok else "warn",
            {"last_visited_sigma": last, "configured_min_sigma": expected_min, "shift": shift},
            f"last visited σ={last:.4f}, the schedule's minimum {expected_min:.4f} (shift "
            f"{shift:g})" + ("" if ok else "; the shift may have been applied twice"),
            ["shift", "use_dynamic_shifting", "shift_terminal"],
        ))  # fmt: skip
    return checks
