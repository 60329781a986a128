"""Each pipeline family driven through its own methods: prompt encoding, initial latents, sizes,
packing, and the scheduler pair that inverts its sampler.

A diffusers pipeline's ``__call__`` takes everything it would compute itself as keyword
arguments (``latents=``, ``prompt_embeds=`` and the other conditioning tensors), so the analyses
here never re-implement a denoising loop: they compute those arguments with the pipeline's own
``encode_prompt`` and ``prepare_latents``, change them (interpolate, shift, invert) and hand them
back to ``pipe(...)``. What differs between families is small and held in one place,
the family's record in ``core/families.py``: which keywords ``encode_prompt`` takes and what its
return values are called in ``__call__`` (:data:`ENCODERS`), how many latent channels
``prepare_latents`` draws and in which dtype, and whether the pipeline bins resolutions
(PixArt, Sana: :data:`BINS`) or packs latents (Flux).

Nothing here imports torch or diffusers at module level, so the support facts
(:func:`inversion_support`) are cheap to ask before a model is loaded.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .families import FAMILIES as FAMILY_RECORDS
from .families import FAMILY_OF_PIPELINE, Family

#: The keyword names of ``__call__`` for the positive prompt's tensors; the negative prompt's
#: are these with ``negative_`` in front. Attention masks are 0/1 integers, never interpolated.
POSITIVE = ("prompt_embeds", "pooled_prompt_embeds", "prompt_attention_mask")
MASKS = ("prompt_attention_mask", "negative_prompt_attention_mask")


# --------------------------------------------------------------------------------------------
# Which family a loaded pipeline is
# --------------------------------------------------------------------------------------------


def family_of(pipeline: Any) -> str:
    """The family of a loaded pipeline, by its class or the nearest base class that has one
    (a subclass of StableDiffusionPipeline drives like one)."""
    for cls in type(pipeline).__mro__:
        if cls.__name__ in FAMILY_OF_PIPELINE:
            return FAMILY_OF_PIPELINE[cls.__name__]
    return "other"


def _class_names(pipeline: Any) -> set[str]:
    return {cls.__name__ for cls in type(pipeline).__mro__}


def denoiser(pipeline: Any) -> Any:
    for name in ("unet", "transformer"):
        if getattr(pipeline, name, None) is not None:
            return getattr(pipeline, name)
    raise InputError(f"{type(pipeline).__name__}: no denoiser (unet or transformer)")


def module_device(module: Any) -> Any:
    """Where a network's weights are: the device its inputs must be on."""
    for parameter in module.parameters():
        return parameter.device
    return getattr(module, "device", None)


def execution_device(pipeline: Any) -> Any:
    """The device the pipeline's ``__call__`` puts latents and conditioning on."""
    return pipeline._execution_device


def text_device(pipeline: Any) -> Any:
    """The device ``encode_prompt`` must move token ids to: where the text encoders are (the
    pipeline moves the embeddings on to the denoiser itself)."""
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
        encoder = getattr(pipeline, name, None)
        if encoder is not None:
            return module_device(encoder)
    return execution_device(pipeline)


def call_default(pipeline: Any, name: str) -> Any:
    """The default of one of ``__call__``'s parameters (``None`` when it has none)."""
    parameter = inspect.signature(pipeline.__call__).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def accepts(pipeline: Any, name: str) -> bool:
    return name in inspect.signature(pipeline.__call__).parameters


# --------------------------------------------------------------------------------------------
# Conditioning: what encode_prompt returns, under __call__'s keyword names
# --------------------------------------------------------------------------------------------


