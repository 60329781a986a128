"""Latent-space operations on a diffusers text-to-image pipeline: seed and prompt interpolation,
VAE encoding and decoding, DDIM inversion, and text-embedding directions.

Everything goes through the pipeline's own pieces (``encode_prompt``, ``latents=`` and
``prompt_embeds=`` arguments, the VAE's ``scaling_factor``, diffusers' DDIM and DDIM-inverse
schedulers), so the same code serves the digits model and Stable Diffusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from diffusionscope.core.errors import InputError
from diffusionscope.core.generation import GenerationSettings, generate, generator_device
from diffusionscope.core.images import float_to_uint8
from diffusionscope.core.latent.paths import path
from diffusionscope.core.schedule.curves import build_scheduler


def require_vae(pipeline: Any, task: str) -> Any:
    vae = getattr(pipeline, "vae", None)
    if vae is None:
        raise InputError(f"{type(pipeline).__name__}: has no VAE, which the {task} task needs")
    return vae


def latent_shape(pipeline: Any, height: int, width: int) -> tuple[int, int, int, int]:
    _, model = _denoiser(pipeline)
    channels = int(model.config.in_channels)
    scale = getattr(pipeline, "vae_scale_factor", 8)
    return (1, channels, height // scale, width // scale)


def _denoiser(pipeline: Any) -> tuple[str, Any]:
    for name in ("unet", "transformer"):
        if getattr(pipeline, name, None) is not None:
            return name, getattr(pipeline, name)
    raise InputError(f"{type(pipeline).__name__}: no denoiser to sample with")


def seed_noise(pipeline: Any, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The initial N(0, I) latents the pipeline itself draws for ``seed`` (same generator
    device and dtype as :func:`diffusionscope.core.generation.generate`), so a strip's end frames are exactly
    the images those seeds give elsewhere in the workbench."""
    from diffusers.utils.torch_utils import randn_tensor

    device = generator_device(pipeline)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    dtype = _denoiser(pipeline)[1].dtype
    return randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)


def embed(pipeline: Any, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(conditional, unconditional) prompt embeddings from the pipeline's own encoder."""
    with torch.inference_mode():
        positive, negative = pipeline.encode_prompt(prompt, pipeline.device, 1, True, "")
    return positive, negative


def render(pipeline: Any, settings: GenerationSettings, seed: int, *,
           latents: Sequence[torch.Tensor] | None = None,
           embeddings: Sequence[torch.Tensor] | None = None, prompt: str | None = None,
           negative: torch.Tensor | None = None) -> np.ndarray:  # fmt: skip
    """One image per latent or per embedding, all from the same seed's generator state."""
    count = len(latents) if latents is not None else len(embeddings)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    dtype = _denoiser(pipeline)[1].dtype
    if latents is not None:
        kwargs["latents"] = torch.cat(list(latents)).to(pipeline.device, dtype)
    if embeddings is not None:
        kwargs["prompt_embeds"] = torch.cat(list(embeddings)).to(pipeline.device, dtype)
        if negative is not None:
            kwargs["negative_prompt_embeds"] = negative.repeat(count, 1, 1).to(
                pipeline.device, dtype
            )
    prompts = None if embeddings is not None else [prompt or ""] * count
    return generate(pipeline, [seed] * count, settings, prompts, **kwargs)


def seed_strip(pipeline: Any, settings: GenerationSettings, prompt: str, seeds: tuple[int, int],
               frames: int, method: str, size: tuple[int, int]) -> np.ndarray:  # fmt: skip
    shape = latent_shape(pipeline, *size)
    a, b = seed_noise(pipeline, seeds[0], shape), seed_noise(pipeline, seeds[1], shape)
    return render(pipeline, settings, seeds[0], latents=path(a, b, frames, method), prompt=prompt)


def prompt_strip(pipeline: Any, settings: GenerationSettings, prompts: tuple[str, str],
                 seed: int, frames: int) -> np.ndarray:  # fmt: skip
    (a, negative), (b, _) = embed(pipeline, prompts[0]), embed(pipeline, prompts[1])
    return render(pipeline, settings, seed, embeddings=path(a, b, frames, "lerp"),
                  negative=negative)  # fmt: skip


# ---- VAE latents and DDIM inversion ------------------------------------------------------------


def encode_images(pipeline: Any, images: np.ndarray, batch_size: int = 16) -> torch.Tensor:
    """uint8 ``[N,H,W,3]`` -> scaled VAE latents (the space the denoiser works in), in batches
    so a large reference set at 512 px fits in GPU memory. The posterior mean, not a sample:
    an image's latent should not depend on a random draw."""
    vae = require_vae(pipeline, "image")
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2)
        x = chunk.float().div(127.5).sub(1.0).to(pipeline.device, vae.dtype)
        with torch.inference_mode():
            latents = vae.encode(x).latent_dist.mean
        out.append(((latents - shift) * vae.config.scaling_factor).float().cpu())
    return torch.cat(out)


