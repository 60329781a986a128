"""What a pipeline's configs and file listing reveal, checked before the run directory exists.

A run that loads a model must not create its directory, load gigabytes of weights and only then
fail on something a few small JSON files already said. :func:`check_pipeline` reads
:class:`diffusionscope.core.families.ModelConfigs` (no weights) and refuses, in one line:

* a pipeline class diffusers does not have, or a component from another library (custom code,
  which is never run);
* a component the pipeline class needs that the model lacks (``unet/`` deleted, or ``null``);
* a model component whose only weights are pickles, without ``--allow-pickle``;
* an image size the pipeline's own size check refuses (its size step; binning pipelines also
  need resolution bins for their denoiser's ``sample_size``), or a default size no run could
  allocate (``sample_size: 1e9``);
* a step count the pipeline's scheduler cannot set, or one the pipeline cannot run (PixArt-α
  takes the predicted clean sample at one step, which most schedulers do not return).

The rules are the pipelines' own ``check_inputs`` rules, read from diffusers 0.3x; anything not
recognised here is left to the loader, which turns its failures into one line too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import InputError
from .families import ModelConfigs
from .loading import PICKLE_SUFFIXES
from .options import MAX_IMAGE_SIDE

#: Libraries whose classes a pipeline folder may name: anything else is custom code.
KNOWN_LIBRARIES = ("diffusers", "transformers")
#: Pixel multiple each family's ``check_inputs`` requires (``None``: the latent factor and
#: patch size decide, as SD3's and Flux's do).
FIXED_SIZE_STEPS = {"sd": 8, "sdxl": 8, "lcm": 8, "pixart": 8, "sana": 32}
#: Transformer ``sample_size`` values that have resolution bins, per binning family (the
#: tables of ``pipeline_parts``: PixArt-Σ adds 256).
BINNED_SAMPLE_SIZES = {
    "PixArtAlphaPipeline": (32, 64, 128),
    "PixArtSigmaPipeline": (32, 64, 128, 256),
    "SanaPipeline": (16, 32, 64, 128),
}


def check_pipeline(args: Any, model: ModelConfigs) -> None:
    """Every check above, for a run of ``args`` on ``model`` (a folder, a hub id, or a single
    file read with ``--single-file-config``)."""
    if not model.pipeline_class:
        return
    pipeline_class = _pipeline_class(model)
    _check_components(model, pipeline_class)
    if model.kind == "folder":
        _check_weight_formats(Path(model.source), model, bool(args.allow_pickle))
    _check_size(model, getattr(args, "height", None), getattr(args, "width", None))
    steps = getattr(args, "steps", None)
    if steps is not None and model.scheduler:
        _check_steps(model, int(steps), getattr(args, "height", None), getattr(args, "width", None))


def _pipeline_class(model: ModelConfigs) -> Any:
    from .schedule.imports import import_diffusers

    diffusers = import_diffusers()
    name = model.pipeline_class
    cls = getattr(diffusers, name, None) if name.isidentifier() else None
    if cls is None or not name.endswith("Pipeline"):
        raise InputError(
            f"model {model.source!r}: pipeline class {name!r} is not a diffusers pipeline "
            "(custom pipeline code is never run); use a model saved by a diffusers pipeline"
        )
    return cls


def _check_components(model: ModelConfigs, pipeline_class: Any) -> None:
    from .schedule.imports import import_diffusers

    libraries = {"diffusers": import_diffusers()}
    for name, (library, class_name) in model.components.items():
        if library not in KNOWN_LIBRARIES:
            raise InputError(
                f"model {model.source!r}: component {name} is {library}.{class_name}, custom "
                f"code (only {' and '.join(KNOWN_LIBRARIES)} classes are loaded; remote code "
                "is never run)"
            )
        if library not in libraries:
            import transformers

            libraries[library] = transformers
        if not class_name.isidentifier() or getattr(libraries[library], class_name, None) is None:
            raise InputError(
                f"model {model.source!r}: component {name} names {library}.{class_name}, "
                f"which this {library} does not have"
            )
    expected, _ = pipeline_class._get_signature_keys(pipeline_class)
    optional = set(getattr(pipeline_class, "_optional_components", ()))
    missing = [name for name in expected if name not in optional and name not in model.components]
    if missing:
        raise InputError(
            f"model {model.source!r}: {model.pipeline_class} needs {', '.join(missing)}, "
            "which model_index.json does not name"
        )
    if model.kind != "folder":
        return
    absent = [name for name in model.components if not (Path(model.source) / name).is_dir()]
    if absent:
        raise InputError(
            f"model {model.source!r}: no {', '.join(f'{name}/' for name in absent)} folder, "
            "which model_index.json names (an incomplete copy?)"
        )


def _check_weight_formats(folder: Path, model: ModelConfigs, allow_pickle: bool) -> None:
    """Each model component (a folder with ``config.json``) has weights the loader will read:
    ``.safetensors``, or pickles only with ``--allow-pickle``. Variant files
    (``*.fp16.safetensors``) are not read without a variant, so they do not count."""
    for name in sorted(model.components):
        component = folder / name
        if not (component / "config.json").is_file():
            continue  # a tokenizer, scheduler or image processor: no weights
        files = [f.name for f in component.iterdir() if f.is_file()]
        safe = [
            f for f in files if f.endswith(".safetensors") and "." not in f[: -len(".safetensors")]
        ]
        safe += [f for f in files if f.endswith(".safetensors.index.json")]
        if safe:
            continue
        pickled = [f for f in files if f.endswith(PICKLE_SUFFIXES) or f.endswith(".bin.index.json")]
        if not pickled:
            raise InputError(
                f"model {str(folder)!r}: {name}/ has a config.json but no weights file"
            )
        if not allow_pickle:
            raise InputError(
                f"model {str(folder)!r}: {name}/ has only pickled weights ({sorted(pickled)[0]}), "
                "which can run code when loaded; convert to .safetensors, or pass --allow-pickle "
                "if you trust them (read with weights_only=True)"
            )


def size_step(model: ModelConfigs) -> int:
    """The pixel multiple the pipeline's ``check_inputs`` requires of ``height`` and ``width``
    (and of the latents: a multiple of the VAE factor too)."""
    factor = model.vae_scale_factor
    fixed = FIXED_SIZE_STEPS.get(model.family)
    if fixed is not None:
        return math.lcm(fixed, factor)
    if model.family == "flux":
        return factor * 2  # 2x2 latent patches (Flux resizes any other size, with a warning)
    patch = model.denoiser_config.get("patch_size")
    return factor * (patch if isinstance(patch, int) and patch > 0 else 1)


def _check_size(model: ModelConfigs, height: int | None, width: int | None) -> None:
    bins = BINNED_SAMPLE_SIZES.get(model.pipeline_class)
    sample = model.denoiser_config.get("sample_size")
    if isinstance(sample, list | tuple) and sample:
        sample = sample[0]
    where = f"model {model.source!r}: {model.denoiser} config sample_size {sample!r}"
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or sample <= 0
    ):
        raise InputError(f"{where} is not a positive whole number of latent pixels")
    if bins is not None and sample is not None and sample not in bins:
        raise InputError(
            f"{where} has no resolution bins in {model.pipeline_class} (it knows "
            f"{', '.join(map(str, bins))})"
        )
    default = model.default_image_size()
    if default is not None and (height is None or width is None):
        side = max(default)
        if side > MAX_IMAGE_SIDE:
            raise InputError(
                f"{where} makes {side} px images by default, more than {MAX_IMAGE_SIDE}; pass "
                "--height and --width"
            )
    step = size_step(model)
    for flag, value in (("--height", height), ("--width", width)):
        if value is not None and value % step:
            lower = max(step, value - value % step)
            raise InputError(
                f"{flag} {value}: {model.pipeline_class} needs a multiple of {step} px "
                f"(try {lower} or {lower + step if lower < value else 2 * step})"
            )


def _check_steps(model: ModelConfigs, steps: int, height: int | None, width: int | None) -> None:
    """Set ``steps`` timesteps on the model's scheduler as its pipeline would (μ and σ grid
    included): a count the scheduler refuses is refused here, not after loading."""
    from .schedule.curves import build_scheduler
    from .schedule.pipeline_call import timestep_call

    scheduler = build_scheduler(model.scheduler)
    name = type(scheduler).__name__
    call = timestep_call(model, dict(scheduler.config), height, width)
    try:
        scheduler.set_timesteps(steps, **call.kwargs(steps))
    except Exception as error:  # noqa: BLE001 -- any refusal of the count is the user's input
        text = " ".join(str(error).split())[:200]
        raise InputError(f"--steps {steps}: {name} cannot set that many steps ({text})") from None
    if model.pipeline_class == "PixArtAlphaPipeline" and steps == 1:
        import torch

        sample = torch.zeros(1, 1, 2, 2)
        out = scheduler.step(sample, scheduler.timesteps[0], sample, return_dict=False)
        if len(out) < 2:
            raise InputError(
                f"--steps 1: PixArtAlphaPipeline's one-step path takes the predicted clean "
                f"image from the scheduler, which {name} does not return; use --steps 2 or more"
            )
