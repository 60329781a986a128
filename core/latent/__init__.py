"""Latent mode: seed and prompt interpolation, image interpolation (VAE latents and DDIM
inversion), smoothness numbers, semantic directions and out-of-distribution scores.

``results["latent"]``::

    {"features": extractor, "tasks": [...],
     "seeds": {"prompt", "seeds", "frames", "slerp"|"lerp": {"max_mean_ratio", "path_length",
               "ppl", "steps", "strip"}},
     "prompts": {"prompts", "seed", "max_mean_ratio", "path_length", "ppl", "steps", "strip"},
     "images": {"vae_slerp"|"vae_lerp"|"ddim": {..smoothness.., "strip"},
                "ddim": {"reconstruction_mse", "reconstruction", ...}},
     "directions": {"pair", "strengths", "rows": [{"prompt", "attribute", "spearman",
                    "monotone"}], "monotone_share", "mean_spearman", "grid"},
     "ood": {"reference", "n_reference", "latent_znorm"|"mahalanobis": {"mean", "std", "p50",
             "p95", "p99", "threshold"}, "auroc": {...}, "scored", "flagged"}}
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import InputError

if TYPE_CHECKING:
    from core.modes import ModeResult, RunContext

DESCRIPTION = "slerp strips, image interpolation, semantic directions and OOD scores"
NEEDS_PIPELINE = True
TASK_NAMES = ("seeds", "prompts", "images", "directions", "ood")
DIGITS_DEFAULTS = {
    "prompt": "a red seven on a white background",
    "prompt_b": "a blue two on a white background",
    "direction": "thick|thin",
    "direction_prompts": "a red seven on a white background|a blue two on a white background|"
    "a green four on a white background",
}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--latent-tasks", default=None,
                       help=f"comma list of {', '.join(TASK_NAMES)} (default: all that the "
                       "given options allow)")  # fmt: skip
    group.add_argument("--seeds", default=None, help="two seeds to interpolate, e.g. 3,8")
    group.add_argument("--prompt-b", default=None, help="second prompt for prompt interpolation")
    group.add_argument("--images", default=None, help="two image files to interpolate: A,B")
    group.add_argument("--inversion-prompt", default="", help="prompt used for DDIM inversion")
    group.add_argument("--frames", type=int, default=8, help="frames per strip (default 8)")
    group.add_argument("--direction", default=None, help="prompt pair 'POSITIVE|NEGATIVE'")
    group.add_argument("--direction-prompts", default=None,
                       help="prompts the direction is applied to, separated by '|'")  # fmt: skip
    group.add_argument("--strengths", default="0,0.5,1,1.5,2",
                       help="direction strengths (default 0,0.5,1,1.5,2)")  # fmt: skip
    group.add_argument("--ood-in", default=None, help="folder of in-distribution images (AUROC)")
    group.add_argument("--ood-out", default=None, help="folder of out-of-distribution images")
    group.add_argument("--ood-score", default=None, help="folder of images to score")


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
    settings: Any = None
    size: tuple[int, int] = (512, 512)
    size_override: int | None = None
    ood_limit: int = 1000


def _is_digits(args: argparse.Namespace) -> bool:
    from core.zoo import DIGITS_LDM

    return args.model is not None and Path(args.model).resolve() == DIGITS_LDM.resolve()


def resolve_options(args: argparse.Namespace) -> LatentOptions:
    from core.zoo import DIGITS_REFERENCE

    digits = _is_digits(args)
    defaults = DIGITS_DEFAULTS if digits else {}
    prompt = args.prompt or defaults.get("prompt")
    if not prompt or not prompt.strip():
        raise InputError("--prompt: the latent mode needs a prompt")
    try:
        seeds = tuple(int(s) for s in (args.seeds or f"{args.seed},{args.seed + 1}").split(","))
    except ValueError:
        raise InputError(f"--seeds: expected two whole numbers, got {args.seeds!r}") from None
    if len(seeds) != 2:
        raise InputError(f"--seeds: expected two seeds A,B, got {args.seeds!r}")
    if args.frames < 2:
        raise InputError(f"--frames: need at least 2, got {args.frames}")
    images = [p.strip() for p in args.images.split(",")] if args.images else None
    if images is not None:
        if len(images) != 2:
            raise InputError(f"--images: expected two files A,B, got {args.images!r}")
        for image in images:
            if not Path(image).is_file():
                raise InputError(f"--images: {image}: no such file")
    direction_text = args.direction or defaults.get("direction")
    direction = None
    if direction_text:
        parts = [p.strip() for p in direction_text.split("|")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--direction: expected 'POSITIVE|NEGATIVE', got {direction_text!r}")
        direction = (parts[0], parts[1])
    targets_text = args.direction_prompts or defaults.get("direction_prompts") or prompt
    try:
        strengths = [float(s) for s in args.strengths.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--strengths: expected numbers, got {args.strengths!r}") from None
    reference = args.reference or (str(DIGITS_REFERENCE) if digits else None)
    prompt_b = args.prompt_b or defaults.get("prompt_b")
    available = {"seeds": True, "prompts": prompt_b is not None, "images": images is not None,
                 "directions": direction is not None, "ood": reference is not None}  # fmt: skip
    if args.latent_tasks:
        tasks = tuple(t.strip() for t in args.latent_tasks.split(",") if t.strip())
        for task in tasks:
            if task not in TASK_NAMES:
                raise InputError(f"--latent-tasks: unknown task {task!r} (known: "
                                 f"{', '.join(TASK_NAMES)})")  # fmt: skip
            if not available[task]:
                needs = {"prompts": "--prompt-b", "images": "--images A,B",
                         "directions": "--direction", "ood": "--reference"}[task]  # fmt: skip
                raise InputError(f"--latent-tasks: the {task} task needs {needs}")
    else:
        tasks = tuple(t for t in TASK_NAMES if available[t])
    return LatentOptions(
        tasks=tasks, prompt=prompt, prompt_b=prompt_b, seeds=seeds,  # type: ignore[arg-type]
        frames=args.frames, images=images, inversion_prompt=args.inversion_prompt,
        direction=direction, direction_prompts=[p.strip() for p in targets_text.split("|")],
        strengths=strengths, reference=reference, ood_in=args.ood_in, ood_out=args.ood_out,
        ood_score=args.ood_score, features=args.features or ("digits" if digits else "inception"),
        size_override=args.height,
    )  # fmt: skip


def validate(args: argparse.Namespace) -> None:
    from core.images import find_images

    options = resolve_options(args)
    if "ood" in options.tasks:
        find_images(options.reference, what="--reference")
        for flag, folder in (("--ood-in", options.ood_in), ("--ood-out", options.ood_out),
                             ("--ood-score", options.ood_score)):  # fmt: skip
            if folder:
                find_images(folder, what=flag)


def run(ctx: RunContext) -> ModeResult:
    from core.generation import GenerationSettings
    from core.latent.report import analyse
    from core.modes import ModeResult

    options = resolve_options(ctx.args)
    options.settings = GenerationSettings.from_args(ctx.args, steps=20, guidance_scale=5.0)
    results, report = analyse(ctx, options)
    return ModeResult(results=results, report=report)
