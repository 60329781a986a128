"""Loading diffusers pipelines and schedulers from a hub id, a local folder or a single file.

Every failure a user can cause is turned into one :class:`InputError` line that names the
input. Pickled weights (``.ckpt``/``.bin``/``.pt``) are refused unless the caller passes
``allow_pickle=True``; even then they are read with ``torch.load(weights_only=True)`` (diffusers'
own loaders do so). Remote code is never enabled.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import InputError
from .families import FAMILIES, read_json_object
from .options import DEVICES, DTYPES

SourceKind = Literal["hub", "folder", "single_file", "scheduler_config"]

SAFE_SINGLE_FILE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
OFFLINE_HINT = (
    "to work offline, download it once elsewhere and set HF_HUB_OFFLINE=1 with the cache "
    "copied, or pass a local diffusers folder"
)

#: Single-file checkpoints: diffusers' inferred model type -> the pipeline class that reads it,
#: from the family records (``core/families.py``).
SINGLE_FILE_PIPELINES: dict[str, str] = {
    model_type: pipeline for family in FAMILIES for model_type, pipeline in family.single_file
}


# --------------------------------------------------------------------------------------------
# Device and dtype
# --------------------------------------------------------------------------------------------


def resolve_device(spec: str = "auto") -> str:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("--device mps: MPS is not available on this machine")
        return "mps"
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available on this machine")
        if ":" in spec:
            index = spec.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise InputError(
                    f"--device {spec}: no such GPU ({torch.cuda.device_count()} visible)"
                )
        return spec
    raise InputError(f"--device {spec}: expected one of {', '.join(DEVICES)}")


def resolve_dtype(spec: str, device: str) -> Any:
    """``auto`` is fp16 on CUDA and fp32 elsewhere (half precision on CPU is slow or missing)."""
    import torch

    spec = (spec or "auto").strip().lower()
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if spec == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if spec not in table:
        raise InputError(f"--dtype {spec}: expected one of {', '.join(DTYPES)}")
    return table[spec]


def dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not source.startswith((".", "/", "~"))
        and not any(part in (".", "..") for part in parts)
    )


def classify_source(source: str) -> SourceKind:
    """Decide what ``--model`` names, or say in one line why it names nothing loadable."""
    if not source or not str(source).strip():
        raise InputError("--model: empty model name")
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "model_index.json").is_file():
            return "folder"
        raise InputError(
            f"model {source!r}: folder has no model_index.json (not a diffusers pipeline folder)"
        )
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "scheduler_config"
        if suffix in SAFE_SINGLE_FILE_SUFFIXES or suffix in PICKLE_SUFFIXES:
            return "single_file"
        raise InputError(
            f"model {source!r}: unsupported file type {suffix or '(none)'} "
            "(expected a .safetensors checkpoint, or a folder)"
        )
    if path.suffix.lower() in SAFE_SINGLE_FILE_SUFFIXES + PICKLE_SUFFIXES + (".json",):
        raise InputError(f"model {source!r}: no such file")
    if looks_like_hub_id(str(source)):
        return "hub"
    raise InputError(f"model {source!r}: no such folder or file, and not a hub id (owner/name)")


def check_safetensors_file(path: Path) -> None:
    """Refuse, in one line, a ``.safetensors`` file whose header or size is wrong.

    ``safe_open`` reads only the header and checks what can be checked without reading the
    tensors: the 8-byte header length, the JSON header, and that the tensors' byte ranges
    cover the file exactly -- so an empty, truncated or padded file is caught in milliseconds,
    before a run directory exists, instead of deep inside a loader. Only to say how many
    bytes are missing is the header's last offset read here (safetensors does not say).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"weights {path}: empty file (0 bytes)")
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except InputError:
        raise
    except SafetensorError as error:
        raise InputError(f"weights {path}: {_safetensors_problem(path, size, error)}") from None
    except OSError as error:
        raise InputError(f"weights {path}: cannot read ({error.strerror or error})") from None


def _safetensors_problem(path: Path, size: int, error: Exception) -> str:
    text = str(error)
    if "too small" in text or "invalid header length" in text:
        return f"truncated or not a safetensors file (no complete header in its {size} bytes)"
    if "JSON" in text or "UTF-8" in text or "utf8" in text.lower():
        return "corrupt safetensors header (not JSON)"
    if "not fully covered" in text:
        expected = _expected_safetensors_size(path)
        if expected is not None and expected > size:
            return f"truncated ({size} bytes of {expected})"
        if expected is not None:
            return f"corrupt: {size - expected} bytes past the last tensor"
    return f"corrupt safetensors file ({' '.join(text.split())})"


