"""Schedule mode: curves for every scheduler family, visited steps, checks, CLI and bad input."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from family_pipelines import FAMILIES, FAMILY_INFO

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
    for name in (
        "noise_schedule.png",
        "schedule_comparison.png",
        "sampler_timesteps.png",
        "schedule_curves.csv",
    ):
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
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---- every pipeline family: the sampler's steps are the pipeline's own ------------------------


class _TimestepsSet(Exception):
    """Raised by the spy once the pipeline has set its timesteps: nothing is denoised."""


def _pipeline_timesteps(folder: Path, steps: int, **call: Any) -> dict[str, Any]:
    """The timesteps and σ's the pipeline's scheduler holds once ``pipe(...)`` has set them."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    scheduler = pipe.scheduler
    original = scheduler.set_timesteps
    seen: dict[str, Any] = {}

    @functools.wraps(original)  # keeps the signature the pipelines inspect for "sigmas"
    def spy(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        seen["kwargs"] = kwargs
        seen["timesteps"] = np.asarray(scheduler.timesteps, dtype=np.float64)
        sigmas = getattr(scheduler, "sigmas", None)
        seen["sigmas"] = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        alphas = getattr(scheduler, "alphas_cumprod", None)
        seen["alphas_cumprod"] = None if alphas is None else alphas.double().numpy()
        raise _TimestepsSet

    scheduler.set_timesteps = spy
    with pytest.raises(_TimestepsSet):
        pipe("a red seven", num_inference_steps=steps, output_type="latent", **call)
    return seen


def _plan(folder: Path, *options: str):
    from diffusionscope.core.cli import build_parser, mode_options
    from diffusionscope.core.families import read_model_configs
    from diffusionscope.core.schedule.plan import plan_schedule

    args = build_parser().parse_args(
        ["run", "--modes", "schedule", "--model", str(folder), *options]
    )
    return plan_schedule(mode_options(args, "schedule"), read_model_configs(str(folder)))


def _assert_sampler_is_the_pipelines(plan, seen: dict[str, Any]) -> None:
    [row] = [v for v in plan.visited if v.pipeline_default]
    assert np.allclose(row.timesteps, seen["timesteps"], rtol=0, atol=1e-4)
    if seen["sigmas"] is not None:
        assert np.allclose(row.sigmas, seen["sigmas"][: len(row.timesteps)], rtol=1e-6, atol=1e-7)
        assert row.final_sigma == pytest.approx(seen["sigmas"][-1], abs=1e-7)
    else:  # DDIM-style: σ of the visited index in the scheduler's own ᾱ
        alphas = seen["alphas_cumprod"][row.timesteps.astype(int)]
        assert np.allclose(row.sigmas, np.sqrt((1 - alphas) / alphas), rtol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
def test_sampler_steps_are_the_pipelines_own(name: str, family_dir) -> None:
    folder = family_dir(name)
    seen = _pipeline_timesteps(folder, 3)
    plan = _plan(folder, "--sampler-steps", "3")
    _assert_sampler_is_the_pipelines(plan, seen)
    if FAMILY_INFO[name].dynamic_shifting:
        assert plan.call.mu == pytest.approx(seen["kwargs"]["mu"], abs=0)
    if plan.model_curve.family == "flow":
        for sigmas, log_snr in (
            (plan.model_curve.sigmas, plan.model_curve.log_snr),
            (plan.visited[0].sigmas, plan.visited[0].log_snr),
        ):
            inside = (sigmas > 0) & (sigmas < 1)
            assert np.allclose(log_snr[inside], 2 * np.log((1 - sigmas[inside]) / sigmas[inside]))
            assert np.all(np.isneginf(log_snr[sigmas >= 1]))


def test_flux_mu_follows_the_requested_size(family_dir) -> None:
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    folder = family_dir("flux_dev")
    seen = _pipeline_timesteps(folder, 4, height=128, width=256)
    plan = _plan(folder, "--sampler-steps", "4", "--height", "128", "--width", "256")
    _assert_sampler_is_the_pipelines(plan, seen)
    # VAE factor 2, packed 2x2: (128 // 4) * (256 // 4) tokens; not the default size's 4096.
    assert plan.call.image_seq_len == 32 * 64
    assert plan.call.mu == pytest.approx(calculate_shift(2048, 256, 4096, 0.5, 1.15), abs=0)
    curve = plan.model_curve
    shift = np.exp(plan.call.mu)
    t = curve.timesteps / 1000
    assert np.allclose(curve.sigmas, shift * t / (1 + (shift - 1) * t))


def test_sd3_with_dynamic_shifting_uses_its_own_mu(family_dir, tmp_path: Path) -> None:
    """SD3 derives the sequence length from latents and patches, not Flux's packing."""
    folder = tmp_path / "sd3-dynamic"
    shutil.copytree(family_dir("sd3"), folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["use_dynamic_shifting"] = True
    config_path.write_text(json.dumps(config))
    seen = _pipeline_timesteps(folder, 3)
    plan = _plan(folder, "--sampler-steps", "3")
    assert plan.call.image_seq_len == (64 // 8 // 2) ** 2 and "mu" in seen["kwargs"]
    assert plan.call.mu == pytest.approx(seen["kwargs"]["mu"], abs=0)
    _assert_sampler_is_the_pipelines(plan, seen)


def test_flux_dev_run_shows_mu(runs_root: Path, family_dir) -> None:
    code, run_dir = _run(runs_root, "--model", str(family_dir("flux_dev")), "--sampler-steps", "4")
    assert code == 0 and run_dir is not None
    results = json.loads((run_dir / "results.json").read_text())["schedule"]
    assert results["mu"] == pytest.approx(1.15)  # 4096 tokens: the top of Flux.1-dev's range
    assert results["sampler"][0]["mu"] == results["mu"]
    assert results["schedules"]["flux_dev"]["mu"] == results["mu"]
    assert "μ = 1.15" in (run_dir / "report.md").read_text()
    verdicts = {c["name"]: c["verdict"] for c in results["checks"]}
    assert verdicts["flow sampler follows the model's shift"] == "pass"


def test_sana_curve_uses_flow_shift_without_a_false_warning(family_dir) -> None:
    plan = _plan(family_dir("sana"), "--sampler-steps", "20")
    curve = plan.model_curve
    assert curve.family == "flow" and curve.shift == 3.0
    t = curve.timesteps / 1000
    assert np.allclose(curve.sigmas, 3 * t / (1 + 2 * t))
    checks = {c.name: c for c in sampler_checks(curve, plan.visited[0])}
    assert checks["flow sampler follows the model's shift"].verdict == "pass"
    # Another shift does warn: FlowMatchEuler built from Sana's config has shift 1.
    other = _plan(
        family_dir("sana"), "--sampler-steps", "20", "--sampler", "FlowMatchEulerDiscreteScheduler"
    )
    checks = {c.name: c for c in sampler_checks(curve, other.visited[0])}
    assert checks["flow sampler follows the model's shift"].verdict == "warn"


def test_shift_applied_twice_is_flagged() -> None:
    config = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}
    curve = curve_from_scheduler("sd3", build_scheduler(config))
    twice = visited_steps({**config, "shift": 9.0}, None, 20, None)  # s(s(u)) = 9u / (1 + 8u)
    verdicts = {c.name: c.verdict for c in sampler_checks(curve, twice)}
    assert verdicts["flow sampler follows the model's shift"] == "warn"


# ---- the family comes from the config --------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"_class_name": "FlowMapEulerDiscreteScheduler", "shift": 2.0}, "flow"),
        ({"_class_name": "LTXEulerAncestralRFScheduler"}, "flow"),  # config names no flow key
        (
            {
                "_class_name": "UniPCMultistepScheduler",
                "use_flow_sigmas": True,
                "flow_shift": 5.0,
                "prediction_type": "flow_prediction",
            },
            "flow",
        ),
        ({"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}, "flow"),
        ({"_class_name": "EDMEulerScheduler"}, "sigma"),
        ({"_class_name": "CMStochasticIterativeScheduler"}, "sigma"),
        (EULER_SD, "ddpm"),
        ({**SD_CONFIG, "_class_name": "DPMSolverMultistepScheduler"}, "ddpm"),
    ],
)
def test_family_is_read_from_the_config(config: dict, family: str) -> None:
    scheduler = build_scheduler(config)
    curve = curve_from_scheduler("x", scheduler)
    assert curve.family == family
    if family == "flow":
        shift = float(config.get("shift", config.get("flow_shift", 1.0)))
        t = curve.timesteps / 1000
        assert np.allclose(curve.sigmas, shift * t / (1 + (shift - 1) * t))
        middle = int(np.argmin(np.abs(curve.sigmas - 0.5)))
        assert curve.log_snr[middle] == pytest.approx(
            2 * np.log((1 - curve.sigmas[middle]) / curve.sigmas[middle])
        )
        visited = visited_steps(config, None, 8, None)
        inside = (visited.sigmas > 0) & (visited.sigmas < 1)
        expected = 2 * np.log((1 - visited.sigmas[inside]) / visited.sigmas[inside])
        assert np.allclose(visited.log_snr[inside], expected)


def test_flow_log_snr_is_zero_at_half_noise() -> None:
    """σ = 0.5 is equal parts signal and noise: log-SNR 0 (−2 ln σ would say 1.386)."""
    curve = curve_from_scheduler(
        "flow", build_scheduler({"_class_name": "FlowMapEulerDiscreteScheduler", "shift": 1.0})
    )
    assert curve.log_snr[499] == pytest.approx(0.0, abs=1e-12) and curve.sigmas[499] == 0.5


# ---- second-order samplers, spacing edge cases ----------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {**SD_CONFIG, "_class_name": "HeunDiscreteScheduler"},
        {**SD_CONFIG, "_class_name": "KDPM2DiscreteScheduler"},
        {**SD_CONFIG, "_class_name": "KDPM2AncestralDiscreteScheduler"},
        {**SD_CONFIG, "skip_prk_steps": False},  # PNDM with its Runge-Kutta steps
        {"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0},
    ],
)
def test_second_order_samplers_pass_the_repeat_check(config: dict) -> None:
    curve = curve_from_scheduler("x", build_scheduler(config))
    visited = visited_steps(config, None, 6, None)
    check = {c.name: c for c in sampler_checks(curve, visited)}[
        "visited timesteps distinct and in range"
    ]
    assert check.verdict == "pass", check.detail
    if "KDPM2" not in config["_class_name"]:  # KDPM2 interleaves midpoints: no repeats
        assert check.value["stages"] > 0


@pytest.mark.parametrize("name", ["KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler"])
def test_kdpm2_pairs_each_timestep_with_its_own_sigma(name: str) -> None:
    config = {**SD_CONFIG, "_class_name": name}
    visited = visited_steps(config, None, 5, "linspace")
    scheduler = build_scheduler(config)
    log_sigmas = np.log(
        np.sqrt((1 - scheduler.alphas_cumprod.numpy()) / scheduler.alphas_cumprod.numpy())
    )
    for t, sigma in zip(visited.timesteps, visited.sigmas, strict=True):
        if sigma > 0:  # the timestep diffusers derives from that σ is the visited one
            assert scheduler._sigma_to_t(np.array(sigma), log_sigmas) == pytest.approx(t, abs=1e-2)
        else:
            assert t == 0
    assert np.all(np.diff(visited.sigmas) <= 1e-5)  # midpoints lie between their steps


def test_a_repeated_step_of_a_one_stage_sampler_fails() -> None:
    curve = curve_from_scheduler("sd", build_scheduler(EULER_SD))
    visited = visited_steps(EULER_SD, None, 5, "leading")
    visited.timesteps = np.array([801.0, 601.0, 601.0, 401.0, 201.0])
    check = {c.name: c for c in sampler_checks(curve, visited)}[
        "visited timesteps distinct and in range"
    ]
    assert check.verdict == "fail" and check.value["repeated"] == 1
    heun = visited_steps({**SD_CONFIG, "_class_name": "HeunDiscreteScheduler"}, None, 3, None)
    heun.timesteps = np.array([999.0, 499.0, 499.0, 499.0, 0.0])  # three in a row: not a stage
    check = {c.name: c for c in sampler_checks(curve, heun)}[
        "visited timesteps distinct and in range"
    ]
    assert check.verdict == "fail"


def test_zero_terminal_snr_with_leading_spacing_does_not_start_at_max_noise() -> None:
    config = {
        **SD_CONFIG,
        "_class_name": "DDIMScheduler",
        "rescale_betas_zero_snr": True,
        "prediction_type": "v_prediction",
    }
    curve = curve_from_scheduler("zsnr", build_scheduler(config))
    assert curve.terminal_snr == 0.0
    key = "sampler starts at the schedule's maximum noise"
    leading = {c.name: c for c in sampler_checks(curve, visited_steps(config, None, 50, "leading"))}
    trailing = {
        c.name: c for c in sampler_checks(curve, visited_steps(config, None, 50, "trailing"))
    }
    assert leading[key].verdict == "warn" and leading[key].value["first_timestep"] == 981
    assert trailing[key].verdict == "pass"


def test_leading_spacing_with_1000_steps_visits_an_out_of_range_step() -> None:
    curve = curve_from_scheduler("sd", build_scheduler(SD_CONFIG))
    visited = visited_steps(SD_CONFIG, None, 1000, "leading")
    assert visited.timesteps.max() == 1000  # steps_offset=1 on top of 0..999
    checks = {c.name: c for c in sampler_checks(curve, visited)}
    distinct = checks["visited timesteps distinct and in range"]
    assert distinct.verdict == "fail" and distinct.value["out_of_range"] >= 1
    assert "1000" in distinct.detail
    assert checks["sampler starts at the schedule's maximum noise"].verdict == "fail"


# ---- what cannot be analysed is refused before anything is written ---------------------------


@pytest.mark.parametrize(
    ("config", "options", "expected"),
    [
        (
            SD_CONFIG,
            ["--sampler", "EDMEulerScheduler"],
            "a sigma sampler cannot run on this model's ddpm schedule",
        ),
        (SD_CONFIG, ["--sampler", "FlowMatchEulerDiscreteScheduler"], "a flow sampler"),
        (SD_CONFIG, ["--sampler", "IPNDMScheduler"], "defines no noise schedule"),
        ({"_class_name": "IPNDMScheduler"}, [], "defines no noise schedule"),
        ({"_class_name": "KarrasVeScheduler"}, [], "holds neither per-step sigmas"),
        ({"_class_name": "ScoreSdeVeScheduler"}, [], "holds neither per-step sigmas"),
        (
            {"_class_name": "FlowMatchEulerDiscreteScheduler", "use_dynamic_shifting": True},
            [],
            "use_dynamic_shifting",
        ),
        (
            {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
            ["--sampler", "ScoreSdeVeScheduler"],
            "a sigma sampler",
        ),
    ],
)
def test_unanalysable_schedulers_are_refused_in_one_line(
    runs_root: Path, tmp_path: Path, capsys, config: dict, options: list[str], expected: str
) -> None:
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps(config))
    code, run_dir = _run(runs_root, "--model", str(path), "--sampler-steps", "4", *options)
    err = capsys.readouterr().err.strip()
    assert code == 2 and run_dir is None
    assert expected in err and len(err.splitlines()) == 1


def test_scheduler_without_its_backend_is_refused(runs_root: Path, tmp_path: Path, capsys) -> None:
    import importlib.util

    if importlib.util.find_spec("torchsde") is not None:
        pytest.skip("torchsde is installed: DPMSolverSDEScheduler can be built")
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps({**SD_CONFIG, "_class_name": "DPMSolverSDEScheduler"}))
    code, run_dir = _run(runs_root, "--model", str(path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and run_dir is None and len(err.splitlines()) == 1
    assert "DPMSolverSDEScheduler" in err and "torchsde" in err


def test_pipeline_with_dynamic_shifting_of_unknown_rule_is_refused(
    runs_root: Path, family_dir, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "sana-dynamic"
    shutil.copytree(family_dir("sana"), folder)
    capsys.readouterr()  # the fixture's build messages
    config_path = folder / "scheduler" / "scheduler_config.json"
    config_path.write_text(
        json.dumps({**json.loads(config_path.read_text()), "use_dynamic_shifting": True})
    )
    code, run_dir = _run(runs_root, "--model", str(folder))
    err = capsys.readouterr().err.strip()
    assert code == 2 and run_dir is None and len(err.splitlines()) == 1
    assert "SanaPipeline" in err and "use_dynamic_shifting" in err
