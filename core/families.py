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
from typing import Any

from .errors import InputError

#: diffusers pipeline class -> family name used throughout the modes.
FAMILY_OF_PIPELINE: dict[str, str] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "LatentConsistencyModelPipeline": "lcm",
    "StableDiffusion3Pipeline": "sd3",
    "PixArtAlphaPipeline": "pixart",
    "PixArtSigmaPipeline": "pixart",
    "FluxPipeline": "flux",
    "SanaPipeline": "sana",
}

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

    def default_image_size(self) -> tuple[int, int] | None:
        """(height, width) in pixels of ``pipe(prompt)`` without a size, as each family's
        ``__call__`` computes it; ``None`` for a pipeline whose rule is not known here.

        UNet families, SD3 and PixArt: the denoiser's ``sample_size`` × the VAE factor. Flux:
        ``default_sample_size = 128`` (fixed in FluxPipeline) × the VAE factor. Sana: 1024, the
        default of its call signature (resolution binning then picks the bin it denoises at).
        """
        factor = self.vae_scale_factor
        if self.family == "flux":
            return 128 * factor, 128 * factor
        if self.family == "sana":
            return 1024, 1024
        if self.family in ("sd", "sdxl", "lcm", "sd3", "pixart"):
            size = self.denoiser_config.get("sample_size")
            if isinstance(size, list | tuple) and size:
                size = size[0]
            if isinstance(size, int):
                return size * factor, size * factor
        return None


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
