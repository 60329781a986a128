"""Tiny random-weight pipelines of every model family, each built offline in well under a second.

The analyses branch on what a checkpoint is: a UNet or a transformer denoiser; an epsilon, v or
flow target; one to three text encoders; CLIP, T5 or Gemma prompts of different lengths; static or
resolution-dependent (dynamic) timestep shifting; PixArt and Sana resolution binning. Real
checkpoints are gigabytes behind the hub, so each family is rebuilt here with the same pipeline,
component and scheduler classes and the same scheduler settings as the released model, but with
layers a few dozen channels wide. Weights are random and seeded, so the images are deterministic
noise: tests can assert shapes, finiteness and reproducibility, never content.

``build_family(name, folder)`` saves an ordinary diffusers folder that
``DiffusionPipeline.from_pretrained(folder)`` reloads offline. ``FAMILY_INFO[name]`` holds what a
test needs to know about it without loading it.

Tokenizers are built offline too. Both CLIP slots reuse the shipped word-level CLIP tokenizer of
the digits demo model (``core/zoo/digits-ldm/tokenizer``, 16 positions); ``t5_tokenizer`` is a
SentencePiece-style Unigram tokenizer and ``gemma_tokenizer`` a byte-fallback BPE one, both over
the same handful of prompt words, so prompts such as "a red seven, on a white background." and
"a cat on a mat" never hit an unknown piece ("background" deliberately splits into "▁back" +
"ground", so multi-piece words are exercised).

Default sizes, i.e. what ``pipe(prompt)`` produces (all VAEs have vae_scale_factor 8 except Flux):

- UNet families and SD3 / SD3.5: latent sample_size 8, so 64 x 64 px.
- PixArt-alpha / -sigma: the pipelines bin resolutions only for transformer sample_size 32, 64 or
  128 (256 for sigma) and raise "Invalid sample size" for any other while
  ``use_resolution_binning=True``, the default. sample_size is therefore 32: the default is
  256 x 256 px, binning is on, and the 256 bin maps 256 x 256 to itself.
- Flux: FluxPipeline fixes the default at 128 latent px whatever the transformer says, i.e.
  4096 packed tokens, the top of Flux.1-dev's dynamic-shift range. The VAE has
  vae_scale_factor 2 (packing 2 x 2 patches makes sizes multiples of 4) so the default image
  is 256 x 256 px instead of 1024 px, which would cost seconds in the decoder alone.
- Sana: SanaPipeline's default is height = width = 1024 (a call-signature default) with binning
  on; sample_size 16 selects the 512 bin, so it denoises a 512 x 512 image (64 x 64 latent) and
  resizes the decoded image back to 1024 x 1024 px. The VAE is a 4-stage AutoencoderDC (factor 8,
  the real DC-AE has 32).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CLIP_TOKENIZER = REPO / "core/zoo/digits-ldm/tokenizer"
SEED = 0

#: Whole-word pieces of the T5 and Gemma vocabularies; anything else falls back to characters.
WORDS = ("a", "red", "seven", "on", "white", "cat", "mat", "blue", "two", "back")
#: Sub-word pieces; with "▁background" absent, "background" tokenizes as "▁back" + "ground".
SUBWORDS = ("ground",)
T5_MAX_LENGTH = 512  # Flux's T5 limit, the longest any pipeline asks for
GEMMA_MAX_LENGTH = 2048  # Sana prepends a ~1000-character instruction to the 300-token prompt

VAE_FACTOR = 8  # vae_scale_factor of every VAE but Flux's
UNET_LATENT = 8  # latent pixels, so 64 px images
SD3_LATENT = 8
PIXART_LATENT = 32  # the smallest transformer sample_size PixArt's resolution binning accepts
SANA_LATENT = 16  # selects Sana's 512 px bin
FLUX_VAE_FACTOR = 2
FLUX_DEFAULT_LATENT = 128  # FluxPipeline.default_sample_size, not configurable


@dataclass(frozen=True)
class FamilyInfo:
    """What a test needs to know about a family's pipeline without loading it."""

    pipeline: str  # pipeline class name
    scheduler: str  # scheduler class name
    height: int  # image height of ``pipe(prompt)`` with the pipeline's defaults
    width: int
    prediction: str  # "epsilon", "v_prediction" or "flow"
    uses_t5: bool = False
    dynamic_shifting: bool = False
    binning: bool = False  # resolution binning on by default: denoised at a bin size, resized


