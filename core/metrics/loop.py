"""The metrics run: sample (or read) images, extract features once, stream FID, checkpoint.

Work proceeds in *global steps* of ``batch_size × world_size`` consecutive sample indices; rank
``r`` takes the ``r``-th batch of each step, so every batch holds the same samples whatever the
number of processes (sample ``i`` is seeded ``seed + i``), and one process and several produce
the same features. After each step the step's rows are gathered with a torchmetrics ``Metric``
(its own ``cat`` state sync, on the process's device: NCCL gathers only CUDA tensors), and rank 0
appends them to ``checkpoint/`` as one atomic chunk: a kill loses at most the steps in flight,
and ``--resume`` reloads the chunks and goes on.

The GPU is kept busy: PNG and checkpoint writes go to a background thread, files of a
``--generated`` folder are decoded on threads one batch ahead, ``--batch-size auto`` finds the
largest batch that fits, and ``--compile`` compiles the denoiser (its warm-up is timed apart).
"""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ..atomic import atomic_path
from ..errors import InputError
from ..generation import GenerationSettings, generate
from ..images import (
    decode_workers,
    find_images,
    make_grid,
    read_image,
    resize_square,
    save_png,
)
from ..modes import ModeResult, RunContext
from .background import BackgroundWriter
from .batching import (
    START,
    AutoBatch,
    MemoryProbe,
    distributed_agreement,
    is_out_of_memory,
)
from .features import FeatureExtractor, extract, get_extractor
from .frechet import fid_from_features
from .phases import PhaseClock
from .reference import (
    ReferenceStats,
    folder_batch_size,
    load_npz_stats,
    reference_from_folder,
)

CHUNK_GLOB = "metrics-chunk-*.npz"
STREAM_CANDIDATES = (250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)
SAMPLE_BATCH = 16  # images generated per process and step unless --batch-size says otherwise


class StepRows(Metric):
    """Rows of one global step, gathered across processes by torchmetrics' state sync."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, rows: torch.Tensor) -> None:
        self.rows.append(rows)

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.rows)  # a list locally, one tensor after a sync


def gather_rows(gather: StepRows, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Every process's rows of this step, on the CPU. They are handed to the sync on this
    process's own device: NCCL (CUDA runs) gathers only CUDA tensors, gloo CPU ones."""
    gather.update(torch.from_numpy(rows).to(device))
    gathered = gather.compute()
    gather.reset()
    return gathered.cpu()


