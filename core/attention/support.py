"""What the attention mode can capture and what it costs, decided from a model's configs
before any weight is loaded.

Captured: denoisers whose attention processors :mod:`.layers` recomputes exactly --
UNet2DConditionModel (SD 1.x/2.x, SDXL, LCM, DeepFloyd IF's text stages), PixArt's and Sana's
transformers (cross-attention), SD3's (joint attention; SD3.5's extra image self-attention is
named as not captured) and Flux's (double- and single-stream blocks). Refused: pipelines with no
text encoder (unconditional models, Kandinsky 2.2's decoder: no prompt tokens to map), UNets
conditioned on image embeddings, and denoiser classes whose processors are not known here
(HunyuanDiT, AuraFlow, Lumina, CogView ...): their maps would need transforms not written yet.
A model loaded from a single checkpoint without configs is decided when it is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..families import FAMILIES, ModelConfigs

#: Denoiser classes the attention mode captures, and how they attend to the text: the
#: ``attention`` of every family record (``core/families.py``).
CAPTURED_DENOISERS: dict[str, str] = {
    denoiser: kind for family in FAMILIES for denoiser, kind in family.attention
}

#: UNet conditionings whose attention tokens are not (only) the prompt's.
IMAGE_CONDITIONINGS = frozenset({"image_proj", "text_image_proj", "ip_image_proj"})


def unsupported_reason(model: ModelConfigs) -> str | None:
    """Why the attention of ``model`` cannot be captured, or None when it can."""
    if model.kind == "scheduler_config":
        return "a scheduler config has no attention layers"
    if not model.components:
        return None  # a single checkpoint without configs: decided once loaded
    what = model.pipeline_class or "this pipeline"
    if model.denoiser is None:
        return f"{what} has no UNet or transformer: no attention layers to capture"
    if not model.text_encoders:
        return f"{what} has no text encoder: the attention mode maps prompt words"
    denoiser_class = model.components[model.denoiser][1]
    if denoiser_class not in CAPTURED_DENOISERS:
        known = ", ".join(CAPTURED_DENOISERS)
        return (
            f"{denoiser_class}: its attention processors are not known to the attention "
            f"mode (captured: {known})"
        )
    config = model.denoiser_config
    if denoiser_class == "UNet2DConditionModel":
        if config.get("encoder_hid_dim_type") in IMAGE_CONDITIONINGS:
            return (
                f"{what}: its UNet attends to image embeddings "
                f"({config['encoder_hid_dim_type']}), not to prompt tokens alone"
            )
        blocks = [
            *config.get("down_block_types", ()),
            *config.get("up_block_types", ()),
            config.get("mid_block_type") or "UNetMidBlock2DCrossAttn",
        ]
        if config and not any("CrossAttn" in str(block) for block in blocks):
            return f"{what}: its UNet has no cross-attention blocks"
    return None


def pipeline_default(pipeline_class: str, parameter: str) -> Any:
    """A pipeline's call-signature default (``max_sequence_length`` is not in any config)."""
    import inspect

    import diffusers

    cls = getattr(diffusers, pipeline_class, None)
    if cls is None:
        return None
    found = inspect.signature(cls.__call__).parameters.get(parameter)
    return None if found is None or found.default is inspect.Parameter.empty else found.default


def _clip_length(model: ModelConfigs) -> int:
    encoder = model.configs.get("text_encoder", {})
    return int(encoder.get("max_position_embeddings") or 77)


def text_tokens(model: ModelConfigs, max_sequence_length: int | None = None) -> int:
    """The length of the text sequence the denoiser is given, from the configs, the pipeline's
    defaults and the family record's ``text_sequence``: SD3 joins CLIP's positions and T5's,
    Flux, PixArt and Sana give T5's or Gemma's ``max_sequence_length``, the UNet families
    CLIP's."""
    record = model.record
    sequence = record.text_sequence if record is not None else "clip"
    if sequence == "clip":
        return _clip_length(model)
    long = max_sequence_length or pipeline_default(model.pipeline_class, "max_sequence_length")
    if sequence == "clip+long":
        # Without T5 the pipeline pads with zeros as long as CLIP's sequence.
        t5 = int(long) if "text_encoder_3" in model.components else _clip_length(model)
        return _clip_length(model) + t5
    return int(long)


def resolution_groups(model: ModelConfigs, height: int, width: int) -> list[tuple[int, int]]:
    """The ``(h, w)`` token grids of the layers that attend to the text at this image size."""
    config = model.denoiser_config
    denoiser_class = model.components.get(model.denoiser or "", ("", ""))[1]
    if denoiser_class != "UNet2DConditionModel":
        # One grid: latent pixels in the family's tokens (Flux packs 2 x 2 latent pixels).
        return [model.token_grid(height, width)]
    factor = model.vae_scale_factor
    h, w = math.ceil(height / factor), math.ceil(width / factor)
    levels = [(h, w)]
    for _ in range(len(config.get("block_out_channels", ())) - 1):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        levels.append((h, w))
    down = config.get("down_block_types", ())
    up = config.get("up_block_types", ())
    mid = config.get("mid_block_type") or "UNetMidBlock2DCrossAttn"
    used = {i for i, block in enumerate(down) if "CrossAttn" in block}
    used |= {len(up) - 1 - j for j, block in enumerate(up) if "CrossAttn" in block}
    if "CrossAttn" in mid:
        used.add(len(levels) - 1)
    return [levels[i] for i in sorted(used)]


@dataclass(frozen=True)
class Footprint:
    """What capture holds: per selected step on the host, two float32 maps (renormalised and
    full-softmax share) of ``text_tokens × pixels`` per resolution group; on the device, the
    step being captured and the running total, twice that."""

    text_tokens: int
    groups: tuple[tuple[int, int], ...]

    @property
    def bytes_per_selected_step(self) -> int:
        return 2 * 4 * self.text_tokens * sum(h * w for h, w in self.groups)

    @property
    def device_bytes(self) -> int:
        return 2 * self.bytes_per_selected_step


def capture_footprint(
    model: ModelConfigs, height: int, width: int, max_sequence_length: int | None = None
) -> Footprint:
    return Footprint(
        text_tokens(model, max_sequence_length), tuple(resolution_groups(model, height, width))
    )
