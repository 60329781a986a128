"""A model's summary read from its configs and safetensors headers, without importing torch.

The workbench shows this when a model is loaded: the pipeline and component classes, the
scheduler, the native resolution, the text encoders and each component's parameter count.
The configs are read by :mod:`diffusionscope.core.families` (``model_index.json``, the
component and scheduler configs), the sizes from the tensor shapes in the safetensors headers
(read with ``safetensors.safe_open`` in its numpy mode, which parses the header and maps no
tensor), so it takes milliseconds and leaves torch, diffusers and transformers out of the
process: the run process is the one that loads weights. A count is of every tensor in the
files, so persistent buffers stored with the weights (SD3's positional-embedding table) count
too, where a loaded model's ``parameters()`` would leave them out.

What cannot be known this way (a single-file checkpoint's pipeline class, which diffusers
infers from the tensors) is said so, and left to the run.
"""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .families import ModelConfigs, read_model_configs
from .loading import classify_source

#: Weight file names diffusers and transformers load, in the order they prefer them.
WEIGHT_STEMS = ("diffusion_pytorch_model", "model")


@dataclass
class ComponentInfo:
    library: str
    class_name: str
    parameters: int | None = None
    weight_dtype: str = ""
    weight_files: int = 0


@dataclass
class ModelInfo:
    """What the configs and headers say about a model (the same facts a loaded summary has)."""

    source: str
    source_kind: str
    pipeline_class: str
    components: dict[str, ComponentInfo] = field(default_factory=dict)
    scheduler_class: str = ""
    native_resolution: int | None = None
    text_encoders: list[str] = field(default_factory=list)
    device: str = ""
    dtype: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_parameters(self) -> int:
        return sum(c.parameters or 0 for c in self.components.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """One short fact a line (they must read well in a 36-column pane), components by size."""
        resolution = f"{self.native_resolution} px · " if self.native_resolution else ""
        out = [
            self.pipeline_class,
            f"{resolution}scheduler {self.scheduler_class or '?'}",
            f"run on {self.device}, {self.dtype}",
            f"{self.source_kind} {self.source}",
        ]
        if self.total_parameters:
            out.append(f"{self.total_parameters / 1e6:.2f}M params in all")
        sized = sorted(self.components.items(), key=lambda item: -(item[1].parameters or 0))
        for name, info in sized:
            count = f"{info.parameters / 1e6:.2f}M" if info.parameters else ""
            out.append(f"{count:>7} {name} {info.class_name}")
        out += self.notes
        return out


# --------------------------------------------------------------------------------------------
# Headers and configs
# --------------------------------------------------------------------------------------------


def safetensors_parameters(path: Path) -> tuple[int, str]:
    """``(element count, dtype)`` of every tensor in a safetensors file, from its header only."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            count, dtypes = 0, set()
            for key in handle.keys():  # noqa: SIM118 -- safe_open is not a dict
                tensor = handle.get_slice(key)
                count += math.prod(tensor.get_shape())
                dtypes.add(str(tensor.get_dtype()))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"weights {path}: corrupt safetensors file ({error})") from None
    return count, "/".join(sorted(dtypes))


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a component is loaded from: the plain ones (sharded or not), else
    one variant (``.fp16``), never two copies of the same weights."""
    files = sorted(folder.glob("*.safetensors"))
    for stem in WEIGHT_STEMS:
        plain = [
            f
            for f in files
            if f.name == f"{stem}.safetensors"
            or (f.name.startswith(f"{stem}-") and "-of-" in f.name)
        ]
        if plain:
            return plain
    for stem in WEIGHT_STEMS:
        variants = [f for f in files if f.name.startswith(f"{stem}.")]
        if variants:
            first_variant = variants[0].name.split(".")[1]
            return [f for f in variants if f.name.split(".")[1] == first_variant]
    return files[:1]


def _component(folder: Path, library: str, class_name: str) -> ComponentInfo:
    """A component's class and, when its weights are in ``folder``, their size."""
    info = ComponentInfo(library=library, class_name=class_name)
    files = weight_files(folder) if folder.is_dir() else []
    dtypes = set()
    for path in files:
        count, dtype = safetensors_parameters(path)
        info.parameters = (info.parameters or 0) + count
        dtypes.add(dtype)
    info.weight_dtype = "/".join(sorted(dtypes))
    info.weight_files = len(files)
    return info


def native_resolution(configs: ModelConfigs) -> int | None:
    """The pipeline's default image size: the denoiser's latent size times the VAE's factor,
    as the pipelines compute it (``default_sample_size * vae_scale_factor``)."""
    scale = configs.vae_scale_factor
    record = configs.record
    if record is not None and record.default_sample_size:  # fixed in the pipeline's code (Flux)
        return record.default_sample_size * scale
    size = configs.denoiser_config.get("sample_size")
    if isinstance(size, list | tuple) and size:
        size = size[0]
    return size * scale if isinstance(size, int) else None


def run_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """What ``--device``/``--dtype`` will most likely resolve to in the run process, guessed
    without torch: an NVIDIA driver with a GPU means CUDA (fp16), Apple silicon means MPS."""
    device = (device or "auto").lower()
    if device == "auto":
        from .health import gpu_count

        if gpu_count():
            device = "cuda"
        elif platform.system() == "Darwin" and platform.machine() == "arm64":
            device = "mps"
        else:
            device = "cpu"
        device += " (auto)"
    dtype = (dtype or "auto").lower()
    if dtype == "auto":
        dtype = ("fp16" if device.startswith("cuda") else "fp32") + " (auto)"
    return device, dtype


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def describe(configs: ModelConfigs, weights: Path | None, source: str, kind: str) -> ModelInfo:
    """A summary from ``configs``, with parameter counts from the headers under ``weights``
    (the pipeline folder; None when the weights are not here, e.g. a hub model not cached)."""
    pipeline = configs.pipeline_class or "?"
    if configs.family != "other":
        pipeline += f" ({configs.family})"
    info = ModelInfo(
        source=source,
        source_kind=kind,
        pipeline_class=pipeline,
        scheduler_class=configs.scheduler_class,
        native_resolution=native_resolution(configs),
        text_encoders=configs.text_encoders,
    )
    for name, (library, class_name) in configs.components.items():
        if name == "scheduler":
            continue
        folder = weights / name if weights is not None else None
        info.components[name] = (
            _component(folder, library, class_name)
            if folder is not None
            else ComponentInfo(library, class_name)
        )
    return info


def _hub_folder(repo_id: str) -> Path | None:
    """The hub model's snapshot in the local cache, or None when it is not there."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 -- any miss (not cached, bad id) means "not here"
        return None


def inspect_model(source: str, device: str = "auto", dtype: str = "auto") -> ModelInfo:
    """Summarise ``source`` (hub id, diffusers folder, single file or scheduler config).

    Raises :class:`InputError` with one line for what cannot be a model at all.
    """
    kind = classify_source(source)
    path = Path(source).expanduser()
    if kind == "folder":
        info = describe(read_model_configs(source), path, source, "folder")
    elif kind == "hub":
        cached = _hub_folder(source)
        info = describe(
            read_model_configs(source),
            cached,
            source,
            "hub (cached)" if cached is not None else "hub",
        )
        if cached is None:
            info.notes.append("weights not in the local hub cache: the run downloads them")
    elif kind == "single_file":
        info = ModelInfo(source=source, source_kind="single file", pipeline_class="?")
        if path.suffix.lower() == ".safetensors":
            count, dtype_name = safetensors_parameters(path)
            info.components["checkpoint"] = ComponentInfo(
                "", "single-file checkpoint", count, dtype_name, 1
            )
            info.notes.append("the pipeline class is inferred from the tensors by the run")
        else:
            info.notes.append(f"{path.suffix} is a pickle: the run needs --allow-pickle")
    else:
        scheduler = read_model_configs(source).scheduler_class or "?"
        info = ModelInfo(
            source=source,
            source_kind="scheduler config",
            pipeline_class="-",
            scheduler_class=scheduler,
        )
        info.notes.append("a scheduler config alone: the schedule mode only")
    info.device, info.dtype = run_device(device, dtype)
    return info
