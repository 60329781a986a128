"""What a run's reference is, decided and checked before anything is written, then loaded.

``--reference`` names a folder of images, a statistics ``.npz`` (``mu``/``sigma``, perhaps
``features`` and a protocol) or an ADM image batch (``arr_0``); ``--reference-set`` names a
caption set whose drawn images are the reference. ``--reference-size``/``--reference-crop``
apply to every kind that has images. :func:`plan_reference` reads the options,
:func:`check_plan` does every check that can fail (images present, none smaller than the crop,
a statistics file of the run's extractor, dimension and resize policy), and
:func:`load_planned` computes or reads the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .caption_sets import Draw, draw_from_args
from .resize import ReferenceCrop


@dataclass(frozen=True)
class ReferencePlan:
    #: ``folder``, ``stats``, ``images`` (an ADM batch) or ``caption_set``.
    kind: str
    path: str
    crop: ReferenceCrop
    draw: Draw | None = None

    @property
    def has_images(self) -> bool:
        return self.kind != "stats"


def plan_reference(args: Any, n: int | None) -> ReferencePlan:
    """The reference ``args`` name; a caption set draws ``n`` images (all when None)."""
    crop = ReferenceCrop.from_args(args)
    reference_set = getattr(args, "reference_set", None)
    reference = getattr(args, "reference", None)
    if reference_set is not None:
        if reference is not None:
            raise InputError(
                "--reference-set: the drawn images are the reference; give it or --reference"
            )
        return ReferencePlan("caption_set", reference_set, crop, draw_from_args(args, n))
    if getattr(args, "reference_root", None) is not None:
        raise InputError("--reference-root: the folder of --reference-set's images; no set given")
    if reference is None:
        raise InputError(
            "--reference: a reference folder, .npz statistics or image batch, or "
            "--reference-set, is needed"
        )
    return plan_path(reference, crop)


def plan_path(path: str, crop: ReferenceCrop | None = None) -> ReferencePlan:
    """A folder, statistics file or ADM batch, by what it holds."""
    from .stats_files import image_batch_shape

    crop = crop or ReferenceCrop()
    file = Path(path).expanduser()
    if file.suffix.lower() != ".npz":
        return ReferencePlan("folder", path, crop)
    if image_batch_shape(file) is not None:
        return ReferencePlan("images", path, crop)
    if crop.active:
        raise InputError(
            f"--reference-crop/--reference-size: {path} holds statistics, not images to crop"
        )
    return ReferencePlan("stats", path, crop)


def check_plan(
    plan: ReferencePlan,
    *,
    extractor: str | None = None,
    resize: str | None = None,
    dim: int | None = None,
) -> None:
    """Every check on the reference that needs no network: readable images (and none smaller
    than the crop), or statistics of the run's extractor, dimension and resize policy."""
    from ..images import find_images
    from .reference import validate_reference

    if plan.kind == "caption_set":
        paths: list[Path] = list(plan.draw.images)  # type: ignore[union-attr]
    elif plan.kind == "folder":
        validate_reference(plan.path)
        paths = find_images(plan.path, what="reference folder")
    else:
        validate_reference(plan.path, dim, extractor=extractor, resize=resize)
        paths = []
    if plan.crop.size is None:
        return
    if plan.kind == "images":
        from .stats_files import image_batch_shape

        shape = image_batch_shape(Path(plan.path).expanduser())
        plan.crop.check_size(shape[2], shape[1], f"the images of {plan.path}")  # type: ignore[index]
    for path in paths:
        size = _image_size(path)
        if size is not None:
            plan.crop.check_size(*size, str(path))


def _image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the file's header (nothing decoded); None if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def load_planned(
    plan: ReferencePlan, extractor: Any, batch_size: int, progress: Any = None, log: Any = None
) -> Any:
    """The reference statistics the plan names, under the extractor's protocol; for images,
    ``protocol`` records the crop and the caption draw (``stats_files.protocol_of``)."""
    stats = _load(plan, extractor, batch_size, progress, log)
    if plan.kind != "stats":  # what images know of their protocol (a file says its own)
        stats.protocol = {
            "reference_crop": plan.crop.describe(),
            "reference_source": stats.source,
            **(
                {"caption_set": str(plan.draw.caption_set.source), "caption_seed": plan.draw.seed}
                if plan.draw is not None
                else {}
            ),
        }
    return stats


def _load(plan: ReferencePlan, extractor: Any, batch_size: int, progress: Any, log: Any) -> Any:
    from .reference import load_npz_stats, reference_from_files, reference_from_folder
    from .stats_files import resize_name

    if plan.kind == "stats":
        return load_npz_stats(
            Path(plan.path),
            expected_dim=extractor.num_features,
            extractor=extractor.name,
            resize=resize_name(extractor),
        )
    if plan.kind == "folder":
        return reference_from_folder(plan.path, extractor, batch_size, progress, log, plan.crop)
    if plan.kind == "images":
        file = Path(plan.path).expanduser()
        stats = reference_from_files(
            file.parent, [file], extractor, batch_size, progress, log, plan.crop
        )
        stats.source = str(file)
        return stats
    draw = plan.draw
    root = draw.caption_set.root  # type: ignore[union-attr]
    stats = reference_from_files(
        root,
        list(draw.images),
        extractor,
        batch_size,
        progress,
        log,
        plan.crop,  # type: ignore[union-attr]
    )
    stats.source = str(draw.caption_set.source)  # type: ignore[union-attr]
    return stats


def load_pair(args: Any) -> tuple[Any, Any, Any]:
    """``fid A B``'s two sides and the extractor (None for two statistics files, whose own
    dimensions and protocols must then agree), every check made before any extraction."""
    from ..loading import resolve_device
    from .features import get_extractor
    from .inputs import check_inception_available, feature_dim
    from .reference import load_npz_stats
    from .stats_files import check_protocol, effective_resize

    plans = [plan_path(path) for path in (args.path_a, args.path_b)]
    with_images = any(plan.has_images for plan in plans)
    for plan in plans:
        check_plan(
            plan,
            extractor=args.features if with_images else None,
            resize=effective_resize(args.features, args.resize) if with_images else None,
            dim=feature_dim(args.features, None) if with_images else None,
        )
    extractor = None
    if with_images:
        if args.features == "inception":
            check_inception_available(args.inception_weights)
        extractor = get_extractor(
            args.features,
            resolve_device(args.device),
            inception_weights=args.inception_weights,
            resize=args.resize,
        )
        first, second = (load_planned(plan, extractor, args.batch_size) for plan in plans)
    else:
        first, second = (load_npz_stats(Path(plan.path)) for plan in plans)
        theirs = first.protocol or {}
        check_protocol(
            Path(args.path_b),
            second.protocol,
            extractor=theirs.get("extractor"),
            resize=theirs.get("resize"),
        )
    if first.dim != second.dim:
        raise InputError(
            f"fid: {args.path_a} has {first.dim}-d and {args.path_b} {second.dim}-d statistics"
        )
    return first, second, extractor
