"""Latent mode: seed and prompt interpolation, image interpolation (VAE latents and sampler
inversion), smoothness numbers, semantic directions and out-of-distribution scores, on every
pipeline family (:mod:`diffusionscope.core.pipeline_parts`).

Tasks (``--latent-tasks``, comma list or ``all``): ``seeds`` (slerp and lerp between two seeds'
initial latents; the end frames are exactly the seeds' own images), ``prompts`` (interpolation
of every conditioning tensor, one seed), ``images`` (two real images: VAE-latent slerp and lerp,
inversion of the sampler -- DDIM on noise/v-prediction families, the flow ODE on flow families --
and slerp between the inverted noises), ``directions`` (the conditioning difference of a pair
swept over other prompts; each row measured against the same prompt and seed with either word),
``ood`` (scores against a reference, thresholds calibrated on a held-out part of it). Without
the option every task the given options allow runs. Image sizes follow ``--height`` and
``--width``, each defaulting to the pipeline's own.

``results["latent"]`` (every strip/grid is a path relative to the run directory; "smoothness"
below means ``{"max_mean_ratio", "path_length", "ppl", "steps": [...]}`` in ``features`` space)::

    {"features": extractor name, "tasks": [...], "guidance_scale": float, "steps": int,
     "seeds": {"prompt", "seeds": [a, b], "frames",
               "slerp": {..smoothness.., "strip"}, "lerp": {..smoothness.., "strip"}},
     "prompts": {"prompts": [a, b], "seed", ..smoothness.., "strip"},
     "images": {"images": [a, b], "size": [h, w], "inversion": "ddim"|"flow",
                "vae_slerp": {..smoothness.., "strip"},
                "vae_lerp": {..smoothness.., "strip"},
                "ddim": {..smoothness.., "strip", "reconstruction", "reconstruction_mse",
                         "reconstruction_psnr", "feature_distance", "label_agreement"|null}},
     "directions": {"pair": [pos, neg], "strengths": [...], "seed", "measured_in": "vae_latent",
                    "rows": [{"prompt", "contrast": [prompt with pos, prompt with neg],
                              "attribute": [...] (0 = neg's image, 1 = pos's) | null,
                              "spearman", "monotone"}],
                    "monotone_share", "mean_spearman", "grid"},
     "ood": {"reference", "n_reference", "min_reference", "n_fit", "n_calibration",
             "latent_mahalanobis": {"mean", "std", "p50", "p95", "p99" (of the held-out part),
                                    "threshold", "fitted", "calibration", "expected_flag_rate"},
             "mahalanobis": {same keys}, "shrinkage", "clusters",
             "auroc": {"latent_mahalanobis", "mahalanobis", "n_in", "n_out"},
             "in_flagged": {"latent_mahalanobis", "mahalanobis"} (with --ood-in/--ood-out),
             "scored", "flagged": {"latent_mahalanobis", "mahalanobis"}, "scores_csv" (with --ood-score)}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..options import DIGITS_LDM_NAME, Generation, Option, RunOptions

MAX_FRAMES = 1000

if TYPE_CHECKING:
    from ..families import ModelConfigs
    from ..modes import ModeResult, RunContext

DESCRIPTION = "slerp strips, image interpolation, semantic directions and OOD scores"
NEEDS_PIPELINE = True
TASK_NAMES = ("seeds", "prompts", "images", "directions", "ood")


OPTIONS: tuple[Option, ...] = (
    Option(
        "latent_tasks",
        "which tasks",
        kind="choices",
        choices=TASK_NAMES,
        words=("all",),
        unset="every task the given options allow",
    ),
    Option(
        "seeds",
        "two seeds to interpolate, e.g. 3,8",
        kind="numbers",
        length=(2, 2),
        unset="--seed and the seed after it",
    ),
    Option(
        "prompt_b",
        "second prompt for prompt interpolation",
        per_model=((DIGITS_LDM_NAME, "a blue two on a white background"),),
    ),
    Option("images", "two image files to interpolate: A,B"),
    Option("inversion_prompt", "prompt the images are inverted and regenerated with"),
    Option("frames", "frames per strip", kind="int", positive=True, default=8, maximum=MAX_FRAMES),
    Option(
        "direction",
        "prompt pair 'POSITIVE|NEGATIVE'",
        per_model=((DIGITS_LDM_NAME, "thick|thin"),),
    ),
    Option(
        "direction_prompts",
        "prompts the direction is applied to, separated by '|'; '{}' marks where the pair's "
        "words go in each row's contrast images (else after a leading a/an/the, or in front)",
        unset="--prompt",
        per_model=(
            (
                DIGITS_LDM_NAME,
                "a red seven on a white background|a blue two on a white background|"
                "a green four on a white background",
            ),
        ),
    ),
    Option(
        "strengths",
        "direction strengths",
        kind="numbers",
        number="float",
        length=(2, None),
        default=(0.0, 0.5, 1.0, 1.5, 2.0),
    ),
    Option("ood_in", "folder of in-distribution images (AUROC)", kind="path", path="folder"),
    Option("ood_out", "folder of out-of-distribution images", kind="path", path="folder"),
    Option("ood_score", "folder of images to score", kind="path", path="folder"),
)


@dataclass(frozen=True)
class Options:
    """What the latent mode reads."""

    run: RunOptions
    generation: Generation
    prompt: str | None
    reference: str | None
    batch_size: int
    features: str
    inception_weights: str | None
    feature_model: str | None
    latent_tasks: tuple[str, ...] | str | None
    seeds: tuple[int, ...] | None
    prompt_b: str | None
    images: str | None
    inversion_prompt: str | None
    frames: int
    direction: str | None
    direction_prompts: str | None
    strengths: tuple[float, ...]
    ood_in: str | None
    ood_out: str | None
    ood_score: str | None


@dataclass
class LatentOptions:
    tasks: tuple[str, ...]
    prompt: str
    prompt_b: str | None
    seeds: tuple[int, int]
    frames: int
    images: list[str] | None
    inversion_prompt: str
    direction: tuple[str, str] | None
    direction_prompts: list[str]
    strengths: list[float]
    reference: str | None
    ood_in: str | None
    ood_out: str | None
    ood_score: str | None
    features: str
    batch_size: int = 16
    settings: Any = None
    size: tuple[int, int] = (512, 512)  # (height, width) the pipeline denoises at; set by run()
    ood_limit: int = 1000


def _two_seeds(args: Options) -> tuple[int, int]:
    first, second = args.seeds or (args.run.seed, args.run.seed + 1)
    return first, second


def _pair(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split("|")]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--direction: expected 'POSITIVE|NEGATIVE', got {text!r}")
    return parts[0], parts[1]


def _tasks(requested: tuple[str, ...] | str | None, available: dict[str, bool]) -> tuple[str, ...]:
    if not requested:
        return tuple(t for t in TASK_NAMES if available[t])
    names = list(TASK_NAMES) if requested == "all" else list(requested)
    for task in names:
        if not available[task]:
            needs = {
                "prompts": "--prompt-b",
                "images": "--images A,B",
                "directions": "--direction",
                "ood": "--reference (a folder of images)",
            }[task]
            raise InputError(f"--latent-tasks: the {task} task needs {needs}")
    return tuple(t for t in TASK_NAMES if t in names)


def resolve_options(args: Options) -> LatentOptions:
    prompt = args.prompt
    if not prompt or not prompt.strip():
        raise InputError("--prompt: the latent mode needs a prompt")
    seeds = _two_seeds(args)
    if args.frames < 2:
        raise InputError(f"--frames: need at least 2, got {args.frames}")
    images = [p.strip() for p in args.images.split(",")] if args.images else None
    if images is not None:
        if len(images) != 2:
            raise InputError(f"--images: expected two files A,B, got {args.images!r}")
        for image in images:
            if not Path(image).expanduser().is_file():
                raise InputError(f"--images: {image}: no such file")
    direction = _pair(args.direction) if args.direction else None
    targets_text = args.direction_prompts or prompt
    reference = args.reference
    if (args.ood_in is None) != (args.ood_out is None):
        raise InputError(
            "--ood-in/--ood-out: AUROC needs both an in- and an out-of-distribution folder"
        )
    prompt_b = args.prompt_b
    available = {
        "seeds": True,
        "prompts": prompt_b is not None,
        "images": images is not None,
        "directions": direction is not None,
        "ood": reference is not None and Path(reference).expanduser().is_dir(),
    }
    if reference is not None and not Path(reference).expanduser().exists():
        available["ood"] = True  # named but missing: validate() says so in one line
    return LatentOptions(
        tasks=_tasks(args.latent_tasks, available),
        prompt=prompt,
        prompt_b=prompt_b,
        seeds=seeds,
        frames=args.frames,
        images=images,
        inversion_prompt=args.inversion_prompt or "",
        direction=direction,
        direction_prompts=[p.strip() for p in targets_text.split("|")],
        strengths=list(args.strengths),
        reference=reference,
        ood_in=args.ood_in,
        ood_out=args.ood_out,
        ood_score=args.ood_score,
        features=args.features,
        batch_size=int(args.batch_size),
    )


def validate(args: Options) -> None:
    """Everything checkable without the model: option syntax, files that exist and decode,
    folders with images, and a reference set large enough for OOD statistics."""
    from ..images import find_images, read_image
    from .ood import MIN_REFERENCE

    options = resolve_options(args)
    for image in options.images or []:
        if read_image(Path(image).expanduser()) is None:
            raise InputError(f"--images: {image}: cannot be decoded as an image")
    if "ood" in options.tasks:
        assert options.reference is not None
        count = len(find_images(options.reference, what="--reference"))
        if count < MIN_REFERENCE:
            raise InputError(
                f"--reference {options.reference}: {count} images; OOD statistics "
                f"need at least {MIN_REFERENCE}"
            )
        for flag, folder in (
            ("--ood-in", options.ood_in),
            ("--ood-out", options.ood_out),
            ("--ood-score", options.ood_score),
        ):
            if folder:
                find_images(folder, what=flag)
    elif options.ood_in or options.ood_score:
        raise InputError("--ood-in/--ood-score: these need the ood task and a --reference folder")


#: Tasks that read or write images through the VAE.
VAE_TASKS = ("images", "directions", "ood")


def check_model(args: Options, model: ModelConfigs | None) -> None:
    """What the model's configs rule out, before any weight is loaded or anything is written:
    a pipeline of no family the mode drives, VAE tasks without a VAE, inverting a sampler that
    cannot be inverted (LCM), and sizes the pipeline would refuse."""
    from ..pipeline_parts import FAMILIES, inversion_kind

    if model is None or not model.pipeline_class:
        return  # no model named, or a single file without configs: known once loaded
    options = resolve_options(args)
    if model.family not in FAMILIES:
        raise InputError(
            f"{model.pipeline_class}: the latent mode needs a text-to-image "
            f"pipeline of a family it drives ({', '.join(FAMILIES)})"
        )
    for task in options.tasks:
        if task in VAE_TASKS and "vae" not in model.components:
            raise InputError(f"--latent-tasks {task}: {model.pipeline_class} has no VAE")
    if "images" in options.tasks:
        try:
            inversion_kind(model.family, model.scheduler)
        except InputError as error:
            raise InputError(f"--latent-tasks images: {model.pipeline_class} ({error})") from None
    multiple = model.size_multiple()
    for flag, value in (("--height", args.generation.height), ("--width", args.generation.width)):
        if multiple and value is not None and value % multiple:
            raise InputError(
                f"{flag} {value}: {model.pipeline_class} needs a multiple of {multiple}"
            )


def planned_work(args: Options) -> list[dict[str, Any]]:
    """The chosen tasks, each about a strip of images (whole-run progress); phases the tasks
    report on their own join the plan when they start."""
    from ..events import planned_phase

    try:
        count = len(resolve_options(args).tasks)
    except Exception:  # noqa: BLE001 -- a plan is a forecast; the run itself reports errors
        return []
    return [planned_phase("tasks", count, "task", work=10 * args.generation.steps)]


def run(ctx: RunContext) -> ModeResult:
    from ..modes import ModeResult
    from .report import analyse

    options = resolve_options(ctx.options)
    options.settings = ctx.options.generation
    results, report = analyse(ctx, options)
    return ModeResult(results=results, report=report)
