"""Metrics mode: FID, KID, IS, CLIP score, precision/recall, density/coverage (and CMMD),
streamed as N grows, checkpointed per step, resumable, and split across processes.

``results["metrics"]``::

    {"n_generated", "n_reference", "seconds",
     "phase_seconds": {"reference", "sampling", "statistics"},
     "features": {"name", "dim", "resize_policy"},
     "reference": {"source", "n", "content_hash", "skipped_files", "from_cache", "has_features"},
     "fid": {"value", "n", "extractor", "resize_policy", "interval": [lo, hi], "interval_level",
             "interval_method", "interval_covers", "fid_inf", "fid_inf_stderr", "fid_inf_fit",
             "fid_inf_note", "fid_inf_slope", "fid_inf_points", "curve": [[n, fid, kid]]},
     "kid": {"mean", "std", "std_note", "subset_size", "subsets", ...},
     "is": {"mean", "std", "std_note", "splits", ...},
     "precision" / "recall" (k=3) / "density" / "coverage" (k=5): {"value", "k", ...},
     "clip_score": {"mean", "std", "n", "model"}, "cmmd": {"value", "n", "model"},
     "throughput": {"batch_size", "batch_sizes", "auto_batch", "applied", "warmup_seconds",
                    "steady_seconds", "steady_images", "steady_images_per_second"},
     "statistics_device"}

``seconds`` is the mode's wall time over every attempt, the sum of ``phase_seconds``
(:mod:`.phases`); the run's own wall time is ``results["run"]["seconds"]``. The FID interval
covers E[FID at N], as ``interval_covers`` says (:func:`.scores.fid_interval`); ``fid_inf`` is
never below 0 (``fid_inf_note`` says when the fit's intercept was).

Each metric (its ``--metrics`` name, its entries above, how they are shown, what it needs and
its computation) is one record of the registry, ``core/metrics/registry.py``.

``std`` of KID and IS says what it measures in ``std_note``, and is null where it would
measure nothing (KID when every generated subset is the whole set; IS with one split).

Live curves are ``series`` events named ``fid`` and ``kid`` (x = N samples); final numbers are
``metric`` events; progress phases are ``reference``, ``generate`` (or ``features`` for
``--generated``) and ``scores``.

Defaults are declared with the options (``core.options`` and ``OPTIONS`` below; ``--help``
shows them): the shipped digits model gets its own extractor, reference folder, prompts, CLIP
and a smaller N; any other model gets ``inception`` (torch-fidelity's network, resized as TF-FID
does) and needs ``--reference``. ``--batch-size auto`` on CUDA takes the largest batch that
fits. Every step (one batch per process) is checkpointed, so a kill loses at most the steps
in flight. Images of any size, from the model or from folders on either side, reach the
extractor at their own size: its resize is the only one.

Examples::

    diffusionscope run --modes metrics --model MODEL --prompts-file prompts.txt \
        --reference real/ -n 10000 --inception-weights pt_inception-2015-12-05.pth
    diffusionscope run --modes metrics --generated samples/ --reference fid_stats.npz
    accelerate launch --multi_gpu --num_processes K -m diffusionscope run --modes metrics ...
    torchrun --nproc_per_node K -m diffusionscope run --modes metrics ...   # same results as one process
    diffusionscope fid real/ samples/ --features inception --resize clean
    diffusionscope run --modes metrics --model MODEL --reference-set captions_val2014.json \
        --reference-root val2014/ -n 30000 --reference-size 256 --resize clean
    diffusionscope stats captions_val2014.json --reference-root val2014/ -n 30000 -o coco.npz

Protocols (``resize.py``, ``caption_sets.py``, ``reference_plan.py``, ``stats_files.py``):
``--resize tf|clean`` is Inception's resize, ``--reference-set`` draws prompts and reference
images from a caption set, ``--reference-size``/``--reference-crop`` crop the reference, and
``results["metrics"]["protocol"]`` records all of it with the extractor's weights hash.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..options import (
    BATCH_SIZE,
    DEVICE,
    DIGITS_LDM_NAME,
    FEATURES,
    INCEPTION_WEIGHTS,
    JSON,
    NUM_SAMPLES,
    SEED,
    Generation,
    Option,
    RunOptions,
)
from ..zoo import DIGITS_CLIP
from .registry import ALL_METRICS, DEFAULT_METRICS, FID, needed
from .resize import CROPS, RESIZE_POLICIES

if TYPE_CHECKING:
    from ..modes import ModeResult, RunContext

DESCRIPTION = "FID, KID, IS, CLIP score, precision/recall, density/coverage against a reference"
NEEDS_PIPELINE = True
DEFAULT_CLIP = "openai/clip-vit-large-patch14"
MAX_BOOTSTRAP = 10_000


def _spelled_axis(text: str) -> str:
    """``--sweep``'s reading (:func:`.sweep.spelled_axis`), imported when a value comes."""
    from .sweep import spelled_axis

    return spelled_axis(text)


