"""One noise-level view for every scheduler family.

Code in circulation reads ``scheduler.alphas_cumprod`` and breaks on half the schedulers: EDM
schedulers have no betas, flow-matching ones no ᾱ at all. Here every schedule becomes the same
:class:`NoiseCurve` -- ᾱ, log-SNR, σ and β (where they exist) per training timestep -- derived
from what the diffusers scheduler actually holds:

* DDPM-style (``alphas_cumprod``): SNR = ᾱ/(1−ᾱ), σ = √((1−ᾱ)/ᾱ);
* sigma-parameterised (EDM, Karras): SNR = 1/σ², ᾱ = 1/(1+σ²);
* rectified flow (x_t = (1−σ)·x0 + σ·ε): SNR = ((1−σ)/σ)², σ the shifted time.

Which of the three a scheduler is comes from what its config says (:func:`schedule_family`),
never from a list of class names: diffusers keeps adding flow-matching classes, and classic
solvers (DPM-Solver, UniPC, DEIS) sample flow models when the config sets ``use_flow_sigmas``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

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
    ),
    "karras": ("EulerDiscreteScheduler", {**SD_BETAS, "use_karras_sigmas": True}),
    "edm": ("EDMEulerScheduler", {}),
    "flow": ("FlowMatchEulerDiscreteScheduler", {"shift": 1.0}),
}

#: Config keys that give a schedule's β's: such a scheduler holds ``alphas_cumprod``.
BETA_KEYS = ("beta_schedule", "trained_betas", "beta_start", "beta_end")
#: Flow-matching configs that sample with a distribution of their own instead of the shift curve.
FLOW_SIGMA_CONVERSIONS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def scheduler_class(name: str) -> type:
    """A diffusers scheduler class by name; diffusers' lazy module imports only its module."""
    from .imports import import_diffusers

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
    if class_name and class_name != config.get("_class_name"):
        # A null in another class's config means "not set there" (Euler's sigma_min): it must
        # not override a value this class needs (EDM's sigma_min would become None).
        clean = {
            k: v
            for k, v in clean.items()
            if v is not None or accepted[k].default in (None, inspect.Parameter.empty)
        }
    try:
        return cls.from_config(clean)
    except ImportError as error:
        # diffusers' placeholder for a class whose optional backend (torchsde, ...) is missing.
        needs = str(error).strip().splitlines()[0] if str(error).strip() else "a missing package"
        raise InputError(f"{name}: cannot be built here ({needs.rstrip('.')})") from None
    except (ValueError, NotImplementedError, TypeError, AssertionError) as error:
        raise InputError(f"scheduler config for {name}: {error}") from None


def _flow_like_timesteps(scheduler: Any) -> bool:
    """Whether the scheduler's own ``set_timesteps`` yields rectified-flow steps: σ in [0, 1]
    and timestep = σ · num_train_timesteps. The last resort for classes whose config names no
    flow setting at all (LTXEulerAncestralRFScheduler delegates to a flow-match scheduler)."""
    import copy

    probe = copy.deepcopy(scheduler)
    try:
        probe.set_timesteps(4)
    except Exception:  # noqa: BLE001 -- a class that cannot even set 4 steps is not flow-like
        return False
    sigmas = getattr(probe, "sigmas", None)
    timesteps = getattr(probe, "timesteps", None)
    if sigmas is None or timesteps is None or len(sigmas) < len(timesteps) or len(timesteps) < 2:
        return False
    sigmas = np.asarray(sigmas, dtype=np.float64)[: len(timesteps)]
    train_steps = float(probe.config.get("num_train_timesteps", 1000))
    return bool(
        np.all((sigmas >= 0) & (sigmas <= 1))
        and np.allclose(np.asarray(timesteps, dtype=np.float64), sigmas * train_steps, atol=1e-3)
    )


