"""Latent-space operations on a diffusers text-to-image pipeline of any family: seed and prompt
interpolation, VAE encoding and decoding, inversion of the sampler, and text-embedding
directions.

Every image comes out of ``pipe(...)`` itself. What changes between frames is handed to it as
the keyword arguments it would otherwise compute: ``latents=`` from the pipeline's own
``prepare_latents`` (packed where it packs, at its resolution bin), the conditioning tensors
from its own ``encode_prompt`` (:mod:`diffusionscope.core.pipeline_parts`). So a strip's end
frames are exactly the images ``pipe`` makes for those seeds and prompts.

End frames are rendered one at a time, the frames between them in batches: a batch changes
the floating-point reduction order inside the networks, so an end frame drawn in one would
differ from the seed's own image by a level here and there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .. import pipeline_parts as parts
from ..errors import InputError
from ..generation import GenerationSettings, generate
from ..images import float_to_uint8
from ..pipeline_parts import Conditioning, SeedLatents
from .paths import path


def require_vae(pipeline: Any, task: str) -> Any:
    vae = getattr(pipeline, "vae", None)
    if vae is None:
        raise InputError(f"{type(pipeline).__name__}: has no VAE, which the {task} task needs")
    return vae


def embed(pipeline: Any, settings: GenerationSettings, prompt: str) -> Conditioning:
    """``prompt``'s conditioning as ``pipe`` computes it with these settings."""
    return parts.encode(pipeline, prompt, settings.guidance_scale, settings.negative_prompt)


def seed_latents(
    pipeline: Any, settings: GenerationSettings, seed: int, conditioning: Conditioning
) -> SeedLatents:
    return parts.initial_latents(pipeline, seed, conditioning, settings.height, settings.width)


def render(
    pipeline: Any,
    settings: GenerationSettings,
    conditioning: Conditioning,
    latents: torch.Tensor,
    generator: torch.Generator,
) -> np.ndarray:
    """One image from given latents and conditioning; ``generator`` feeds stochastic samplers
    (the seed's generator after its initial draw, as in the pipeline's own call)."""
    return _render_batch(pipeline, settings, [(conditioning, latents, generator)])[0]


Frame = tuple[Conditioning, torch.Tensor, torch.Generator]


def _render_batch(
    pipeline: Any, settings: GenerationSettings, frames: Sequence[Frame]
) -> np.ndarray:
    conditioning = _joined([frame[0] for frame in frames])
    latents = torch.cat([frame[1] for frame in frames])
    return generate(
        pipeline,
        [0] * len(frames),
        settings,
        None,
        latents=latents,
        generator=[frame[2] for frame in frames],
        **conditioning.kwargs(pipeline),
    )


def render_frames(
    pipeline: Any,
    settings: GenerationSettings,
    frames: Sequence[Frame],
    exact: Sequence[int],
    batch_size: int = 8,
) -> np.ndarray:
    """Images of ``frames``: those at the ``exact`` indices one at a time (each is then the
    pipeline's own image of its seed and prompt, pixel for pixel), the others in batches."""
    exact_set = {index % len(frames) for index in exact}
    images: list[np.ndarray | None] = [None] * len(frames)
    for index in sorted(exact_set):
        images[index] = _render_batch(pipeline, settings, [frames[index]])[0]
    rest = [index for index in range(len(frames)) if index not in exact_set]
    for start in range(0, len(rest), batch_size):
        chunk = rest[start : start + batch_size]
        for index, image in zip(
            chunk, _render_batch(pipeline, settings, [frames[i] for i in chunk]), strict=True
        ):
            images[index] = image
    return np.stack(images)  # type: ignore[arg-type]