RESIZE = Option(
    "resize",
    "Inception's resize to 299: tf (torch-fidelity, TF FID) or clean (clean-fid, PIL bicubic)",
    kind="choice",
    default="tf",
    choices=RESIZE_POLICIES,
)
REFERENCE_SET = Option(
    "reference_set",
    "caption set (COCO captions .json, or .csv/.jsonl with image,caption): -n drawn "
    "captions are the prompts, their images the reference",
    kind="path",
    path="file",
    metavar="FILE",
)
REFERENCE_ROOT = Option(
    "reference_root",
    "folder of the caption set's images",
    kind="path",
    path="folder",
    metavar="DIR",
    unset="the caption file's folder",
)
REFERENCE_SIZE = Option(
    "reference_size",
    "resize each reference image's shorter side to S (never enlarging)",
    kind="int",
    positive=True,
    metavar="S",
)
REFERENCE_CROP = Option(
    "reference_crop",
    "centre-crop reference images to a square, or not",
    kind="choice",
    choices=CROPS,
    unset="center with --reference-size, else none",
)
#: The reference protocol, shared by ``run``, ``fid`` and ``stats``.
REFERENCE_OPTIONS = (REFERENCE_SET, REFERENCE_ROOT, REFERENCE_SIZE, REFERENCE_CROP)

OPTIONS: tuple[Option, ...] = (
    Option(
        "generated",
        "evaluate this folder of images instead of sampling the model",
        kind="path",
        path="folder",
        metavar="DIR",
    ),
    RESIZE,
    *REFERENCE_OPTIONS,
    Option(
        "metrics",
        f"which metrics, comma-separated, of {', '.join(ALL_METRICS)}",
        kind="choices",
        choices=ALL_METRICS,
        default=DEFAULT_METRICS,
    ),
    Option(
        "clip_model",
        "CLIP model for CLIP score and CMMD",
        default=DEFAULT_CLIP,
        per_model=((DIGITS_LDM_NAME, DIGITS_CLIP),),
    ),
    Option(
        "stream_at",
        "sample counts at which to report FID/KID",
        kind="numbers",
        positive=True,
        unset="a few counts up to N",
    ),
    Option(
        "bootstrap",
        "half-samples for the FID interval (0: none)",
        kind="int",
        default=50,
        maximum=MAX_BOOTSTRAP,
    ),
    Option("save_images", "save every generated PNG", kind="bool"),
    Option(
        "save_features", "write artifacts/features_real.npz and features_generated.npz", kind="bool"
    ),
    Option(
        "sweep",
        "sweep an option over values, NAME=V1,V2,... (repeat for a grid; model=DIR/* for "
        "checkpoints)",
        metavar="NAME=VALUES",
        repeat=True,
        parse=_spelled_axis,
    ),
    Option(
        "watch",
        "evaluate each new checkpoint that appears in DIR, until stopped",
        kind="path",
        path="folder",
        metavar="DIR",
    ),
    Option("yes", "run a --sweep grid of over 1000 points", kind="bool"),
    Option(
        "compile",
        "torch.compile the denoiser (UNet or transformer); its first steps "
        "compile it, timed apart as warm-up",
        kind="bool",
    ),
)

#: ``diffusionscope fid A B``: the same declarations, with the defaults of a plain comparison.
FID_OPTIONS: tuple[Option, ...] = (
    replace(FEATURES, per_model=()),
    RESIZE,
    INCEPTION_WEIGHTS,
    replace(BATCH_SIZE, help="images per batch", default=50, words=()),
    DEVICE,
    JSON,
)

#: ``diffusionscope stats SOURCE -o OUT.npz``: a comparison's options, the reference protocol,
#: and the caption draw's ``-n`` and ``--seed``.
STATS_OPTIONS: tuple[Option, ...] = (
    Option("output", "the statistics file to write", short="-o", metavar="OUT.npz"),
    *FID_OPTIONS[:-1],
    REFERENCE_ROOT,
    REFERENCE_SIZE,
    REFERENCE_CROP,
    replace(
        NUM_SAMPLES,
        help="captions to draw from a caption set",
        default=None,
        per_model=(),
        unset_with=(),
        unset="every image",
    ),
    replace(SEED, help="the caption draw's seed"),
    JSON,
)


