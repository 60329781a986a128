"""The metrics run: sample (or read) images, extract features once, stream FID, checkpoint.

Work proceeds in *global steps* of ``batch_size × world_size`` consecutive sample indices; rank
``r`` takes the ``r``-th batch of each step, so every batch holds the same samples whatever the
number of processes (sample ``i`` is seeded ``seed + i``), and one process and several produce
the same features. After each step the step's rows are gathered with a torchmetrics ``Metric``
(its own ``cat`` state sync, on the process's device: NCCL gathers only CUDA tensors), and rank 0
appends them to ``checkpoint/`` as one atomic chunk: a kill loses at most the steps in flight,
and ``--resume`` reloads the chunks and goes on.

Two objects hold the state, so each job is one named step:

- :class:`Measures` -- what samples are measured with: the extractor, the reference statistics,
  the CLIP scorer. Made once per run; every point of a campaign shares it.
- :class:`MetricsRun` -- one set of samples being measured: its image source, its checkpoint
  folder, what it collected, its live curve. :meth:`MetricsRun.run` is
  ``restore → steps → finish``; a step is ``make rows (out-of-memory retry) → keep them
  (PNGs, chunk) → stream the curve points it passed``.

The GPU is kept busy: PNG and checkpoint writes go to a background thread, files of a
``--generated`` folder are decoded on threads one batch ahead, ``--batch-size auto`` finds the
largest batch that fits, and ``--compile`` compiles the denoiser (its warm-up is timed apart).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..images import save_png
from ..modes import ModeResult, RunContext
from ..options import BATCH_SIZE
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
from .reference import FOLDER_BATCH, ReferenceStats
from .registry import FID, KID, needed
from .rows import (
    Collected,
    StepRows,
    chunk_path,
    gather_rows,
    layout,
    load_chunks,
    split_rows,
    write_chunk,
)
from .sources import FolderImages, PipelineImages, grid_of, read_prompts
from .stats_files import with_protocol

__all__ = ["Measures", "MetricsRun", "PipelineImages", "read_prompts", "run_metrics"]

STREAM_CANDIDATES = (250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)
SAMPLE_BATCH = BATCH_SIZE.default  # images per process and step where auto cannot probe


def stream_points(total: int, requested: Sequence[int] | None = None) -> list[int]:
    if requested:
        points = sorted(set(requested))
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


def open_extractor(args: Any, options: Any, device: str) -> FeatureExtractor:
    """The feature extractor a run's options name (``--resize`` applies to Inception)."""
    return get_extractor(
        options.features,
        device,
        inception_weights=args.inception_weights,
        model=args.feature_model,
        resize=getattr(args, "resize", None) if options.features == "inception" else None,
    )


def load_reference(ctx: RunContext, extractor: FeatureExtractor, options: Any) -> ReferenceStats:
    """The reference ``--reference`` or ``--reference-set`` names (``reference_plan.py``)."""
    from . import reference_draw_size
    from .reference_plan import load_planned, plan_reference

    plan = plan_reference(ctx.options, reference_draw_size(ctx.options, options))
    return load_planned(plan, extractor, FOLDER_BATCH, progress=ctx.progress, log=ctx.log)


# --------------------------------------------------------------------------------------------
# What samples are measured with (once per run)
# --------------------------------------------------------------------------------------------