def seed_strip(
    pipeline: Any,
    settings: GenerationSettings,
    prompt: str,
    seeds: tuple[int, int],
    frames: int,
    method: str,
    batch_size: int = 8,
) -> np.ndarray:
    """Images along ``method`` (slerp or lerp) between two seeds' initial latents. A stochastic
    sampler (LCM, ancestral) draws its later noise from the nearer seed's generator."""
    conditioning = embed(pipeline, settings, prompt)
    a, b = (seed_latents(pipeline, settings, seed, conditioning) for seed in seeds)
    points = path(a.latents, b.latents, frames, method)
    times = np.linspace(0.0, 1.0, frames)
    items = [
        (conditioning, latents, (a if t < 0.5 else b).generator(pipeline))
        for latents, t in zip(points, times, strict=True)
    ]
    return render_frames(pipeline, settings, items, (0, -1), batch_size)


def prompt_strip(
    pipeline: Any,
    settings: GenerationSettings,
    prompts: tuple[str, str],
    seed: int,
    frames: int,
    batch_size: int = 8,
) -> np.ndarray:
    """Images of one seed along the linear path between two prompts' conditioning (every
    embedding the pipeline uses, pooled ones included)."""
    a, b = embed(pipeline, settings, prompts[0]), embed(pipeline, settings, prompts[1])
    start = seed_latents(pipeline, settings, seed, a)
    items = [
        (a.lerp(b, float(t)), start.latents, start.generator(pipeline))
        for t in np.linspace(0.0, 1.0, frames)
    ]
    return render_frames(pipeline, settings, items, (0, -1), batch_size)


# ---- VAE latents and inversion -----------------------------------------------------------------


def _vae_scaling(vae: Any) -> tuple[float, float]:
    return float(vae.config.scaling_factor), float(getattr(vae.config, "shift_factor", None) or 0.0)


def encode_images(pipeline: Any, images: np.ndarray, batch_size: int = 16) -> torch.Tensor:
    """uint8 ``[N,H,W,3]`` -> scaled VAE latents ``[N,C,h,w]`` (the space the denoiser works in,
    before any packing), in batches so a large reference set at 512 px fits in GPU memory. The
    posterior mean, not a sample: an image's latent should not depend on a random draw
    (AutoencoderDC, Sana's, is deterministic)."""
    vae = require_vae(pipeline, "image")
    scale, shift = _vae_scaling(vae)
    device = parts.module_device(vae)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2)
        x = chunk.float().div(127.5).sub(1.0).to(device, vae.dtype)
        with torch.inference_mode():
            encoded = vae.encode(x)
            latents = (
                encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latent
            )
        out.append(((latents - shift) * scale).float().cpu())
    return torch.cat(out)