_SD = "StableDiffusionPipeline"
_SD3 = "StableDiffusion3Pipeline"
_FLOW_EULER = "FlowMatchEulerDiscreteScheduler"
_DPM = "DPMSolverMultistepScheduler"
_UNET_PX = UNET_LATENT * VAE_FACTOR
_SD3_PX = SD3_LATENT * VAE_FACTOR
_PIXART_PX = PIXART_LATENT * VAE_FACTOR
_FLUX_PX = FLUX_DEFAULT_LATENT * FLUX_VAE_FACTOR
_SANA_PX = 1024  # SanaPipeline.__call__'s default; the 512 bin is denoised, then resized

FAMILY_INFO: dict[str, FamilyInfo] = {
    "sd15": FamilyInfo(_SD, "PNDMScheduler", _UNET_PX, _UNET_PX, "epsilon"),
    "sd21v": FamilyInfo(_SD, "DDIMScheduler", _UNET_PX, _UNET_PX, "v_prediction"),
    "sdxl": FamilyInfo(
        "StableDiffusionXLPipeline", "EulerDiscreteScheduler", _UNET_PX, _UNET_PX, "epsilon"
    ),
    "lcm": FamilyInfo(
        "LatentConsistencyModelPipeline", "LCMScheduler", _UNET_PX, _UNET_PX, "epsilon"
    ),
    "sd3": FamilyInfo(_SD3, _FLOW_EULER, _SD3_PX, _SD3_PX, "flow", uses_t5=True),
    "sd35m": FamilyInfo(_SD3, _FLOW_EULER, _SD3_PX, _SD3_PX, "flow", uses_t5=True),
    "pixart_alpha": FamilyInfo(
        "PixArtAlphaPipeline", _DPM, _PIXART_PX, _PIXART_PX, "epsilon", uses_t5=True, binning=True
    ),
    "pixart_sigma": FamilyInfo(
        "PixArtSigmaPipeline", _DPM, _PIXART_PX, _PIXART_PX, "epsilon", uses_t5=True, binning=True
    ),
    "flux_dev": FamilyInfo(
        "FluxPipeline", _FLOW_EULER, _FLUX_PX, _FLUX_PX, "flow", uses_t5=True, dynamic_shifting=True
    ),
    "flux_schnell": FamilyInfo(
        "FluxPipeline", _FLOW_EULER, _FLUX_PX, _FLUX_PX, "flow", uses_t5=True
    ),
    "sana": FamilyInfo("SanaPipeline", _DPM, _SANA_PX, _SANA_PX, "flow", binning=True),
}

FAMILIES: tuple[str, ...] = tuple(FAMILY_INFO)


def build_family(name: str, folder: Path) -> Path:
    """Build family ``name`` with fixed seeds and save it as a diffusers folder at ``folder``."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    folder = Path(folder)
    pipeline = _BUILDERS[name]()
    pipeline.save_pretrained(folder, safe_serialization=True)
    return folder


def _seeded(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Construct a component right after reseeding: its weights must not depend on build order."""
    torch.manual_seed(SEED)
    return factory(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def clip_tokenizer():
    """The shipped word-level CLIP tokenizer (123 tokens, 16 positions)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(CLIP_TOKENIZER)


def _fallback_characters() -> str:
    return string.ascii_letters + string.digits


def t5_tokenizer(folder: Path | None = None):
    """A T5-style SentencePiece (Unigram) tokenizer: <pad> 0, </s> 1, <unk> 2, "</s>" appended.

    Whole words score above their spellings, so known words stay one piece; every other ASCII
    word is spelled out from single characters after a lone "▁". The pre-tokenizer is the one
    transformers' T5Tokenizer rebuilds on loading (whitespace split, then Metaspace), so the
    saved tokenizer reloads with identical ids.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    scores = {"<pad>": 0.0, "</s>": 0.0, "<unk>": 0.0}
    scores |= {f"▁{word}": -2.0 for word in WORDS}
    scores |= {piece: -3.0 for piece in (*SUBWORDS, ",", ".", "-")}
    scores |= {"▁": -4.0}
    for char in _fallback_characters() + string.punctuation:
        scores.setdefault(char, -6.0)
    backend = Tokenizer(models.Unigram(list(scores.items()), unk_id=2, byte_fallback=False))
    metaspace = {"replacement": "▁", "prepend_scheme": "always", "split": True}
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(**metaspace)]
    )
    backend.decoder = decoders.Metaspace(**metaspace)
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = T5TokenizerFast(
        tokenizer_object=backend, extra_ids=0, model_max_length=T5_MAX_LENGTH
    )
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer


