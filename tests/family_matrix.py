"""The family × mode matrix: every analysis mode on every family's tiny pipeline.

Each cell runs ``diffusionscope run --modes MODE --model FAMILY`` in-process with tiny settings
and ends in one of three states:

- ``works``: exit 0, ``results.json`` written, and that mode's own correctness check holds on
  the results (schedule: the sampler's steps are the scheduler's own; metrics: finite numbers;
  attention: the maps are attention probabilities; latent: the strips were drawn);
- ``refused``: exit 2, exactly one stderr line, and no run directory;
- ``broken``: anything else (a crash, a refusal after the run directory exists, results that
  fail the check).

``tests/test_family_matrix.py`` runs every cell and checks that the README's table is the one
these outcomes give. To rewrite the table after a change::

    .venv/bin/python tests/family_matrix.py --write-readme

Settings are tiny on purpose (2 steps, 4 samples, 64 px requests): the matrix asks whether a
mode runs on a family and gives sound numbers, not what the numbers are. Families with
resolution binning (PixArt, Sana) still denoise at their bin size.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from family_pipelines import FAMILIES, build_family

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- family-matrix:start -->", "<!-- family-matrix:end -->"
MODES = ("metrics", "schedule", "attention", "latent")
FAMILY_NAMES = {
    "sd15": "SD 1.5",
    "sd21v": "SD 2.1 (v-prediction)",
    "sdxl": "SDXL",
    "lcm": "LCM",
    "sd3": "SD3",
    "sd35m": "SD3.5 Medium",
    "pixart_alpha": "PixArt-α",
    "pixart_sigma": "PixArt-Σ",
    "flux_dev": "Flux.1-dev",
    "flux_schnell": "Flux.1-schnell",
    "sana": "Sana",
}
PROMPTS = ("a red seven on a white background", "a blue two")
REFERENCE_IMAGES = 64

#: Cells that crash today, with the reason; each is an ``xfail(strict=True)`` in the test, so
#: it fails the suite the day it is fixed, and must then leave this table.
KNOWN_BROKEN_TODAY: dict[tuple[str, str], str] = {}


@dataclass
class Cell:
    family: str
    mode: str
    status: str  # "works" | "refused" | "broken"
    detail: str  # the refusal line, or what broke
    seconds: float = 0.0

    def readme_text(self) -> str:
        if self.status == "works":
            return "✓ works"
        if self.status == "refused":
            return f"refused: {self.detail}"
        reason = KNOWN_BROKEN_TODAY.get((self.family, self.mode), self.detail)
        return f"✗ fails today: {reason}"


def cell_options(mode: str, assets: Path) -> list[str]:
    """The tiny settings of each mode's cell."""
    small = ["--height", "64", "--width", "64", "--steps", "2"]
    return {
        "metrics": [
            *small,
            "-n",
            "4",
            "--batch-size",
            "4",
            "--prompts-file",
            str(assets / "prompts.txt"),
            "--reference",
            str(assets / "reference"),
            "--features",
            "digits",
            "--metrics",
            "fid,kid,is,pr,dc",
            "--bootstrap",
            "0",
        ],
        "schedule": ["--sampler-steps", "3"],
        "attention": [*small, "--prompt", PROMPTS[0], "--attention-steps", "2"],
        "latent": [
            *small,
            "--prompt",
            PROMPTS[0],
            "--prompt-b",
            PROMPTS[1],
            "--frames",
            "2",
            "--latent-tasks",
            "seeds,prompts",
            "--features",
            "digits",
        ],
    }[mode]


