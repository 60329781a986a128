"""What a model is, read from its configuration files alone, before any weight is loaded.

Every mode decides from this whether it can analyse a pipeline, so a refusal costs one line and
no run directory (``check_model`` in each mode package). The facts come from what the configs
say -- ``model_index.json``, the denoiser's and the scheduler's configs -- never from a list of
model names: an SD3.5 is an SD3 whose transformer config has ``dual_attention_layers``, a Flux
dev is a Flux whose scheduler config has ``use_dynamic_shifting``.

Only small JSON files are read; for a hub id they are fetched one by one (and found in the cache
when offline). Nothing here imports torch or diffusers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import InputError

Shift = tuple[int, int, float, float]


@dataclass(frozen=True)
class Family:
    """Everything the modes know about one model family, in one record: adding a family is one
    record here (plus, for a new way of calling ``encode_prompt``, its function in
    ``core/pipeline_parts.py``).

    ``encoding``, ``noise_dtype`` and ``bins`` name the functions of ``core/pipeline_parts.py``
    that drive the family's pipeline (they import torch and diffusers, this module does not).
    """

    name: str
    #: diffusers pipeline classes of the family (a subclass drives like its base class).
    pipelines: tuple[str, ...]
    #: The component that predicts noise or velocity.
    denoiser: Literal["unet", "transformer"]
    #: Text encoder and tokenizer components of ``model_index.json``.
    text_encoders: tuple[str, ...]
    tokenizers: tuple[str, ...]
    #: How ``encode_prompt`` is called and its values named (``pipeline_parts.ENCODERS``).
    encoding: str
    #: Denoiser classes whose attention the attention mode captures, with how they attend.
    attention: tuple[tuple[str, str], ...]
    #: ``prepare_latents``' dtype: the prompt embeddings' (``embeds``), or ``float32`` (Sana).
    noise_dtype: Literal["embeds", "float32"] = "embeds"
    #: Latent pixels per token side: Flux packs 2x2 patches into one token of 4x the channels,
    #: so its latent channels are the denoiser's ``in_channels`` / 4.
    packing: int = 1
    #: The transformer's ``patch_size`` when its config does not say (SD3: 2).
    default_patch_size: int = 1
    #: What ``--height``/``--width`` must be multiples of regardless of the VAE (the UNet
    #: pipelines' ``check_inputs``: 8); None: VAE factor x packing x patch size.
    size_multiple: int | None = None
    #: Resolution bins the pipeline snaps a size to (``pipeline_parts.BINS``: PixArt, Sana);
    #: such a pipeline takes any size.
    bins: str | None = None
    #: ``pipe(prompt)``'s side without a size: ``default_sample_size`` latent pixels fixed in
    #: the pipeline's code (Flux: 128), or pixels in its call signature (Sana: 1024); neither:
    #: the denoiser's ``sample_size``.
    default_sample_size: int | None = None
    default_pixels: int | None = None
    #: The ``.get`` defaults of ``calculate_shift`` for a scheduler with dynamic shifting:
    #: (base_image_seq_len, max_image_seq_len, base_shift, max_shift); None: not computed here.
    shift: Shift | None = None
    #: The σ grid the pipeline passes to ``set_timesteps`` (Flux's), as its code writes it.
    own_sigmas: str | None = None
    #: The text sequence the denoiser is given: CLIP's (``clip``), a T5/Gemma sequence of the
    #: pipeline's ``max_sequence_length`` (``long``), or both joined (SD3).
    text_sequence: Literal["clip", "long", "clip+long"] = "clip"
    #: Single-file checkpoints: diffusers' inferred model type -> the pipeline class reading it.
    single_file: tuple[tuple[str, str], ...] = ()
    #: The guidance scale is an input of the model (Flux: an embedding), not classifier-free
    #: guidance: inversion keeps it.
    guidance_embedded: bool = False
    #: Why images cannot be inverted through the family's sampler; None: they can.
    not_invertible: str | None = None

    def latent_channels(self, in_channels: int) -> int:
        """``num_channels_latents`` as ``__call__`` computes it from the denoiser's."""
        return in_channels // (self.packing * self.packing)

    def patch_size(self, denoiser_config: dict[str, Any]) -> int:
        return int(denoiser_config.get("patch_size") or self.default_patch_size)


