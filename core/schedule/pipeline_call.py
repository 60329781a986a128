"""How a pipeline calls its scheduler's ``set_timesteps``, read from its configs.

Most pipelines pass only the step count. Two things vary, and the sampler view must copy them or
it shows steps the model never takes:

* a scheduler that shifts by image size (``use_dynamic_shifting``) needs μ, which the pipeline
  computes from the latent sequence length of the image it makes (diffusers refuses to set
  timesteps without it);
* FluxPipeline passes its own σ grid ``np.linspace(1, 1/n, n)`` (unless the scheduler uses
  ``use_flow_sigmas``).

μ comes from diffusers' own ``calculate_shift``, taken from the pipeline's module; the sequence
length is derived as that pipeline's ``__call__`` derives it, from its default image size (read
from the configs, :meth:`ModelConfigs.default_image_size`) or ``--height/--width``. The rules
here are those of FluxPipeline and StableDiffusion3Pipeline; any other pipeline, or a bare
scheduler config, with dynamic shifting is refused in one line rather than shown with a guess.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..families import FAMILIES, ModelConfigs

#: The pipelines whose μ is computed here: those of the families with shift defaults
#: (``Family.shift`` in ``core/families.py``; SD3's max_shift is 1.16, Flux's 1.15).
SHIFTING = tuple(pipeline for family in FAMILIES if family.shift for pipeline in family.pipelines)


@dataclass(frozen=True)
class TimestepCall:
    """What the pipeline passes to ``set_timesteps`` besides the step count, and why."""

    pipeline_class: str = ""
    mu: float | None = None
    image_seq_len: int | None = None
    height: int | None = None
    width: int | None = None
    custom_sigmas: str | None = None  # the pipeline's own σ grid, as its code writes it

    def kwargs(self, steps: int) -> dict[str, Any]:
        passed: dict[str, Any] = {}
        if self.custom_sigmas is not None:
            passed["sigmas"] = np.linspace(1.0, 1 / steps, steps)  # FluxPipeline's grid
        if self.mu is not None:
            passed["mu"] = self.mu
        return passed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One sentence for the report; empty when the pipeline passes only the step count."""
        parts = []
        if self.mu is not None:
            parts.append(
                f"dynamic shift μ = {self.mu:.6g} (shift e^μ = {np.exp(self.mu):.4g}) from the "
                f"image sequence length {self.image_seq_len} of a {self.height}×{self.width} px "
                f"image, computed as {self.pipeline_class} does (diffusers' calculate_shift)"
            )
        if self.custom_sigmas is not None:
            parts.append(f"{self.pipeline_class} passes sigmas = {self.custom_sigmas}")
        return "; ".join(parts)


def _calculate_shift(pipeline_class: str) -> Any:
    """diffusers' ``calculate_shift`` from the pipeline's own module (imports that module)."""
    from .imports import import_diffusers

    cls = getattr(import_diffusers(), pipeline_class)
    return sys.modules[cls.__module__].calculate_shift


def _size(model: ModelConfigs, height: int | None, width: int | None) -> tuple[int, int]:
    default = model.default_image_size()
    if default is None and (height is None or width is None):
        raise InputError(
            f"model {model.source!r}: the default image size of {model.pipeline_class} is not "
            "known here; pass --height and --width"
        )
    return int(height or default[0]), int(width or default[1])  # type: ignore[index]


def _image_seq_len(model: ModelConfigs, height: int, width: int) -> int:
    """The latent sequence length the pipeline's code derives from the image size: latent
    pixels (size // VAE factor) in tokens of the family's packing x patch size (Flux: 2 x 2
    packed latent pixels; SD3: transformer patches of ``patch_size``)."""
    rows, columns = model.token_grid(height, width)
    return rows * columns


def timestep_call(
    model: ModelConfigs,
    scheduler_config: dict[str, Any],
    height: int | None = None,
    width: int | None = None,
) -> TimestepCall:
    """How ``model``'s pipeline sets the timesteps of a scheduler with ``scheduler_config``
    (the built scheduler's config, class defaults included)."""
    pipeline, record = model.pipeline_class, model.record
    custom = None
    if record is not None and record.own_sigmas and not scheduler_config.get("use_flow_sigmas"):
        custom = record.own_sigmas
    if not scheduler_config.get("use_dynamic_shifting"):
        return TimestepCall(pipeline, custom_sigmas=custom)
    if record is None or record.shift is None:
        what = pipeline or f"the scheduler config {model.source!r}"
        raise InputError(
            f"{what}: the scheduler shifts its timesteps by image size (use_dynamic_shifting), "
            f"and how μ is computed is known here only for {' and '.join(SHIFTING)}; "
            "pass such a pipeline's folder or hub id"
        )
    height, width = _size(model, height, width)
    seq_len = _image_seq_len(model, height, width)
    base_len, max_len, base_shift, max_shift = record.shift
    mu = _calculate_shift(pipeline)(
        seq_len,
        scheduler_config.get("base_image_seq_len", base_len),
        scheduler_config.get("max_image_seq_len", max_len),
        scheduler_config.get("base_shift", base_shift),
        scheduler_config.get("max_shift", max_shift),
    )
    return TimestepCall(pipeline, float(mu), seq_len, height, width, custom)
