"""The metric registry: one record per metric, and everything else about metrics read from it.

A record holds the name ``--metrics`` takes, the ``results.json`` entries it writes and how each
is shown (label, unit, display scale, which direction is better), whether it streams a live
curve as N grows, what it needs from the samples and the reference, and the functions that
compute it and write its lines of ``report.md``. The CLI choices, the final numbers, the report,
the results table (``core/result_fields.py``), the live curves and the compare screen are all
derived from :data:`METRICS`. Adding a metric is one record here plus its function in
``core/metrics/computations.py``.

Torch-free: the workbench reads it for its tables and charts; the computations import torch
when they run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..result_field import ResultField
from . import computations as compute

if TYPE_CHECKING:
    from .scoring import Scoring

#: What a metric may need beyond the extractor's features of the generated images:
#: per-sample ``logits`` of the extractor, ``clip_scores`` (image against its prompt),
#: ``clip_embeddings`` (CLIP image embeddings); per-image ``reference_features`` (a reference
#: ``.npz`` of statistics only has none) and the ``reference_images`` themselves.
Need = Literal["logits", "clip_scores", "clip_embeddings", "reference_features", "reference_images"]
LiveAxis = Literal["left", "right"]


@dataclass(frozen=True)
class Metric:
    """One metric: its name on the command line, its numbers, and how to compute them."""

    name: str
    fields: tuple[ResultField, ...]
    compute: Callable[[Scoring], dict[str, dict[str, Any]]]
    report: Callable[[Metric, dict[str, Any]], list[str]]  # its rows of report.md's table
    needs: tuple[Need, ...] = ()
    live_axis: LiveAxis | None = None  # streams a curve over N, drawn on this axis
    default: bool = True

    @property
    def label(self) -> str:
        return self.fields[0].label

    @property
    def streams(self) -> bool:
        return self.live_axis is not None

    @property
    def result_keys(self) -> tuple[str, ...]:
        """The ``results.json`` entries it writes (FID∞ sits inside ``fid``)."""
        return tuple(dict.fromkeys(field.entry_key for field in self.fields))


FID = Metric(
    "fid",
    (
        ResultField("fid", "FID", better="lower", has_interval=True, headline=True),
        ResultField(
            "fid_inf", "FID∞", better="lower", headline=True, value_key="fid_inf", entry="fid"
        ),
    ),
    compute.fid,
    compute.fid_report,
    live_axis="left",
)
KID = Metric(
    "kid",
    (
        ResultField(
            "kid",
            "KID",
            unit="×10³",
            scale=1e3,
            better="lower",
            value_key="mean",
            spread_key="std",
            headline=True,
        ),
    ),
    compute.kid,
    compute.spread_report,
    needs=("reference_features",),
    live_axis="right",
)
IS = Metric(
    "is",
    (ResultField("is", "IS", better="higher", value_key="mean", spread_key="std"),),
    compute.inception_score,
    compute.spread_report,
    needs=("logits",),
)
PR = Metric(
    "pr",
    (
        ResultField("precision", "precision", better="higher"),
        ResultField("recall", "recall", better="higher"),
    ),
    compute.precision_recall,
    compute.neighbourhood_report,
    needs=("reference_features",),
)
DC = Metric(
    "dc",
    (
        ResultField("density", "density", better="higher"),
        ResultField("coverage", "coverage", better="higher"),
    ),
    compute.density_coverage,
    compute.neighbourhood_report,
    needs=("reference_features",),
)
CLIP = Metric(
    "clip",
    (ResultField("clip_score", "CLIP score", better="higher", value_key="mean", spread_key="std"),),
    compute.clip_score,
    compute.clip_score_report,
    needs=("clip_scores",),
)
CMMD = Metric(
    "cmmd",
    (ResultField("cmmd", "CMMD", better="lower"),),
    compute.cmmd,
    compute.cmmd_report,
    needs=("clip_embeddings", "reference_images"),
    default=False,
)

#: Every metric, in the order results, reports and tables show them.
METRICS: tuple[Metric, ...] = (FID, KID, IS, PR, DC, CLIP, CMMD)
BY_NAME: dict[str, Metric] = {metric.name: metric for metric in METRICS}
ALL_METRICS: tuple[str, ...] = tuple(BY_NAME)
DEFAULT_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS if m.default)
#: Every number the metrics mode reports, for the results table.
METRIC_FIELDS: tuple[ResultField, ...] = tuple(f for m in METRICS for f in m.fields)
#: The metrics whose curves are drawn live, per axis of the chart.
LIVE_LEFT: tuple[str, ...] = tuple(m.name for m in METRICS if m.live_axis == "left")
LIVE_RIGHT: tuple[str, ...] = tuple(m.name for m in METRICS if m.live_axis == "right")
STREAMING: tuple[Metric, ...] = tuple(m for m in METRICS if m.streams)


def selected(names: Iterable[str]) -> tuple[Metric, ...]:
    """The records of ``names`` (as ``--metrics`` gives them), in registry order."""
    wanted = set(names)
    return tuple(metric for metric in METRICS if metric.name in wanted)


def needed(names: Iterable[str]) -> set[str]:
    """Everything the metrics ``names`` need, for the run to collect."""
    return {need for metric in selected(names) for need in metric.needs}
