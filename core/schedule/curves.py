"""One noise-level view for every scheduler family.

Code in circulation reads ``scheduler.alphas_cumprod`` and breaks on half the schedulers: EDM
schedulers have no betas, flow-matching ones no ᾱ at all. Here every schedule becomes the same
:class:`NoiseCurve` -- ᾱ, log-SNR, σ and β (where they exist) per training timestep -- derived
from what the diffusers scheduler actually holds:

* DDPM-style (``alphas_cumprod``): SNR = ᾱ/(1−ᾱ), σ = √((1−ᾱ)/ᾱ);
* sigma-parameterised (EDM, Karras): SNR = 1/σ², ᾱ = 1/(1+σ²);
* rectified flow (x_t = (1−t)·x0 + t·ε, ``shift`` applied): SNR = ((1−t)/t)².
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from diffusionscope.core.errors import InputError

#: Named alternatives: a scheduler class and the config it is built with.
SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
NAMED_SCHEDULES: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("DDPMScheduler", {"beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}),
    "scaled_linear": ("DDIMScheduler", dict(SD_BETAS)),
    "cosine": ("DDIMScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
    "squaredcos_cap_v2": ("DDIMScheduler", {"beta_schedule": "squaredcos_cap_v2"}),
    "sigmoid": (
        "DDPMScheduler",
        {"beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "sigmoid"},
    ),
    "zero_snr": (
        "DDIMScheduler",
        {**SD_BETAS, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
    ),  # fmt: skip
    "karras": ("EulerDiscreteScheduler", {**SD_BETAS, "use_karras_sigmas": True}),
    "edm": ("EDMEulerScheduler", {}),
    "flow": ("FlowMatchEulerDiscreteScheduler", {"shift": 1.0}),
}

FLOW_CLASSES = ("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler",
                "FlowMatchLCMScheduler")  # fmt: skip
EDM_CLASSES = (
    "EDMEulerScheduler",
    "EDMDPMSolverMultistepScheduler",
    "CosineDPMSolverMultistepScheduler",
)


def scheduler_class(name: str) -> type:
    """A diffusers scheduler class by name; diffusers' lazy module imports only its module."""
    from diffusionscope.core.schedule.imports import import_diffusers

    cls = getattr(import_diffusers(), name, None)
    if cls is None or not name.endswith("Scheduler"):
        raise InputError(f"scheduler class {name!r}: not a diffusers scheduler")
    return cls


def build_scheduler(config: dict[str, Any], class_name: str | None = None) -> Any:
    """Instantiate the config's own class (``_class_name``) or ``class_name`` from it."""
    name = class_name or config.get("_class_name") or "DDPMScheduler"
    cls = scheduler_class(name)
    # Only the class's named settings: keys of other families (Euler's interpolation_type on
    # DDIM, ...) would be ignored anyway, after a "not expected" line on the console.
    accepted = inspect.signature(cls.__init__).parameters
    clean = {k: v for k, v in config.items() if k in accepted and not k.startswith("_")}
    try:
        return cls.from_config(clean)
    except (ValueError, NotImplementedError, TypeError, AssertionError) as error:
        raise InputError(f"scheduler config for {name}: {error}") from None


def family_of(scheduler: Any) -> str:
    name = type(scheduler).__name__
    if name in FLOW_CLASSES or getattr(scheduler.config, "use_flow_sigmas", False):
        return "flow"
    if name in EDM_CLASSES or not hasattr(scheduler, "alphas_cumprod"):
        return "sigma"
    return "ddpm"


@dataclass
class NoiseCurve:
    """A schedule on its training timesteps, from the noisiest end's opposite (t=0) upward."""

    name: str
    family: str  # "ddpm" | "sigma" | "flow"
    scheduler_class: str
    timesteps: np.ndarray
    alphas_cumprod: np.ndarray
    log_snr: np.ndarray
    sigmas: np.ndarray
    betas: np.ndarray | None
    config: dict[str, Any]

    @property
    def normalised_time(self) -> np.ndarray:
        """Timesteps mapped to [0, 1], so schedules of different lengths line up."""
        span = max(float(self.timesteps[-1] - self.timesteps[0]), 1e-12)
        return (self.timesteps - self.timesteps[0]) / span

    @property
    def terminal_snr(self) -> float:
        return float(np.exp(self.log_snr[-1])) if np.isfinite(self.log_snr[-1]) else 0.0

    def to_json(self, stride: int = 1) -> dict[str, Any]:
        def listed(values: np.ndarray | None) -> list[float | None] | None:
            if values is None:
                return None
            return [None if not np.isfinite(v) else float(v) for v in values[::stride]]

        return {
            "family": self.family,
            "scheduler_class": self.scheduler_class,
            "timesteps": listed(self.timesteps),
            "alphas_cumprod": listed(self.alphas_cumprod),
            "log_snr": listed(self.log_snr),
            "sigmas": listed(self.sigmas),
            "betas": listed(self.betas),
        }