@dataclass
class Conditioning:
    """The conditioning tensors of one prompt, keyed by the ``__call__`` keyword that takes each
    (``prompt_embeds``, ``negative_prompt_embeds``, ``pooled_prompt_embeds``,
    ``prompt_attention_mask``, ...). ``rebuilt`` holds return values of ``encode_prompt`` that
    ``__call__`` rebuilds itself from these (Flux's ``text_ids``: zeros, one row per T5 token)."""

    tensors: dict[str, Any]
    rebuilt: dict[str, Any] = field(default_factory=dict)

    def kwargs(self, pipeline: Any) -> dict[str, Any]:
        """Keywords for ``pipe(...)`` in place of the prompt, on the pipeline's device (SD3's and
        PixArt's ``__call__`` hand given embeddings to the denoiser wherever they are). PixArt's
        and Sana's ``__call__`` default ``negative_prompt`` to "" and refuse it beside negative
        embeddings: it is set to None here."""
        device = execution_device(pipeline)
        out = {name: value.to(device) for name, value in self.tensors.items() if value is not None}
        if (
            "negative_prompt_embeds" in out
            and call_default(pipeline, "negative_prompt") is not None
        ):
            out["negative_prompt"] = None
        return out

    def lerp(self, other: Conditioning, t: float) -> Conditioning:
        """Every embedding interpolated linearly; attention masks are 0/1 (the transformer turns
        them into a −10000 bias, so a fractional mask would still mask): each end keeps its own
        mask, so the end frames are exactly the prompts' own images, and the frames between
        attend to the tokens of either prompt."""
        out = {}
        for name, value in self.tensors.items():
            theirs = other.tensors.get(name)
            if value is None or theirs is None:
                out[name] = value if t < 0.5 else theirs
            elif name in MASKS:
                out[name] = value if t == 0.0 else theirs if t == 1.0 else value | theirs
            else:
                out[name] = (
                    value + t * (theirs - value)
                    if 0.0 < t < 1.0
                    else (value if t == 0.0 else theirs)
                )
        return Conditioning(out, self.rebuilt if t < 0.5 else other.rebuilt)

    def difference(self, other: Conditioning) -> dict[str, Any]:
        """``self − other`` for the positive prompt's embeddings (pooled ones included)."""
        return {
            name: self.tensors[name] - other.tensors[name]
            for name in POSITIVE
            if name not in MASKS
            and self.tensors.get(name) is not None
            and other.tensors.get(name) is not None
        }

    def shifted(
        self, delta: dict[str, Any], strength: float, masks: Conditioning | None = None
    ) -> Conditioning:
        """The positive embeddings moved by ``strength · delta`` (the negative prompt's stay);
        with ``masks`` and a strength other than 0, the attention mask becomes the union of
        both, so the tokens the direction was taken from are attended (at 0 the conditioning
        is the prompt's own, exactly)."""
        if strength == 0.0:
            return self
        out = dict(self.tensors)
        for name, change in delta.items():
            out[name] = self.tensors[name] + strength * change.to(self.tensors[name].device)
        if masks is not None and out.get("prompt_attention_mask") is not None:
            out["prompt_attention_mask"] = out["prompt_attention_mask"] | masks.tensors[
                "prompt_attention_mask"
            ].to(out["prompt_attention_mask"].device)
        return Conditioning(out, self.rebuilt)


def _cfg_unet(pipeline: Any, guidance_scale: float) -> bool:
    # StableDiffusion(XL)Pipeline.do_classifier_free_guidance: guidance-distilled UNets (a
    # time_cond_proj_dim) take the scale as an embedding instead
    return guidance_scale > 1 and pipeline.unet.config.time_cond_proj_dim is None