def decode_latents(pipeline: Any, latents: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    vae = require_vae(pipeline, "image")
    scale, shift = _vae_scaling(vae)
    device = parts.module_device(vae)
    out = []
    for start in range(0, len(latents), batch_size):
        chunk = latents[start : start + batch_size] / scale + shift
        with torch.inference_mode():
            x = vae.decode(chunk.to(device, vae.dtype)).sample
        out.append(((x.float().cpu().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy())
    return float_to_uint8(np.concatenate(out))


@contextmanager
def _scheduler(pipeline: Any, scheduler: Any) -> Iterator[None]:
    original = pipeline.scheduler
    pipeline.scheduler = scheduler
    try:
        yield
    finally:
        pipeline.scheduler = original


def _joined(conditionings: Sequence[Conditioning]) -> Conditioning:
    first = conditionings[0]
    return Conditioning(
        {
            name: None if value is None else torch.cat([c.tensors[name] for c in conditionings])
            for name, value in first.tensors.items()
        }
    )


def _conditioning(
    pipeline: Any, prompt: str | Sequence[str], count: int, guidance_scale: float
) -> Conditioning:
    prompts = [prompt] * count if isinstance(prompt, str) else list(prompt)
    if len(prompts) != count:
        raise ValueError("one prompt per image is needed")
    return _joined([parts.encode(pipeline, p, guidance_scale) for p in prompts])


def invert(
    pipeline: Any,
    latents: torch.Tensor,
    prompt: str | Sequence[str],
    steps: int,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """Clean VAE-space latents ``[N,C,h,w]`` -> the noise the pipeline's deterministic sampler
    denoises back into them, in the form ``latents=`` takes (packed on Flux).

    The pipeline's own ``__call__`` runs the inversion, with the inverse scheduler in place of
    its sampler (:func:`diffusionscope.core.pipeline_parts.inversion_schedulers`: DDIM inversion,
    Song et al. 2021, on noise- and v-prediction families; Euler steps of the flow ODE backwards
    on flow families), so the denoiser gets exactly the conditioning it gets when sampling
    (SDXL's size ids and pooled embeddings, Flux's position ids and guidance embedding, PixArt's
    and Sana's masks). Conditioned on ``prompt`` (one, or one per latent) without
    classifier-free guidance (:func:`diffusionscope.core.pipeline_parts.inversion_guidance`)."""
    inverse, _ = parts.inversion_schedulers(pipeline)
    guidance = parts.inversion_guidance(pipeline, guidance_scale)
    conditioning = _conditioning(pipeline, prompt, len(latents), guidance)
    scale = int(pipeline.vae_scale_factor)
    height, width = latents.shape[-2] * scale, latents.shape[-1] * scale
    dtype = parts.parts(pipeline).noise_dtype(pipeline, conditioning)
    start = parts.pack(pipeline, latents).to(parts.execution_device(pipeline), dtype)
    with _scheduler(pipeline, inverse), torch.inference_mode():
        output = pipeline(
            **conditioning.kwargs(pipeline),
            latents=start,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance,
            output_type="latent",
            **parts.unbinned(pipeline),
        )
    return output.images.float().cpu()


def _forward(
    pipeline: Any,
    noise: torch.Tensor,
    prompt: str | Sequence[str],
    steps: int,
    size: tuple[int, int],
    guidance_scale: float,
) -> tuple[Any, GenerationSettings, dict[str, Any]]:
    """The forward scheduler of the inversion's pair, and the settings and ``pipe`` keywords
    that denoise ``noise`` into ``size`` (height, width) under the inversion's conditioning."""
    _, forward = parts.inversion_schedulers(pipeline)
    guidance = parts.inversion_guidance(pipeline, guidance_scale)
    conditioning = _conditioning(pipeline, prompt, len(noise), guidance)
    dtype = parts.parts(pipeline).noise_dtype(pipeline, conditioning)
    settings = GenerationSettings(
        steps=steps, guidance_scale=guidance, height=size[0], width=size[1]
    )
    return (
        forward,
        settings,
        {
            **conditioning.kwargs(pipeline),
            **parts.unbinned(pipeline),
            "latents": noise.to(parts.execution_device(pipeline), dtype),
        },
    )


def regenerate(
    pipeline: Any,
    noise: torch.Tensor,
    prompt: str | Sequence[str],
    steps: int,
    size: tuple[int, int],
    guidance_scale: float = 1.0,
) -> np.ndarray:
    """Denoise inverted noise (the form :func:`invert` returns) with the forward scheduler of
    the inversion's pair, under the same conditioning, into uint8 images of ``size``."""
    forward, settings, kwargs = _forward(pipeline, noise, prompt, steps, size, guidance_scale)
    with _scheduler(pipeline, forward):
        return generate(pipeline, [0] * len(noise), settings, None, **kwargs)


def regenerate_latents(
    pipeline: Any,
    noise: torch.Tensor,
    prompt: str | Sequence[str],
    steps: int,
    size: tuple[int, int],
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """:func:`regenerate`, stopped before the VAE: VAE-space latents ``[N,C,h,w]``."""
    forward, settings, kwargs = _forward(pipeline, noise, prompt, steps, size, guidance_scale)
    with _scheduler(pipeline, forward), torch.inference_mode():
        output = pipeline(
            **kwargs,
            num_inference_steps=steps,
            guidance_scale=settings.guidance_scale,
            height=size[0],
            width=size[1],
            output_type="latent",
        )
    return parts.unpack(pipeline, output.images, *size).float().cpu()


# ---- directions ---------------------------------------------------------------------------------

ARTICLES = ("a", "an", "the")


def with_word(prompt: str, word: str) -> str:
    """``prompt`` with an attribute word: at ``{}`` when the prompt marks the place, else after
    a leading article ("a red seven" -> "a thick red seven"), else in front."""
    if "{}" in prompt:
        return " ".join(prompt.replace("{}", word).split())
    first, _, rest = prompt.strip().partition(" ")
    if first.lower() in ARTICLES and rest:
        return f"{first} {word} {rest}"
    return f"{word} {prompt.strip()}"


def without_word(prompt: str) -> str:
    """The prompt as given, without the ``{}`` place mark."""
    return " ".join(prompt.replace("{}", " ").split())


def direction_sweep(
    pipeline: Any,
    settings: GenerationSettings,
    pair: tuple[str, str],
    prompts: Sequence[str],
    strengths: Sequence[float],
    seed: int,
    batch_size: int = 8,
) -> np.ndarray:
    """Images ``[prompts, strengths, H, W, 3]``: each prompt's conditioning (pooled embeddings
    included) moved by s·(e₊ − e₋), the difference of the pair's own conditioning, from one
    seed."""
    positive = embed(pipeline, settings, pair[0])
    delta = positive.difference(embed(pipeline, settings, pair[1]))
    rows = []
    for prompt in prompts:
        base = embed(pipeline, settings, without_word(prompt))
        start = seed_latents(pipeline, settings, seed, base)
        items = [
            (base.shifted(delta, s, positive), start.latents, start.generator(pipeline))
            for s in strengths
        ]
        exact = [i for i, s in enumerate(strengths) if s == 0.0]  # the prompt's own image
        rows.append(render_frames(pipeline, settings, items, exact, batch_size))
    return np.stack(rows)


def contrast_images(
    pipeline: Any,
    settings: GenerationSettings,
    pair: tuple[str, str],
    prompts: Sequence[str],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each prompt with the positive word and with the negative word, from the sweep's seed:
    the two images differ in the attribute alone (same prompt otherwise, same initial noise,
    so the same composition), which makes them the two ends of the attribute's scale for
    that row. Images of the bare words would mostly differ in whatever else each draws (on
    the digits: digit and colour)."""

    def images(word: str) -> np.ndarray:
        conditionings = [embed(pipeline, settings, with_word(p, word)) for p in prompts]
        return np.stack(
            [
                render(pipeline, settings, c, *_start(pipeline, settings, seed, c))
                for c in conditionings
            ]
        )

    return images(pair[0]), images(pair[1])


def _start(
    pipeline: Any, settings: GenerationSettings, seed: int, conditioning: Conditioning
) -> tuple[torch.Tensor, torch.Generator]:
    start = seed_latents(pipeline, settings, seed, conditioning)
    return start.latents, start.generator(pipeline)


def attribute(
    pipeline: Any, frames: np.ndarray, positive: np.ndarray, negative: np.ndarray
) -> np.ndarray | None:
    """Where each frame lies between a row's two contrast images, in the model's own VAE latent
    space: 0 at the negative word's image, 1 at the positive word's, by projection on the
    segment between them. The contrast images share the frames' seed and so their
    composition; what separates them is where the attribute shows in this very picture,
    which a latent-space projection measures (a classifier's features are built to ignore
    such attributes: on the digits, stroke width). None when the word changes nothing."""
    latents = encode_images(pipeline, np.concatenate([frames, positive[None], negative[None]]))
    flat = latents.reshape(len(latents), -1).double()
    frames_, high, low = flat[:-2], flat[-2], flat[-1]
    axis = high - low
    if float(axis.norm()) <= 1e-6 * max(float(low.norm()), 1.0):
        return None
    return (((frames_ - low) @ axis) / (axis @ axis)).numpy()