def gemma_tokenizer(folder: Path | None = None):
    """A Gemma-style byte-fallback BPE tokenizer: <pad> 0, <eos> 1, <bos> 2 (prepended), <unk> 3.

    Spaces become "▁" and merge into the following word, as in Gemma; characters outside the
    small alphabet (newlines in Sana's instruction text, non-ASCII) fall back to byte pieces.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import GemmaTokenizerFast

    vocab: dict[str, int] = {}
    for token in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>"):
        vocab[token] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for char in "▁" + _fallback_characters() + string.punctuation:
        vocab.setdefault(char, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in [f"▁{word}" for word in WORDS] + list(SUBWORDS):
        left = word[0]
        for char in word[1:]:
            if left + char not in vocab:
                merges.append((left, char))
                vocab[left + char] = len(vocab)
            left += char
    backend = Tokenizer(
        models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    # A no-op after the normalizer, but GemmaTokenizer rebuilds it on loading: keep ids equal.
    backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tokenizer = GemmaTokenizerFast(
        tokenizer_object=backend,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=GEMMA_MAX_LENGTH,
    )
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer


# --------------------------------------------------------------------------------------------
# Text encoders
# --------------------------------------------------------------------------------------------


def _clip_encoder(
    tokenizer, hidden: int, projection: int | None = None, hidden_act: str = "quick_gelu"
):
    """A 2-layer CLIP text encoder sized to ``tokenizer``; ``projection`` adds the projection head.

    Two layers, because SDXL and SD3 read the penultimate hidden state. OpenAI's CLIP-L uses
    quick_gelu; the OpenCLIP encoders (SD 2.x, the second SDXL / SD3 encoder) use gelu.
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=projection or hidden,
        hidden_act=hidden_act,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model_class = CLIPTextModel if projection is None else CLIPTextModelWithProjection
    return _seeded(model_class, config)


def _t5_encoder(tokenizer, d_model: int):
    """A one-layer T5 v1.1-style (gated-gelu) encoder, as SD3, Flux and PixArt use."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=2 * d_model,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return _seeded(T5EncoderModel, config)


def _gemma_encoder(tokenizer, hidden: int):
    """A one-layer Gemma 2 model (no LM head), as Sana reads its last hidden state."""
    from transformers import Gemma2Config, Gemma2Model

    config = Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=GEMMA_MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _seeded(Gemma2Model, config)


# --------------------------------------------------------------------------------------------
# VAEs and UNets
# --------------------------------------------------------------------------------------------


def _kl_vae(latent_channels: int, scaling_factor: float, blocks: int = 4, **extra: Any):
    """An AutoencoderKL with ``blocks`` levels (vae_scale_factor = 2 ** (blocks - 1))."""
    from diffusers import AutoencoderKL

    return _seeded(
        AutoencoderKL,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8, 8, 16, 16)[:blocks],
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=latent_channels,
        scaling_factor=scaling_factor,
        **extra,
    )


def _flow_vae(latent_channels: int, scaling_factor: float, shift_factor: float, blocks: int = 4):
    """The SD3 / Flux VAE shape: 16 latent channels, a shift factor, no quant convolutions."""
    return _kl_vae(
        latent_channels,
        scaling_factor,
        blocks,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def _unet(cross_attention_dim: int, sd2: bool = False, **extra: Any):
    """A two-level UNet2DConditionModel; ``sd2`` switches on SD 2.x's linear projections."""
    from diffusers import UNet2DConditionModel

    config: dict[str, Any] = {
        "sample_size": UNET_LATENT,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": (16, 32),
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 4,
        "norm_num_groups": 8,
    }
    if sd2:
        config |= {"use_linear_projection": True, "attention_head_dim": (2, 4)}
    return _seeded(UNet2DConditionModel, **(config | extra))