@dataclass
class Measures:
    """The run's devices, feature extractor, reference statistics and scorers."""

    device: str
    sync_device: torch.device
    stats_device: torch.device
    extractor: FeatureExtractor
    reference: ReferenceStats
    reference_tensors: ReferenceTensors
    with_logits: bool
    clip: Any = None
    cmmd_extractor: FeatureExtractor | None = None

    @classmethod
    def open(cls, ctx: RunContext, options: Any, *, scores_prompts: bool) -> Measures:
        """Load the extractor(s) and the reference; ``scores_prompts``: images come with
        prompts, so CLIP score can be measured."""
        from ..loading import resolve_device
        from .clip_score import ClipScorer

        device = resolve_device(ctx.options.run.device)
        extractor = open_extractor(ctx.options, options, device)
        ctx.log(
            f"features: {extractor.name} ({extractor.num_features}-d; {extractor.resize_policy})"
        )
        reference = load_reference(ctx, extractor, options)
        ctx.log(
            f"reference: {reference.n} images from {reference.source}"
            + (" (cached statistics)" if reference.cached else "")
        )
        stats_device = statistics_device(device)
        needs = needed(options.metrics)
        return cls(
            device=device,
            sync_device=process_device(device),
            stats_device=stats_device,
            extractor=extractor,
            reference=reference,
            reference_tensors=ReferenceTensors.of(reference, stats_device),
            with_logits="logits" in needs and extractor.has_logits,
            clip=ClipScorer(options.clip_model, device)
            if "clip_scores" in needs and scores_prompts
            else None,
            cmmd_extractor=get_extractor("clip", device, model=options.clip_model)
            if "clip_embeddings" in needs
            else None,
        )

    @property
    def columns(self) -> list[tuple[str, int]]:
        return layout(
            self.extractor.num_features,
            self.extractor.num_logits if self.with_logits else None,
            self.clip is not None,
            self.cmmd_extractor.num_features if self.cmmd_extractor else 0,
        )

    def rows(self, images: Any, prompts: list[str] | None, kept: np.ndarray) -> np.ndarray:
        """One row per image: its index, features and, as the run asks, logits, CLIP score and
        CMMD embedding."""
        features, logits = extract(self.extractor, images, with_logits=self.with_logits)
        columns = [kept[:, None].astype(np.float64), features.astype(np.float64)]
        if self.with_logits:
            columns.append(logits.astype(np.float64))
        if self.clip is not None:
            columns.append(self.clip.scores(images, prompts)[:, None])
        if self.cmmd_extractor is not None:
            columns.append(extract(self.cmmd_extractor, images)[0].astype(np.float64))
        return np.concatenate(columns, axis=1)

    def stream(self, ctx: RunContext, collected: Collected, n: int, emit: bool = True) -> list:
        """FID (and KID) on the first ``n`` samples, emitted as points of the live curves."""
        from .scores import kid

        mu, sigma = self.reference_tensors.mu, self.reference_tensors.sigma
        order = np.argsort(np.concatenate(collected.indices))[:n]
        subset = torch.from_numpy(collected.array("features")[order]).to(mu.device)
        value = fid_from_features(subset, mu, sigma)
        if emit:
            ctx.series(FID.name, n, value, x_label="N samples", y_label=FID.label)
        point = [float(n), value, math.nan]
        real = self.reference_tensors.features
        if real is not None and n >= 4:
            kid_mean = kid(real, subset, subset_size=min(1000, n), subsets=20, device=mu.device)
            if emit:
                ctx.series(KID.name, n, kid_mean["mean"], x_label="N samples", y_label=KID.label)
            point[2] = kid_mean["mean"]
        return point


def _batcher(
    ctx: RunContext, device: str, sync_device: torch.device, total: int
) -> tuple[AutoBatch, Any]:
    """The batch-size policy and the any-process-out-of-memory test for this run."""
    args = ctx.options
    world = ctx.dist.world_size
    agree, any_failed = (
        distributed_agreement(sync_device)
        if ctx.dist.is_distributed
        else ((lambda size: size), (lambda failed: failed))
    )
    if args.generated:
        return AutoBatch(FOLDER_BATCH), any_failed
    if args.batch_size != "auto":
        return AutoBatch(args.batch_size), any_failed
    per_process = max(1, math.ceil(total / world))
    if not str(device).startswith("cuda"):
        ctx.log(f"--batch-size auto: no GPU memory to probe on {device}; batch {SAMPLE_BATCH}")
        return AutoBatch(min(SAMPLE_BATCH, per_process)), any_failed
    probe = MemoryProbe(sync_device)
    return AutoBatch(
        min(START, per_process), limit=per_process, probe=probe, agree=agree
    ), any_failed


def _write_pngs(images: Any, indices: np.ndarray, folder: Path) -> None:
    for index, image in zip(indices, images, strict=True):
        save_png(image, folder / f"{index:07d}.png")


# --------------------------------------------------------------------------------------------
# One set of samples being measured
# --------------------------------------------------------------------------------------------