def schedule_family(config: dict[str, Any], scheduler: Any = None) -> str | None:
    """``"flow"``, ``"ddpm"`` or ``"sigma"`` from what the config says; ``None`` when it says
    nothing this mode can analyse.

    * flow: ``use_flow_sigmas``, a ``flow_prediction`` target, or a ``shift`` /
      ``use_dynamic_shifting`` setting without β's (every flow-match class has ``shift``);
    * ddpm: β's in the config and ``alphas_cumprod`` on the scheduler;
    * sigma: ``sigma_min`` and ``sigma_max`` set and no β's (EDM, consistency models);
    * flow again, for a class whose config names nothing, when its own steps are σ·T with σ in
      [0, 1] (:func:`_flow_like_timesteps`).

    ``config`` should be the built scheduler's config, so that class defaults are visible.
    """
    if config.get("use_flow_sigmas") or config.get("prediction_type") == "flow_prediction":
        return "flow"
    has_betas = any(config.get(key) is not None for key in BETA_KEYS)
    if not has_betas and ("shift" in config or config.get("use_dynamic_shifting")):
        return "flow"
    holds_alphas = scheduler is not None and getattr(scheduler, "alphas_cumprod", None) is not None
    if has_betas and (scheduler is None or holds_alphas):
        return "ddpm"
    if (
        not has_betas
        and config.get("sigma_min") is not None
        and config.get("sigma_max") is not None
    ):
        return "sigma"
    if scheduler is not None and not holds_alphas and _flow_like_timesteps(scheduler):
        return "flow"
    return None


def family_of(scheduler: Any) -> str:
    """The schedule family of a built scheduler; one line when it has none this mode knows."""
    family = schedule_family(dict(scheduler.config), scheduler)
    if family is None:
        raise InputError(
            f"{type(scheduler).__name__}: its config defines no noise schedule this mode can "
            "analyse (no betas / alphas_cumprod, no flow shift, no sigma_min/sigma_max)"
        )
    return family


def flow_shift(config: dict[str, Any], mu: float | None = None) -> float:
    """The static shift s of σ = s·t / (1 + (s−1)·t) that a flow scheduler applies.

    ``shift`` (flow-match classes) or ``flow_shift`` (DPM-Solver, UniPC with ``use_flow_sigmas``);
    with ``use_dynamic_shifting`` it is set per image size by μ: diffusers' exponential time
    shift e^μ / (e^μ + (1/t − 1)) is exactly this formula with s = e^μ, its linear one with s = μ.
    """
    if config.get("use_dynamic_shifting"):
        if mu is None:
            raise InputError("use_dynamic_shifting: the shift depends on the image size (mu)")
        return float(mu) if config.get("time_shift_type") == "linear" else float(np.exp(mu))
    if "shift" in config:
        return float(config["shift"])
    return float(config.get("flow_shift", 1.0))


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
    mu: float | None = None  # the dynamic shift's μ the flow curve is drawn with
    shift: float | None = None  # the static-equivalent flow shift

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
            "mu": self.mu,
            "shift": self.shift,
            "timesteps": listed(self.timesteps),
            "alphas_cumprod": listed(self.alphas_cumprod),
            "log_snr": listed(self.log_snr),
            "sigmas": listed(self.sigmas),
            "betas": listed(self.betas),
        }


def _log_snr_from_alphas(alphas_cumprod: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(alphas_cumprod) - np.log1p(-alphas_cumprod)


def curve_from_scheduler(name: str, scheduler: Any, mu: float | None = None) -> NoiseCurve:
    """The schedule ``scheduler`` describes; ``mu`` is the dynamic shift's μ, when it has one."""
    family = family_of(scheduler)
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    steps = int(config.get("num_train_timesteps", 1000))
    shift = None
    if family == "ddpm":
        alphas = scheduler.alphas_cumprod.double().numpy()
        betas = scheduler.betas.double().numpy() if hasattr(scheduler, "betas") else None
        log_snr = _log_snr_from_alphas(alphas)
        with np.errstate(divide="ignore"):
            sigmas = np.sqrt((1 - alphas) / alphas)
        timesteps = np.arange(steps, dtype=np.float64)
    elif family == "flow":
        # σ(t) on the training grid t = 1/T ... 1, shifted as this scheduler's own
        # set_timesteps shifts: by its time_shift at μ when the shift is dynamic.
        t = np.linspace(1, steps, steps, dtype=np.float64) / steps
        shift = flow_shift(config, mu)
        if config.get("use_dynamic_shifting") and hasattr(scheduler, "time_shift"):
            sigmas = np.asarray(scheduler.time_shift(float(mu), 1.0, t), dtype=np.float64)
        else:
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
    return NoiseCurve(
        name,
        family,
        type(scheduler).__name__,
        timesteps,
        alphas,
        log_snr,
        sigmas,
        betas,
        config,
        mu=mu if family == "flow" and config.get("use_dynamic_shifting") else None,
        shift=shift,
    )


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
