"""Campaigns: a sweep point is exactly a single run, kill -9 then --resume gives the same
results.json, checkpoint series (--sweep model=..., --watch), the paired interval by
simulation, and bad input refused before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from diffusionscope.core.cli import main
from diffusionscope.core.runs import read_events, run_state
from diffusionscope.core.zoo import DIGITS_CLIP, DIGITS_LDM, DIGITS_PROMPTS, DIGITS_REFERENCE

REPO = Path(__file__).resolve().parent.parent
TINY = ["-n", "16", "--steps", "2", "--features", "digits", "--quiet"]
TIMING = {"seconds", "throughput", "phase_seconds"}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _run(root: Path, *options: str) -> dict:
    assert main(["run", "--modes", "metrics", "--runs-root", str(root), *options]) == 0
    [run_dir] = list(root.iterdir())
    return json.loads((run_dir / "results.json").read_text())


def _untimed(value):
    """``value`` without its timing fields (and whether the reference came from the cache),
    at any depth."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING | {"from_cache"}}
    if isinstance(value, list):
        return [_untimed(item) for item in value]
    return value


@pytest.fixture(scope="module")
def guidance_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ["DIFFUSIONSCOPE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    root = tmp_path_factory.mktemp("sweep")
    _run(root, "--sweep", "guidance-scale=1,3", *TINY)
    return next(root.iterdir())


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Single runs at the sweep's two guidance scales."""
    os.environ["DIFFUSIONSCOPE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    runs = {}
    for scale in ("1", "3"):
        root = tmp_path_factory.mktemp(f"single-{scale}")
        _run(root, "--guidance-scale", scale, *TINY)
        runs[scale] = next(root.iterdir())
    return runs


def test_each_point_is_a_single_run(guidance_sweep: Path, single_runs: dict[str, Path]) -> None:
    sweep = json.loads((guidance_sweep / "results.json").read_text())["sweep"]
    single = json.loads((single_runs["3"] / "results.json").read_text())["metrics"]
    assert sweep["axes"] == {"guidance_scale": [1.0, 3.0]}
    assert [p["settings"] for p in sweep["points"]] == [
        {"guidance_scale": 1.0},
        {"guidance_scale": 3.0},
    ]
    point = sweep["points"][1]["metrics"]
    assert set(point) == set(single)
    assert _untimed(point) == _untimed(single)
    assert _untimed(sweep["points"][0]["metrics"]) != _untimed(single)


def test_campaign_outputs_and_live_events(guidance_sweep: Path) -> None:
    sweep = json.loads((guidance_sweep / "results.json").read_text())["sweep"]
    [pair] = sweep["differences"]
    assert (pair["a"], pair["b"], pair["kind"]) == (0, 1, "adjacent")
    fid = pair["metrics"]["fid"]
    first, second = (p["metrics"]["fid"]["value"] for p in sweep["points"])
    assert fid["difference"] == pytest.approx(first - second)
    assert fid["interval"][0] < fid["difference"] < fid["interval"][1]
    assert fid["exceeds_interval"] == (fid["interval"][0] > 0 or fid["interval"][1] < 0)
    assert "same indices" in fid["method"]
    assert "bootstrap" in pair["metrics"]["clip_score"]["method"]
    rows = (guidance_sweep / "artifacts" / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("guidance_scale,fid,fid_low,fid_high")
    assert [row.split(",")[0] for row in rows[1:]] == ["1.0", "3.0"]
    assert (guidance_sweep / "artifacts" / "fid_clip.png").stat().st_size > 0
    report = (guidance_sweep / "report.md").read_text()
    assert "artifacts/fid_clip.png" in report and "guidance-scale=3.0" in report
    assert "paired interval" in report
    series = [e for e in read_events(guidance_sweep) if getattr(e, "series", None)]
    names = {e.series for e in series}
    assert {"fid@guidance-scale=1.0", "fid@guidance-scale=3.0", "sweep:fid"} <= names
    fid_clip = [(e.x, e.y) for e in series if e.series == "sweep:fid_clip"]
    assert [y for _, y in fid_clip] == pytest.approx([first, second])


def test_compare_of_two_runs_gives_the_campaign_interval(
    guidance_sweep: Path, single_runs: dict[str, Path], capsys
) -> None:
    [pair] = json.loads((guidance_sweep / "results.json").read_text())["sweep"]["differences"]
    assert main(["compare", str(single_runs["1"]), str(single_runs["3"]), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["metrics"]
    assert set(found) == set(pair["metrics"])
    for key, entry in pair["metrics"].items():
        assert found[key]["difference"] == pytest.approx(entry["difference"], rel=1e-12)
        assert found[key]["interval"] == pytest.approx(entry["interval"], rel=1e-12)
        assert found[key]["exceeds_interval"] == entry["exceeds_interval"]
    assert main(["compare", str(single_runs["1"]), str(guidance_sweep)]) == 2
    assert "a campaign" in capsys.readouterr().err


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sweep", "complaint"),
    [
        (["features=digits,inception"], "not an option a sweep can vary"),
        (["guidance-scale="], "no values"),
        (["guidance-scale=1,,3"], "an empty value"),
        (["guidance-scale=1,1.0"], "more than once"),
        (["steps=0,2"], "must be positive"),
        (["steps=1,2", "steps=3"], "two --sweep flags"),
        (
            [
                f"steps={','.join(map(str, range(1, 41)))}",
                f"height={','.join(map(str, range(8, 38)))}",
            ],
            "add --yes",
        ),
        (["model=/no/such/checkpoint"], "no/such/checkpoint"),
        (["model=/no/such/folder/*"], "no checkpoint matches"),
    ],
)
def test_bad_sweeps_write_nothing(tmp_path: Path, capsys, sweep: list[str], complaint: str) -> None:
    flags = [word for axis in sweep for word in ("--sweep", axis)]
    root = tmp_path / "runs"
    assert main(["run", "--modes", "metrics", "--runs-root", str(root), *flags, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and complaint in err, err
    assert not root.exists() or not any(root.iterdir())


def test_checkpoint_of_another_family_is_refused(tmp_path: Path, capsys) -> None:
    """The configs decide: a copy of the digits model whose model_index names another
    pipeline class is another family, refused before anything is written."""
    other = tmp_path / "other"
    shutil.copytree(DIGITS_LDM, other)
    index = other / "model_index.json"
    config = json.loads(index.read_text())
    index.write_text(json.dumps({**config, "_class_name": "StableDiffusionXLPipeline"}))
    root = tmp_path / "runs"
    axis = f"model={DIGITS_LDM},{other}"
    assert main(["run", "--modes", "metrics", "--runs-root", str(root), "--sweep", axis]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not of the family" in err, err
    assert not root.exists() or not any(root.iterdir())


# ---- kill -9 in the second point, then --resume ----------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _start(root: Path, options: list[str], script: str | None = None) -> subprocess.Popen:
    """The CLI in a process of its own (``script`` in place of ``python -m diffusionscope``)."""
    entry = ["-c", script] if script else ["-m", "diffusionscope"]
    command = [sys.executable, *entry, "run", *options, "--runs-root", str(root)]
    return subprocess.Popen(
        command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


#: A campaign that kills itself (SIGKILL: no cleanup, no final status) right after the second
#: checkpoint chunk of its second point is on disk: the same moment whatever the machine's load.
KILLED_IN_THE_SECOND_POINT = """
import os, signal, sys
import diffusionscope.core.metrics.loop as loop
from diffusionscope.core.cli import main
write, written = loop.write_chunk, []
def write_then_die(target, chunk):
    write(target, chunk)
    if "points/001/" in str(target).replace(os.sep, "/"):
        written.append(target)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
loop.write_chunk = write_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_kill_in_the_second_point_then_resume_gives_the_same_results(tmp_path: Path) -> None:
    options = ["--modes", "metrics", "--sweep", "guidance-scale=1,3", "-n", "24"]
    options += ["--batch-size", "4", "--steps", "3", "--metrics", "fid,kid,clip", "--quiet"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert _start(straight, options).wait(timeout=900) == 0
    child = _start(killed, options, KILLED_IN_THE_SECOND_POINT)
    assert child.wait(timeout=900) == -signal.SIGKILL
    assert len(list(killed.glob("*/checkpoint/points/001/metrics-chunk-*.npz"))) == 2
    [run_dir] = list(killed.iterdir())
    assert run_state(run_dir) == "interrupted" and not (run_dir / "results.json").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "diffusionscope", "run", "--resume", str(run_dir), "--quiet"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (run_dir / "events.jsonl").read_text()
    assert "point 1 (guidance-scale=1.0): kept from before the interruption" in log
    assert "resuming at sample" in log
    [first_dir] = list(straight.iterdir())
    first = json.loads((first_dir / "results.json").read_text())
    again = json.loads((run_dir / "results.json").read_text())
    assert _untimed(again) == _untimed(first)


# ---- checkpoint series ------------------------------------------------------------------------

SERIES = ["-n", "8", "--steps", "2", "--batch-size", "8", "--metrics", "fid,kid,clip"]
SERIES += ["--bootstrap", "5", "--features", "digits", "--reference", str(DIGITS_REFERENCE)]
SERIES += ["--prompts-file", str(DIGITS_PROMPTS), "--clip-model", str(DIGITS_CLIP), "--quiet"]


def _checkpoint(target: Path, scale: float) -> Path:
    """The digits model with its UNet weights moved by ``scale`` × noise (0: unchanged)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(DIGITS_LDM, target)
    weights = target / "unet" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(weights)
    generator = torch.Generator().manual_seed(0)
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensors[name] = tensor + scale * noise * tensor.std().nan_to_num(0)
    save_file(tensors, weights)
    return target


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("training")
    _checkpoint(folder / "checkpoint-100", 0.3)
    _checkpoint(folder / "checkpoint-200", 0.0)
    return folder


def test_model_sweep_then_watch_pick_up_checkpoints(
    checkpoints: Path, tmp_path: Path, monkeypatch
) -> None:
    from diffusionscope.core.metrics import campaign

    swept = _run(tmp_path / "sweep", "--sweep", f"model={checkpoints}/*", *SERIES)["sweep"]
    names = [Path(p["settings"]["model"]).name for p in swept["points"]]
    assert names == ["checkpoint-100", "checkpoint-200"]
    fids = [p["metrics"]["fid"]["value"] for p in swept["points"]]
    assert fids[0] != fids[1]  # the UNet weights alone differ
    assert swept["differences"][0]["metrics"]["fid"]["difference"] == pytest.approx(
        fids[0] - fids[1]
    )

    watched = tmp_path / "watched"
    shutil.copytree(checkpoints / "checkpoint-100", watched / "checkpoint-100")
    monkeypatch.setattr(campaign, "WATCH_POLL_SECONDS", 0.2)
    root = tmp_path / "watch"
    helper = threading.Thread(
        target=_train, args=(root, checkpoints / "checkpoint-200", watched), daemon=True
    )
    helper.start()
    results = _run(root, "--watch", str(watched), *SERIES)["sweep"]
    helper.join(timeout=60)
    names = [Path(p["settings"]["model"]).name for p in results["points"]]
    assert names == ["checkpoint-100", "checkpoint-200"]
    assert results["axes"]["model"] == [p["settings"]["model"] for p in results["points"]]
    for point, same in zip(results["points"], swept["points"], strict=True):
        assert _untimed(point["metrics"]) == _untimed(same["metrics"])


def _train(root: Path, checkpoint: Path, watched: Path) -> None:
    """A training run's part: a new checkpoint once the first is measured and the run waits
    again, then the stop once the new one is measured too."""
    from diffusionscope.core.metrics import campaign

    def wait_until(finished: int) -> bool:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            events = next(iter(root.glob("*/events.jsonl")), None)
            book = next(iter(root.glob("*/checkpoint/sweep-points.json")), None)
            if events is not None and book is not None:
                done = [p for p in json.loads(book.read_text())["points"] if p["metrics"]]
                waits = events.read_text().count("waiting for new checkpoints")
                if len(done) >= finished and waits > finished:
                    return True
            time.sleep(0.1)
        return False

    if wait_until(1):
        shutil.copytree(checkpoint, watched / checkpoint.name)
        wait_until(2)
    campaign.STOP_WATCHING.set()


# ---- the paired interval, by simulation --------------------------------------------------------


def test_paired_interval_covers_the_true_difference_and_is_narrower() -> None:
    """Two generators driven by the same latent per sample (as two settings are by the same
    seed), a fixed reference: the paired interval covers E[FID_A(N)] − E[FID_B(N)] about as
    often as it says, and is about half as wide as the unpaired one."""
    import torch

    from diffusionscope.core.metrics.frechet import fid_from_features, mean_and_covariance
    from diffusionscope.core.metrics.paired import fid_difference

    torch.set_num_threads(1)  # 8x8 matrices: threads would only wait for each other
    dim, n = 8, 200
    rng = np.random.default_rng(0)
    mu, sigma = mean_and_covariance(rng.standard_normal((4000, dim)))

    def draw() -> tuple[np.ndarray, np.ndarray]:
        latent = rng.standard_normal((n, dim))
        return latent + 0.2, 1.15 * latent + 0.25 + 0.3 * rng.standard_normal((n, dim))

    truth = np.mean(
        [
            fid_from_features(a, mu, sigma) - fid_from_features(b, mu, sigma)
            for a, b in (draw() for _ in range(600))
        ]
    )
    covered, widths = {True: 0, False: 0}, {True: [], False: []}
    replications = 150
    for replication in range(replications):
        a, b = draw()
        for paired in (True, False):
            found = fid_difference(a, b, mu, sigma, paired=paired, resamples=30, seed=replication)
            covered[paired] += found["low"] <= truth <= found["high"]
            widths[paired].append(found["high"] - found["low"])
    torch.set_num_threads(2)  # as conftest sets it for the other tests
    assert 0.88 <= covered[True] / replications <= 0.99
    assert np.mean(widths[True]) < 0.7 * np.mean(widths[False])