UNET_CROSS = (("UNet2DConditionModel", "cross-attention"),)
FAMILIES: tuple[Family, ...] = (
    Family(
        "sd",
        ("StableDiffusionPipeline",),
        "unet",
        ("text_encoder",),
        ("tokenizer",),
        "sd",
        UNET_CROSS,
        size_multiple=8,
        single_file=(
            ("v1", "StableDiffusionPipeline"),
            ("v2", "StableDiffusionPipeline"),
            ("inpainting", "StableDiffusionInpaintPipeline"),
            ("inpainting_v2", "StableDiffusionInpaintPipeline"),
        ),
    ),
    Family(
        "sdxl",
        ("StableDiffusionXLPipeline",),
        "unet",
        ("text_encoder", "text_encoder_2"),
        ("tokenizer", "tokenizer_2"),
        "sdxl",
        UNET_CROSS,
        size_multiple=8,
        single_file=(
            ("xl_base", "StableDiffusionXLPipeline"),
            ("xl_refiner", "StableDiffusionXLImg2ImgPipeline"),
            ("playground-v2-5", "StableDiffusionXLPipeline"),
        ),
    ),
    Family(
        "lcm",
        ("LatentConsistencyModelPipeline",),
        "unet",
        ("text_encoder",),
        ("tokenizer",),
        "lcm",
        UNET_CROSS,
        size_multiple=8,
        not_invertible="LCM samples by consistency steps that draw fresh noise after every "
        "step and decode the last step's x0 prediction; there is no deterministic sampler "
        "path to run backwards",
    ),
    Family(
        "sd3",
        ("StableDiffusion3Pipeline",),
        "transformer",
        ("text_encoder", "text_encoder_2", "text_encoder_3"),
        ("tokenizer", "tokenizer_2", "tokenizer_3"),
        "sd3",
        (("SD3Transformer2DModel", "joint attention"),),
        default_patch_size=2,
        shift=(256, 4096, 0.5, 1.16),
        text_sequence="clip+long",
        single_file=(
            ("sd3", "StableDiffusion3Pipeline"),
            ("sd35_medium", "StableDiffusion3Pipeline"),
            ("sd35_large", "StableDiffusion3Pipeline"),
        ),
    ),
    Family(
        "pixart",
        ("PixArtAlphaPipeline", "PixArtSigmaPipeline"),
        "transformer",
        ("text_encoder",),
        ("tokenizer",),
        "masked",
        (
            ("PixArtTransformer2DModel", "cross-attention"),
            ("Transformer2DModel", "cross-attention"),  # PixArt-α's folders name this class
        ),
        bins="pixart",
        text_sequence="long",
    ),
    Family(
        "flux",
        ("FluxPipeline",),
        "transformer",
        ("text_encoder", "text_encoder_2"),
        ("tokenizer", "tokenizer_2"),
        "flux",
        (("FluxTransformer2DModel", "joint attention (double- and single-stream)"),),
        packing=2,
        default_sample_size=128,
        shift=(256, 4096, 0.5, 1.15),
        own_sigmas="np.linspace(1.0, 1 / n, n)",
        guidance_embedded=True,
        text_sequence="long",
        single_file=(("flux-dev", "FluxPipeline"), ("flux-schnell", "FluxPipeline")),
    ),
    Family(
        "sana",
        ("SanaPipeline",),
        "transformer",
        ("text_encoder",),
        ("tokenizer",),
        "masked",
        (("SanaTransformer2DModel", "cross-attention"),),
        noise_dtype="float32",
        bins="sana",
        default_pixels=1024,
        text_sequence="long",
    ),
)
BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}

