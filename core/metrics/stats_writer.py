"""``diffusionscope stats SOURCE -o OUT.npz``: reference statistics for others to use.

``SOURCE`` is an image folder, an ADM image batch (``.npz`` with ``arr_0``) or a caption set
(``.json``/``.csv``/``.jsonl``, whose images, all or ``-n`` drawn with ``--seed``, are read
from ``--reference-root``). The output holds ``mu`` and ``sigma`` (pytorch-fid and clean-fid
read them as they are), the features and logits, and the protocol (``stats_files.py``); a run
or ``fid`` given it as ``--reference`` gets KID, precision/recall and density/coverage too.
Everything is checked before the features are computed, and the file is written atomically at
the end: a bad input writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..text import printable


def check_output(path: str | None) -> Path:
    """``-o``: a ``.npz`` in an existing folder."""
    if not path:
        raise InputError("stats: -o OUT.npz is required")
    target = Path(path).expanduser()
    if target.suffix.lower() != ".npz":
        raise InputError(f"-o {path}: the statistics file must end in .npz")
    if target.is_dir():
        raise InputError(f"-o {path}: is a folder")
    if not target.parent.is_dir():
        raise InputError(f"-o {path}: no such folder {target.parent}")
    return target


def write_statistics(args: argparse.Namespace) -> int:
    from ..loading import resolve_device
    from .caption_sets import is_caption_set
    from .features import canonical_name, check_resize, get_extractor
    from .inputs import check_inception_available, feature_dim
    from .reference_plan import check_plan, load_planned, plan_path, plan_reference
    from .stats_files import effective_resize, protocol_line, protocol_of, write_stats

    target = check_output(args.output)
    args.features = canonical_name(args.features)
    check_resize(args.features, args.resize)
    if is_caption_set(args.source):
        args.reference_set, args.reference = args.source, None
        plan = plan_reference(args, args.num_samples)
    else:
        if args.num_samples is not None:
            raise InputError("-n: draws captions from a caption set; the source is not one")
        if args.reference_root is not None:
            raise InputError("--reference-root: the folder of a caption set's images; no set given")
        from .resize import ReferenceCrop

        plan = plan_path(args.source, ReferenceCrop.from_args(args))
    if plan.kind == "stats":
        raise InputError(f"stats {args.source}: holds statistics already, not images")
    check_plan(
        plan,
        extractor=args.features,
        resize=effective_resize(args.features, args.resize),
        dim=feature_dim(args.features, getattr(args, "feature_model", None)),
    )
    if args.features == "inception":
        check_inception_available(args.inception_weights)
    extractor = get_extractor(
        args.features,
        resolve_device(args.device),
        inception_weights=args.inception_weights,
        model=getattr(args, "feature_model", None),
        resize=args.resize,
    )
    stats = load_planned(plan, extractor, args.batch_size)
    protocol = protocol_of(extractor, stats)
    write_stats(target, stats, protocol)
    if args.json:
        print(json.dumps({"output": str(target), "n": stats.n, "protocol": protocol}))
    else:
        print(f"wrote {printable(target)}: {stats.n} images, {extractor.num_features}-d")
        print(f"protocol: {printable(protocol_line(protocol))}")
    return 0
