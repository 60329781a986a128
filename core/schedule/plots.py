"""Schedule figures (matplotlib, Agg): three-panel schedule, comparison overlay, sampler steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .curves import NoiseCurve
from .sampler import VisitedSteps

LOG_SNR_FLOOR = -25.0  # zero terminal SNR is -inf; drawn at this floor
# Fixed margins instead of tight_layout and a trimmed bounding box: each of those draws the
# figure once more, and drawing is most of a schedule run's own time.
MARGINS = {"left": 0.06, "right": 0.985, "bottom": 0.14, "top": 0.91, "wspace": 0.25}


def _figure(width: float, height: float):  # -> matplotlib.figure.Figure
    """A figure outside pyplot: no global state to close, and pyplot's import (0.6 s of a
    schedule run on a CPU) is skipped. ``savefig`` renders it with Agg."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, LOG_SNR_FLOOR)


def noise_schedule_figure(curves: Sequence[NoiseCurve]):
    figure = _figure(13, 3.8)
    axes = figure.subplots(1, 3)
    for curve in curves:
        axes[0].plot(curve.timesteps, curve.alphas_cumprod, label=curve.name)
        axes[1].plot(curve.timesteps, _finite(curve.log_snr), label=curve.name)
        if curve.betas is not None:
            axes[2].plot(curve.timesteps, curve.betas, label=curve.name)
    for axis, title in zip(axes, ("ᾱ (alphas_cumprod)", "log-SNR", "β (betas)"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("training timestep")
        axis.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    figure.subplots_adjust(**MARGINS)
    return figure


def comparison_figure(curves: Sequence[NoiseCurve]):
    figure = _figure(12, 4)
    axes = figure.subplots(1, 2)
    for curve in curves:
        axes[0].plot(curve.timesteps, _finite(curve.log_snr), label=curve.name)
        axes[1].plot(curve.normalised_time, _finite(curve.log_snr), label=curve.name)
    axes[0].set_xlabel("training timestep")
    axes[1].set_xlabel("normalised time t/T")
    for axis in axes:
        axis.set_ylabel("log-SNR")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title("log-SNR per training timestep")
    axes[1].set_title("log-SNR against normalised time")
    figure.subplots_adjust(**MARGINS)
    return figure


def sampler_figure(curve: NoiseCurve, visited: Sequence[VisitedSteps]):
    figure = _figure(12, 4)
    axes = figure.subplots(1, 2)
    axes[0].plot(curve.normalised_time, _finite(curve.log_snr), color="0.6", label="schedule")
    for steps in visited:
        label = f"{steps.scheduler_class} {steps.steps} steps, {steps.spacing}"
        axes[1].plot(np.arange(len(steps.sigmas)), steps.sigmas, marker=".", label=label)
        if steps.indices_are_timesteps:
            span = max(curve.timesteps[-1], 1.0)
            axes[0].scatter(steps.timesteps / span, _finite(steps.log_snr), s=12, label=label)
    axes[0].set_xlabel("normalised time t/T")
    axes[0].set_ylabel("log-SNR")
    axes[0].set_title("visited timesteps on the schedule")
    axes[1].set_xlabel("sampler step")
    axes[1].set_ylabel("σ (flow: t)")
    axes[1].set_yscale("log")
    axes[1].set_title("noise level per sampler step")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.subplots_adjust(**MARGINS)
    return figure
