"""The GPU-side machinery, exercised on the CPU: ``--batch-size auto`` (grows while memory
allows, halves and retries on out-of-memory), ``--compile`` (the denoiser compiled, then
restored), and the background writer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from diffusionscope.core.cli import main
from diffusionscope.core.metrics.batching import AutoBatch

FAST = [
    "run",
    "--modes",
    "metrics",
    "--quiet",
    "--steps",
    "2",
    "--metrics",
    "fid",
    "--bootstrap",
    "0",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("DIFFUSIONSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from diffusionscope.core.zoo import DIGITS_REFERENCE

    folder = tmp_path_factory.mktemp("reference")
    for path in sorted(DIGITS_REFERENCE.glob("*.png"))[:40]:
        shutil.copy(path, folder)
    return folder


class FakeProbe:
    """GPU memory as a function of the batch: ``fixed + per_image × batch`` of ``total``."""

    def __init__(self, batcher_size, fixed: float = 0.1, per_image: float = 0.02) -> None:
        self.size, self.fixed, self.per_image = batcher_size, fixed, per_image

    def start_step(self) -> None:
        pass

    def predicted_fraction_if_doubled(self) -> float:
        return self.fixed + self.per_image * 2 * self.size()

    def release(self) -> None:
        pass


def test_auto_batch_grows_until_twice_would_not_fit_then_backs_off() -> None:
    batcher = AutoBatch(8, limit=1024)
    batcher.probe = FakeProbe(lambda: batcher.size)
    sizes = []
    for _ in range(6):
        sizes.append(batcher.start_step())
        batcher.step_done()
    # 0.1 + 0.02·2·B < 0.85 holds for B = 8 and 16, not for 32.
    assert sizes == [8, 16, 32, 32, 32, 32]
    batcher.out_of_memory()
    assert [batcher.start_step() for _ in range(3)] == [16, 16, 16]
    batcher.step_done()
    assert batcher.size == 16  # capped below the size that failed


def test_auto_batch_retries_a_step_after_out_of_memory(
    tmp_path: Path, monkeypatch, small_reference: Path
) -> None:
    """A step that runs out of memory is redone at half the batch; every sample is made once
    in the end, and the numbers are those of a fixed-batch run."""
    from diffusionscope.core.metrics import loop

    made: list[int] = []
    batch = loop.PipelineImages.batch

    def limited(self, indices):
        if len(indices) > 12:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        made.extend(indices)
        return batch(self, indices)

    def batcher(ctx, device, sync_device, total):
        auto = AutoBatch(8, limit=total)
        auto.probe = FakeProbe(lambda: auto.size, fixed=0.0, per_image=0.001)
        return auto, (lambda failed: failed)

    auto_root, fixed_root = tmp_path / "auto", tmp_path / "fixed"
    options = [*FAST, "-n", "24", "--reference", str(small_reference)]
    with monkeypatch.context() as patched:
        patched.setattr(loop.PipelineImages, "batch", limited)
        patched.setattr(loop, "_batcher", batcher)
        assert main([*options, "--batch-size", "auto", "--runs-root", str(auto_root)]) == 0
    assert main([*options, "--batch-size", "8", "--runs-root", str(fixed_root)]) == 0
    run_dir = next(auto_root.iterdir())
    auto = json.loads((run_dir / "results.json").read_text())["metrics"]
    fixed = json.loads(next(fixed_root.iterdir()).joinpath("results.json").read_text())["metrics"]
    assert sorted(made) == list(range(24))
    assert auto["throughput"]["batch_sizes"] == [8, 16]  # 8, then 16 (ran out), back to 8
    assert auto["throughput"]["auto_batch"] is True
    assert auto["fid"]["value"] == pytest.approx(fixed["fid"]["value"], rel=1e-4)
    log = (run_dir / "events.jsonl").read_text()
    assert "out of GPU memory at batch 16; retrying with 8" in log


def test_compile_wraps_the_denoiser_and_restores_it(
    tmp_path: Path, monkeypatch, capsys, small_reference: Path
) -> None:
    from diffusionscope.core.metrics import acceleration

    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "eager")  # no C++ toolchain needed
    compiled_calls: list[bool] = []
    accelerated = acceleration.accelerated

    def watching(pipeline, device, compile_denoiser=False):
        unet = acceleration.denoiser_of(pipeline)
        context = accelerated(pipeline, device, compile_denoiser)

        class Watch:
            def __enter__(self):
                applied = context.__enter__()
                compiled_calls.append(unet._compiled_call_impl is not None)
                return applied

            def __exit__(self, *exc):
                result = context.__exit__(*exc)
                compiled_calls.append(unet._compiled_call_impl is not None)
                return result

        return Watch()

    monkeypatch.setattr(acceleration, "accelerated", watching)
    root = tmp_path / "runs"
    options = [
        *FAST,
        "-n",
        "16",
        "--batch-size",
        "8",
        "--runs-root",
        str(root),
        "--json",
        "--reference",
        str(small_reference),
    ]
    assert main([*options, "--compile"]) == 0
    compiled = json.loads(capsys.readouterr().out)["metrics"]
    assert compiled_calls == [True, False]  # compiled during the run, plain again after it
    assert any("torch.compile(UNet2DConditionModel" in a for a in compiled["throughput"]["applied"])
    throughput = compiled["throughput"]
    assert throughput["warmup_seconds"] > 0 and throughput["steady_images"] == 8
    assert main(options) == 0
    plain = json.loads(capsys.readouterr().out)["metrics"]
    assert compiled["fid"]["value"] == pytest.approx(plain["fid"]["value"], rel=1e-6)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--modes", "metrics,latent", "--batch-size", "auto"], "only the metrics mode"),
        (
            ["--modes", "metrics", "--generated", "{ref}", "--compile"],
            "--generated samples nothing",
        ),
        (["--modes", "metrics", "--batch-size", "-3"], "must be positive"),
    ],
)
def test_throughput_options_refused_in_one_line(runs_root: Path, capsys, options, expected) -> None:
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    options = [o.format(ref=DIGITS_REFERENCE) for o in options]
    code = main(
        ["run", *options, "--runs-root", str(runs_root), "--reference", str(DIGITS_REFERENCE)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0]
    assert not list(runs_root.iterdir())


# ---- the background writer ------------------------------------------------------------------


def test_background_writer_keeps_order_and_reports_errors() -> None:
    from diffusionscope.core.metrics.background import BackgroundWriter

    done: list[int] = []
    main_thread = threading.get_ident()
    threads: set[int] = set()

    def write(value: int) -> None:
        time.sleep(0.001 * (5 - value))  # later writes are quicker: order must still hold
        threads.add(threading.get_ident())
        done.append(value)

    with BackgroundWriter(max_pending=2) as writer:
        for value in range(5):
            writer.submit(write, value)
    assert done == [0, 1, 2, 3, 4] and main_thread not in threads

    def fail() -> None:
        raise OSError("disk full")

    writer = BackgroundWriter()
    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        writer.drain()
    writer.close()