def _log_snr_from_alphas(alphas_cumprod: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(alphas_cumprod) - np.log1p(-alphas_cumprod)


def curve_from_scheduler(name: str, scheduler: Any) -> NoiseCurve:
    family = family_of(scheduler)
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    steps = int(config.get("num_train_timesteps", 1000))
    if family == "ddpm":
        alphas = scheduler.alphas_cumprod.double().numpy()
        betas = scheduler.betas.double().numpy() if hasattr(scheduler, "betas") else None
        log_snr = _log_snr_from_alphas(alphas)
        with np.errstate(divide="ignore"):
            sigmas = np.sqrt((1 - alphas) / alphas)
        timesteps = np.arange(steps, dtype=np.float64)
    elif family == "flow":
        # The training sigmas diffusers holds already include the configured shift.
        t = np.linspace(1, steps, steps, dtype=np.float64) / steps
        shift = float(config.get("shift", 1.0))
        sigmas = shift * t / (1 + (shift - 1) * t)
        with np.errstate(divide="ignore"):
            log_snr = 2 * (np.log1p(-sigmas) - np.log(sigmas))
        alphas = (1 - sigmas) ** 2 / ((1 - sigmas) ** 2 + sigmas**2)
        timesteps, betas = t * steps, None
    else:
        sigma_min = float(config.get("sigma_min", 0.002))
        sigma_max = float(config.get("sigma_max", 80.0))
        # EDM trains over a log-normal of σ; its natural axis is σ itself, spaced geometrically.
        sigmas = np.geomspace(sigma_min, sigma_max, steps)
        log_snr = -2 * np.log(sigmas)
        alphas = 1 / (1 + sigmas**2)
        timesteps, betas = np.arange(steps, dtype=np.float64), None
    return NoiseCurve(name, family, type(scheduler).__name__, timesteps, alphas, log_snr,
                      sigmas, betas, config)  # fmt: skip


def named_curve(name: str, flow_shift: float | None = None) -> NoiseCurve:
    """A named alternative: ``linear``, ``cosine``, ``zero_snr``, ``karras``, ``flow:3.0``..."""
    base, _, argument = name.partition(":")
    if base not in NAMED_SCHEDULES:
        raise InputError(
            f"--compare: unknown schedule {name!r} (known: {', '.join(NAMED_SCHEDULES)}, "
            "or a scheduler_config.json, model folder or hub id)"
        )
    class_name, config = NAMED_SCHEDULES[base]
    config = dict(config)
    if base == "flow":
        try:
            config["shift"] = float(argument) if argument else (flow_shift or 1.0)
        except ValueError:
            raise InputError(f"--compare {name}: shift must be a number") from None
    return curve_from_scheduler(name, build_scheduler(config, class_name))


def validate_config(config: dict[str, Any], source: str) -> None:
    """Reject configs whose schedule is broken before any scheduler is built."""
    trained = config.get("trained_betas")
    if trained is not None:
        betas = np.asarray(trained, dtype=np.float64)
        if betas.ndim != 1 or len(betas) < 2:
            raise InputError(f"{source}: trained_betas must be a list of numbers")
        if np.any(betas <= 0) or np.any(betas >= 1):
            raise InputError(f"{source}: trained_betas must lie strictly between 0 and 1")
        if np.any(np.diff(betas) < 0):
            first = int(np.argmax(np.diff(betas) < 0))
            raise InputError(
                f"{source}: trained_betas is not monotone (decreases at index {first + 1}), "
                "so alphas_cumprod would not describe a forward noising process"
            )
    if "_class_name" in config:
        scheduler_class(str(config["_class_name"]))
