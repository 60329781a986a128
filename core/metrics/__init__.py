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

Defaults: the shipped digits model gets ``--features digits``, its own reference folder, prompts
and CLIP, and N=500; any other model gets ``inception`` (torch-fidelity's network, resized as
TF-FID does) and N=10000, and needs ``--reference``. Batch 16 (``--batch-size auto`` on CUDA:
the largest that fits), 25 steps, guidance 5. Every step (one batch per process) is
checkpointed, so a kill loses at most the steps in flight. Images of any size, from the model or
from folders on either side, reach the extractor at their own size: its resize is the only one.

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
from ..options import BATCH_SIZE, DEVICE, FEATURES, JSON, NUM_SAMPLES, SEED, Option
from .registry import ALL_METRICS, DEFAULT_METRICS, FID, needed
from .resize import CROPS, RESIZE_POLICIES

if TYPE_CHECKING:
    from ..modes import ModeResult, RunContext

DESCRIPTION = "FID, KID, IS, CLIP score, precision/recall, density/coverage against a reference"
NEEDS_PIPELINE = True
DEFAULT_CLIP = "openai/clip-vit-large-patch14"
MAX_BOOTSTRAP = 10_000


INCEPTION_WEIGHTS = Option(
    "inception_weights", "local pt_inception-2015-12-05 weights for offline hosts", metavar="PATH"
)

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
    metavar="FILE",
)
REFERENCE_ROOT = Option(
    "reference_root",
    "folder of the caption set's images",
    metavar="DIR",
    default_text="default: the caption file's folder",
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
    default_text="default center with --reference-size, else none",
)
#: The reference protocol, shared by ``run``, ``fid`` and ``stats``.
REFERENCE_OPTIONS = (REFERENCE_SET, REFERENCE_ROOT, REFERENCE_SIZE, REFERENCE_CROP)

OPTIONS: tuple[Option, ...] = (
    Option(
        "generated", "evaluate this folder of images instead of sampling the model", metavar="DIR"
    ),
    RESIZE,
    *REFERENCE_OPTIONS,
    Option(
        "metrics",
        "which metrics, comma-separated (add "
        f"{','.join(m for m in ALL_METRICS if m not in DEFAULT_METRICS)})",
        default_text=f"default {','.join(DEFAULT_METRICS)}",
    ),
    INCEPTION_WEIGHTS,
    Option("feature_model", "hub id or folder for the dinov2/clip extractors"),
    Option(
        "clip_model", "CLIP model for CLIP score and CMMD", default_text=f"default {DEFAULT_CLIP}"
    ),
    Option(
        "stream_at",
        "sample counts at which to report FID/KID",
        default_text="default 250,500,1k,2k,5k...",
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
    ),
    Option(
        "watch",
        "evaluate each new checkpoint that appears in DIR, until stopped",
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
    replace(FEATURES, default="inception", default_text=""),
    RESIZE,
    INCEPTION_WEIGHTS,
    replace(BATCH_SIZE, help="images per batch", default=50, default_text="", words=()),
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
        default_text="default: every image",
        modes=(),
    ),
    replace(SEED, help="the caption draw's seed"),
    JSON,
)


@dataclass
class MetricsOptions:
    features: str
    metrics: tuple[str, ...]
    prompts: list[str] | None
    num_samples: int
    clip_model: str
    stream_at: str | None
    bootstrap: int
    save_images: bool
    save_features: bool
    compile: bool = False


def _is_digits_model(args: argparse.Namespace) -> bool:
    from ..zoo import DIGITS_LDM

    return args.model is not None and Path(args.model).resolve() == DIGITS_LDM.resolve()