def _expected_safetensors_size(path: Path) -> int | None:
    """The size the header promises: 8 + header length + the last tensor's end offset."""
    try:
        with open(path, "rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
        ends = [
            int(info["data_offsets"][1]) for key, info in header.items() if key != "__metadata__"
        ]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return 8 + header_len + max(ends, default=0)


def component_weight_files(folder: Path) -> list[Path]:
    """The ``.safetensors`` files a pipeline folder's components load: those in the folders
    ``model_index.json`` names. Variant files (``*.fp16.safetensors``) load only on request,
    so they are left out."""
    index = read_model_index(folder)
    files: list[Path] = []
    for name in sorted(k for k, v in index.items() if not k.startswith("_") and _is_component(v)):
        component = folder / name
        if component.is_dir():
            files += [f for f in sorted(component.glob("*.safetensors")) if "." not in f.stem]
    return files


def check_folder_weights(folder: Path) -> None:
    for weights in component_weight_files(Path(folder)):
        check_safetensors_file(weights)


def check_model_weights(source: str) -> None:
    """The header and size checks of every weights file ``source`` will load, where it is
    local (a folder or a single ``.safetensors`` file); hub models are checked on download."""
    kind = classify_source(source)
    path = Path(source).expanduser()
    if kind == "folder":
        check_folder_weights(path)
    elif kind == "single_file" and path.suffix.lower() == ".safetensors":
        check_safetensors_file(path)


# --------------------------------------------------------------------------------------------
# What can be checked before weights are read (what a model *is* is core.families' job)
# --------------------------------------------------------------------------------------------


def _is_component(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and value[1] is not None


def read_model_index(folder: Path) -> dict[str, Any]:
    return read_json_object(Path(folder) / "model_index.json", "model")


def cached_hub_file(repo_id: str, filename: str) -> Path | None:
    """The local copy of a hub file, or None when it is not in the cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 -- an invalid id or cache: simply not cached
        return None
    return Path(found) if isinstance(found, str) else None


def _hub_file(repo_id: str, filename: str) -> Path | None:
    """A small hub file's local copy: from the cache, else (hub on) downloaded now; None when
    the repository has no such file or the hub is off. A hub that cannot be reached is one
    line, given before anything is written rather than by the loader inside the run."""
    cached = cached_hub_file(repo_id, filename)
    if cached is not None or hub_offline():
        return cached
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as error:  # noqa: BLE001 -- every hub failure must become one line
        # The hub answered "no such file" (the local variant means it could not be asked).
        if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
            return None
        raise hub_error_line(repo_id, error) from None


def check_hub_files(repo_id: str, filenames: tuple[str, ...], what: str) -> None:
    """Refuse, before anything is written, a hub model whose files cannot be had: not in the
    local cache with the hub off (``HF_HUB_OFFLINE``), or with the hub on but unreachable (the
    small files are fetched now). Loading would otherwise fail only inside the run, with the hub
    library's messages first. Local folders pass."""
    if Path(repo_id).expanduser().exists() or not looks_like_hub_id(repo_id):
        return
    for name in filenames:
        if _hub_file(repo_id, name) is not None:
            continue
        if hub_offline():
            raise InputError(
                f"{what} {repo_id!r}: not in the local Hugging Face cache (no {name}) and "
                f"HF_HUB_OFFLINE is set; {OFFLINE_HINT}"
            )
        raise InputError(f"{what} {repo_id!r}: the repository has no {name}")


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


@dataclass
class ModelSummary:
    """What the loader tells the user about a pipeline, also written to ``results.json``."""

    source: str
    source_kind: str
    pipeline_class: str
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduler_class: str = ""
    scheduler_config: dict[str, Any] = field(default_factory=dict)
    native_resolution: int | None = None
    text_encoders: list[str] = field(default_factory=list)
    text_conditioned: bool = False
    device: str = "cpu"
    dtype: str = "float32"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def total_parameters(self) -> int:
        return sum(int(c.get("parameters") or 0) for c in self.components.values())

    def lines(self) -> list[str]:
        """A short human-readable description, one fact a line."""
        out = [
            f"pipeline   {self.pipeline_class}  ({self.source_kind}: {self.source})",
            f"device     {self.device}  {self.dtype}",
            f"resolution {self.native_resolution or '?'} px",
            f"scheduler  {self.scheduler_class}",
            f"text       {', '.join(self.text_encoders) or 'none'}",
        ]
        for name, info in self.components.items():
            params = info.get("parameters")
            count = f"{params / 1e6:.2f}M params" if params else ""
            out.append(f"  {name:<16} {info.get('class', '')} {count}".rstrip())
        return out


def _parameter_count(module: Any) -> int | None:
    parameters = getattr(module, "parameters", None)
    if parameters is None:
        return None
    try:
        return int(sum(p.numel() for p in parameters()))
    except TypeError:
        return None


def native_resolution(pipeline: Any) -> int | None:
    default = getattr(pipeline, "default_sample_size", None)
    scale = getattr(pipeline, "vae_scale_factor", None) or 8
    if isinstance(default, int):
        return default * scale
    for name in ("unet", "transformer"):
        model = getattr(pipeline, name, None)
        size = getattr(getattr(model, "config", None), "sample_size", None)
        if isinstance(size, int):
            return size * scale if name == "unet" or scale else size
        if isinstance(size, list | tuple) and size:
            return int(size[0]) * scale
    return None


def summarize(pipeline: Any, source: str, kind: str, device: str, dtype: Any) -> ModelSummary:
    components: dict[str, dict[str, Any]] = {}
    for name, component in pipeline.components.items():
        if component is None:
            continue
        components[name] = {
            "class": type(component).__name__,
            "parameters": _parameter_count(component),
        }
    scheduler = getattr(pipeline, "scheduler", None)
    text_encoders = [
        name
        for name, component in pipeline.components.items()
        if name.startswith("text_encoder") and component is not None
    ]
    return ModelSummary(
        source=str(source),
        source_kind=kind,
        pipeline_class=type(pipeline).__name__,
        components=components,
        scheduler_class=type(scheduler).__name__ if scheduler is not None else "",
        scheduler_config=dict(scheduler.config) if scheduler is not None else {},
        native_resolution=native_resolution(pipeline),
        text_encoders=text_encoders,
        text_conditioned=bool(text_encoders),
        device=device,
        dtype=dtype_name(dtype),
    )


@dataclass
class LoadedModel:
    pipeline: Any
    summary: ModelSummary


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def _hub_error(source: str, error: Exception) -> InputError | None:
    """Translate huggingface_hub's and requests' errors into one line, or None if unrelated."""
    names = {type(e).__name__ for e in _error_chain(error)}
    if names & {"RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"}:
        return InputError(f"model {source!r}: not found on the hub (check the id, or log in)")
    if names & {
        "LocalEntryNotFoundError",
        "OfflineModeIsEnabled",
        "ConnectionError",
        "ConnectError",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "MaxRetryError",
        "NewConnectionError",
    }:
        return InputError(
            f"model {source!r}: not in the local cache and the hub cannot be reached; {OFFLINE_HINT}"
        )
    text = str(error)
    if "Cannot reach" in text or "offline" in text.lower() or "connect" in text.lower():
        return InputError(
            f"model {source!r}: not in the local cache and the hub cannot be reached; {OFFLINE_HINT}"
        )
    return None


def hub_error_line(source: str, error: Exception) -> InputError:
    """Any failure to fetch ``source`` from the hub, as one line."""
    return _hub_error(source, error) or InputError(f"model {source!r}: {error}")


def _error_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _single_file_pipeline_class(path: Path, config: str | None) -> Any:
    """The pipeline class for a single-file checkpoint: from ``config``'s model_index.json when
    given, else from diffusers' own inference over the checkpoint's tensor names and shapes."""
    import diffusers

    if config and (Path(config) / "model_index.json").is_file():
        class_name = json.loads((Path(config) / "model_index.json").read_text())["_class_name"]
        return getattr(diffusers, class_name)
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    shapes = _checkpoint_shapes(path)
    model_type = infer_diffusers_model_type(shapes)
    class_name = SINGLE_FILE_PIPELINES.get(model_type)
    if class_name is None:
        raise InputError(
            f"model {str(path)!r}: single-file checkpoints of type {model_type!r} are not supported"
        )
    return getattr(diffusers, class_name)


class _ShapeOnly:
    """Stands in for a tensor where only ``.shape`` is read, so no weights are loaded twice."""

    def __init__(self, shape: list[int]) -> None:
        self.shape = tuple(shape)


def _checkpoint_shapes(path: Path) -> dict[str, _ShapeOnly]:
    from safetensors import safe_open

    if path.suffix.lower() != ".safetensors":
        return {}
    with safe_open(str(path), framework="pt") as handle:
        return {key: _ShapeOnly(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118


def load_pipeline(
    source: str,
    device: str = "auto",
    dtype: str = "auto",
    *,
    allow_pickle: bool = False,
    single_file_config: str | None = None,
) -> LoadedModel:
    """Load any diffusers pipeline and describe it.

    ``single_file_config`` names a diffusers folder or hub id whose component configs a
    single-file checkpoint is read with; without it diffusers fetches them from the hub, which
    an offline host cannot do.
    """
    import diffusers

    kind = classify_source(source)
    if kind == "scheduler_config":
        raise InputError(f"model {source!r}: a scheduler config has no pipeline to load")
    _quiet_library_progress()
    device_name = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device_name)
    path = Path(source).expanduser()
    with warnings.catch_warnings():
        # diffusers >= 0.36 renamed torch_dtype to dtype; older releases we support know only
        # torch_dtype, so keep it and silence the rename notice.
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        try:
            if kind == "single_file":
                suffix = path.suffix.lower()
                if suffix in PICKLE_SUFFIXES and not allow_pickle:
                    raise InputError(
                        f"model {source!r}: {suffix} files are pickles that can run code when loaded; "
                        "convert to .safetensors, or pass --allow-pickle if you trust this file"
                    )
                if suffix == ".safetensors":
                    check_safetensors_file(path)
                pipeline_class = _single_file_pipeline_class(path, single_file_config)
                kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
                if single_file_config:
                    kwargs["config"] = single_file_config
                pipeline = pipeline_class.from_single_file(str(path), **kwargs)
            else:
                if kind == "folder":
                    check_folder_weights(path)
                pipeline = diffusers.DiffusionPipeline.from_pretrained(
                    str(path) if kind == "folder" else source,
                    torch_dtype=torch_dtype,
                    use_safetensors=None if allow_pickle else True,
                )
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 -- every failure must become one line
            raise _load_error(source, kind, error) from None
    pipeline.to(device_name)
    if hasattr(pipeline, "set_progress_bar_config"):
        pipeline.set_progress_bar_config(disable=True)
    return LoadedModel(pipeline, summarize(pipeline, source, kind, device_name, torch_dtype))


def _quiet_library_progress() -> None:
    """Loading bars from diffusers/transformers would interleave with our own progress display."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def _load_error(source: str, kind: str, error: Exception) -> InputError:
    if kind == "hub" or "huggingface" in type(error).__module__:
        hub = _hub_error(source, error)
        if hub is not None:
            return hub
    text = " ".join(str(error).split())
    lowered = text.lower()
    if "safetensors" in lowered and ("no file" in lowered or "could not find" in lowered):
        return InputError(
            f"model {source!r}: no .safetensors weights found; pass --allow-pickle to load "
            ".bin weights (read with weights_only=True) if you trust them"
        )
    if any(word in lowered for word in ("header", "deserializ", "truncat", "corrupt", "invalid")):
        return InputError(f"model {source!r}: corrupt or truncated weights ({text[:160]})")
    if isinstance(error, FileNotFoundError | OSError):
        return InputError(f"model {source!r}: {text[:200]}")
    return InputError(f"model {source!r}: cannot load ({type(error).__name__}: {text[:200]})")


def require_pipeline(model: LoadedModel, mode: str, accepted: tuple[str, ...]) -> None:
    """Refuse, in one line, a pipeline that ``mode`` cannot analyse."""
    if not any(name in model.summary.pipeline_class for name in accepted):
        raise InputError(
            f"model {model.summary.source!r}: {model.summary.pipeline_class} is not supported by "
            f"the {mode} mode (supported: {', '.join(accepted)})"
        )


# --------------------------------------------------------------------------------------------
# Scheduler configs (schedule mode reads only these, never the weights)
# --------------------------------------------------------------------------------------------


def load_scheduler_config(source: str) -> dict[str, Any]:
    """The scheduler config of a model: a ``scheduler_config.json``, a pipeline folder, or a
    hub id (only that one small file is downloaded)."""
    kind = classify_source(source)
    path = Path(source).expanduser()
    if kind == "scheduler_config":
        return _read_config_json(path)
    if kind == "folder":
        candidate = path / "scheduler" / "scheduler_config.json"
        if not candidate.is_file():
            raise InputError(f"model {source!r}: folder has no scheduler/scheduler_config.json")
        return _read_config_json(candidate)
    if kind == "single_file":
        raise InputError(
            f"model {source!r}: a single-file checkpoint carries no scheduler config; "
            "pass the scheduler_config.json or the model's hub id"
        )
    try:
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(source, "scheduler_config.json", subfolder="scheduler")
    except Exception as error:  # noqa: BLE001
        raise hub_error_line(source, error) from None
    return _read_config_json(Path(local))


def _read_config_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"scheduler config {path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise InputError(f"scheduler config {path}: expected a JSON object")
    return config


def hub_offline() -> bool:
    """Whether the hub is off for this process (``HF_HUB_OFFLINE``, read now or at import)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return True
    from huggingface_hub import is_offline_mode

    return bool(is_offline_mode())