def _sd_scheduler_kwargs() -> dict[str, Any]:
    """The beta schedule every Stable Diffusion release (1.x, 2.x, XL, LCM) was trained with."""
    return {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


# --------------------------------------------------------------------------------------------
# UNet families
# --------------------------------------------------------------------------------------------


def _sd15():
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    tokenizer = clip_tokenizer()
    return StableDiffusionPipeline(
        vae=_kl_vae(4, 0.18215),
        text_encoder=_clip_encoder(tokenizer, 32),
        tokenizer=tokenizer,
        unet=_unet(32),
        scheduler=PNDMScheduler(
            **_sd_scheduler_kwargs(), skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sd21v():
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tokenizer = clip_tokenizer()
    scheduler = DDIMScheduler(
        **_sd_scheduler_kwargs(),
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
    )
    return StableDiffusionPipeline(
        vae=_kl_vae(4, 0.18215),
        text_encoder=_clip_encoder(tokenizer, 32, hidden_act="gelu"),
        tokenizer=tokenizer,
        unet=_unet(32, sd2=True, upcast_attention=True),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _sdxl():
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    tokenizer = clip_tokenizer()
    text_encoder = _clip_encoder(tokenizer, 16)
    text_encoder_2 = _clip_encoder(tokenizer, 32, 32, hidden_act="gelu")
    time_embed_dim = 8
    unet = _unet(
        16 + 32,  # both encoders' hidden states, concatenated
        sd2=True,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # six size/crop numbers, each embedded, plus the second encoder's pooled projection
        projection_class_embeddings_input_dim=6 * time_embed_dim + 32,
    )
    scheduler = EulerDiscreteScheduler(
        **_sd_scheduler_kwargs(), steps_offset=1, timestep_spacing="leading"
    )
    return StableDiffusionXLPipeline(
        vae=_kl_vae(4, 0.13025),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def _lcm():
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    tokenizer = clip_tokenizer()
    scheduler = LCMScheduler(
        **_sd_scheduler_kwargs(),
        original_inference_steps=50,
        set_alpha_to_one=True,
        timestep_scaling=10.0,
    )
    return LatentConsistencyModelPipeline(
        vae=_kl_vae(4, 0.18215),
        text_encoder=_clip_encoder(tokenizer, 32),
        tokenizer=tokenizer,
        unet=_unet(32, time_cond_proj_dim=32),  # the guidance-scale embedding LCM distils into
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# --------------------------------------------------------------------------------------------
# Transformer families
# --------------------------------------------------------------------------------------------


def _sd3_family(**transformer_extra: Any):
    """The SD3 shape; ``transformer_extra`` makes it SD3.5-Medium's (dual attention, q/k norms)."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    clip = clip_tokenizer()
    t5 = t5_tokenizer()
    # Like CLIP-L / CLIP-G / T5-XXL: two CLIP widths, T5 wider than both together. The pipeline
    # joins the CLIP states feature-wise, zero-pads them to T5's width, then appends T5's.
    text_encoder = _clip_encoder(clip, 16, 16)
    text_encoder_2 = _clip_encoder(clip, 32, 32, hidden_act="gelu")
    transformer = _seeded(
        SD3Transformer2DModel,
        sample_size=SD3_LATENT,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=64,
        caption_projection_dim=16,  # = heads x head dim
        pooled_projection_dim=16 + 32,
        **transformer_extra,
    )
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_flow_vae(16, scaling_factor=1.5305, shift_factor=0.0609),
        text_encoder=text_encoder,
        tokenizer=clip,
        text_encoder_2=text_encoder_2,
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=_t5_encoder(t5, 64),
        tokenizer_3=t5,
    )


def _sd3():
    return _sd3_family()


def _sd35m():
    return _sd3_family(dual_attention_layers=(0,), qk_norm="rms_norm")


def _pixart(sigma: bool):
    from diffusers import (
        DPMSolverMultistepScheduler,
        PixArtAlphaPipeline,
        PixArtSigmaPipeline,
        PixArtTransformer2DModel,
    )

    tokenizer = t5_tokenizer()
    transformer = _seeded(
        PixArtTransformer2DModel,
        sample_size=PIXART_LATENT,
        patch_size=2,
        in_channels=4,
        out_channels=8,  # learned variance, as released: the pipeline keeps the first half
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=32,
    )
    pipeline_class = PixArtSigmaPipeline if sigma else PixArtAlphaPipeline
    return pipeline_class(
        tokenizer=tokenizer,
        text_encoder=_t5_encoder(tokenizer, 32),
        vae=_kl_vae(4, 0.13025 if sigma else 0.18215),  # Sigma ships the SDXL VAE
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(),
    )


def _pixart_alpha():
    return _pixart(sigma=False)


def _pixart_sigma():
    return _pixart(sigma=True)


def _flux(dev: bool):
    """Flux.1-dev (guidance-distilled, dynamic shift) or Flux.1-schnell (static shift 1)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    clip, t5 = clip_tokenizer(), t5_tokenizer()
    transformer = _seeded(
        FluxTransformer2DModel,
        patch_size=1,
        in_channels=16 * 4,  # latents are packed in 2 x 2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=16,
        guidance_embeds=dev,
        axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
    )
    # Flux.1's released schedulers: dev shifts with image size, schnell does not shift at all.
    shifting = {
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "base_shift": 0.5,
        "max_shift": 1.15,
    }
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0 if dev else 1.0, use_dynamic_shifting=dev, **shifting
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=_flow_vae(16, scaling_factor=0.3611, shift_factor=0.1159, blocks=2),
        text_encoder=_clip_encoder(clip, 16),
        tokenizer=clip,
        text_encoder_2=_t5_encoder(t5, 32),
        tokenizer_2=t5,
        transformer=transformer,
    )


def _flux_dev():
    return _flux(dev=True)


def _flux_schnell():
    return _flux(dev=False)


def _sana():
    from diffusers import (
        AutoencoderDC,
        DPMSolverMultistepScheduler,
        SanaPipeline,
        SanaTransformer2DModel,
    )

    tokenizer = gemma_tokenizer()
    transformer = _seeded(
        SanaTransformer2DModel,
        sample_size=SANA_LATENT,
        patch_size=1,
        in_channels=32,
        out_channels=32,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=8,
        num_cross_attention_heads=2,
        cross_attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=16,
    )
    vae = _seeded(
        AutoencoderDC,
        in_channels=3,
        latent_channels=32,
        attention_head_dim=4,
        encoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8, 16, 32),
        decoder_block_out_channels=(8, 8, 16, 32),
        # No blocks at full resolution, as in the DC-AE "in" releases: a cheap 512 px decode.
        encoder_layers_per_block=(0, 1, 1, 1),
        decoder_layers_per_block=(0, 1, 1, 1),
        encoder_qkv_multiscales=((), (), (), (5,)),
        decoder_qkv_multiscales=((), (), (), (5,)),
        scaling_factor=0.41407,
    )
    # Sana's released scheduler: DPM-Solver++ on flow-matching sigmas.
    scheduler = DPMSolverMultistepScheduler(
        use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction"
    )
    return SanaPipeline(
        tokenizer=tokenizer,
        text_encoder=_gemma_encoder(tokenizer, 16),
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )


_BUILDERS: dict[str, Callable[[], Any]] = {
    "sd15": _sd15,
    "sd21v": _sd21v,
    "sdxl": _sdxl,
    "lcm": _lcm,
    "sd3": _sd3,
    "sd35m": _sd35m,
    "pixart_alpha": _pixart_alpha,
    "pixart_sigma": _pixart_sigma,
    "flux_dev": _flux_dev,
    "flux_schnell": _flux_schnell,
    "sana": _sana,
}