#: diffusers pipeline class -> family name used throughout the modes.
FAMILY_OF_PIPELINE: dict[str, str] = {
    pipeline: family.name for family in FAMILIES for pipeline in family.pipelines
}


def family_record(name: str) -> Family | None:
    """The record of the family ``name`` (``other``, a pipeline of no known family: None)."""
    return BY_NAME.get(name)


#: Components whose config.json the modes consult.
CONFIGURED_COMPONENTS = (
    "unet",
    "transformer",
    "vae",
    "text_encoder",
    "text_encoder_2",
    "text_encoder_3",
)


@dataclass(frozen=True)
class ModelConfigs:
    """A pipeline as its configuration files describe it.

    ``components`` maps each component of ``model_index.json`` to its (library, class) pair;
    ``configs`` holds the parsed ``config.json`` of the components in
    :data:`CONFIGURED_COMPONENTS` that exist, and ``scheduler`` the scheduler config.
    """

    source: str
    kind: str
    pipeline_class: str = ""
    components: dict[str, tuple[str, str]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``sd``, ``sdxl``, ``lcm``, ``sd3``, ``pixart``, ``flux``, ``sana``, or ``other``."""
        return FAMILY_OF_PIPELINE.get(self.pipeline_class, "other")

    @property
    def denoiser(self) -> str | None:
        """``unet`` or ``transformer``: the component that predicts the noise or velocity."""
        for name in ("unet", "transformer"):
            if name in self.components:
                return name
        return None

    @property
    def denoiser_config(self) -> dict[str, Any]:
        return self.configs.get(self.denoiser or "", {})

    @property
    def text_encoders(self) -> list[str]:
        return sorted(name for name in self.components if name.startswith("text_encoder"))

    @property
    def scheduler_class(self) -> str:
        return str(self.scheduler.get("_class_name", ""))

    @property
    def text_conditioned(self) -> bool:
        """Whether the pipeline encodes a prompt: it has a text encoder (the loaded model's
        ``summary.text_conditioned`` says the same after loading)."""
        return bool(self.text_encoders)

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel, computed as the pipelines compute it: 2 ** (number of
        VAE blocks − 1), from ``block_out_channels`` (AutoencoderKL) or
        ``encoder_block_out_channels`` (Sana's AutoencoderDC); 8 when the VAE config says
        neither (the pipelines' own fallback)."""
        vae = self.configs.get("vae", {})
        blocks = vae.get("block_out_channels") or vae.get("encoder_block_out_channels")
        return 2 ** (len(blocks) - 1) if blocks else 8

    @property
    def record(self) -> Family | None:
        """The family's record (None for a pipeline of no known family)."""
        return family_record(self.family)

    def default_image_size(self) -> tuple[int, int] | None:
        """(height, width) in pixels of ``pipe(prompt)`` without a size, as each family's
        ``__call__`` computes it; ``None`` for a pipeline whose rule is not known here.

        From the family's record: Flux's ``default_sample_size = 128`` (fixed in FluxPipeline)
        × the VAE factor; Sana's 1024, the default of its call signature (resolution binning
        then picks the bin it denoises at); the others' denoiser ``sample_size`` × the factor.
        """
        record = self.record
        if record is None:
            return None
        if record.default_pixels:
            return record.default_pixels, record.default_pixels
        size = record.default_sample_size or self.denoiser_config.get("sample_size")
        if isinstance(size, list | tuple) and size:
            size = size[0]
        if isinstance(size, int):
            return size * self.vae_scale_factor, size * self.vae_scale_factor
        return None

    def size_multiple(self) -> int | None:
        """What ``--height``/``--width`` must be multiples of for the family's
        ``check_inputs`` (SD, SDXL, LCM: 8; SD3: VAE factor x patch size; Flux: VAE factor x
        2, its packing), or None where the pipeline bins the size itself (PixArt, Sana) or the
        family is not known."""
        record = self.record
        if record is None or record.bins is not None:
            return None
        if record.size_multiple is not None:
            return record.size_multiple
        patch = record.patch_size(self.denoiser_config)
        return self.vae_scale_factor * record.packing * patch

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """The transformer's token grid for an image of ``height`` x ``width`` pixels: latent
        pixels (size // VAE factor) in patches of the family's packing x patch size."""
        record = self.record
        if record is None:
            patch = int(self.denoiser_config.get("patch_size") or 1)
        else:
            patch = record.patch_size(self.denoiser_config) * record.packing
        factor = self.vae_scale_factor
        return height // factor // patch, width // factor // patch


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a config file, or one line naming ``what`` and the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{what} {path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path}: expected a JSON object")
    return data


def _components(index: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The (library, class) pairs of ``model_index.json``; absent components are ``null``."""
    found = {}
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list | tuple) or len(value) != 2:
            continue
        if value[0] is None or value[1] is None:
            continue
        found[name] = (str(value[0]), str(value[1]))
    return found


def _folder_configs(folder: Path) -> ModelConfigs:
    index = read_json_object(folder / "model_index.json", "model index")
    components = _components(index)
    configs = {}
    for name in CONFIGURED_COMPONENTS:
        path = folder / name / "config.json"
        if name in components and path.is_file():
            configs[name] = read_json_object(path, f"{name} config")
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler = (
        read_json_object(scheduler_path, "scheduler config") if scheduler_path.is_file() else {}
    )
    return ModelConfigs(
        str(folder), "folder", str(index.get("_class_name", "")), components, configs, scheduler
    )


def _hub_configs(repo_id: str) -> ModelConfigs:
    """Fetch only the small JSON files of a hub model (found in the local cache when offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from .loading import hub_error_line

    def fetch(filename: str, subfolder: str | None = None) -> Path | None:
        try:
            return Path(hf_hub_download(repo_id, filename, subfolder=subfolder))
        except Exception as error:  # noqa: BLE001 -- huggingface_hub raises many kinds
            # The hub says the file does not exist (not: it cannot be reached, which is
            # LocalEntryNotFoundError, another EntryNotFoundError): an optional config.
            absent = isinstance(error, EntryNotFoundError) and not isinstance(
                error, LocalEntryNotFoundError
            )
            if subfolder is not None and absent:
                return None
            raise hub_error_line(repo_id, error) from None

    index_path = fetch("model_index.json")
    assert index_path is not None
    index = read_json_object(index_path, "model index")
    components = _components(index)
    configs = {}
    for name in CONFIGURED_COMPONENTS:
        if name in components and (path := fetch("config.json", name)) is not None:
            configs[name] = read_json_object(path, f"{name} config")
    scheduler_path = (
        fetch("scheduler_config.json", "scheduler") if "scheduler" in components else None
    )
    scheduler = read_json_object(scheduler_path, "scheduler config") if scheduler_path else {}
    return ModelConfigs(
        repo_id, "hub", str(index.get("_class_name", "")), components, configs, scheduler
    )


def read_model_configs(source: str, single_file_config: str | None = None) -> ModelConfigs:
    """Describe ``source`` (``--model``) from its configs; one :class:`InputError` line if not."""
    from .loading import classify_source

    kind = classify_source(source)
    path = Path(source).expanduser()
    if kind == "folder":
        return _folder_configs(path)
    if kind == "hub":
        return _hub_configs(source)
    if kind == "scheduler_config":
        from .loading import load_scheduler_config

        return ModelConfigs(source, kind, scheduler=load_scheduler_config(source))
    # A single file carries no configs: they come from --single-file-config when given.
    if single_file_config:
        described = read_model_configs(single_file_config)
        return ModelConfigs(
            source,
            kind,
            described.pipeline_class,
            described.components,
            described.configs,
            described.scheduler,
        )
    return ModelConfigs(source, kind)