def _encode_sd(pipeline: Any, prompt: str, negative: str | None, guidance: float) -> Conditioning:
    positive, negative_embeds = pipeline.encode_prompt(
        prompt=prompt,
        device=text_device(pipeline),
        num_images_per_prompt=1,
        do_classifier_free_guidance=_cfg_unet(pipeline, guidance),
        negative_prompt=negative,
        clip_skip=None,
    )
    return Conditioning({"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds})


def _encode_lcm(pipeline: Any, prompt: str, negative: str | None, guidance: float) -> Conditioning:
    # LCM folds guidance into the UNet (a w embedding): no negative prompt, and encode_prompt's
    # second value is None, as in LatentConsistencyModelPipeline.__call__
    positive, negative_embeds = pipeline.encode_prompt(
        prompt=prompt,
        device=text_device(pipeline),
        num_images_per_prompt=1,
        do_classifier_free_guidance=False,
        negative_prompt=None,
        clip_skip=None,
    )
    return Conditioning({"prompt_embeds": positive, "negative_prompt_embeds": negative_embeds})


def _encode_pooled(
    pipeline: Any, prompt: str, negative: str | None, guidance: float, **extra: Any
) -> Conditioning:
    """SDXL and SD3: hidden states and pooled projections, each with its negative."""
    positive, negative_embeds, pooled, negative_pooled = pipeline.encode_prompt(
        prompt=prompt,
        prompt_2=None,
        device=text_device(pipeline),
        num_images_per_prompt=1,
        negative_prompt=negative,
        negative_prompt_2=None,
        clip_skip=None,
        **extra,
    )
    return Conditioning(
        {
            "prompt_embeds": positive,
            "negative_prompt_embeds": negative_embeds,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
    )


def _encode_sdxl(pipeline: Any, prompt: str, negative: str | None, guidance: float) -> Conditioning:
    return _encode_pooled(
        pipeline,
        prompt,
        negative,
        guidance,
        do_classifier_free_guidance=_cfg_unet(pipeline, guidance),
    )


def _encode_sd3(pipeline: Any, prompt: str, negative: str | None, guidance: float) -> Conditioning:
    return _encode_pooled(
        pipeline,
        prompt,
        negative,
        guidance,
        prompt_3=None,
        negative_prompt_3=None,
        do_classifier_free_guidance=guidance > 1,
        max_sequence_length=call_default(pipeline, "max_sequence_length"),
    )


def _encode_masked(
    pipeline: Any, prompt: str, negative: str | None, guidance: float
) -> Conditioning:
    """PixArt and Sana: T5 / Gemma states with their attention masks. ``clean_caption``,
    ``max_sequence_length`` and Sana's ``complex_human_instruction`` are what ``__call__``
    passes by default, so the embeddings are the ones ``pipe(prompt)`` makes."""
    extra = {
        name: call_default(pipeline, name)
        for name in ("clean_caption", "max_sequence_length", "complex_human_instruction")
        if accepts(pipeline, name)
    }
    positive, mask, negative_embeds, negative_mask = pipeline.encode_prompt(
        prompt=prompt,
        do_classifier_free_guidance=guidance > 1,
        negative_prompt=negative
        if negative is not None
        else call_default(pipeline, "negative_prompt"),
        num_images_per_prompt=1,
        device=text_device(pipeline),
        **extra,
    )
    return Conditioning(
        {
            "prompt_embeds": positive,
            "prompt_attention_mask": mask,
            "negative_prompt_embeds": negative_embeds,
            "negative_prompt_attention_mask": negative_mask,
        }
    )


def _encode_flux(pipeline: Any, prompt: str, negative: str | None, guidance: float) -> Conditioning:
    # Flux's guidance is an embedding of the scale (dev) or nothing (schnell); a negative prompt
    # only matters with true_cfg_scale > 1, which the analyses do not use.
    positive, pooled, text_ids = pipeline.encode_prompt(
        prompt=prompt,
        prompt_2=None,
        device=text_device(pipeline),
        num_images_per_prompt=1,
        max_sequence_length=call_default(pipeline, "max_sequence_length"),
    )
    return Conditioning(
        {"prompt_embeds": positive, "pooled_prompt_embeds": pooled}, rebuilt={"text_ids": text_ids}
    )


# --------------------------------------------------------------------------------------------
# The family table
# --------------------------------------------------------------------------------------------


def _in_channels(pipeline: Any) -> int:
    return int(denoiser(pipeline).config.in_channels)


def _embeds_dtype(pipeline: Any, conditioning: Conditioning) -> Any:
    return conditioning.tensors["prompt_embeds"].dtype


def _float32(pipeline: Any, conditioning: Conditioning) -> Any:
    import torch

    return torch.float32  # SanaPipeline draws its noise in float32 whatever the model's dtype


def _pixart_bins(pipeline: Any) -> dict[str, list[float]] | None:
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
        ASPECT_RATIO_256_BIN,
        ASPECT_RATIO_512_BIN,
        ASPECT_RATIO_1024_BIN,
    )
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN

    table = {128: ASPECT_RATIO_1024_BIN, 64: ASPECT_RATIO_512_BIN, 32: ASPECT_RATIO_256_BIN}
    if "PixArtSigmaPipeline" in _class_names(pipeline):
        table[256] = ASPECT_RATIO_2048_BIN
    return _bin_for(pipeline, table)


def _sana_bins(pipeline: Any) -> dict[str, list[float]] | None:
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
        ASPECT_RATIO_512_BIN,
        ASPECT_RATIO_1024_BIN,
    )
    from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN
    from diffusers.pipelines.sana.pipeline_sana import ASPECT_RATIO_4096_BIN

    table = {
        128: ASPECT_RATIO_4096_BIN,
        64: ASPECT_RATIO_2048_BIN,
        32: ASPECT_RATIO_1024_BIN,
        16: ASPECT_RATIO_512_BIN,
    }
    return _bin_for(pipeline, table)


def _bin_for(pipeline: Any, table: dict[int, Any]) -> dict[str, list[float]] | None:
    """The aspect-ratio bins ``__call__`` picks by the transformer's sample_size (the pipeline
    raises "Invalid sample size" for any other), when binning is on by default."""
    if not call_default(pipeline, "use_resolution_binning"):
        return None
    size = int(denoiser(pipeline).config.sample_size)
    if size not in table:
        raise InputError(
            f"{type(pipeline).__name__}: transformer sample_size {size} has no "
            f"resolution bins (the pipeline knows {sorted(table)})"
        )
    return table[size]


#: How each family's ``encode_prompt`` is called, by the name its record gives
#: (``Family.encoding`` in ``core/families.py``).
ENCODERS: dict[str, Callable[[Any, str, str | None, float], Conditioning]] = {
    "sd": _encode_sd,
    "sdxl": _encode_sdxl,
    "lcm": _encode_lcm,
    "sd3": _encode_sd3,
    "masked": _encode_masked,
    "flux": _encode_flux,
}
#: The resolution bins of the families that bin (``Family.bins``).
BINS: dict[str, Callable[[Any], dict[str, list[float]] | None]] = {
    "pixart": _pixart_bins,
    "sana": _sana_bins,
}
#: The dtype ``__call__`` gives ``prepare_latents`` (``Family.noise_dtype``).
NOISE_DTYPES: dict[str, Callable[[Any, Conditioning], Any]] = {
    "embeds": _embeds_dtype,
    "float32": _float32,
}


@dataclass(frozen=True)
class FamilyParts:
    """A family's record (``core/families.py``) with the functions that drive its pipeline."""

    family: Family

    def encode(
        self, pipeline: Any, prompt: str, negative: str | None, guidance: float
    ) -> Conditioning:
        return ENCODERS[self.family.encoding](pipeline, prompt, negative, guidance)

    def channels(self, pipeline: Any) -> int:
        """``num_channels_latents`` as ``__call__`` computes it."""
        return self.family.latent_channels(_in_channels(pipeline))

    def noise_dtype(self, pipeline: Any, conditioning: Conditioning) -> Any:
        return NOISE_DTYPES[self.family.noise_dtype](pipeline, conditioning)

    @property
    def packs(self) -> bool:
        """Flux: latents are 2x2 patches flattened to tokens."""
        return self.family.packing > 1

    def bins(self, pipeline: Any) -> dict[str, list[float]] | None:
        return BINS[self.family.bins](pipeline) if self.family.bins else None


#: Every family the modes drive, by name.
FAMILIES: dict[str, FamilyParts] = {family.name: FamilyParts(family) for family in FAMILY_RECORDS}


def parts(pipeline: Any) -> FamilyParts:
    family = family_of(pipeline)
    if family not in FAMILIES:
        raise InputError(
            f"{type(pipeline).__name__}: not a text-to-image pipeline of a known "
            f"family ({', '.join(FAMILIES)})"
        )
    return FAMILIES[family]


def encode(
    pipeline: Any, prompt: str, guidance_scale: float, negative_prompt: str | None = None
) -> Conditioning:
    """``prompt``'s conditioning exactly as ``pipe(prompt, guidance_scale=...,
    negative_prompt=...)`` computes it, keyed by the keywords that hand it back."""
    import torch

    with torch.inference_mode():
        return parts(pipeline).encode(pipeline, prompt, negative_prompt, guidance_scale)


# --------------------------------------------------------------------------------------------
# Sizes, initial latents, packing
# --------------------------------------------------------------------------------------------


def image_size(pipeline: Any, height: int | None, width: int | None) -> tuple[int, int]:
    """The size of the images ``pipe(height=..., width=...)`` returns: the given sides, else the
    ``__call__`` default (Sana's signature says 1024), else the pipeline's default sample size
    (Flux: ``default_sample_size``; SD, PixArt: the denoiser's ``sample_size``) in pixels."""
    scale = int(pipeline.vae_scale_factor)
    latent = getattr(pipeline, "default_sample_size", None) or denoiser(pipeline).config.sample_size
    default_h = call_default(pipeline, "height") or int(latent) * scale
    default_w = call_default(pipeline, "width") or int(latent) * scale
    return int(height or default_h), int(width or default_w)


def denoise_size(pipeline: Any, height: int | None, width: int | None) -> tuple[int, int]:
    """The size the pipeline denoises at: :func:`image_size` put into its resolution bin
    (PixArt, Sana), exactly as ``__call__`` does before drawing the latents."""
    h, w = image_size(pipeline, height, width)
    bins = parts(pipeline).bins(pipeline)
    if bins is not None:
        h, w = pipeline.image_processor.classify_height_width_bin(h, w, ratios=bins)
    return int(h), int(w)


def unbinned(pipeline: Any) -> dict[str, Any]:
    """Call keywords that make a binning pipeline denoise at exactly the given size."""
    return {"use_resolution_binning": False} if accepts(pipeline, "use_resolution_binning") else {}


def generator_for(pipeline: Any, seed: int) -> Any:
    """The seed's generator where :func:`diffusionscope.core.generation.generate` makes it."""
    import torch

    from .generation import generator_device

    return torch.Generator(device=generator_device(pipeline)).manual_seed(int(seed))


@dataclass
class SeedLatents:
    """A seed's initial latents as ``__call__`` takes them (``latents=``: unscaled, packed where
    the pipeline packs) and the seed's generator state after drawing them, which a stochastic
    sampler goes on drawing from."""

    latents: Any
    generator_state: Any

    def generator(self, pipeline: Any) -> Any:
        generator = generator_for(pipeline, 0)
        generator.set_state(self.generator_state)
        return generator


def initial_latents(
    pipeline: Any,
    seed: int,
    conditioning: Conditioning,
    height: int | None = None,
    width: int | None = None,
) -> SeedLatents:
    """The latents ``pipe(generator=torch.Generator().manual_seed(seed))`` starts from, drawn by
    the pipeline's own ``prepare_latents`` at its denoising size, in its dtype, packed where it
    packs.

    ``prepare_latents`` multiplies its draw by the scheduler's ``init_noise_sigma``, and so does
    ``__call__`` with a given ``latents=``: for a scheduler whose ``init_noise_sigma`` is not 1
    (Euler, Heun, LMS...) the argument is the unscaled draw. Dividing the result would not give
    back the draw bit for bit, so that draw is repeated from the seed: ``randn_tensor`` of
    ``prepare_latents``' shape, device and dtype, the call every family's ``prepare_latents``
    makes (tests/test_latent_families.py checks the images are the pipeline's own, pixel for
    pixel, on every family)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    family = parts(pipeline)
    h, w = denoise_size(pipeline, height, width)
    device, dtype = execution_device(pipeline), family.noise_dtype(pipeline, conditioning)
    generator = generator_for(pipeline, seed)
    with torch.inference_mode():
        prepared = pipeline.prepare_latents(
            batch_size=1,
            num_channels_latents=family.channels(pipeline),
            height=h,
            width=w,
            dtype=dtype,
            device=device,
            generator=generator,
            latents=None,
        )
    if isinstance(prepared, tuple):  # Flux: (packed latents, latent_image_ids)
        prepared = prepared[0]
    if float(getattr(pipeline.scheduler, "init_noise_sigma", 1.0)) == 1.0:
        return SeedLatents(prepared, generator.get_state())
    generator = generator_for(pipeline, seed)
    raw = randn_tensor(prepared.shape, generator=generator, device=device, dtype=dtype)
    return SeedLatents(raw, generator.get_state())


def pack(pipeline: Any, latents: Any) -> Any:
    """``[N, C, h, w]`` VAE-space latents in the form ``latents=`` takes (Flux: 2x2 patches)."""
    if not parts(pipeline).packs:
        return latents
    n, c, h, w = latents.shape
    return pipeline._pack_latents(latents, n, c, h, w)


def unpack(pipeline: Any, latents: Any, height: int, width: int) -> Any:
    """The inverse of :func:`pack` for images of ``height`` x ``width`` pixels."""
    if not parts(pipeline).packs:
        return latents
    return pipeline._unpack_latents(latents, height, width, pipeline.vae_scale_factor)


# --------------------------------------------------------------------------------------------
# Inversion: which sampler is deterministic and invertible, and its inverse
# --------------------------------------------------------------------------------------------

#: Why a family's sampling cannot be inverted (the ones missing here can): from the records.
NOT_INVERTIBLE = {
    family.name: family.not_invertible for family in FAMILY_RECORDS if family.not_invertible
}


def inversion_kind(family: str, scheduler_config: dict[str, Any]) -> str:
    """``"ddim"`` (DDIM inversion: noise- or v-prediction on a DDPM beta schedule) or ``"flow"``
    (Euler steps of the flow ODE backwards), decided from the scheduler config alone. Raises
    :class:`InputError` for a family whose sampling cannot be inverted."""
    if family in NOT_INVERTIBLE:
        raise InputError(f"{family}: cannot invert images: {NOT_INVERTIBLE[family]}")
    name = str(scheduler_config.get("_class_name", ""))
    prediction = scheduler_config.get("prediction_type")
    if (
        name.startswith("FlowMatch")
        or scheduler_config.get("use_flow_sigmas")
        or prediction == "flow_prediction"
    ):
        return "flow"
    if prediction in (None, "epsilon", "v_prediction", "sample") and (
        "beta_schedule" in scheduler_config or "trained_betas" in scheduler_config
    ):
        return "ddim"
    raise InputError(
        f"scheduler {name or '?'}: cannot invert images: neither a DDPM beta "
        f"schedule nor a flow-matching one (prediction_type {prediction!r})"
    )


def _from_config(cls: Any, config: dict[str, Any], **overrides: Any) -> Any:
    """``cls`` with the settings of ``config`` it takes (others would only be warned about)."""
    accepted = inspect.signature(cls.__init__).parameters
    clean = {k: v for k, v in config.items() if k in accepted and not k.startswith("_")}
    return cls.from_config({**clean, **overrides})


def inversion_schedulers(pipeline: Any) -> tuple[Any, Any]:
    """(inverse, forward) schedulers on the same grid of noise levels: DDIMInverseScheduler and
    DDIMScheduler for noise/v-prediction families, :class:`FlowMatchEulerInverseScheduler` and
    FlowMatchEulerDiscreteScheduler for flow families (Sana's flow DPM-Solver included: its
    ``flow_shift`` is the Euler scheduler's ``shift``)."""
    from diffusers import DDIMInverseScheduler, DDIMScheduler, FlowMatchEulerDiscreteScheduler

    config = dict(pipeline.scheduler.config)
    config["_class_name"] = type(pipeline.scheduler).__name__
    kind = inversion_kind(family_of(pipeline), config)
    if kind == "ddim":
        # DDIMInverseScheduler knows leading and trailing spacing; latent diffusion never clips
        spacing = config.get("timestep_spacing")
        overrides = {
            "clip_sample": False,
            "timestep_spacing": spacing if spacing in ("leading", "trailing") else "trailing",
        }
        return (
            _from_config(DDIMInverseScheduler, config, **overrides),
            _from_config(DDIMScheduler, config, **overrides),
        )
    if not type(pipeline.scheduler).__name__.startswith("FlowMatch"):
        config = {
            "num_train_timesteps": config.get("num_train_timesteps", 1000),
            "shift": config.get("flow_shift") or config.get("shift") or 1.0,
        }
    forward = _from_config(FlowMatchEulerDiscreteScheduler, config, stochastic_sampling=False)
    return _from_config(_inverse_flow_class(), dict(forward.config)), forward


def _inverse_flow_class() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    class FlowMatchEulerInverseScheduler(FlowMatchEulerDiscreteScheduler):
        """Euler steps of the flow ODE from the data (σ = 0) to the noise (σ = 1), on the
        forward scheduler's own σ grid (shift, dynamic shift and ``sigmas=`` included) in
        reverse, as RF-inversion (Rout et al. 2024) integrates it: x(σ') = x(σ) + (σ' − σ)·v(x(σ),
        σ), the velocity taken where the step starts. The forward Euler step takes it where
        its step starts, at the other end, so a round trip is exact up to how much v changes
        over one step. diffusers has DDIM's inverse scheduler but none for flow matching."""

        def set_timesteps(
            self,
            num_inference_steps: int | None = None,
            device: Any = None,
            sigmas: Any = None,
            mu: float | None = None,
            timesteps: Any = None,
        ) -> None:
            # the parameters spelled out: pipelines look for ``sigmas`` in this signature
            super().set_timesteps(num_inference_steps, device, sigmas, mu, timesteps)
            self.sigmas = self.sigmas.flip(0)
            self.timesteps = self.sigmas[:-1] * self.config.num_train_timesteps

    return FlowMatchEulerInverseScheduler


def inversion_guidance(pipeline: Any, guidance_scale: float) -> float:
    """The ``guidance_scale`` inversion and its regeneration run with: 1 (no classifier-free
    guidance, which breaks the reversibility inversion relies on), except on Flux, where the
    scale is an input of the model (an embedding on dev, unused on schnell), not guidance."""
    family = FAMILIES.get(family_of(pipeline))
    return guidance_scale if family is not None and family.family.guidance_embedded else 1.0
