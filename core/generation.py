"""Seeded image generation shared by the modes.

Sample ``i`` is always generated from its own ``torch.Generator`` seeded ``base_seed + i``
(diffusers draws each sample's initial noise from its own generator when given a list), so a
sample does not depend on the batch it falls in, on the number of processes, or on a resume.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .images import float_to_uint8
from .options import Generation

#: The shared generation options a mode reads (``options.generation``), declared with them.
GenerationSettings = Generation


def generator_device(pipeline: Any) -> str:
    """Seeds draw their noise on the CPU whatever device the pipeline runs on, as diffusers
    recommends for reproducibility: a CUDA generator draws another stream, so seed 7 would be a
    different image on the GPU host than on a laptop, and a GPU run could not be checked against
    a CPU one. ``randn_tensor`` moves the draw to the pipeline's device (one small copy per
    image)."""
    del pipeline
    return "cpu"


def seeded_generators(seeds: Sequence[int], device: str = "cpu") -> list[Any]:
    import torch

    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def accepts(pipeline: Any, name: str) -> bool:
    return name in inspect.signature(pipeline.__call__).parameters


def generate(
    pipeline: Any,
    seeds: Sequence[int],
    settings: GenerationSettings,
    prompts: Sequence[str] | None = None,
    **call_kwargs: Any,
) -> np.ndarray:
    """Generate one image per seed; returns uint8 ``[N, H, W, 3]``.

    ``prompts`` (one per seed) is passed to text-conditioned pipelines; unconditional ones
    (DDPM, DDIM, LDM) get only ``batch_size``. Extra keyword arguments (``latents``,
    ``prompt_embeds``, ``callback_on_step_end``...) go to the pipeline unchanged.
    """
    import torch

    kwargs: dict[str, Any] = {
        "num_inference_steps": settings.steps,
        "generator": seeded_generators(seeds, generator_device(pipeline)),
        "output_type": "np",
        **call_kwargs,
    }
    if prompts is not None and "prompt_embeds" not in call_kwargs:
        if len(prompts) != len(seeds):
            raise ValueError("one prompt per seed is needed")
        kwargs["prompt"] = list(prompts)
    elif prompts is None and "prompt_embeds" not in call_kwargs and accepts(pipeline, "batch_size"):
        kwargs["batch_size"] = len(seeds)
    if accepts(pipeline, "guidance_scale"):
        kwargs["guidance_scale"] = settings.guidance_scale
    if settings.negative_prompt and accepts(pipeline, "negative_prompt") and prompts is not None:
        kwargs["negative_prompt"] = [settings.negative_prompt] * len(seeds)
    for side in ("height", "width"):
        value = getattr(settings, side)
        if value is not None and accepts(pipeline, side):
            kwargs[side] = value
    with torch.inference_mode():
        output = pipeline(**kwargs)
    images = output.images
    if isinstance(images, list):  # PIL images from pipelines that ignore output_type
        images = np.stack([np.asarray(image.convert("RGB")) for image in images])
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = float_to_uint8(images.astype(np.float32))
    if images.ndim == 4 and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images
