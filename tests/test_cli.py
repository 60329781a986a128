"""The headless CLI: up-front validation, listing and showing runs, the package's layering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from diffusionscope.core.cli import main
from diffusionscope.core.runs import RunWriter

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--modes", "bogus"], "unknown mode 'bogus'"),
        (["--modes", ""], "name at least one"),
        (["--modes", "schedule", "--num-samples", "0"], "--num-samples: must be positive"),
        (["--modes", "schedule", "--steps", "-3"], "must be positive"),
        (["--modes", "schedule", "--device", "tpu"], "--device tpu"),
        (["--modes", "schedule", "--dtype", "fp8"], "--dtype: choose one of"),
        (["--modes", "schedule", "--model", "/no/such/folder"], "no such folder"),
        (["--modes", "schedule", "--model", "x.ckpt"], "no such file"),
    ],
)
def test_bad_options_one_line_exit_2_nothing_written(
    runs_root: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    code = main(["run", *options, "--runs-root", str(runs_root)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("diffusionscope: error: ") and expected in err
    assert len(err.splitlines()) == 1
    assert list(runs_root.iterdir()) == []


def test_pickle_checkpoint_needs_flag(runs_root: Path, tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"x")
    code = main(["run", "--modes", "schedule", "--model", str(checkpoint), "--runs-root",
                 str(runs_root)])  # fmt: skip
    assert code == 2 and "--allow-pickle" in capsys.readouterr().err
    assert list(runs_root.iterdir()) == []


def test_error_is_one_line_from_the_console_script(runs_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffusionscope",
            "run",
            "--modes",
            "nope",
            "--runs-root",
            str(runs_root),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "diffusionscope: error: --modes: unknown mode 'nope' (known: metrics, schedule, "
        "attention, latent)"
    ]
    assert "Traceback" not in result.stderr


def test_runs_and_show(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--runs-root", str(runs_root)]) == 0
    assert "no runs" in capsys.readouterr().out
    writer = RunWriter.create(runs_root, "listed", {"model": "digits", "modes": ["metrics"],
                                                    "num_samples": 8})  # fmt: skip
    writer.start()
    writer.status("running")
    writer.metric("fid", 3.25, mode="metrics", n=8)
    writer.write_results({"metrics": {"fid": {"value": 3.25, "n": 8}}})
    writer.status("finished")
    writer.close()

    assert main(["runs", "--runs-root", str(runs_root), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["state"] == "finished" and listed["modes"] == ["metrics"]
    assert listed["key_numbers"] == {"metrics.fid": 3.25} and listed["num_samples"] == 8

    assert main(["show", str(writer.path)]) == 0
    shown = capsys.readouterr().out
    assert "finished" in shown and "value: 3.25" in shown
    assert main(["show", str(writer.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]["metrics"]["fid"]["n"] == 8


def test_show_rejects_non_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
