"""Every mode on every family: each cell finishes with sound results or refuses in one line
before the run directory exists; the README's family × mode table is what the cells say.

The cells and their checks are in ``tests/family_matrix.py``; cells that crash today are listed
in ``KNOWN_BROKEN_TODAY`` there and expected to fail (strictly: a fixed cell fails the suite
until it leaves that table and the README is regenerated).
"""

from __future__ import annotations

import pytest
from family_matrix import (
    KNOWN_BROKEN_TODAY,
    MODES,
    README,
    Matrix,
    readme_table,
    render_table,
)
from family_pipelines import FAMILIES


@pytest.fixture(scope="session")
def matrix(family_dir, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("family-matrix")
    patch = pytest.MonkeyPatch()
    patch.setenv("DIFFUSIONSCOPE_CACHE", str(work / "cache"))  # reference features, once
    yield Matrix(family_dir, work)
    patch.undo()


def _cells() -> list:
    params = []
    for family in FAMILIES:
        for mode in MODES:
            reason = KNOWN_BROKEN_TODAY.get((family, mode))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(family, mode, marks=marks, id=f"{family}-{mode}"))
    return params


@pytest.mark.parametrize(("family", "mode"), _cells())
def test_cell_finishes_or_refuses_in_one_line(matrix: Matrix, family: str, mode: str) -> None:
    cell = matrix.cell(family, mode)
    assert cell.status in ("works", "refused"), cell.detail


@pytest.mark.parametrize("mode", ["schedule", "metrics", "attention"])
def test_schedule_metrics_and_attention_work_on_every_family(matrix: Matrix, mode: str) -> None:
    failing = {
        f: matrix.cell(f, mode).detail for f in FAMILIES if matrix.cell(f, mode).status != "works"
    }
    assert not failing


def test_known_broken_cells_are_matrix_cells() -> None:
    assert set(KNOWN_BROKEN_TODAY) <= {(f, m) for f in FAMILIES for m in MODES}


def test_readme_table_is_the_matrix(matrix: Matrix) -> None:
    expected = render_table(matrix.all())
    assert readme_table(README.read_text(encoding="utf-8")) == expected, (
        "README.md's family × mode table is stale: run "
        ".venv/bin/python tests/family_matrix.py --write-readme"
    )
