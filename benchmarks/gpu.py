"""On a CUDA host: (1) the metrics mode against the plain loop users write today, same model,
prompts, seeds and steps, as a throughput ratio; (2) the same folder measured on the GPU and on
the CPU; (3) every mode on the shipped model and on tiny SD/SDXL/SD3/Flux pipelines in fp32,
fp16 and bf16 against the CPU in fp32, within stated tolerances.

    python -m benchmarks gpu [--out FILE] [--inception-weights PATH] [--compile] [--budget S]

Without CUDA it says so and exits 0. Nothing is downloaded: the shipped digits model, its
features and CLIP, and tiny random pipelines built here (``tests/family_pipelines.py``).
Inception rows run only with local torch-fidelity weights (``--inception-weights``, the
``DIFFUSIONSCOPE_INCEPTION_WEIGHTS`` variable, or torch-fidelity's own download in the torch
hub cache); otherwise they are listed as skipped. Every case is guarded: an error is recorded
with its traceback and the next case runs; cases that would start after ``--budget`` seconds
(default 330) are listed as skipped. A compact table goes to stdout, and the table with every
case's details (numbers, differences, errors) to ``--out``.

Tolerances (relative, on each headline number, CUDA against CPU fp32):

- the same folder of images (no sampling): 1e-4 for FID, KID and IS, one sample's worth
  (1/N) for precision, recall, density and coverage: extractors and statistics run in float32
  without TF32 and in float64;
- sampling in fp32: 2e-2 (GPU and CPU kernels round differently; a pixel that lands on the
  other side of a uint8 step moves the features), fp16: 1e-1, bf16: 2.5e-1 (bf16 keeps 8
  mantissa bits; these tiny random networks amplify it);
- the schedule mode reads only the scheduler config: 1e-9.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FAMILIES = ("sd15", "sdxl", "sd3", "flux_schnell")
DTYPES = ("fp32", "fp16", "bf16")
MODES = ("metrics", "attention", "latent", "schedule")
PROMPT = "a red seven on a white background"
TOLERANCE = {"folder": 1e-4, "fp32": 2e-2, "fp16": 1e-1, "bf16": 2.5e-1, "schedule": 1e-9}
HEADLINES = {
    "metrics": (
        "fid.value",
        "kid.mean",
        "is.mean",
        "clip_score.mean",
        "precision.value",
        "recall.value",
        "density.value",
        "coverage.value",
    ),
}
SKIPPED_KEYS = (
    "seconds",
    "throughput",
    "time",
    "strip",
    "grid",
    "path",
    "statistics_device",
    "source",
    "reference",
    "csv",
    "per_second",
)
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


@dataclass
class Case:
    name: str
    status: str = "pending"  # then ok | FAIL | error | skipped
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Bench:
    def __init__(self, budget: float, work: Path) -> None:
        self.started = time.monotonic()
        self.budget = budget
        self.work = work
        self.cases: list[Case] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def case(self, name: str, body: Callable[[Case], None]) -> Case:
        case = Case(name)
        self.cases.append(case)
        if self.elapsed() > self.budget:
            case.status, case.summary = "skipped", f"not started: {self.budget:.0f} s budget spent"
            return case
        began = time.monotonic()
        try:
            body(case)
            if case.status == "pending":
                case.status = "ok"
        except Exception as error:  # noqa: BLE001 -- one try: record it and go on
            first_line = str(error).splitlines()[0][:160] if str(error) else ""
            case.status, case.summary = "error", f"{type(error).__name__}: {first_line}"
            case.details["traceback"] = traceback.format_exc()
        finally:
            case.seconds = time.monotonic() - began
            _release()
        print(
            f"   [{self.elapsed():6.1f} s] {case.status:7} {case.name}: {case.summary}", flush=True
        )
        return case


#: The device under test: ``cuda``, or ``cpu`` to rehearse every case of this script on a
#: machine without a GPU (the ratios and comparisons then mean nothing).
DEVICE = "cuda"


def _release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


# ---- running the CLI in this process ----------------------------------------------------------


def run_cli(args: list[str], root: Path) -> tuple[int, dict[str, Any] | None, str]:
    """``diffusionscope run ...`` in-process; (exit code, results.json, stderr's last lines)."""
    from diffusionscope.core.cli import main

    root.mkdir(parents=True, exist_ok=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", *args, "--runs-root", str(root), "--quiet"])
    runs = sorted(p for p in root.iterdir() if p.is_dir())
    results = None
    if runs and (runs[-1] / "results.json").is_file():
        results = json.loads((runs[-1] / "results.json").read_text())
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return code, results, " | ".join(reversed(lines[-2:]))  # the last line first


def flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a results section, keyed by dotted path (timings and paths left out)."""
    leaves: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if any(word in str(key) for word in SKIPPED_KEYS):
                continue
            leaves.update(flatten(item, f"{prefix}{key}."))
    elif isinstance(value, list) and len(value) <= 64:
        for index, item in enumerate(value):
            leaves.update(flatten(item, f"{prefix}{index}."))
    elif (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    ):
        leaves[prefix.rstrip(".")] = float(value)
    return leaves


def compare(
    mode: str,
    got: dict[str, Any],
    want: dict[str, Any],
    tolerance: float,
    absolute: dict[str, float] | None = None,
) -> tuple[bool, str, dict[str, Any]]:
    """Headline numbers within ``tolerance`` (relative) or ``absolute[key]``; every other
    numeric leaf's largest relative difference is reported, not judged."""
    a, b = flatten(got.get(mode, {})), flatten(want.get(mode, {}))
    headlines = [k for k in HEADLINES.get(mode, ()) if k in b] or sorted(b)
    worst, worst_key, failures, rows = 0.0, "", [], {}
    for key in headlines:
        if key not in a:
            failures.append(f"{key} missing")
            continue
        difference = abs(a[key] - b[key])
        relative = difference / max(abs(b[key]), 1e-12)
        allowed = max(tolerance * abs(b[key]), (absolute or {}).get(key.split(".")[0], 0.0), 1e-9)
        rows[key] = {"cuda": a[key], "cpu": b[key], "relative": relative}
        if difference > allowed:
            failures.append(f"{key} {a[key]:.6g} vs {b[key]:.6g}")
        if relative > worst:
            worst, worst_key = relative, key
    others = [abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in b if k in a and abs(b[k]) > 1e-6]
    details = {
        "headline": rows,
        "max_relative_any_leaf": max(others, default=0.0),
        "leaves_compared": len(others),
    }
    summary = f"max rel diff {worst:.2e} ({worst_key or '-'}); tol {tolerance:g}"
    if failures:
        summary += "; over: " + ", ".join(failures[:3])
    return not failures, summary, details


# ---- inputs ---------------------------------------------------------------------------------


def inception_weights(explicit: str | None) -> str | None:
    import torch

    candidates = [
        explicit,
        os.environ.get("DIFFUSIONSCOPE_INCEPTION_WEIGHTS"),
        str(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def small_reference(work: Path, count: int = 64, skip: int = 0) -> Path:
    """``count`` images of the shipped reference set, after the first ``skip``."""
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    folder = work / f"reference-{skip}-{count}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for path in sorted(DIGITS_REFERENCE.glob("*.png"))[skip : skip + count]:
            shutil.copy(path, folder)
    return folder


def prompts_file(work: Path) -> Path:
    path = work / "prompts.txt"
    path.write_text(f"{PROMPT}\na blue two on a white background\na cat on a mat\n")
    return path


def build_families(work: Path, names: list[str]) -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from family_pipelines import build_family

    return {name: build_family(name, work / "families" / name) for name in names}


def mode_options(mode: str, model: str, work: Path) -> list[str]:
    """One small run of ``mode``; tiny family pipelines at 64 px (Flux's default is 256)."""
    from diffusionscope.core.zoo import DIGITS_CLIP

    size = [] if "digits" in model else ["--height", "64", "--width", "64"]
    if mode == "schedule":
        return ["--modes", "schedule", "--model", model]
    return [*_mode_options(mode, model, work, DIGITS_CLIP), *size]


def _mode_options(mode: str, model: str, work: Path, clip: Path) -> list[str]:
    if mode == "metrics":
        return [
            "--modes",
            "metrics",
            "--model",
            model,
            "-n",
            "16",
            "--batch-size",
            "8",
            "--steps",
            "4",
            "--features",
            "digits",
            "--reference",
            str(small_reference(work)),
            "--prompts-file",
            str(prompts_file(work)),
            "--clip-model",
            str(clip),
            "--metrics",
            "fid,kid,is,clip,pr,dc",
            "--bootstrap",
            "10",
        ]
    if mode == "attention":
        return ["--modes", "attention", "--model", model, "--prompt", PROMPT, "--steps", "4"]
    return [
        "--modes",
        "latent",
        "--model",
        model,
        "--prompt",
        PROMPT,
        "--latent-tasks",
        "seeds",
        "--frames",
        "4",
        "--steps",
        "4",
        "--features",
        "digits",
    ]


# ---- the cases --------------------------------------------------------------------------------


def throughput_case(bench: Bench, dtype: str, n: int, steps: int, use_compile: bool) -> None:
    """Ours (``--batch-size auto``) against ``pipe(prompts[i:i+8])`` + torchmetrics FID."""
    import numpy as np
    import torch

    from diffusionscope.core.loading import load_pipeline
    from diffusionscope.core.metrics.loop import read_prompts
    from diffusionscope.core.zoo import DIGITS_LDM, DIGITS_PROMPTS, DIGITS_REFERENCE

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    prompts = read_prompts(str(DIGITS_PROMPTS))
    common = [
        "--modes",
        "metrics",
        "--device",
        DEVICE,
        "--dtype",
        dtype,
        "-n",
        str(n),
        "--steps",
        str(steps),
        "--guidance-scale",
        "5",
        "--metrics",
        "fid",
        "--features",
        "digits",
        "--reference",
        str(DIGITS_REFERENCE),
        "--prompts-file",
        str(DIGITS_PROMPTS),
    ]

    def plain_loop() -> tuple[float, float]:
        from diffusers import DiffusionPipeline
        from PIL import Image
        from torchmetrics.image.fid import FrechetInceptionDistance

        from diffusionscope.core.zoo.features import load_digits_features

        _sync()
        began = time.perf_counter()
        pipe = DiffusionPipeline.from_pretrained(str(DIGITS_LDM), torch_dtype=torch_dtype)
        pipe = pipe.to(DEVICE)
        pipe.set_progress_bar_config(disable=True)
        fid = FrechetInceptionDistance(
            feature=load_digits_features(DEVICE), reset_real_features=False
        ).to(DEVICE)
        paths = sorted(DIGITS_REFERENCE.glob("*.png"))
        for start in range(0, len(paths), 250):
            chunk = paths[start : start + 250]
            real = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in chunk])
            fid.update(torch.from_numpy(real).permute(0, 3, 1, 2).to(DEVICE), real=True)
        for start in range(0, n, 8):
            indices = range(start, min(start + 8, n))
            generators = [torch.Generator().manual_seed(i) for i in indices]  # as ours
            images = pipe(
                [prompts[i % len(prompts)] for i in indices],
                num_inference_steps=steps,
                guidance_scale=5.0,
                generator=generators,
            ).images
            batch = np.stack([np.asarray(image) for image in images])
            fid.update(torch.from_numpy(batch).permute(0, 3, 1, 2).to(DEVICE), real=False)
        value = float(fid.compute())
        _sync()
        return time.perf_counter() - began, value

    def body(case: Case) -> None:
        # Warm-up for both: CUDA context, cuDNN, the reference cache of ours.
        pipe = load_pipeline(str(DIGITS_LDM), DEVICE, dtype).pipeline
        del pipe
        code, _, err = run_cli([*common[:6], "-n", "16", *common[8:]], bench.work / "warm")
        if code != 0:
            raise RuntimeError(f"warm-up run exited {code}: {err}")
        loop_seconds, loop_fid = plain_loop()
        began = time.perf_counter()
        options = [*common, "--batch-size", "auto"] + (["--compile"] if use_compile else [])
        code, results, err = run_cli(options, bench.work / f"ours-{dtype}-{use_compile}")
        _sync()
        ours_seconds = time.perf_counter() - began
        if code != 0 or results is None:
            raise RuntimeError(f"metrics run exited {code}: {err}")
        metrics = results["metrics"]
        ratio = loop_seconds / ours_seconds
        case.details.update(
            {
                "n": n,
                "steps": steps,
                "dtype": dtype,
                "plain_loop_seconds": loop_seconds,
                "plain_loop_fid": loop_fid,
                "ours_seconds": ours_seconds,
                "ours_fid": metrics["fid"]["value"],
                "ratio": ratio,
                "throughput": metrics.get("throughput"),
                "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30
                if DEVICE == "cuda"
                else None,
            }
        )
        # The target is for the default run; --compile is timed for information (its warm-up,
        # one compilation per batch size tried, is reported separately in its throughput).
        case.status = "ok" if ratio >= 1.3 or use_compile else "FAIL"
        steady = (metrics.get("throughput") or {}).get("steady_images_per_second")
        case.summary = (
            f"plain loop {loop_seconds:.1f} s (FID {loop_fid:.3f}), ours "
            f"{ours_seconds:.1f} s (FID {metrics['fid']['value']:.3f}, batch "
            f"{metrics['throughput'].get('batch_sizes')}, steady "
            f"{steady or 0:.0f} img/s) -> {ratio:.2f}x"
            + ("" if use_compile else " (target >= 1.3x)")
        )

    label = f"throughput digits-ldm {dtype} N={n} steps={steps}"
    bench.case(label + (" --compile" if use_compile else ""), body)


def folder_case(bench: Bench, features: str, weights: str | None) -> None:
    """The same folder on the CPU and on the GPU: the feature and statistics side alone."""
    from diffusionscope.core.zoo import DIGITS_REFERENCE

    def body(case: Case) -> None:
        # Disjoint sets: a generated image that is also a reference image lies exactly on its
        # neighbours' k-NN radii, and rounding would decide precision and density there.
        folder = small_reference(bench.work, 300)
        reference = small_reference(
            bench.work, len(list(DIGITS_REFERENCE.glob("*.png"))) - 300, skip=300
        )
        options = [
            "--modes",
            "metrics",
            "--generated",
            str(folder),
            "--reference",
            str(reference),
            "--features",
            features,
            "--metrics",
            "fid,kid,is,pr,dc",
            "--bootstrap",
            "10",
        ] + (["--inception-weights", weights] if weights else [])
        runs = {}
        for side, device in (("cpu", "cpu"), ("cuda", DEVICE)):
            code, results, err = run_cli(
                [*options, "--device", device], bench.work / f"folder-{features}-{side}"
            )
            if code != 0 or results is None:
                raise RuntimeError(f"{side} run exited {code}: {err}")
            runs[side] = results
        one_sample = 1.0 / 300
        ok, summary, details = compare(
            "metrics",
            runs["cuda"],
            runs["cpu"],
            TOLERANCE["folder"],
            {k: one_sample for k in ("precision", "recall", "density", "coverage")},
        )
        case.status, case.summary, case.details = ("ok" if ok else "FAIL"), summary, details

    bench.case(f"same folder, CPU vs CUDA, {features} features", body)


def _mode_on_cpu(
    bench: Bench, model_name: str, model: str, mode: str, store: dict, case: Case
) -> None:
    options = mode_options(mode, model, bench.work)
    code, results, err = run_cli(
        [*options, "--device", "cpu", "--dtype", "fp32"],
        bench.work / "modes" / f"{model_name}-{mode}-cpu",
    )
    if code == 2:
        case.status, case.summary = "skipped", f"refused: {err.split(' | ')[0][:140]}"
        return
    if code != 0 or results is None:
        raise RuntimeError(f"exited {code}: {err}")
    store["results"] = results
    case.summary = f"{len(flatten(results.get(mode, {})))} numbers"


def _mode_on_device(
    bench: Bench,
    model_name: str,
    model: str,
    mode: str,
    dtype: str,
    reference: dict[str, Any],
    case: Case,
) -> None:
    options = mode_options(mode, model, bench.work)
    code, results, err = run_cli(
        [*options, "--device", DEVICE, "--dtype", dtype],
        bench.work / "modes" / f"{model_name}-{mode}-{dtype}",
    )
    if code != 0 or results is None:
        raise RuntimeError(f"exited {code}: {err}")
    tolerance = TOLERANCE["schedule" if mode == "schedule" else dtype]
    ok, case.summary, case.details = compare(mode, results, reference, tolerance)
    case.status = "ok" if ok else "FAIL"


def modes_cases(bench: Bench, models: dict[str, str], dtypes: tuple[str, ...] = DTYPES) -> None:
    """Each mode on each model: the CPU in fp32 first (the reference), then each dtype."""
    for model_name, model in models.items():
        for mode in MODES:
            store: dict[str, Any] = {}
            bench.case(
                f"{model_name} {mode} cpu fp32 (reference)",
                functools.partial(_mode_on_cpu, bench, model_name, model, mode, store),
            )
            if "results" not in store:
                continue
            for dtype in ("fp32",) if mode == "schedule" else dtypes:
                bench.case(
                    f"{model_name} {mode} {DEVICE} {dtype}",
                    functools.partial(
                        _mode_on_device, bench, model_name, model, mode, dtype, store["results"]
                    ),
                )


# ---- entry ------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import diffusers
    import torch
    import torchmetrics
    import transformers

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "torchmetrics": torchmetrics.__version__,
        "python": sys.version.split()[0],
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info.update({"gpu": properties.name, "gpu_memory_gb": properties.total_memory / 2**30})
    return info


def table(cases: list[Case]) -> str:
    width = max((len(c.name) for c in cases), default=10)
    lines = [f"{'case':{width}}  {'status':7}  {'s':>6}  summary", "-" * (width + 80)]
    lines += [f"{c.name:{width}}  {c.status:7}  {c.seconds:6.1f}  {c.summary}" for c in cases]
    counts = {s: sum(c.status == s for c in cases) for s in ("ok", "FAIL", "error", "skipped")}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks gpu")
    parser.add_argument("--out", default=None, help="write the table and every detail here")
    parser.add_argument("--inception-weights", default=None, help="local torch-fidelity weights")
    parser.add_argument("--compile", action="store_true", help="also time ours with --compile")
    parser.add_argument("--budget", type=float, default=330.0, help="start no case after this")
    parser.add_argument("-n", type=int, default=1024, help="samples of the throughput runs")
    parser.add_argument("--steps", type=int, default=20, help="steps of the throughput runs")
    parser.add_argument(
        "--models",
        default=",".join(("digits-ldm", *FAMILIES)),
        help="models of the per-mode cases (default: all)",
    )
    parser.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="cpu rehearses every case without a GPU (fp32 only; checks this "
        "script, measures nothing)",
    )
    args = parser.parse_args(argv or [])
    global DEVICE
    DEVICE = args.device
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        message = "   no CUDA device here: nothing measured (run this on a GPU host)"
        print(message)
        if args.out:
            Path(args.out).write_text(message.strip() + "\n")
        return 0
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="diffusionscope-gpu-bench-"))
    os.environ["DIFFUSIONSCOPE_CACHE"] = str(work / "cache")
    bench = Bench(args.budget, work)
    info: dict[str, Any] = {}
    try:
        info = environment()
        print(
            f"   {info.get('gpu')} ({info.get('gpu_memory_gb', 0):.0f} GiB), torch {info['torch']}, "
            f"CUDA {info['cuda']}",
            flush=True,
        )
        weights = inception_weights(args.inception_weights)
        throughput_case(bench, "fp16", args.n, args.steps, use_compile=False)
        folder_case(bench, "digits", None)
        if weights:
            folder_case(bench, "inception", weights)
        else:
            bench.cases.append(
                Case(
                    "same folder, CPU vs CUDA, inception features",
                    "skipped",
                    "no local Inception weights (--inception-weights, "
                    "DIFFUSIONSCOPE_INCEPTION_WEIGHTS or the torch hub cache)",
                )
            )
        wanted = [name.strip() for name in args.models.split(",") if name.strip()]
        models = {"digits-ldm": str(REPO / "core" / "zoo" / "digits-ldm")}
        built: dict[str, Path] = {}

        def build(case: Case) -> None:
            built.update(build_families(work, [name for name in wanted if name in FAMILIES]))
            case.summary = ", ".join(built)

        bench.case("build tiny family pipelines", build)
        models.update({name: str(path) for name, path in built.items()})
        models = {name: path for name, path in models.items() if name in wanted}
        modes_cases(bench, models, DTYPES if DEVICE == "cuda" else ("fp32",))
        if args.compile:
            throughput_case(bench, "fp16", args.n, args.steps, use_compile=True)
    finally:
        report = table(bench.cases)
        print(report)
        if args.out:
            payload = {
                "environment": info,
                "elapsed_seconds": bench.elapsed(),
                "tolerances": TOLERANCE,
                "cases": [vars(c) for c in bench.cases],
            }
            Path(args.out).write_text(report + "\n\n" + json.dumps(payload, indent=1, default=str))
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
