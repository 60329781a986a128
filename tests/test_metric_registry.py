"""The metric registry is what the metrics mode computes, reports and shows: each record's
computation writes exactly the entries its fields declare, every field becomes one ``metric``
event, a line of report.md and a row of the results table, and a reference without
per-image features skips exactly the records that need them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from diffusionscope.core.metrics import registry
from diffusionscope.core.metrics.outputs import finish
from diffusionscope.core.metrics.reference import ReferenceStats
from diffusionscope.core.metrics.rows import Collected
from diffusionscope.core.metrics.scoring import Scoring
from diffusionscope.core.result_fields import result_rows

N, DIM, CLASSES = 24, 8, 10
#: Every metric but CMMD, which embeds the reference folder's images with a CLIP model.
WANTED = tuple(name for name in registry.ALL_METRICS if name != "cmmd")


class Recorder:
    """A run context that keeps what the mode emits instead of writing a run directory."""

    seed = 0
    is_main = True

    def __init__(self) -> None:
        self.metrics: dict[str, tuple[float, dict[str, Any]]] = {}
        self.warnings: list[str] = []
        self.options = SimpleNamespace(run=SimpleNamespace(device="cpu"))

    def metric(self, name: str, value: float, *, n: int | None = None, **extra: Any) -> None:
        self.metrics[name] = (value, extra)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def progress(self, *_args: Any) -> None:
        pass


def scoring(with_reference_features: bool) -> Scoring:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(N, DIM))
    collected = Collected()
    order = rng.permutation(N)  # rows arrive out of sample order, as from several processes
    collected.add(
        {
            "indices": order,
            "features": rng.normal(size=(N, DIM)).astype(np.float32),
            "logits": rng.normal(size=(N, CLASSES)).astype(np.float32),
            "clip": rng.uniform(20, 30, size=N),
        }
    )
    reference = ReferenceStats(
        "real/",
        real.mean(0),
        np.cov(real, rowvar=False),
        N,
        features=real.astype(np.float32) if with_reference_features else None,
    )
    extractor = SimpleNamespace(name="test", num_features=DIM, resize_policy="none")
    options = SimpleNamespace(metrics=WANTED, bootstrap=4, clip_model="clip", save_features=False)
    return Scoring(Recorder(), options, extractor, reference, collected, [], 1.0)


@pytest.fixture(scope="module")
def finished() -> tuple[Scoring, dict[str, Any], str]:
    run = scoring(with_reference_features=True)
    result = finish(run)
    return run, result.results, result.report


def test_each_record_writes_its_entries_and_events(finished) -> None:
    run, results, report = finished
    for metric in registry.selected(WANTED):
        assert set(metric.result_keys) <= set(results), metric.name
        for field in metric.fields:
            value = results[field.entry_key][field.value_key]
            assert isinstance(value, float) and np.isfinite(value), field.name
            assert run.ctx.metrics[field.name][0] == value
            assert field.label in report  # its own row, or (FID∞) in its entry's row
    rows = {row.name for row in result_rows({"metrics": results})}
    assert rows == {f.name for m in registry.selected(WANTED) for f in m.fields}


def test_a_reference_of_statistics_skips_what_needs_its_features() -> None:
    run = scoring(with_reference_features=False)
    results = finish(run).results
    needing = [m for m in registry.selected(WANTED) if "reference_features" in m.needs]
    assert needing and all(key not in results for m in needing for key in m.result_keys)
    assert all(key in results for key in registry.FID.result_keys + registry.IS.result_keys)
    assert run.ctx.warnings == [
        "reference real/ holds statistics only: "
        f"{', '.join(m.name for m in needing)} need features and are skipped"
    ]


def test_the_registry_is_what_the_cli_and_the_live_chart_offer() -> None:
    from diffusionscope.core.metrics import OPTIONS
    from diffusionscope.tui.curves import LIVE_LEFT, LIVE_RIGHT

    help_text = next(o for o in OPTIONS if o.dest == "metrics").help
    assert all(m.name in help_text for m in registry.METRICS if not m.default)
    assert set(LIVE_LEFT + LIVE_RIGHT) == {m.name for m in registry.METRICS if m.streams}
    assert registry.FID.fields[0].better == "lower" and registry.PR.fields[0].better == "higher"