@dataclass(frozen=True)
class Options:
    """What the metrics mode reads."""

    run: RunOptions
    generation: Generation
    num_samples: int | None
    reference: str | None
    prompts_file: str | None
    batch_size: int | str
    features: str
    inception_weights: str | None
    feature_model: str | None
    generated: str | None
    metrics: tuple[str, ...]
    clip_model: str
    stream_at: tuple[int, ...] | None
    bootstrap: int
    save_images: bool
    save_features: bool
    resize: str
    reference_set: str | None
    reference_root: str | None
    reference_size: int | None
    reference_crop: str | None
    sweep: tuple[str, ...] | None
    watch: str | None
    yes: bool
    compile: bool


@dataclass
class MetricsOptions:
    features: str
    metrics: tuple[str, ...]
    prompts: list[str] | None
    num_samples: int
    clip_model: str
    stream_at: tuple[int, ...] | None
    bootstrap: int
    save_images: bool
    save_features: bool
    compile: bool = False


def resolve_options(args: Options) -> MetricsOptions:
    """What the run computes with (the prompts read, the extractor's canonical name); the
    defaults (the shipped digits model's own extractor, CLIP and reference) are declared."""
    from .features import EXTRACTORS, canonical_name

    features = canonical_name(args.features)
    if features not in EXTRACTORS:
        raise InputError(
            f"--features {features}: unknown extractor (known: {', '.join(EXTRACTORS)})"
        )
    captioned = args.reference_set is not None
    if captioned and args.prompts_file is not None:
        raise InputError("--prompts-file: with --reference-set the drawn captions are the prompts")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap: must be zero or more, got {args.bootstrap}")
    from .loop import read_prompts

    prompts = read_prompts(args.prompts_file) if args.prompts_file and not args.generated else None
    if captioned and not args.generated:
        from .caption_sets import draw_from_args

        prompts = list(draw_from_args(args, args.num_samples).captions)
    return MetricsOptions(
        features=features,
        metrics=args.metrics,
        prompts=prompts,
        num_samples=args.num_samples or 0,
        clip_model=args.clip_model,
        stream_at=args.stream_at,
        bootstrap=args.bootstrap,
        save_images=args.save_images,
        save_features=args.save_features,
        compile=args.compile,
    )


def reference_draw_size(args: Options, options: MetricsOptions) -> int | None:
    """How many images a caption set draws: one per sample (all for ``--generated``
    without ``-n``)."""
    return args.num_samples if args.generated else options.num_samples


def validate(args: Options) -> None:
    from .features import check_resize
    from .inputs import check_inception_available, feature_dim, require_readable_images
    from .reference_plan import check_plan, plan_reference
    from .stats_files import effective_resize

    options = resolve_options(args)
    check_resize(options.features, args.resize)
    plan = plan_reference(args, reference_draw_size(args, options))
    check_plan(
        plan,
        extractor=options.features,
        resize=effective_resize(options.features, args.resize),
        dim=feature_dim(options.features, args.feature_model),
    )
    if args.generated:
        require_readable_images(args.generated, "generated folder")
        for flag, value in (
            ("--height", args.generation.height),
            ("--width", args.generation.width),
        ):
            if value is not None:
                raise InputError(
                    f"{flag}: sets the size of sampled images; images of --generated "
                    "are used at their own size, as the reference's are"
                )
        if options.compile:
            raise InputError("--compile: compiles the denoiser, and --generated samples nothing")
    _check_hub_models(args, options)
    if options.features == "inception":
        check_inception_available(args.inception_weights)
    from .sweep import check_plan as check_sweep_plan

    check_sweep_plan(args)


def _check_hub_models(args: Options, options: MetricsOptions) -> None:
    """The CLIP model (CLIP score, CMMD) and a hub feature model must be at hand before the
    run directory exists: in the local cache on an offline host, else reachable."""
    from ..loading import check_hub_files
    from .features import DEFAULT_DINOV2
    from .inputs import check_model_weights

    needs = needed(options.metrics)
    if ("clip_scores" in needs and options.prompts is not None) or "clip_embeddings" in needs:
        check_hub_files(options.clip_model, ("config.json",), "--clip-model")
        check_model_weights(options.clip_model, "--clip-model", args.run.allow_pickle)
    if options.features in ("dinov2", "clip"):
        model = args.feature_model or (
            DEFAULT_DINOV2 if options.features == "dinov2" else DEFAULT_CLIP
        )
        what = f"--features {options.features}"
        check_hub_files(model, ("config.json",), what)
        check_model_weights(model, what, args.run.allow_pickle)


