"""Schedule mode: curves for every scheduler family, visited steps, checks, CLI and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffusionscope.core.cli import main
from diffusionscope.core.errors import InputError
from diffusionscope.core.schedule.checks import sampler_checks, schedule_checks
from diffusionscope.core.schedule.curves import build_scheduler, curve_from_scheduler, named_curve
from diffusionscope.core.schedule.sampler import visited_steps
from diffusionscope.core.zoo import DIGITS_LDM

SD_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "prediction_type": "epsilon",
}
EULER_SD = {**SD_CONFIG, "_class_name": "EulerDiscreteScheduler"}


def _checks(curve) -> dict[str, str]:
    return {check.name: check.verdict for check in schedule_checks(curve)}


def test_sd_log_snr_endpoints_match_the_formula() -> None:
    curve = curve_from_scheduler("sd", build_scheduler(SD_CONFIG))
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2  # scaled_linear, by hand
    alphas_cumprod = np.cumprod(1 - betas)
    expected = np.log(alphas_cumprod / (1 - alphas_cumprod))
    assert curve.family == "ddpm"
    assert curve.log_snr[0] == pytest.approx(expected[0], rel=1e-5)
    assert curve.log_snr[999] == pytest.approx(expected[999], rel=1e-5)
    assert curve.betas is not None and curve.betas[-1] == pytest.approx(0.012, rel=1e-5)


def test_cosine_keeps_more_signal_than_linear_mid_range() -> None:
    cosine, linear = named_curve("cosine"), named_curve("linear")
    middle = slice(300, 700)
    assert np.all(cosine.log_snr[middle] > linear.log_snr[middle])


@pytest.mark.parametrize("name", ["karras", "flow:3.0", "edm"])
def test_sigma_and_flow_schedules_are_finite_and_monotone(name: str) -> None:
    curve = named_curve(name)
    finite = curve.log_snr[np.isfinite(curve.log_snr)]
    assert len(finite) >= len(curve.log_snr) - 1  # flow's last step is pure noise: -inf
    assert np.all(np.diff(curve.log_snr) < 0)
    assert np.all(np.isfinite(curve.sigmas[:-1]))
    assert np.all(np.diff(curve.alphas_cumprod) < 0)


def test_karras_sampler_sigmas_are_finite_and_monotone() -> None:
    visited = visited_steps({**EULER_SD, "use_karras_sigmas": True}, None, 30, "leading")
    assert np.all(np.isfinite(visited.sigmas)) and np.all(np.diff(visited.sigmas) < 0)


def test_flow_matching_uses_t_not_alphas() -> None:
    config = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}
    curve = curve_from_scheduler("flow", build_scheduler(config))
    assert curve.family == "flow"
    t = 0.5
    sigma = 3.0 * t / (1 + 2.0 * t)
    index = int(np.argmin(np.abs(curve.timesteps / 1000 - t)))
    assert curve.sigmas[index] == pytest.approx(sigma, rel=1e-6)
    assert curve.log_snr[index] == pytest.approx(2 * np.log((1 - sigma) / sigma), rel=1e-6)
    visited = visited_steps(config, None, 28, None)
    assert visited.sigmas[0] == pytest.approx(1.0)
    flow_check = {c.name: c for c in sampler_checks(curve, visited)}
    assert flow_check["flow sampler follows the model's shift"].verdict == "pass"


@pytest.mark.parametrize(("spacing", "first"), [("leading", 981), ("trailing", 999)])
def test_first_visited_timestep_for_50_steps(spacing: str, first: int) -> None:
    visited = visited_steps(EULER_SD, None, 50, spacing)
    assert visited.timesteps[0] == first
    assert len(visited.timesteps) == 50


def test_leading_spacing_never_starts_from_max_noise() -> None:
    curve = curve_from_scheduler("sd", build_scheduler(EULER_SD))
    leading = {
        c.name: c for c in sampler_checks(curve, visited_steps(EULER_SD, None, 50, "leading"))
    }
    trailing = {
        c.name: c for c in sampler_checks(curve, visited_steps(EULER_SD, None, 50, "trailing"))
    }
    key = "sampler starts at the schedule's maximum noise"
    assert leading[key].verdict == "warn" and trailing[key].verdict == "pass"
    assert leading[key].value["first_sigma"] < 0.95 * leading[key].value["schedule_sigma_max"]
    assert "timestep_spacing" in leading[key].fields


def test_zero_terminal_snr_detected_and_sd_is_not() -> None:
    zero = named_curve("zero_snr")
    sd = curve_from_scheduler("sd", build_scheduler(SD_CONFIG))
    assert _checks(zero)["terminal SNR is zero"] == "pass" and zero.terminal_snr == 0.0
    assert _checks(zero)["prediction type fits terminal SNR"] == "fail"  # epsilon + zero SNR
    assert _checks(sd)["terminal SNR is zero"] == "warn" and sd.terminal_snr > 1e-3
    v_pred = named_curve("zero_snr")
    v_pred.config["prediction_type"] = "v_prediction"
    assert _checks(v_pred)["prediction type fits terminal SNR"] == "pass"


def test_bad_inputs_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown schedule 'wiggly'"):
        named_curve("wiggly")
    with pytest.raises(InputError, match="must be positive"):
        visited_steps(SD_CONFIG, None, 0, None)
    with pytest.raises(InputError, match="more than the 1000 training timesteps"):
        visited_steps(SD_CONFIG, None, 1001, None)


def _run(runs_root: Path, *options: str) -> tuple[int, Path | None]:
    code = main(["run", "--modes", "schedule", "--runs-root", str(runs_root), "--quiet", *options])
    runs = sorted(runs_root.iterdir())
    return code, runs[-1] if runs else None


def test_cli_on_a_bare_scheduler_config(runs_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "scheduler_config.json"
    config.write_text(json.dumps(EULER_SD))
    code, run_dir = _run(runs_root, "--model", str(config), "--compare", "cosine,flow:3")
    assert code == 0 and run_dir is not None
    results = json.loads((run_dir / "results.json").read_text())["schedule"]
    assert set(results["schedules"]) == {"scheduler_config", "cosine", "flow:3"}
    assert {s["timestep_spacing"] for s in results["sampler"]} == {
        "leading",
        "trailing",
        "linspace",
    }
    for name in ("noise_schedule.png", "schedule_comparison.png", "sampler_timesteps.png",
                 "schedule_curves.csv"):  # fmt: skip
        assert (run_dir / "artifacts" / name).stat().st_size > 0
    assert "## schedule" in (run_dir / "report.md").read_text()


def test_cli_on_the_digits_model_folder(runs_root: Path) -> None:
    code, run_dir = _run(runs_root, "--model", str(DIGITS_LDM), "--timestep-spacing", "trailing")
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    [sampler] = results["schedule"]["sampler"]
    assert sampler["first_timestep"] == 999 or sampler["scheduler_class"] == "PNDMScheduler"
    assert "model" not in results  # schedule mode never loads the pipeline


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--compare", "wiggly"], "unknown schedule 'wiggly'"),
        (["--sampler-steps", "0"], "must be positive"),
        (["--sampler-steps", "5000"], "more than the 1000 training timesteps"),
        (["--timestep-spacing", "sideways"], "--timestep-spacing"),
        (["--sampler", "NoSuchScheduler"], "not a diffusers scheduler"),
    ],
)
def test_cli_bad_inputs(runs_root: Path, capsys, options: list[str], expected: str) -> None:
    code, run_dir = _run(runs_root, *options)
    err = capsys.readouterr().err.strip()
    assert code == 2 and run_dir is None
    assert expected in err and len(err.splitlines()) == 1


def test_cli_non_monotone_trained_betas(runs_root: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "broken.json"
    config.write_text(json.dumps({**SD_CONFIG, "trained_betas": [0.001, 0.002, 0.0015, 0.003]}))
    code, run_dir = _run(runs_root, "--model", str(config), "--sampler-steps", "2")
    assert code == 2 and run_dir is None
    assert "trained_betas is not monotone" in capsys.readouterr().err


def test_diffusers_import_skips_dynamo_and_leaves_it_importable() -> None:
    """The schedule mode's cheap diffusers import must not break torch.compile afterwards."""
    code = (
        "import sys\n"
        "from diffusionscope.core.schedule.imports import import_diffusers\n"
        "diffusers = import_diffusers()\n"
        "assert 'torch._dynamo' not in sys.modules, 'dynamo was imported'\n"
        "scheduler = diffusers.EulerDiscreteScheduler()\n"
        "import torch._dynamo\n"
        "import torch\n"
        "assert torch.compile(lambda x: x + 1, backend='eager')(torch.ones(1)).item() == 2.0\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