@dataclass
class MetricsRun:
    """The state of one measurement; its methods are the run's steps, in order."""

    ctx: RunContext
    options: Any
    measures: Measures
    source: Any
    total: int
    checkpoint_dir: Path
    samples_dir: Path
    pipeline: Any = None
    collected: Collected = field(default_factory=Collected)
    next_index: int = 0
    earlier_seconds: float = 0.0
    curve: list[list[float]] = field(default_factory=list)
    pending_points: list[int] = field(default_factory=list)
    timing: Timing = field(default_factory=Timing)
    grid_done: bool = False
    applied: list[str] = field(default_factory=list)
    clock: PhaseClock | None = None  # the mode's phase times; one is started if not given

    @classmethod
    def for_context(
        cls, ctx: RunContext, options: Any, measures: Measures, pipeline: Any = None
    ) -> MetricsRun:
        """The run ``ctx`` describes: its folder of images, or samples of ``pipeline`` (the
        context's model when not given) with the context's generation settings."""
        args = ctx.options
        if args.generated:
            source: Any = FolderImages(args.generated)
            total = min(len(source.paths), args.num_samples or len(source.paths))
        else:
            pipeline = pipeline if pipeline is not None else ctx.model().pipeline
            settings = args.generation
            source = PipelineImages(pipeline, options.prompts, settings, ctx.seed)
            total = options.num_samples
        return cls(
            ctx,
            options,
            measures,
            source,
            total,
            checkpoint_dir=ctx.writer.checkpoint_dir,
            samples_dir=ctx.writer.artifact_path("samples"),
            pipeline=pipeline,
        )

    def run(self) -> ModeResult:
        self.clock = self.clock or PhaseClock.start(self.ctx, self.checkpoint_dir)
        self.restore()
        try:
            self.run_steps()
        finally:
            self.source.close()
        return self.finish()

    def restore(self) -> None:
        """On ``--resume``, the rows checkpointed before, and the curve points they passed
        (recomputed, not emitted again: their events are in the log)."""
        if self.ctx.resume:
            self.collected, self.next_index, self.earlier_seconds = load_chunks(self.checkpoint_dir)
        if self.next_index:
            self.ctx.log(f"resuming at sample {self.next_index} of {self.total}")
        every = stream_points(self.total, self.options.stream_at)
        self.curve = [
            self.measures.stream(self.ctx, self.collected, p, emit=False)
            for p in every
            if p <= self.next_index
        ]
        self.pending_points = [p for p in every if p > self.next_index]
        self.grid_done = self.next_index > 0

    def run_steps(self) -> None:
        """Every global step from the next sample to the last, checkpointed one by one."""
        from .acceleration import accelerated

        self.batcher, self.any_failed = _batcher(
            self.ctx, self.measures.device, self.measures.sync_device, self.total
        )
        self.gather = StepRows()
        self.started = self.clock.since  # sampling: from the end of the last phase
        accelerate = (
            accelerated(self.pipeline, self.measures.device, self.options.compile)
            if self.pipeline is not None
            else contextlib.nullcontext([])
        )
        with BackgroundWriter() as background, accelerate as applied:
            self.applied = list(applied)
            if applied:
                self.ctx.log(f"throughput: {', '.join(applied)}")
            step_start = self.next_index
            while step_start < self.total:
                step_start = self.step(step_start, background)

    def step(self, step_start: int, background: BackgroundWriter) -> int:
        """One global step; returns where the next one starts (the same place after an
        out-of-memory failure on any process, at the smaller batch size)."""
        world, rank = self.ctx.dist.world_size, self.ctx.dist.rank
        size = self.batcher.start_step()
        step_end = min(step_start + size * world, self.total)
        mine = range(
            min(step_start + rank * size, step_end), min(step_start + (rank + 1) * size, step_end)
        )
        self.source.prefetch(
            range(step_end + rank * size, min(step_end + (rank + 1) * size, self.total))
        )
        began = time.perf_counter()
        made = self.make_rows(mine)
        if self.any_failed(made is None):
            self.batcher.out_of_memory()
            self.ctx.log(f"out of GPU memory at batch {size}; retrying with {self.batcher.size}")
            return step_start
        self.batcher.step_done()
        rows, images, kept = made
        self.keep(step_start, step_end, rows, images, kept, background)
        self.timing.add(size, time.perf_counter() - began, step_end - step_start)
        phase = "features" if self.ctx.options.generated else "generate"
        self.ctx.progress(phase, step_end, self.total, "img")
        while self.pending_points and step_end >= self.pending_points[0]:
            point = self.pending_points.pop(0)
            self.curve.append(self.measures.stream(self.ctx, self.collected, point))
        return step_end

    def make_rows(self, mine: range) -> tuple[np.ndarray, Any, np.ndarray] | None:
        """This process's share of a step: its rows, images and sample indices; None when it
        ran out of memory with ``--batch-size auto`` (any other failure is raised)."""
        if not len(mine):
            width = sum(w for _, w in self.measures.columns)
            return np.zeros((0, width)), [], np.zeros(0, np.int64)
        try:
            images, prompts, kept = self.source.batch(mine)
            return self.measures.rows(images, prompts, kept), images, kept
        except Exception as error:
            if self.ctx.options.batch_size != "auto" or not is_out_of_memory(error):
                raise
            return None

    def keep(
        self,
        step_start: int,
        step_end: int,
        rows: np.ndarray,
        images: Any,
        kept: np.ndarray,
        background: BackgroundWriter,
    ) -> None:
        """Save the step: PNGs (each process its own), the first samples' grid, and the
        gathered rows as one checkpoint chunk (rank 0)."""
        if self.options.save_images and len(kept):
            # Sending images to rank 0 would cost more than the features themselves.
            background.submit(_write_pngs, images, kept, self.samples_dir)
        if not self.grid_done and self.ctx.is_main and len(kept):
            self.ctx.save_image(grid_of(images), "sample_grid.png", "first samples")
            self.grid_done = True
        chunk = split_rows(
            gather_rows(self.gather, rows, self.measures.sync_device), self.measures.columns
        )
        chunk["end"] = np.asarray(step_end)
        chunk["seconds"] = np.asarray(self.seconds)
        self.collected.add(chunk)
        if self.ctx.is_main:
            background.submit(write_chunk, chunk_path(self.checkpoint_dir, step_start), chunk)

    @property
    def seconds(self) -> float:
        """Seconds spent on this run, over every attempt."""
        return self.earlier_seconds + time.monotonic() - self.started

    def throughput(self) -> dict[str, Any]:
        return {
            "batch_size": self.batcher.size,
            "batch_sizes": sorted(set(self.batcher.history)),
            "auto_batch": self.ctx.options.batch_size == "auto",
            "applied": self.applied,
            **self.timing.describe(),
        }

    def finish(self) -> ModeResult:
        """Every final number (``outputs.finish``), once the samples are in."""
        from .outputs import finish
        from .scoring import Scoring

        elapsed = self.seconds
        self.clock.mark("sampling", total=elapsed)
        skipped = getattr(self.source, "skipped", None)
        if skipped:
            self.ctx.warn(
                f"generated folder {self.ctx.options.generated}: skipped {len(skipped)} "
                "unreadable file(s)"
            )
        if self.collected.count < 2:
            raise InputError(
                f"only {self.collected.count} usable generated image(s); need at least 2"
            )
        result = finish(
            Scoring(
                self.ctx,
                self.options,
                self.measures.extractor,
                self.measures.reference,
                self.collected,
                self.curve,
                elapsed,
                device=self.measures.stats_device,
                throughput=self.throughput(),
            )
        )
        if self.ctx.options.generated:
            count = len(skipped or ())
            result.results["generated"] = {
                "source": str(self.ctx.options.generated),
                "n": self.collected.count,
                "skipped_files": count,
            }
        result.report += skipped_files_note(result.results)
        self.clock.mark("statistics")
        result.results.update(self.clock.describe())
        return with_protocol(result, self.measures.extractor, self.measures.reference)


def skipped_files_note(results: dict[str, Any]) -> str:
    """The report's word on files that could not be decoded, on either side (empty if none):
    a number computed without them must say so where it is read, not only on stderr."""
    lines = []
    for side in ("generated", "reference"):
        section = results.get(side) or {}
        if section.get("skipped_files"):
            lines.append(
                f"- {side} folder `{section.get('source')}`: {section['skipped_files']} "
                "unreadable file(s) skipped; the numbers above are without them"
            )
    return "\n\n" + "\n".join(lines) if lines else ""


def run_metrics(ctx: RunContext, options: Any) -> ModeResult:
    """A single metrics run: the measures, then the run's steps."""
    scores_prompts = not ctx.options.generated and options.prompts is not None
    clock = PhaseClock.start(ctx, ctx.writer.checkpoint_dir)
    measures = Measures.open(ctx, options, scores_prompts=scores_prompts)
    clock.mark("reference")
    run = MetricsRun.for_context(ctx, options, measures)
    run.clock = clock
    return run.run()