def planned_work(args: Options) -> list[dict[str, Any]]:
    """The phases this run will go through, with their sizes, before anything is loaded (the
    whole-run progress and ETA): reference features (when a folder is given), the samples
    (each costs its denoiser steps) or the folder's features, then the scores."""
    from ..events import planned_phase

    phases = []
    count = _image_count(args.reference, "reference folder")
    if count:
        phases.append(planned_phase("reference", count, "img"))
    points = sweep_points(args)  # a campaign: every point's share
    if args.generated:
        samples = args.num_samples or _image_count(args.generated, "generated folder")
        phases.append(planned_phase("features", samples, "img"))
    else:
        samples = args.num_samples or 0
        phases.append(
            planned_phase("generate", samples * points, "img", work=args.generation.steps)
        )
    phases.append(planned_phase("scores", points, "stage", work=max(1.0, samples / 20)))
    return phases


def _image_count(folder: str | None, what: str) -> int:
    """How many images a folder holds (0 for none, a file, or a folder that cannot be read)."""
    from .reference import find_images

    if not folder or not Path(folder).is_dir():
        return 0
    try:
        return len(find_images(Path(folder), what=what))
    except InputError:
        return 0


def sweep_points(args: argparse.Namespace) -> int:
    """How many points the campaign's ``--sweep`` grid has (1 for a single run; a ``--watch``
    campaign plans its first checkpoint, the next ones join the plan as they come)."""
    from .sweep import plan_from_args

    try:
        plan = plan_from_args(args)
    except InputError:
        return 1  # refused before the run starts; a forecast never fails a run
    return plan.size if plan is not None else 1


def run(ctx: RunContext) -> ModeResult:
    import warnings

    from .loop import run_metrics

    # Features are kept on purpose (PR/DC need them); these notices would only alarm users.
    warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
    warnings.filterwarnings("ignore", message=".*`max_length` is ignored.*")

    options = resolve_options(ctx.options)
    if not ctx.options.generated and options.prompts is None:
        model = ctx.model()
        if model.summary.text_conditioned:
            raise InputError(
                f"--prompts-file: {model.summary.pipeline_class} is text-conditioned; give a "
                "prompts file (one prompt a line, cycled to reach N)"
            )
    if ctx.options.sweep or ctx.options.watch:
        from .campaign import run_campaign

        return run_campaign(ctx, options)
    return run_metrics(ctx, options)


def fid_command(args: argparse.Namespace) -> int:
    """``diffusionscope fid A B``: FID between two image folders, ADM image batches or
    ``.npz`` statistics."""
    import json

    from .features import canonical_name, check_resize
    from .frechet import frechet_distance
    from .reference_plan import load_pair
    from .stats_files import effective_resize, protocol_line, protocol_of

    args.features = canonical_name(args.features)
    check_resize(args.features, args.resize)
    first, second, extractor = load_pair(args)
    value = frechet_distance(first.mu, first.sigma, second.mu, second.sigma)
    protocol = protocol_of(extractor, first) if extractor is not None else None
    if args.json:
        print(
            json.dumps(
                {
                    FID.name: value,
                    "n_a": first.n,
                    "n_b": second.n,
                    "features": args.features,
                    "resize": effective_resize(args.features, args.resize) if protocol else None,
                    "resize_policy": protocol["resize_policy"]
                    if protocol
                    else "precomputed statistics",
                    "protocol": protocol,
                }
            )
        )
    else:
        print(f"FID:  {value}")
        if protocol is not None:
            print(f"protocol of A: {protocol_line(protocol)}")
    return 0


def stats_command(args: argparse.Namespace) -> int:
    """``diffusionscope stats SOURCE -o OUT.npz``: see ``stats_writer.py``."""
    from .stats_writer import write_statistics

    return write_statistics(args)


def check_model(args: Options, model: Any) -> None:
    """Refuse from the configs (``core.families.ModelConfigs``) what the run would refuse
    after loading: a text-conditioned pipeline needs prompts to generate from."""
    captioned = args.reference_set is not None  # the drawn captions are the prompts
    if model is None or args.generated or args.prompts_file or captioned:
        return
    if not model.text_conditioned:
        return
    raise InputError(
        f"--prompts-file: {model.pipeline_class} is text-conditioned; give a prompts file (one "
        "prompt a line, cycled to reach N)"
    )
