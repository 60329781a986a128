"""The computation of each metric in the registry (``core/metrics/registry.py``), and its lines
of ``report.md``.

A computation takes the run's :class:`~diffusionscope.core.metrics.scoring.Scoring` and returns
the ``results.json`` entries its record declares; the mode emits each entry's number as a
``metric`` event from the record's fields. The numerical work is in ``frechet``, ``scores`` and
``prdc``; those import torch, so they are imported when a computation runs: the registry that
names these functions is read by the workbench, which never imports torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import Metric
    from .scoring import Scoring

#: Neighbourhood sizes: precision/recall at k=3, density/coverage at k=5 (their papers' choices).
K_PR = 3
K_DC = 5


def curve_points(curve: list[list[float]]) -> list[list[float | None]]:
    """The live curve's ``[n, fid, kid]`` points for JSON (a KID not computed is null)."""
    return [[n, fid, None if math.isnan(k) else k] for n, fid, k in curve]


def fid(s: Scoring) -> dict[str, dict[str, Any]]:
    """FID with its half-sample interval, FID∞ (Chong & Forsyth 2020) and the live curve; the
    interval and FID∞ share one set of per-chunk statistics (``halfsamples``)."""
    from .frechet import fid_from_features
    from .halfsamples import ChunkedFeatures
    from .scores import fid_infinity, fid_interval

    mu, sigma = s.reference_moments
    value = fid_from_features(s.generated, mu, sigma)
    chunks = ChunkedFeatures.build(s.generated, mu, sigma, seed=s.ctx.seed)
    infinity = fid_infinity(s.generated, mu, sigma, seed=s.ctx.seed, chunks=chunks)
    interval = fid_interval(
        s.generated, mu, sigma, value, s.options.bootstrap, seed=s.ctx.seed, chunks=chunks
    )
    entry = {
        "value": value,
        **s.common,
        "interval": [interval["low"], interval["high"]],
        "interval_level": interval["level"],
        "interval_method": interval["method"],
        "interval_covers": interval["covers"],
        "fid_inf": infinity["value"],
        "fid_inf_stderr": infinity["stderr"],
        "fid_inf_fit": infinity["fit"],
        "fid_inf_note": infinity["note"],
        "fid_inf_slope": infinity["slope"],
        "fid_inf_points": list(zip(infinity["n"], infinity["fid"], strict=True)),
        "curve": curve_points(s.curve),
    }
    return {"fid": entry}


def kid(s: Scoring) -> dict[str, dict[str, Any]]:
    from .scores import kid as kernel_inception_distance

    return {"kid": {**kernel_inception_distance(s.real, s.generated, seed=s.ctx.seed), **s.common}}


def inception_score(s: Scoring) -> dict[str, dict[str, Any]]:
    import torch

    from .scores import inception_score as score

    logits = torch.from_numpy(s.ordered("logits")).to(s.device)
    return {"is": {**score(logits, seed=s.ctx.seed), **s.common}}


def _neighbourhoods(s: Scoring) -> Any:
    """One pass serves both pairs (k=3 and k=5 from the same 6 nearest neighbours)."""
    from .prdc import prdc

    return s.shared("prdc", lambda: prdc(s.real, s.generated, k_pr=K_PR, k_dc=K_DC))


def precision_recall(s: Scoring) -> dict[str, dict[str, Any]]:
    found = _neighbourhoods(s)
    return {
        "precision": {"value": found.precision, "k": K_PR, **s.common},
        "recall": {"value": found.recall, "k": K_PR, **s.common},
    }


def density_coverage(s: Scoring) -> dict[str, dict[str, Any]]:
    found = _neighbourhoods(s)
    return {
        "density": {"value": found.density, "k": K_DC, **s.common},
        "coverage": {"value": found.coverage, "k": K_DC, **s.common},
    }


def clip_score(s: Scoring) -> dict[str, dict[str, Any]]:
    scores = s.ordered("clip")
    return {
        "clip_score": {
            "mean": float(scores.mean()),
            "std": float(scores.std()),
            "n": s.n,
            "model": s.options.clip_model,
        }
    }


def cmmd(s: Scoring) -> dict[str, dict[str, Any]]:
    """CMMD (Jayasumana et al. 2024) on CLIP embeddings of the reference images, which a
    reference of statistics does not keep: they are extracted here."""
    from ..loading import resolve_device
    from . import reference_draw_size
    from .features import get_extractor
    from .reference import FOLDER_BATCH
    from .reference_plan import load_planned, plan_reference
    from .scores import cmmd as clip_mmd

    extractor = get_extractor(
        "clip", resolve_device(s.ctx.options.run.device), model=s.options.clip_model
    )
    plan = plan_reference(s.ctx.options, reference_draw_size(s.ctx.options, s.options))
    real = load_planned(plan, extractor, FOLDER_BATCH)
    value = clip_mmd(real.features, s.ordered("cmmd"), device=s.device)
    return {"cmmd": {"value": value, "n": s.n, "model": s.options.clip_model}}


# ---- report.md lines ------------------------------------------------------------------------


def fid_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    """The interval says what it covers (E[FID at N]: ``interval_covers`` in full); FID∞ comes
    with its fit's standard error, and its note when the fit fell below 0."""
    fid = results["fid"]
    stderr = fid.get("fid_inf_stderr")
    spread = "" if stderr is None else f" ± {stderr:.4f} (fit's standard error)"
    note = f" ({fid['fid_inf_note']})" if fid.get("fid_inf_note") else ""
    return [
        f"| {metric.label} | {fid['value']:.4f} | {fid['interval_level']:.0%} interval "
        f"[{fid['interval'][0]:.4f}, {fid['interval'][1]:.4f}] of E[FID at N], not of the FID "
        f"at infinite N; {metric.fields[1].label} {fid['fid_inf']:.4f}{spread}{note} |"
    ]


def spread_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    """A mean with the spread its ``std_note`` explains (KID, IS)."""
    entry = results[metric.fields[0].name]
    std = entry["std"]
    spread = f"± {std:.5f}" if std is not None else "no spread"
    return [f"| {metric.label} | {entry['mean']:.5f} | {spread} ({entry['std_note']}) |"]


def neighbourhood_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    """Precision/recall or density/coverage, each with its neighbourhood size."""
    return [
        f"| {field.label} | {results[field.name]['value']:.4f} | k={results[field.name]['k']} |"
        for field in metric.fields
        if field.name in results
    ]


def clip_score_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    clip = results["clip_score"]
    return [f"| {metric.label} | {clip['mean']:.3f} | ± {clip['std']:.3f}, {clip['model']} |"]


def value_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    """A plain ``value`` per field, for metrics with no detail to add."""
    return [
        f"| {field.label} | {results[field.name]['value']:.4f} | |"
        for field in metric.fields
        if field.name in results
    ]


def cmmd_report(metric: Metric, results: dict[str, Any]) -> list[str]:
    return [f"| {metric.label} | {results['cmmd']['value']:.5f} | {results['cmmd']['model']} |"]
