"""``diffusionscope compare RUN_A RUN_B``: the paired differences of two finished metrics runs
that share their seed, prompts, sample count, feature extractor and reference -- the same
numbers a campaign reports for two of its points (:mod:`.paired`), from each run's checkpointed
per-sample rows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..runs import CONFIG, RESULTS, read_json
from .paired import Samples, compare_points, half_sample_sets, half_sample_values, statement
from .rows import load_chunks

#: What two runs must share for their samples to be paired, as results.json says.
SHARED = (
    ("seed", lambda r: r["run"]["seed"]),
    ("sample count", lambda r: r["metrics"]["n_generated"]),
    ("feature extractor", lambda r: r["metrics"]["features"]),
    ("reference", lambda r: r["metrics"]["reference"].get("content_hash")),
)


def _finished_run(path: str) -> tuple[Any, dict[str, Any]]:
    """The run's metrics options (from its ``config.json``, as a resumed run reads them) and
    its results."""
    from ..cli import mode_options

    run_dir = Path(path)
    config, results = read_json(run_dir / CONFIG), read_json(run_dir / RESULTS)
    if not isinstance(config, dict):
        raise InputError(f"compare {path}: not a run directory (no readable {CONFIG})")
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise InputError(f"compare {path}: not a finished metrics run")
    if "sweep" in results:
        raise InputError(f"compare {path}: a campaign; its report holds its paired differences")
    return mode_options(argparse.Namespace(**config), "metrics"), results


def check_pairable(runs: list[tuple[Any, dict[str, Any]]], paths) -> list[str]:
    """Both runs' prompts, once checked that everything else that pairs samples agrees."""
    from . import resolve_options

    for name, read in SHARED:
        if read(runs[0][1]) != read(runs[1][1]):
            raise InputError(
                f"compare: {paths[0]} and {paths[1]} differ in {name}; paired differences need "
                "the same seeds, prompts and reference"
            )
    prompts = [resolve_options(args).prompts for args, _ in runs]
    if prompts[0] != prompts[1]:
        raise InputError(f"compare: {paths[0]} and {paths[1]} use different prompts")
    return prompts[0]


def compare_runs(path_a: str, path_b: str, device: str = "cpu") -> dict[str, Any]:
    """``A − B`` for every metric both runs hold, with paired intervals."""
    from . import reference_draw_size, resolve_options
    from .loop import open_extractor, statistics_device
    from .reference import FOLDER_BATCH, load_npz_stats
    from .reference_plan import load_planned, plan_reference

    runs = [_finished_run(path_a), _finished_run(path_b)]
    check_pairable(runs, (path_a, path_b))
    args, results = runs[0]
    options = resolve_options(args)
    plan = plan_reference(args, reference_draw_size(args, options))
    if plan.kind == "stats":
        reference = load_npz_stats(Path(plan.path))
    else:
        extractor = open_extractor(args, options, device)
        reference = load_planned(plan, extractor, FOLDER_BATCH)
    seed = int(args.run.seed)
    samples = [Samples.of(load_chunks(Path(p) / "checkpoint")[0]) for p in (path_a, path_b)]
    n = min(len(s.features) for s in samples)
    sets = half_sample_sets(n, max(options.bootstrap, 2), seed)
    metrics = sorted(set(options.metrics) & set(resolve_options(runs[1][0]).metrics))
    values = [
        half_sample_values(s, reference, metrics, sets, seed, statistics_device(device))
        for s in samples
    ]
    found = compare_points(
        results["metrics"], runs[1][1]["metrics"], values[0], values[1], seed=seed
    )
    for key, entry in found.items():
        entry["statement"] = statement(key, entry, Path(path_a).name, Path(path_b).name)
    return {"a": str(path_a), "b": str(path_b), "metrics": found}


def compare_command(args: argparse.Namespace) -> int:
    from ..loading import resolve_device

    found = compare_runs(args.run_a, args.run_b, resolve_device(args.device))
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for entry in found["metrics"].values():
            print(entry["statement"])
    return 0
