"""Metrics mode: the math against independent references, end-to-end runs on the digits model,
resume after SIGKILL, two processes, the Inception code path, and bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from diffusionscope.core.cli import main
from diffusionscope.core.metrics.frechet import frechet_distance, mean_and_covariance
from diffusionscope.core.metrics.prdc import density_coverage, precision_recall
from diffusionscope.core.runs import read_events, run_state
from diffusionscope.core.zoo import DIGITS_REFERENCE

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--steps", "8", "--batch-size", "8", "-n", "24", "--bootstrap", "5"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


# ---- math -----------------------------------------------------------------------------------


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 48))
    b = rng.normal(size=(500, 48)) @ rng.normal(size=(48, 48)) * 0.3 + 0.2
    mu1, s1 = mean_and_covariance(a)
    mu2, s2 = mean_and_covariance(b)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    # Fewer samples than dimensions: Σ1 is singular and the eigh route takes over.
    mu3, s3 = mean_and_covariance(a[:20])
    covmean = scipy.linalg.sqrtm(s3 @ s2).real
    expected = np.sum((mu3 - mu2) ** 2) + np.trace(s3) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu3, s3, mu2, s2) == pytest.approx(expected, rel=1e-6)


def _brute_prdc(real: np.ndarray, fake: np.ndarray) -> tuple[float, float, float, float]:
    """Direct transcription of the papers' definitions with full distance matrices."""
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)
    r3, f3 = np.sort(d_rr, 1)[:, 3], np.sort(d_ff, 1)[:, 3]
    precision = np.mean((d_fr <= r3[None]).any(1))
    recall = np.mean((f3[None] >= d_fr.T).any(1))
    r5 = np.sort(d_rr, 1)[:, 5]
    density = (d_fr < r5[None]).sum() / (5 * len(fake))
    coverage = np.mean(d_fr.min(0) < r5)
    return precision, recall, density, coverage


def test_precision_recall_density_coverage_match_definitions(monkeypatch) -> None:
    import diffusionscope.core.metrics.prdc as prdc

    monkeypatch.setattr(prdc, "BLOCK_ROWS", 17)  # force several blocks
    rng = np.random.default_rng(1)
    real = rng.normal(size=(120, 8)).astype(np.float32)
    fake = (rng.normal(size=(90, 8)) * 1.3 + 0.4).astype(np.float32)
    found = prdc.prdc(torch.from_numpy(real), torch.from_numpy(fake))
    assert (found.precision, found.recall, found.density, found.coverage) == pytest.approx(
        _brute_prdc(real, fake), abs=1e-6
    )
    p, r = precision_recall(torch.from_numpy(real), torch.from_numpy(fake))
    d, c = density_coverage(torch.from_numpy(real), torch.from_numpy(fake))
    assert (p, r, d, c) == pytest.approx(_brute_prdc(real, fake), abs=1e-6)


@pytest.mark.parametrize(
    ("n", "dim", "block"), [(300, 2048, 64), (1200, 64, 256), (700, 512, 1024)]
)
def test_a_set_against_itself_gives_exactly_one(monkeypatch, n: int, dim: int, block: int) -> None:
    """Distances from a matrix product round differently when rows and columns swap; the
    real-by-fake pass is laid out like the real-by-real one, so self-comparison is exact (the
    fake-by-real layout gave density 1.0028 on 2000 2048-d samples)."""
    import diffusionscope.core.metrics.prdc as prdc

    monkeypatch.setattr(prdc, "BLOCK_ROWS", block)
    features = torch.randn(n, dim, generator=torch.Generator().manual_seed(n)) * 4 + 1
    found = prdc.prdc(features, features.clone())
    assert (found.precision, found.recall, found.density, found.coverage) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("n_real", "n_fake", "subset"),
    [
        (400, 300, 1000),
        (300, 400, 1000),
        (200, 200, 1000),
        (400, 500, 100),
        (300, 420, 260),
        (1100, 1024, 1000),
    ],
)
def test_kid_equals_torchmetrics(n_real: int, n_fake: int, subset: int) -> None:
    """Same subsets (the same randperm calls from the same seed), same estimator."""
    from torchmetrics.image.kid import KernelInceptionDistance

    from diffusionscope.core.metrics.scores import PrecomputedFeatures, kid

    rng = np.random.default_rng(n_real + n_fake)
    real, fake = rng.normal(size=(n_real, 24)), rng.normal(size=(n_fake, 24)) * 1.2 + 0.1
    size = min(subset, n_real, n_fake)
    metric = KernelInceptionDistance(feature=PrecomputedFeatures(24), subsets=7, subset_size=size)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        mean, std = metric.compute()
    ours = kid(real, fake, subset_size=subset, subsets=7, seed=5)
    assert ours["mean"] == pytest.approx(float(mean), rel=1e-9)
    if ours["std"] is not None:
        assert ours["std"] == pytest.approx(float(std), rel=1e-6)