def resolve_options(args: argparse.Namespace) -> MetricsOptions:
    """Fill defaults (the shipped digits model gets its own extractor, CLIP and reference)."""
    from ..zoo import DIGITS_CLIP, DIGITS_PROMPTS, DIGITS_REFERENCE
    from .features import EXTRACTORS, canonical_name

    digits = _is_digits_model(args) and not args.generated
    features = canonical_name(args.features or ("digits" if digits else "inception"))
    if features not in EXTRACTORS:
        raise InputError(
            f"--features {features}: unknown extractor (known: {', '.join(EXTRACTORS)})"
        )
    captioned = getattr(args, "reference_set", None) is not None
    if captioned and args.prompts_file is not None:
        raise InputError("--prompts-file: with --reference-set the drawn captions are the prompts")
    if args.reference is None and digits and not captioned:
        args.reference = str(DIGITS_REFERENCE)
    if args.prompts_file is None and digits and not captioned:
        args.prompts_file = str(DIGITS_PROMPTS)
    given = ",".join(DEFAULT_METRICS) if args.metrics is None else args.metrics
    metrics = tuple(m.strip() for m in given.split(",") if m.strip())
    if not metrics:
        raise InputError(f"--metrics: name at least one of {', '.join(ALL_METRICS)}")
    for metric in metrics:
        if metric not in ALL_METRICS:
            raise InputError(
                f"--metrics: unknown metric {metric!r} (known: {', '.join(ALL_METRICS)})"
            )
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap: must be zero or more, got {args.bootstrap}")
    if args.stream_at:
        try:
            points = [int(p) for p in args.stream_at.split(",") if p.strip()]
        except ValueError:
            raise InputError(
                f"--stream-at: expected whole numbers, got {args.stream_at!r}"
            ) from None
        if any(p <= 0 for p in points):
            raise InputError("--stream-at: sample counts must be positive")
    from .loop import read_prompts

    prompts = read_prompts(args.prompts_file) if args.prompts_file and not args.generated else None
    num_samples = args.num_samples or (500 if digits else 10000)
    if captioned and not args.generated:
        from .caption_sets import draw_from_args

        prompts = list(draw_from_args(args, num_samples).captions)
    clip_model = args.clip_model or (str(DIGITS_CLIP) if _is_digits_model(args) else DEFAULT_CLIP)
    return MetricsOptions(
        features=features,
        metrics=metrics,
        prompts=prompts,
        num_samples=num_samples,
        clip_model=clip_model,
        stream_at=args.stream_at,
        bootstrap=args.bootstrap,
        save_images=args.save_images,
        save_features=args.save_features,
        compile=bool(getattr(args, "compile", False)),
    )


def reference_draw_size(args: argparse.Namespace, options: MetricsOptions) -> int | None:
    """How many images a caption set draws: one per sample (all for ``--generated``
    without ``-n``)."""
    return args.num_samples if args.generated else options.num_samples


def validate(args: argparse.Namespace) -> None:
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
        for flag, value in (("--height", args.height), ("--width", args.width)):
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


def _check_hub_models(args: argparse.Namespace, options: MetricsOptions) -> None:
    """The CLIP model (CLIP score, CMMD) and a hub feature model must be at hand before the
    run directory exists: in the local cache on an offline host, else reachable."""
    from ..loading import check_hub_files
    from .features import DEFAULT_DINOV2
    from .inputs import check_model_weights

    needs = needed(options.metrics)
    if ("clip_scores" in needs and options.prompts is not None) or "clip_embeddings" in needs:
        check_hub_files(options.clip_model, ("config.json",), "--clip-model")
        check_model_weights(options.clip_model, "--clip-model", args.allow_pickle)
    if options.features in ("dinov2", "clip"):
        model = args.feature_model or (
            DEFAULT_DINOV2 if options.features == "dinov2" else DEFAULT_CLIP
        )
        what = f"--features {options.features}"
        check_hub_files(model, ("config.json",), what)
        check_model_weights(model, what, args.allow_pickle)


def planned_work(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The phases this run will go through, with their sizes, before anything is loaded (the
    whole-run progress and ETA): reference features (when a folder is given), the samples
    (each costs its denoiser steps) or the folder's features, then the scores."""
    from ..events import planned_phase
    from ..zoo import DIGITS_REFERENCE
    from .reference import find_images

    digits = _is_digits_model(args) and not args.generated
    reference = args.reference or (str(DIGITS_REFERENCE) if digits else None)
    phases = []
    if reference and Path(reference).is_dir():
        try:
            count = len(find_images(Path(reference), what="reference folder"))
        except InputError:
            count = 0
        if count:
            phases.append(planned_phase("reference", count, "img"))
    samples = args.num_samples or (500 if digits else 10000)
    points = sweep_points(args)  # a campaign: every point's share
    if args.generated:
        phases.append(planned_phase("features", samples, "img"))
    else:
        phases.append(planned_phase("generate", samples * points, "img", work=args.steps or 25))
    phases.append(planned_phase("scores", points, "stage", work=max(1.0, samples / 20)))
    return phases


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

    options = resolve_options(ctx.args)
    if not ctx.args.generated and options.prompts is None:
        model = ctx.model()
        if model.summary.text_conditioned:
            raise InputError(
                f"--prompts-file: {model.summary.pipeline_class} is text-conditioned; give a "
                "prompts file (one prompt a line, cycled to reach N)"
            )
    if ctx.args.sweep or ctx.args.watch:
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


def check_model(args: argparse.Namespace, model: Any) -> None:
    """Refuse from the configs (``core.families.ModelConfigs``) what the run would refuse
    after loading: a text-conditioned pipeline needs prompts to generate from."""
    captioned = getattr(args, "reference_set", None) is not None  # captions are the prompts
    if model is None or args.generated or args.prompts_file or captioned:
        return
    if not model.text_conditioned:
        return
    raise InputError(
        f"--prompts-file: {model.pipeline_class} is text-conditioned; give a prompts file (one "
        "prompt a line, cycled to reach N)"
    )