def decode_latents(pipeline: Any, latents: torch.Tensor) -> np.ndarray:
    vae = require_vae(pipeline, "image")
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    with torch.inference_mode():
        x = vae.decode((latents / vae.config.scaling_factor + shift).to(pipeline.device, vae.dtype))
    images = (x.sample.float().cpu().clamp(-1, 1) + 1) / 2
    return float_to_uint8(images.permute(0, 2, 3, 1).numpy())


def ddim_invert(pipeline: Any, latents: torch.Tensor, prompt: str | Sequence[str],
                steps: int) -> torch.Tensor:  # fmt: skip
    """Run DDIM backwards (Song et al. 2021; diffusers' ``DDIMInverseScheduler`` built from the
    model's own scheduler config) from clean latents to the noise that DDIM denoises back into
    them. Conditioned on ``prompt`` (one, or one per latent) without guidance: guidance breaks
    the approximate reversibility the inversion relies on."""
    name, model = _denoiser(pipeline)
    if name != "unet":
        raise InputError(f"{type(pipeline).__name__}: DDIM inversion needs a UNet denoiser "
                         "(noise-prediction schedules); use --latent-tasks without images")  # fmt: skip
    inverse = build_scheduler(dict(pipeline.scheduler.config), "DDIMInverseScheduler")
    inverse.set_timesteps(steps)
    prompts = [prompt] * len(latents) if isinstance(prompt, str) else list(prompt)
    conditional = torch.cat([embed(pipeline, p)[0] for p in prompts]).to(model.dtype)
    z = latents.to(pipeline.device, model.dtype)
    with torch.inference_mode():
        for t in inverse.timesteps:
            noise = model(z, t, encoder_hidden_states=conditional).sample
            z = inverse.step(noise, t, z).prev_sample
    return z.float().cpu()


def ddim_regenerate(pipeline: Any, noise: Sequence[torch.Tensor], prompt: str | Sequence[str],
                    steps: int, seed: int) -> np.ndarray:  # fmt: skip
    """Denoise inverted noise with plain DDIM (guidance 1), as the inversion assumed."""
    original = pipeline.scheduler
    pipeline.scheduler = build_scheduler(dict(original.config), "DDIMScheduler")
    try:
        settings = GenerationSettings(steps=steps, guidance_scale=1.0)
        if isinstance(prompt, str):
            return render(pipeline, settings, seed, latents=noise, prompt=prompt)
        latents = torch.cat(list(noise))
        return generate(pipeline, [seed] * len(latents), settings, list(prompt),
                        latents=latents.to(pipeline.device, _denoiser(pipeline)[1].dtype))  # fmt: skip
    finally:
        pipeline.scheduler = original


# ---- directions ---------------------------------------------------------------------------------


def direction_sweep(pipeline: Any, settings: GenerationSettings, pair: tuple[str, str],
                    prompts: Sequence[str], strengths: Sequence[float], seed: int
                    ) -> np.ndarray:  # fmt: skip
    """Images ``[prompts, strengths, H, W, 3]``: each prompt's embedding plus s·(e₊ − e₋)."""
    positive, negative = embed(pipeline, pair[0])[0], embed(pipeline, pair[1])[0]
    delta = positive - negative
    rows = []
    for prompt in prompts:
        base, unconditional = embed(pipeline, prompt)
        embeddings = [base + strength * delta for strength in strengths]
        rows.append(render(pipeline, settings, seed, embeddings=embeddings,
                           negative=unconditional))  # fmt: skip
    return np.stack(rows)


def pair_images(pipeline: Any, settings: GenerationSettings, pair: tuple[str, str],
                seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Images of the pair's own prompts over several seeds: the difference of their mean
    features is the attribute axis a sweep is measured on (one seed alone mixes the attribute
    with whatever else that seed draws)."""
    positive = generate(pipeline, list(seeds), settings, [pair[0]] * len(seeds))
    negative = generate(pipeline, list(seeds), settings, [pair[1]] * len(seeds))
    return positive, negative