def test_kid_std_is_none_when_every_subset_is_the_whole_set() -> None:
    from diffusionscope.core.metrics.scores import kid

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(400, 16)), rng.normal(size=(300, 16)) + 0.2
    whole = kid(real, fake, subset_size=1000, subsets=10)
    assert whole["subset_size"] == 300 and whole["std"] is None
    assert "every generated subset" in whole["std_note"]
    sampled = kid(real, fake, subset_size=100, subsets=10)
    assert sampled["std"] > 1e-6 and "across 10 subsets of 100" in sampled["std_note"]


def test_inception_score_uses_population_std_over_splits() -> None:
    """IS from its definition: torch-fidelity's shuffle, 10 splits, exp(mean KL), ddof=0."""
    from diffusionscope.core.metrics.scores import inception_score

    logits = np.random.default_rng(4).normal(size=(200, 12)) * 3
    found = inception_score(logits, splits=10, seed=7)
    shuffled = logits[np.random.RandomState(7).permutation(200)]
    p = np.exp(shuffled - shuffled.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    per_split = []
    for part in np.split(p, 10):
        marginal = part.mean(0, keepdims=True)
        per_split.append(np.exp((part * (np.log(part) - np.log(marginal))).sum(1).mean()))
    assert found["mean"] == pytest.approx(np.mean(per_split), rel=1e-9)
    assert found["std"] == pytest.approx(np.std(per_split, ddof=0), rel=1e-9)
    assert inception_score(logits[:1], splits=10)["std"] is None


# ---- end to end on the digits model ----------------------------------------------------------


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("metrics-runs")
    os.environ["DIFFUSIONSCOPE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    code = main(
        [
            "run",
            "--modes",
            "metrics",
            "--runs-root",
            str(root),
            "--quiet",
            "--save-images",
            "--save-features",
            "--metrics",
            "fid,kid,is,clip,pr,dc,cmmd",
            *SMALL,
        ]
    )
    assert code == 0
    return next(root.iterdir())


def test_end_to_end_digits_metrics(digits_run: Path) -> None:
    results = json.loads((digits_run / "results.json").read_text())["metrics"]
    assert results["n_generated"] == 24 and results["features"]["name"] == "digits"
    assert "antialias=False" in results["features"]["resize_policy"]
    fid = results["fid"]
    assert fid["value"] > 0 and fid["interval"][0] <= fid["value"] <= fid["interval"][1]
    assert [point[0] for point in fid["curve"]] == [3, 6, 12, 24]
    assert np.isfinite(fid["fid_inf"])
    assert results["kid"]["subset_size"] == 24
    assert results["kid"]["std"] is None and "every generated subset" in results["kid"]["std_note"]
    assert 1.0 <= results["is"]["mean"] <= 10.0
    assert results["is"]["std"] > 0 and "ddof=0" in results["is"]["std_note"]
    assert results["throughput"]["batch_sizes"] == [8] and results["statistics_device"] == "cpu"
    for key in ("precision", "recall", "coverage"):
        assert 0.0 <= results[key]["value"] <= 1.0
    assert results["density"]["value"] >= 0
    assert np.isfinite(results["clip_score"]["mean"])
    assert np.isfinite(results["cmmd"]["value"]) and results["cmmd"]["value"] > 0
    events = read_events(digits_run)
    fid_series = [e for e in events if getattr(e, "series", None) == "fid"]
    assert [e.x for e in fid_series] == [3, 6, 12, 24]
    assert fid_series[-1].y == pytest.approx(fid["value"])
    for name in (
        "fid_curve.png",
        "fid_curve.csv",
        "sample_grid.png",
        "features_real.npz",
        "features_generated.npz",
    ):
        assert (digits_run / "artifacts" / name).stat().st_size > 0
    assert len(list((digits_run / "artifacts" / "samples").glob("*.png"))) == 24
    assert "FID" in (digits_run / "report.md").read_text()


def test_real_set_against_itself_is_zero(capsys) -> None:
    ref = str(DIGITS_REFERENCE)
    assert main(["fid", ref, ref, "--features", "digits", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(0.0, abs=1e-6)


def test_fid_command_on_two_npz_files(digits_run: Path, capsys) -> None:
    artifacts = digits_run / "artifacts"
    assert (
        main(
            ["fid", str(artifacts / "features_real.npz"), str(artifacts / "features_generated.npz")]
        )
        == 0
    )
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("FID:")  # pytorch-fid's output line
    expected = json.loads((digits_run / "results.json").read_text())["metrics"]["fid"]["value"]
    assert float(printed.split()[-1]) == pytest.approx(expected, rel=1e-6)


def test_npz_reference_gives_the_folder_fid(digits_run: Path, tmp_path: Path) -> None:
    """A pytorch-fid style ``.npz`` (mu and sigma only) of the reference folder, and the run's
    own PNGs as a ``--generated`` folder with a broken file and a non-image among them."""
    with np.load(digits_run / "artifacts" / "features_real.npz") as real:
        np.savez(tmp_path / "stats.npz", mu=real["mu"], sigma=real["sigma"])
    samples = tmp_path / "samples"
    shutil.copytree(digits_run / "artifacts" / "samples", samples)
    (samples / "0000005-broken.png").write_bytes(b"not a png")
    (samples / "notes.txt").write_text("not an image")
    root = tmp_path / "runs"
    code = main(
        [
            "run",
            "--modes",
            "metrics",
            "--runs-root",
            str(root),
            "--quiet",
            "--generated",
            str(samples),
            "--reference",
            str(tmp_path / "stats.npz"),
            "--features",
            "digits",
            "--metrics",
            "fid,kid",
            "--bootstrap",
            "2",
        ]
    )
    assert code == 0
    run_dir = next(root.iterdir())
    again = json.loads(run_dir.joinpath("results.json").read_text())["metrics"]
    first = json.loads((digits_run / "results.json").read_text())["metrics"]
    assert again["n_generated"] == 24 and "kid" not in again
    assert again["fid"]["value"] == pytest.approx(first["fid"]["value"], rel=1e-6)
    warnings = [e.message for e in read_events(run_dir) if getattr(e, "level", "") == "warning"]
    assert any("skipped 1 unreadable" in w for w in warnings)
    assert any("statistics only" in w and "kid" in w for w in warnings)


def _run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "diffusionscope", "run", *args],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _chunk_seconds(run_dir: Path) -> dict[str, float]:
    """Each checkpoint chunk's record of the run's seconds so far."""
    seconds = {}
    for path in (run_dir / "checkpoint").glob("metrics-chunk-*.npz"):
        with np.load(path, allow_pickle=False) as data:
            seconds[path.name] = float(data["seconds"])
    return seconds


def _check_seconds(run_dir: Path, attempts: int) -> None:
    """``run.seconds`` is the run's wall time: its events' span within 2% (for a resumed run,
    the sum of each attempt's span; the wait before the resume is not run time). The metrics
    mode's ``seconds`` is the sum of its phases and fits inside it."""
    results = json.loads((run_dir / "results.json").read_text())
    events = read_events(run_dir)
    starts = [i for i, e in enumerate(events) if getattr(e, "state", "") == "running"]
    assert len(starts) == attempts and starts[0] == 0
    ends = [*(i - 1 for i in starts[1:]), len(events) - 1]
    span = sum(events[b].time - events[a].time for a, b in zip(starts, ends, strict=True))
    assert results["run"]["seconds"] == pytest.approx(span, rel=0.02)
    metrics = results["metrics"]
    phases = metrics["phase_seconds"]
    assert set(phases) == {"reference", "sampling", "statistics"} and min(phases.values()) > 0
    assert metrics["seconds"] == pytest.approx(sum(phases.values()))
    assert metrics["seconds"] <= results["run"]["seconds"]


#: A run that kills itself (SIGKILL: no cleanup, no final status) right after its second
#: checkpoint chunk is on disk: the kill lands at the same point whatever the machine's load.
KILLED_AFTER_TWO_CHUNKS = """
import os, signal, sys
import diffusionscope.core.metrics.loop as loop
from diffusionscope.core.cli import main
write, written = loop.write_chunk, []
def write_then_die(target, chunk):
    write(target, chunk)
    written.append(target)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
loop.write_chunk = write_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def one_thread() -> Iterator[None]:
    """In-process runs on one thread, as the child processes are (oneDNN's last bits depend
    on the thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_resume_after_sigkill_reproduces_numbers(tmp_path: Path, one_thread: None) -> None:
    """Killed after two chunks, resumed: the numbers of a run that never stopped. The run that
    is killed is a process of its own; the straight run and the resume run in this one."""
    options = [
        "--modes",
        "metrics",
        "--quiet",
        "--steps",
        "6",
        "--batch-size",
        "4",
        "-n",
        "32",
        "--metrics",
        "fid,kid,pr,dc,is",
        "--bootstrap",
        "3",
    ]
    straight = tmp_path / "straight"
    assert main(["run", *options, "--runs-root", str(straight)]) == 0
    killed_root = tmp_path / "killed"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_TWO_CHUNKS, "run", *options, "--runs-root"]
        + [str(killed_root)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    run_dir = next(killed_root.iterdir())
    assert run_state(run_dir) == "interrupted" and not (run_dir / "results.json").exists()
    assert len(list((run_dir / "checkpoint").glob("metrics-chunk-*.npz"))) == 2
    before_kill = _chunk_seconds(run_dir)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    assert run_state(run_dir) == "finished"
    # seconds count the killed attempt too: chunks written after the resume continue its total.
    after_resume = {
        name: t for name, t in _chunk_seconds(run_dir).items() if name not in before_kill
    }
    assert before_kill and after_resume
    assert min(after_resume.values()) > max(before_kill.values()) > 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["metrics"]["seconds"] >= max(after_resume.values())
    _check_seconds(next(straight.iterdir()), attempts=1)
    _check_seconds(run_dir, attempts=2)
    a = json.loads(next(straight.iterdir()).joinpath("results.json").read_text())["metrics"]
    b = json.loads((run_dir / "results.json").read_text())["metrics"]
    for key in ("precision", "recall", "density", "coverage"):
        assert b[key]["value"] == pytest.approx(a[key]["value"], abs=1e-6)
    assert b["fid"]["value"] == pytest.approx(a["fid"]["value"], rel=1e-6)
    assert b["kid"]["mean"] == pytest.approx(a["kid"]["mean"], rel=1e-6, abs=1e-9)
    assert b["is"]["mean"] == pytest.approx(a["is"]["mean"], rel=1e-6)
    assert b["fid"]["fid_inf"] == pytest.approx(a["fid"]["fid_inf"], rel=1e-6)
    assert b["fid"]["interval"] == pytest.approx(a["fid"]["interval"], rel=1e-6)
    # The curve points passed before the kill are part of the resumed run's results too.
    assert [p[0] for p in b["fid"]["curve"]] == [p[0] for p in a["fid"]["curve"]] == [4, 8, 16, 32]
    assert [p[1] for p in b["fid"]["curve"]] == pytest.approx(
        [p[1] for p in a["fid"]["curve"]], rel=1e-6
    )


def _free_port() -> str:
    """A port no process listens on now, so two suites on one host never collide."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "PORT"],
    # Without GPUs, accelerate starts several processes only through its multi-GPU launcher
    # (torchrun underneath; Accelerator() then picks gloo on the CPU): `--cpu` starts one.
    "accelerate": [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "PORT",
    ],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_give_the_one_process_fid(tmp_path: Path, launcher: str) -> None:
    # Both runs use one thread per process: oneDNN's results depend on the thread count, and a
    # pixel that rounds the other way moves FID by ~1e-5, which is not what is tested here.
    options = ["--modes", "metrics", "--device", "cpu", "--metrics", "fid", "--quiet", *SMALL]
    one_root, two_root = tmp_path / "one", tmp_path / "two"
    command = [
        sys.executable,
        *(_free_port() if arg == "PORT" else arg for arg in LAUNCHERS[launcher]),
        "-m",
        "diffusionscope",
        "run",
        *options,
        "--runs-root",
        str(two_root),
    ]
    result = subprocess.run(
        command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _run_cli([*options, "--runs-root", str(one_root)]).wait(timeout=600) == 0
    [run_dir] = list(two_root.iterdir())  # rank 0 alone wrote a run directory
    generated = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = [e["done"] for e in generated if e.get("phase") == "generate"]
    assert steps[0] == 16  # one global step: 8 samples on each of the two processes
    two = json.loads((run_dir / "results.json").read_text())["metrics"]
    one = json.loads(next(one_root.iterdir()).joinpath("results.json").read_text())["metrics"]
    assert two["n_generated"] == one["n_generated"] == 24
    assert two["fid"]["value"] == pytest.approx(one["fid"]["value"], rel=1e-9)
    assert [p[0] for p in two["fid"]["curve"]] == [p[0] for p in one["fid"]["curve"]]
    assert [p[1] for p in two["fid"]["curve"]] == pytest.approx([p[1] for p in one["fid"]["curve"]])


def test_inception_extractor_from_local_weights(tmp_path: Path, capsys) -> None:
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with (
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None),
        mock.patch("torch.load", return_value={}),
    ):
        random_net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path="unused"
        )
    weights = tmp_path / "inception-random.pth"
    torch.save(random_net.state_dict(), weights)
    folder = tmp_path / "few"
    folder.mkdir()
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:6]:
        shutil.copy(path, folder)
    assert (
        main(
            [
                "fid",
                str(folder),
                str(folder),
                "--features",
                "inception",
                "--inception-weights",
                str(weights),
                "--json",
            ]
        )
        == 0
    )
    output = json.loads(capsys.readouterr().out)
    assert output["fid"] == pytest.approx(0.0, abs=1e-3) and output["n_a"] == 6
    assert "299" in output["resize_policy"]


def test_pickled_inception_weights_are_refused(tmp_path: Path, capsys) -> None:
    import argparse

    weights = tmp_path / "evil.pth"
    torch.save({"x": argparse.Namespace(payload="runs code when unpickled")}, weights)
    assert (
        main(
            [
                "fid",
                str(DIGITS_REFERENCE),
                str(DIGITS_REFERENCE),
                "--features",
                "inception",
                "--inception-weights",
                str(weights),
            ]
        )
        == 2
    )
    assert "refused" in capsys.readouterr().err


# ---- bad inputs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad")
    (base / "empty").mkdir()
    broken = base / "broken"
    broken.mkdir()
    for index in range(3):
        (broken / f"x{index}.png").write_bytes(b"not a png")
    (base / "prompts.txt").write_text("\n  \n# only a comment\n")
    np.savez(base / "nomu.npz", mean=np.zeros(3))
    np.savez(base / "wrongdim.npz", mu=np.zeros(7), sigma=np.eye(7))
    return {
        "empty": base / "empty",
        "broken": broken,
        "prompts": base / "prompts.txt",
        "nomu": base / "nomu.npz",
        "wrongdim": base / "wrongdim.npz",
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--reference", "{empty}"], "no images"),
        (["--reference", "/no/such/reference"], "no such folder"),
        (["--reference", "{broken}"], "readable image"),
        (["--prompts-file", "{prompts}"], "no prompts"),
        (["-n", "0"], "must be positive"),
        (["--batch-size", "0"], "must be positive"),
        (["--reference", "{nomu}"], "no 'mu' and 'sigma'"),
        (["--reference", "{wrongdim}"], "7-d but the feature extractor gives 64-d"),
    ],
)
def test_bad_inputs_one_line_no_results(
    bad_inputs: dict[str, Path], runs_root: Path, capsys, options: list[str], expected: str
) -> None:
    options = [option.format(**bad_inputs) for option in options]
    code = main(
        [
            "run",
            "--modes",
            "metrics",
            "--runs-root",
            str(runs_root),
            "--quiet",
            "--steps",
            "2",
            "-n",
            "4",
            *options,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert expected in err[-1] and err[-1].startswith("diffusionscope: error: ")
    assert not list(runs_root.glob("*/results.json"))
    if expected != "7-d but the feature extractor gives 64-d":  # known only once features exist
        assert not list(runs_root.iterdir()), "caught before the run directory was made"


def test_cached_statistics_with_other_dims_are_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    from diffusionscope.core.images import content_hash, find_images
    from diffusionscope.core.metrics import reference

    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "ref"
    folder.mkdir()
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:8]:
        shutil.copy(path, folder)
    assert main(["fid", str(folder), str(folder), "--features", "digits"]) == 0
    [cached] = list(reference.cache_dir().glob("*.npz"))
    assert cached.name.startswith(content_hash(find_images(folder), folder)[:20])
    np.savez(cached, mu=np.zeros(5), sigma=np.eye(5), n=np.asarray(8))
    capsys.readouterr()
    assert main(["fid", str(folder), str(folder), "--features", "digits"]) == 2
    assert "5-d statistics disagree with the 64-d digits features" in capsys.readouterr().err