def stream_points(total: int, requested: str | None = None) -> list[int]:
    if requested:
        points = sorted({int(p) for p in requested.split(",") if p.strip()})
    elif total < 500:
        points = sorted({max(2, total // 8), max(2, total // 4), max(2, total // 2)})
    else:
        points = list(STREAM_CANDIDATES)
    return [p for p in points if 2 <= p < total] + [total]


def statistics_device(device: str) -> torch.device:
    """Where the final statistics run: the GPU for CUDA runs, else the CPU (MPS has no
    float64, which every statistic here is computed in)."""
    return torch.device(device if str(device).startswith("cuda") else "cpu")


def process_device(device: str) -> torch.device:
    """This process's device, as collectives need it (``cuda`` is the current GPU)."""
    if device == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(device if str(device).startswith("cuda") else "cpu")


# --------------------------------------------------------------------------------------------
# Where images come from
# --------------------------------------------------------------------------------------------


class PipelineImages:
    """Samples from the model: sample ``i`` uses seed ``seed + i`` and prompt ``i mod len``."""

    def __init__(
        self, pipeline: Any, prompts: list[str] | None, settings: GenerationSettings, seed: int
    ) -> None:
        self.pipeline = pipeline
        self.prompts = prompts
        self.settings = settings
        self.seed = seed

    def prefetch(self, indices: range) -> None:
        """Nothing to prepare: samples are made on demand."""

    def batch(self, indices: range) -> tuple[np.ndarray, list[str] | None, np.ndarray]:
        """Images, their prompts, and their sample indices."""
        prompts = None
        if self.prompts is not None:
            prompts = [self.prompts[i % len(self.prompts)] for i in indices]
        seeds = [self.seed + i for i in indices]
        images = generate(self.pipeline, seeds, self.settings, prompts)
        return images, prompts, np.asarray(list(indices), dtype=np.int64)

    def close(self) -> None:
        pass


class FolderImages:
    """Existing images (``--generated DIR``), in sorted path order, each at its own size (as the
    reference folder's are); unreadable ones skipped. Files are decoded on a thread pool, the
    next batch while the current one is extracted."""

    def __init__(self, folder: str) -> None:
        self.paths = find_images(folder, what="generated folder")
        self.skipped: dict[int, Path] = {}
        self._pool = ThreadPoolExecutor(max_workers=decode_workers())
        self._pending: dict[int, Future] = {}

    def prefetch(self, indices: range) -> None:
        for index in indices:
            if index < len(self.paths) and index not in self._pending:
                self._pending[index] = self._pool.submit(read_image, self.paths[index])

    def batch(self, indices: range) -> tuple[list[np.ndarray], None, np.ndarray]:
        """Readable images, no prompts, and the indices of the files they came from."""
        self.prefetch(indices)
        images, kept = [], []
        for index in indices:
            image = self._pending.pop(index).result()
            if image is None:
                self.skipped[index] = self.paths[index]
            else:
                images.append(image)
                kept.append(index)
        return images, None, np.asarray(kept, dtype=np.int64)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def read_prompts(path: str) -> list[str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"--prompts-file {path}: no such file")
    prompts = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise InputError(f"--prompts-file {path}: no prompts (one prompt a line)")
    return prompts


def grid_of(images: np.ndarray | list[np.ndarray]) -> Any:
    """The first samples as one picture (images of other sizes shown at the first's size)."""
    images = list(images[:64])
    side = images[0].shape[0]
    return make_grid(
        np.stack(
            [
                resize_square(image, side) if image.shape[:2] != (side, side) else image
                for image in images
            ]
        )
    )


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Collected:
    indices: list[np.ndarray] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    clip: list[np.ndarray] = field(default_factory=list)
    cmmd: list[np.ndarray] = field(default_factory=list)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.indices.append(chunk["indices"])
        self.features.append(chunk["features"])
        for name in ("logits", "clip", "cmmd"):
            if name in chunk and chunk[name].size:
                getattr(self, name).append(chunk[name])

    def array(self, name: str) -> np.ndarray | None:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else None

    @property
    def count(self) -> int:
        return int(sum(len(i) for i in self.indices))


@dataclass
class Timing:
    """Seconds per step, split into warm-up (every step that ran a batch size for the first
    time: compilation, autotuning, allocator growth) and the steady state after it."""

    warmup_seconds: float = 0.0
    steady_seconds: float = 0.0
    steady_images: int = 0
    seen_sizes: set[int] = field(default_factory=set)

    def add(self, size: int, seconds: float, images: int) -> None:
        if size in self.seen_sizes:
            self.steady_seconds += seconds
            self.steady_images += images
        else:
            self.seen_sizes.add(size)
            self.warmup_seconds += seconds

    def describe(self) -> dict[str, Any]:
        rate = self.steady_images / self.steady_seconds if self.steady_seconds > 0 else None
        return {
            "warmup_seconds": self.warmup_seconds,
            "steady_seconds": self.steady_seconds,
            "steady_images": self.steady_images,
            "steady_images_per_second": rate,
        }


def _layout(
    extractor: FeatureExtractor, with_logits: bool, with_clip: bool, cmmd_dim: int
) -> list[tuple[str, int]]:
    widths = [("indices", 1), ("features", extractor.num_features)]
    if with_logits:
        widths.append(("logits", extractor.num_logits))
    if with_clip:
        widths.append(("clip", 1))
    if cmmd_dim:
        widths.append(("cmmd", cmmd_dim))
    return widths


def _split(rows: torch.Tensor, layout: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    order = torch.argsort(rows[:, 0])
    rows = rows[order].numpy()
    out, start = {}, 0
    for name, width in layout:
        out[name] = rows[:, start : start + width]
        start += width
    out["indices"] = out["indices"][:, 0].astype(np.int64)
    if "clip" in out:
        out["clip"] = out["clip"][:, 0]
    return {
        k: (v.astype(np.float32) if k in ("features", "logits", "cmmd") else v)
        for k, v in out.items()
    }


def _write_chunk(target: Path, chunk: dict[str, np.ndarray]) -> None:
    with atomic_path(target) as tmp:
        np.savez(tmp, **chunk)


def _write_pngs(images: Any, indices: np.ndarray, folder: Path) -> None:
    for index, image in zip(indices, images, strict=True):
        save_png(image, folder / f"{index:07d}.png")


def _load_chunks(ctx: RunContext) -> tuple[Collected, int, float]:
    """What the checkpoint holds: the rows, the next sample to make, and the seconds the
    interrupted processes had spent making them (each chunk records the run's total so far, so
    a resumed run's ``seconds`` counts every attempt, not only the last one)."""
    collected, next_index, seconds = Collected(), 0, 0.0
    for path in sorted(ctx.writer.checkpoint_dir.glob(CHUNK_GLOB)):
        with np.load(path, allow_pickle=False) as data:
            chunk = {key: data[key] for key in data.files}
        collected.add(chunk)
        next_index = max(next_index, int(chunk["end"]))
        seconds = max(seconds, float(chunk.get("seconds", 0.0)))
    return collected, next_index, seconds


def load_reference(ctx: RunContext, extractor: FeatureExtractor) -> ReferenceStats:
    args = ctx.args
    if not args.reference:
        raise InputError("--reference: a reference folder or .npz statistics file is needed")
    if Path(args.reference).suffix.lower() == ".npz":
        return load_npz_stats(Path(args.reference), expected_dim=extractor.num_features)
    return reference_from_folder(
        args.reference, extractor, folder_batch_size(args), progress=ctx.progress, log=ctx.log
    )


def _batcher(
    ctx: RunContext, device: str, sync_device: torch.device, total: int
) -> tuple[AutoBatch, Any]:
    """The batch-size policy and the any-process-out-of-memory test for this run."""
    args = ctx.args
    world = ctx.dist.world_size
    agree, any_failed = (
        distributed_agreement(sync_device)
        if ctx.dist.is_distributed
        else ((lambda size: size), (lambda failed: failed))
    )
    if args.generated:
        return AutoBatch(folder_batch_size(args)), any_failed
    if args.batch_size != "auto":
        return AutoBatch(args.batch_size or SAMPLE_BATCH), any_failed
    per_process = max(1, math.ceil(total / world))
    if not str(device).startswith("cuda"):
        ctx.log(f"--batch-size auto: no GPU memory to probe on {device}; batch {SAMPLE_BATCH}")
        return AutoBatch(min(SAMPLE_BATCH, per_process)), any_failed
    probe = MemoryProbe(sync_device)
    return AutoBatch(
        min(START, per_process), limit=per_process, probe=probe, agree=agree
    ), any_failed


def run_metrics(ctx: RunContext, options: Any) -> ModeResult:
    from ..loading import resolve_device
    from .acceleration import accelerated
    from .clip_score import ClipScorer
    from .outputs import finish

    args = ctx.args
    device = resolve_device(args.device)
    sync_device = process_device(device)
    stats_device = statistics_device(device)
    clock = PhaseClock.start(ctx)
    extractor = get_extractor(
        options.features, device, inception_weights=args.inception_weights, model=args.feature_model
    )
    ctx.log(f"features: {extractor.name} ({extractor.num_features}-d; {extractor.resize_policy})")
    reference = load_reference(ctx, extractor)
    ctx.log(
        f"reference: {reference.n} images from {reference.source}"
        + (" (cached statistics)" if reference.cached else "")
    )
    reference_stats = ReferenceTensors.of(reference, stats_device)
    clock.mark("reference")

    pipeline = None
    if args.generated:
        source: Any = FolderImages(args.generated)
        total = min(len(source.paths), args.num_samples or len(source.paths))
        prompts = None
    else:
        prompts = options.prompts
        pipeline = ctx.model().pipeline
        source = PipelineImages(pipeline, prompts, GenerationSettings.from_args(args), ctx.seed)
        total = options.num_samples
    with_logits = "is" in options.metrics and extractor.has_logits
    clip = ClipScorer(options.clip_model, device) if "clip" in options.metrics and prompts else None
    cmmd_extractor = None
    if "cmmd" in options.metrics:
        cmmd_extractor = get_extractor("clip", device, model=options.clip_model)
    layout = _layout(
        extractor,
        with_logits,
        clip is not None,
        cmmd_extractor.num_features if cmmd_extractor else 0,
    )

    collected, next_index, earlier_seconds = (
        _load_chunks(ctx) if ctx.resume else (Collected(), 0, 0.0)
    )
    if next_index:
        ctx.log(f"resuming at sample {next_index} of {total}")
    world, rank = ctx.dist.world_size, ctx.dist.rank
    all_points = stream_points(total, options.stream_at)
    # A resumed run recomputes the points it had already passed (their events are in the log).
    curve = [
        _stream(ctx, collected, reference_stats, p, emit=False)
        for p in all_points
        if p <= next_index
    ]
    points = [p for p in all_points if p > next_index]
    batcher, any_failed = _batcher(ctx, device, sync_device, total)
    timing = Timing()
    gather = StepRows()
    samples_dir = ctx.writer.artifact_path("samples")
    started = clock.since  # sampling: model loading included
    grid_done = next_index > 0

    def work(mine: range) -> tuple[np.ndarray, Any, np.ndarray]:
        """This process's share of a step: images, and their rows (index, features, ...)."""
        images, batch_prompts, kept = source.batch(mine)
        features, logits = extract(extractor, images, with_logits=with_logits)
        columns = [kept[:, None].astype(np.float64), features.astype(np.float64)]
        if with_logits:
            columns.append(logits.astype(np.float64))
        if clip is not None:
            columns.append(clip.scores(images, batch_prompts)[:, None])
        if cmmd_extractor is not None:
            columns.append(extract(cmmd_extractor, images)[0].astype(np.float64))
        return np.concatenate(columns, axis=1), images, kept

    accelerate = (
        accelerated(pipeline, device, options.compile)
        if pipeline is not None
        else contextlib.nullcontext([])
    )
    try:
        with BackgroundWriter() as background, accelerate as applied:
            if applied:
                ctx.log(f"throughput: {', '.join(applied)}")
            step_start = next_index
            while step_start < total:
                size = batcher.start_step()
                step_end = min(step_start + size * world, total)
                mine = range(
                    min(step_start + rank * size, step_end),
                    min(step_start + (rank + 1) * size, step_end),
                )
                source.prefetch(
                    range(step_end + rank * size, min(step_end + (rank + 1) * size, total))
                )
                began = time.perf_counter()
                rows = np.zeros((0, sum(w for _, w in layout)))
                images, kept, failed = [], np.zeros(0, np.int64), False
                try:
                    if len(mine):
                        rows, images, kept = work(mine)
                except Exception as error:
                    if args.batch_size != "auto" or not is_out_of_memory(error):
                        raise
                    failed = True
                if any_failed(failed):
                    batcher.out_of_memory()
                    ctx.log(f"out of GPU memory at batch {size}; retrying with {batcher.size}")
                    continue
                batcher.step_done()
                if options.save_images and len(kept):
                    # Each process saves the PNGs it made (distinct names): sending images to
                    # rank 0 would cost more than the features themselves.
                    background.submit(_write_pngs, images, kept, samples_dir)
                if not grid_done and ctx.is_main and len(kept):
                    ctx.save_image(grid_of(images), "sample_grid.png", "first samples")
                    grid_done = True
                chunk = _split(gather_rows(gather, rows, sync_device), layout)
                chunk["end"] = np.asarray(step_end)
                chunk["seconds"] = np.asarray(earlier_seconds + time.monotonic() - started)
                collected.add(chunk)
                if ctx.is_main:
                    target = ctx.writer.checkpoint_dir / f"metrics-chunk-{step_start:09d}.npz"
                    background.submit(_write_chunk, target, chunk)
                timing.add(size, time.perf_counter() - began, step_end - step_start)
                ctx.progress(
                    "generate" if not args.generated else "features", step_end, total, "img"
                )
                while points and step_end >= points[0]:
                    curve.append(_stream(ctx, collected, reference_stats, points.pop(0)))
                step_start = step_end
    finally:
        source.close()
    elapsed = earlier_seconds + time.monotonic() - started
    clock.mark("sampling", total=elapsed)
    if isinstance(source, FolderImages) and source.skipped:
        ctx.warn(
            f"generated folder {args.generated}: skipped {len(source.skipped)} unreadable file(s)"
        )
    if collected.count < 2:
        raise InputError(f"only {collected.count} usable generated image(s); need at least 2")
    throughput = {
        "batch_size": batcher.size,
        "batch_sizes": sorted(set(batcher.history)),
        "auto_batch": args.batch_size == "auto",
        "applied": list(applied),
        **timing.describe(),
    }
    result = finish(
        ctx,
        options,
        extractor,
        reference,
        collected,
        curve,
        elapsed,
        device=stats_device,
        throughput=throughput,
    )
    clock.mark("statistics")
    result.results.update(clock.describe())
    return result


@dataclass(frozen=True)
class ReferenceTensors:
    """The reference statistics (and features) on the statistics device, in float64, made once
    for every point of the live curves."""

    mu: torch.Tensor
    sigma: torch.Tensor
    features: torch.Tensor | None

    @classmethod
    def of(cls, reference: ReferenceStats, device: torch.device) -> ReferenceTensors:
        features = reference.features
        return cls(
            torch.as_tensor(reference.mu, dtype=torch.float64, device=device),
            torch.as_tensor(reference.sigma, dtype=torch.float64, device=device),
            None
            if features is None
            else torch.as_tensor(features, device=device).to(torch.float64),
        )


def _stream(
    ctx: RunContext,
    collected: Collected,
    reference_stats: ReferenceTensors,
    n: int,
    emit: bool = True,
) -> list[float]:
    """FID (and KID) on the first ``n`` samples, emitted as points of the live curves."""
    from .scores import kid

    mu, sigma = reference_stats.mu, reference_stats.sigma
    features = collected.array("features")
    order = np.argsort(np.concatenate(collected.indices))[:n]
    subset = torch.from_numpy(features[order]).to(mu.device)
    value = fid_from_features(subset, mu, sigma)
    if emit:
        ctx.series("fid", n, value, x_label="N samples", y_label="FID")
    point = [float(n), value, math.nan]
    if reference_stats.features is not None and n >= 4:
        kid_mean = kid(
            reference_stats.features, subset, subset_size=min(1000, n), subsets=20, device=mu.device
        )["mean"]
        if emit:
            ctx.series("kid", n, kid_mean, x_label="N samples", y_label="KID")
        point[2] = kid_mean
    return point