def prepare_assets(folder: Path) -> Path:
    """The prompts file the text-conditioned pipelines need, and a reference set of the first
    64 shipped digits (enough neighbours for PR and D&C, a fraction of the features' cost)."""
    import shutil

    from diffusionscope.core.zoo import DIGITS_REFERENCE

    (folder / "reference").mkdir(parents=True, exist_ok=True)
    (folder / "prompts.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    for image in sorted(DIGITS_REFERENCE.glob("*.png"))[:REFERENCE_IMAGES]:
        shutil.copy(image, folder / "reference" / image.name)
    return folder


# ---- each mode's correctness check on a finished run -----------------------------------------


def check_schedule(results: dict[str, Any], run_dir: Path, model: Path) -> None:
    """The pipeline's own sampler row equals the scheduler's ``set_timesteps``; flow log-SNR
    is 2·ln((1−σ)/σ)."""
    import diffusers

    section = results["schedule"]
    [row] = [r for r in section["sampler"] if r["pipeline_default"]]
    config = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    scheduler = getattr(diffusers, config["_class_name"]).from_pretrained(
        model, subfolder="scheduler"
    )
    call: dict[str, Any] = {}
    if row["mu"] is not None:
        call["mu"] = row["mu"]
    if row["set_timesteps"]["custom_sigmas"]:
        call["sigmas"] = np.linspace(1.0, 1 / row["steps"], row["steps"])
    scheduler.set_timesteps(row["steps"], **call)
    timesteps = np.asarray(scheduler.timesteps, dtype=np.float64)
    sigmas = np.asarray(row["sigmas"], dtype=np.float64)
    assert np.allclose(row["timesteps"], timesteps, atol=1e-4), "timesteps differ"
    if getattr(scheduler, "sigmas", None) is not None:
        own = np.asarray(scheduler.sigmas, dtype=np.float64)[: len(timesteps)]
    else:
        alphas = scheduler.alphas_cumprod.double().numpy()[timesteps.astype(int)]
        own = np.sqrt((1 - alphas) / alphas)
    assert np.allclose(sigmas, own, rtol=1e-6, atol=1e-7), "sampler σ's are not the scheduler's"
    if row["family"] == "flow":
        inside = (sigmas > 0) & (sigmas < 1)
        log_snr = np.asarray([np.nan if v is None else v for v in row["log_snr"]])
        assert np.allclose(log_snr[inside], 2 * np.log((1 - sigmas[inside]) / sigmas[inside]))


def check_metrics(results: dict[str, Any], run_dir: Path, model: Path) -> None:
    section = results["metrics"]
    numbers = {
        "fid": section["fid"]["value"],
        "kid": section["kid"]["mean"],
        "is": section["is"]["mean"],
        **{k: section[k]["value"] for k in ("precision", "recall", "density", "coverage")},
    }
    bad = {k: v for k, v in numbers.items() if v is None or not np.isfinite(v)}
    assert not bad, f"non-finite metrics {bad}"
    assert section["n_generated"] == 4


def check_attention(results: dict[str, Any], run_dir: Path, model: Path) -> None:
    """Per pixel, each layer's attention over the prompt tokens is a probability distribution:
    summed over tokens, a group's raw maps give its number of layers."""
    section = results["attention"]
    with np.load(run_dir / "artifacts" / "attention_maps.npz") as arrays:
        for group, layers in section["layers"].items():
            raw = arrays[f"raw_{group}"]
            assert np.all(raw >= 0), f"negative attention in {group}"
            assert np.allclose(raw.sum(axis=1), len(layers), atol=1e-3), (
                f"{group}: attention over tokens does not sum to one per layer"
            )


def check_latent(results: dict[str, Any], run_dir: Path, model: Path) -> None:
    """Every strip the results name was drawn, with its end frames side by side."""
    from PIL import Image

    strips = re.findall(r'"strip": "([^"]+)"', json.dumps(results["latent"]))
    assert strips, "no strips in the results"
    for strip in strips:
        with Image.open(run_dir / strip) as image:
            width, height = image.size
        assert width >= 2 * (height - 8), f"{strip} is {width}x{height}: not two frames wide"


CHECKS: dict[str, Callable[[dict[str, Any], Path, Path], None]] = {
    "metrics": check_metrics,
    "schedule": check_schedule,
    "attention": check_attention,
    "latent": check_latent,
}


# ---- running cells -----------------------------------------------------------------------------


def _short(text: str, model: Path) -> str:
    """A refusal line without the machine's paths."""
    text = text.removeprefix("diffusionscope: error: ")
    text = text.replace(repr(str(model)), "the model").replace(str(model), "the model")
    return text.replace("model the model: ", "")


def run_cell(family: str, mode: str, model: Path, runs: Path, assets: Path) -> Cell:
    from diffusionscope.core.cli import main

    root = runs / f"{family}-{mode}"
    err = io.StringIO()
    started = time.perf_counter()
    argv = [
        "run",
        "--modes",
        mode,
        "--model",
        str(model),
        "--runs-root",
        str(root),
        "--quiet",
        *cell_options(mode, assets),
    ]
    crash = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except Exception as error:  # noqa: BLE001 -- a crash is an outcome to report
            code, crash = None, f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - started
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    run_dirs = sorted(root.iterdir()) if root.exists() else []

    def cell(status: str, detail: str) -> Cell:
        return Cell(family, mode, status, detail, seconds)

    if crash is not None:
        return cell("broken", f"raised {crash}")
    if code == 2 and len(lines) == 1 and not run_dirs:
        return cell("refused", _short(lines[0], model))
    if code != 0 or len(run_dirs) != 1 or not (run_dirs[0] / "results.json").is_file():
        last = lines[-1] if lines else ""
        where = "after the run directory exists" if run_dirs else "without a run directory"
        return cell("broken", f"exit {code} {where}: {_short(last, model)[:300]}")
    results = json.loads((run_dirs[0] / "results.json").read_text())
    try:
        CHECKS[mode](results, run_dirs[0], model)
    except AssertionError as error:
        return cell("broken", f"finished, but its check failed: {error}")
    return cell("works", "")


class Matrix:
    """Cells run on demand and kept: the tests and the README check share one run of each."""

    def __init__(self, model_of: Callable[[str], Path], workdir: Path) -> None:
        self.model_of = model_of
        self.runs = workdir / "runs"
        self.assets = prepare_assets(workdir / "assets")
        self.cells: dict[tuple[str, str], Cell] = {}

    def cell(self, family: str, mode: str) -> Cell:
        if (family, mode) not in self.cells:
            self.cells[family, mode] = run_cell(
                family, mode, self.model_of(family), self.runs, self.assets
            )
        return self.cells[family, mode]

    def all(self) -> dict[tuple[str, str], Cell]:
        return {(f, m): self.cell(f, m) for f in FAMILIES for m in MODES}


# ---- the README table --------------------------------------------------------------------------


def render_table(cells: dict[tuple[str, str], Cell]) -> str:
    lines = ["| family | " + " | ".join(MODES) + " |", "| --- |" + " --- |" * len(MODES)]
    for family in FAMILIES:
        row = [cells[family, mode].readme_text().replace("|", "\\|") for mode in MODES]
        lines.append(f"| {FAMILY_NAMES[family]} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The table between the markers of README.md."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} section")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def with_table(text: str, table: str) -> str:
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str]) -> int:
    """Build every family, run every cell, print the outcomes; ``--write-readme`` rewrites the
    README's table."""
    import torch

    torch.set_num_threads(2)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["DIFFUSIONSCOPE_CACHE"] = str(work / "cache")
        models: dict[str, Path] = {}

        def model_of(family: str) -> Path:
            if family not in models:
                models[family] = build_family(family, work / "models" / family)
            return models[family]

        matrix = Matrix(model_of, work)
        started = time.perf_counter()
        for family in FAMILIES:
            for mode in MODES:
                cell = matrix.cell(family, mode)
                print(
                    f"{family:13s} {mode:9s} {cell.status:8s} {cell.seconds:5.1f} s  "
                    f"{cell.detail[:150]}",
                    flush=True,
                )
        print(f"matrix: {time.perf_counter() - started:.1f} s", flush=True)
        table = render_table(matrix.cells)
    print(table)
    if "--write-readme" in argv:
        README.write_text(with_table(README.read_text(encoding="utf-8"), table), encoding="utf-8")
        print(f"wrote the table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
