"""Verdicts on a schedule and its sampler, each with the numbers and config fields behind it.

The flaws looked for are the known ones: a terminal SNR above zero (the model never sees pure
noise, Lin et al. 2023), a sampler whose first step starts below the schedule's maximum noise
(leading spacing), zero terminal SNR with epsilon prediction (the prediction is undefined at the
last step), repeated or out-of-range visited timesteps, and a flow-matching sampler whose steps
do not follow the model's shift (the shift applied twice, or a sampler with another shift).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from .curves import FLOW_SIGMA_CONVERSIONS, NoiseCurve
from .sampler import VisitedSteps

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
    if curve.family == "flow":
        candidates: tuple[str, ...] = (
            "shift",
            "flow_shift",
            "use_flow_sigmas",
            "use_dynamic_shifting",
        )
    else:
        candidates = (
            "beta_schedule",
            "beta_start",
            "beta_end",
            "trained_betas",
            "rescale_betas_zero_snr",
            "sigma_min",
            "sigma_max",
        )
    config_fields = [k for k in candidates if curve.config.get(k) is not None]
    diffs = np.diff(curve.alphas_cumprod)
    decreasing = bool(np.all(diffs < 0))
    worst = float(diffs.max()) if len(diffs) else 0.0
    checks.append(
        Check(
            "alphas_cumprod strictly decreasing",
            "pass" if decreasing else "fail",
            decreasing,
            "every step adds noise"
            if decreasing
            else f"ᾱ rises or stalls somewhere (largest step {worst:+.3g})",
            config_fields,
        )
    )
    finite = curve.log_snr[np.isfinite(curve.log_snr)]
    start, end = float(finite[0]), float(curve.log_snr[-1])
    checks.append(
        Check(
            "log-SNR range",
            "info",
            [start, end],
            f"log-SNR from {start:.3f} at t={curve.timesteps[0]:g} to {end:.3f} at "
            f"t={curve.timesteps[-1]:g}",
            config_fields,
        )
    )
    terminal = curve.terminal_snr
    is_zero = terminal < ZERO_SNR
    checks.append(
        Check(
            "terminal SNR is zero",
            "pass" if is_zero else "warn",
            terminal,
            "the last training step is pure noise"
            if is_zero
            else f"SNR at the last step is {terminal:.3g} (σ={1 / np.sqrt(terminal):.3g}): the model "
            "never sees pure noise but sampling starts from it (Lin et al. 2023)",
            config_fields,
        )
    )
    prediction = curve.config.get("prediction_type", "epsilon")
    if curve.family != "flow":
        bad = is_zero and prediction == "epsilon"
        exactly_zero = float(curve.alphas_cumprod[-1]) == 0.0
        verdict: Verdict = ("fail" if exactly_zero else "warn") if bad else "pass"
        checks.append(
            Check(
                "prediction type fits terminal SNR",
                verdict,
                prediction,
                "epsilon prediction is undefined at zero terminal SNR (x0 = (x_t - σε)/α with α=0); "
                "use v-prediction"
                if bad
                else f"{prediction} prediction",
                ["prediction_type", *config_fields],
            )
        )
    return checks


def _sampler_fields(visited: VisitedSteps) -> list[str]:
    if visited.family == "flow":
        return ["shift", "flow_shift", "use_dynamic_shifting", "num_train_timesteps"]
    return ["timestep_spacing", "steps_offset", "num_train_timesteps"]


def _starts_at_max(visited: VisitedSteps) -> Check:
    """Looks at the first *visited* step: it must be at least as noisy as the schedule's
    second-noisiest training step. Zero terminal SNR does not make leading spacing start from
    pure noise (it starts far below σ_max), so that is no reason to pass."""
    fields = _sampler_fields(visited)
    top, below_top = visited.top_sigmas
    first, first_t = float(visited.sigmas[0]), float(visited.timesteps[0])
    value = {
        "first_sigma": _finite_or_none(first),
        "first_timestep": first_t,
        "schedule_sigma_max": _finite_or_none(top),
    }
    name = "sampler starts at the schedule's maximum noise"
    if np.isnan(first):
        return Check(
            name,
            "fail",
            value,
            f"first visited timestep {first_t:g} lies outside the "
            f"schedule (0 to {visited.train_steps - 1}): it has no noise level",
            fields,
        )
    ok = first >= below_top * (1 - 1e-6)
    if visited.family == "flow":
        detail = f"first visited σ={first:.4f} (pure noise is σ=1; the schedule's top {top:.4f})"
    else:
        detail = (
            f"first visited σ={first:.4g} at timestep {first_t:g}; the schedule's σ_max={top:.4g}"
        )
    if not ok:
        detail += f" ({visited.spacing or 'this'} spacing never starts from the noisiest step"
        detail += "; try timestep_spacing='trailing')" if visited.spacing == "leading" else ")"
    return Check(name, "pass" if ok else "warn", value, detail, fields)


def _longest_run(values: np.ndarray) -> int:
    longest = run = 1
    for previous, current in zip(values[:-1], values[1:], strict=True):
        run = run + 1 if current == previous else 1
        longest = max(longest, run)
    return longest if len(values) else 0


def _distinct_and_in_range(visited: VisitedSteps) -> Check:
    """A step evaluated twice in a row is a second stage when the sampler is multi-stage (order
    2, PNDM's Runge-Kutta and warm-up steps); a timestep visited again later, three times in a
    row, or twice in a row by a one-stage sampler is a wasted or broken step. Training indices
    run from 0 to T−1; flow times σ·T from 0 to T."""
    fields = _sampler_fields(visited)
    name = "visited timesteps distinct and in range"
    if not visited.indices_are_timesteps:
        return Check(
            name,
            "info",
            None,
            "this scheduler's timesteps are EDM c_noise values (0.25·ln σ), not indices",
            ["sigma_min", "sigma_max"],
        )
    rounded = np.round(visited.timesteps, 6)
    collapsed = (
        rounded[np.concatenate([[True], rounded[1:] != rounded[:-1]])] if len(rounded) else rounded
    )
    revisited = int(len(collapsed) - len(np.unique(collapsed)))
    allowed_run = 2 if visited.multi_stage else 1
    longest = _longest_run(rounded)
    stages = int(len(rounded) - len(collapsed))
    repeated = revisited + (stages if longest > allowed_run else 0)
    top = visited.train_steps if visited.family == "flow" else visited.train_steps - 1
    outside = rounded[(rounded < 0) | (rounded > top)]
    ok = repeated == 0 and len(outside) == 0
    detail = f"{repeated} repeated, {len(outside)} outside [0, {top}]"
    if len(outside):
        detail += f" (visits {', '.join(f'{t:g}' for t in outside[:3])})"
    if visited.multi_stage and stages and longest <= allowed_run:
        detail += (
            f"; {stages} second-stage evaluations at an already visited timestep, by "
            f"design of {visited.scheduler_class}"
        )
    return Check(
        name,
        "pass" if ok else "fail",
        {"repeated": repeated, "out_of_range": int(len(outside)), "stages": stages},
        detail,
        fields,
    )


def _follows_shift(curve: NoiseCurve, visited: VisitedSteps) -> Check:
    """Undo the model's shift s on the visited σ's (u = σ / (s − (s−1)·σ)): every sampler
    diffusers ships spaces u evenly, so uneven u means the σ's were shifted again or by another
    shift. Samplers configured with Karras/exponential/beta σ's are uneven on purpose."""
    fields = ["shift", "flow_shift", "use_dynamic_shifting", "shift_terminal"]
    name = "flow sampler follows the model's shift"
    shift = float(curve.shift if curve.shift is not None else 1.0)
    value: dict[str, Any] = {"shift": shift, "mu": curve.mu}
    redistributed = [k for k in (*FLOW_SIGMA_CONVERSIONS, "shift_terminal") if curve.config.get(k)]
    if redistributed:
        return Check(
            name,
            "info",
            value,
            f"{', '.join(redistributed)} set: the steps are not "
            "meant to be evenly spaced under the shift",
            fields,
        )
    sigmas = visited.sigmas[np.isfinite(visited.sigmas)]
    steps = np.unique(np.round(sigmas, 7))[::-1]
    steps = steps[steps > 0]
    unshifted = steps / (shift - (shift - 1) * steps)
    gaps = -np.diff(unshifted)
    even = len(gaps) < 2 or bool(np.allclose(gaps, gaps.mean(), rtol=1e-3, atol=1e-5))
    value["unshifted_gaps"] = [float(g) for g in gaps[:8]]
    how = f"μ={curve.mu:.4g}, shift e^μ={shift:.4g}" if curve.mu is not None else f"shift {shift:g}"
    detail = (
        f"visited σ's are an even grid under the model's {how}"
        if even
        else f"visited σ's are not an even grid under the model's {how}: the shift was applied "
        "twice, or the sampler uses another shift"
    )
    return Check(name, "pass" if even else "warn", value, detail, fields)


def sampler_checks(curve: NoiseCurve, visited: VisitedSteps) -> list[Check]:
    checks = [_starts_at_max(visited), _distinct_and_in_range(visited)]
    if curve.family == "flow":
        checks.append(_follows_shift(curve, visited))
    return checks


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
