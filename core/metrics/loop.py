"""The metrics run: sample (or read) images, extract features once, stream FID, checkpoint.

Work proceeds in *global steps* of ``batch_size × world_size`` consecutive sample indices; rank
``r`` takes the ``r``-th batch of each step, so every batch holds the same samples whatever the
number of processes (sample ``i`` is seeded ``seed + i``), and one process and several produce
the same features. After each step the step's rows are gathered with a torchmetrics ``Metric``
(its own ``cat`` state sync), and rank 0 appends them to ``checkpoint/`` as one atomic chunk: a
kill loses at most the step in flight, and ``--resume`` reloads the chunks and goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from diffusionscope.core.atomic import atomic_path
from diffusionscope.core.errors import InputError
from diffusionscope.core.generation import GenerationSettings, generate
from diffusionscope.core.images import find_images, make_grid, read_image, resize_square, save_png
from diffusionscope.core.metrics.features import FeatureExtractor, get_extractor
from diffusionscope.core.metrics.frechet import fid_from_features
from diffusionscope.core.metrics.reference import (
    ReferenceStats,
    extract,
    load_npz_stats,
    reference_from_folder,
)
from diffusionscope.core.modes import ModeResult, RunContext

CHUNK_GLOB = "metrics-chunk-*.npz"
STREAM_CANDIDATES = (250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)


class StepRows(Metric):
    """Rows of one global step, gathered across processes by torchmetrics' state sync."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, rows: torch.Tensor) -> None:
        self.rows.append(rows)

    def compute(self) -> torch.Tensor:
        return dim_zero_cat(self.rows)  # a list locally, one tensor after a sync


def stream_points(total: int, requested: str | None = None) -> list[int]:
    if requested:
        points = sorted({int(p) for p in requested.split(",") if p.strip()})
    elif total < 500:
        points = sorted({max(2, total // 8), max(2, total // 4), max(2, total // 2)})
    else:
        points = list(STREAM_CANDIDATES)
    return [p for p in points if 2 <= p < total] + [total]


# --------------------------------------------------------------------------------------------
# Where images come from
# --------------------------------------------------------------------------------------------


class PipelineImages:
    """Samples from the model: sample ``i`` uses seed ``seed + i`` and prompt ``i mod len``."""

    def __init__(self, ctx: RunContext, prompts: list[str] | None, settings: GenerationSettings):
        self.pipeline = ctx.model().pipeline
        self.prompts = prompts
        self.settings = settings
        self.seed = ctx.seed

    def batch(self, indices: range) -> tuple[np.ndarray, list[str] | None, np.ndarray]:
        """Images, their prompts, and their sample indices."""
        prompts = None
        if self.prompts is not None:
            prompts = [self.prompts[i % len(self.prompts)] for i in indices]
        seeds = [self.seed + i for i in indices]
        images = generate(self.pipeline, seeds, self.settings, prompts)
        return images, prompts, np.asarray(list(indices), dtype=np.int64)


class FolderImages:
    """Existing images (``--generated DIR``), in sorted path order; unreadable ones skipped."""

    def __init__(self, folder: str, size: int | None) -> None:
        self.paths = find_images(folder, what="generated folder")
        self.size = size
        self.skipped: list[Path] = []

    def batch(self, indices: range) -> tuple[np.ndarray, None, np.ndarray]:
        """Readable images, no prompts, and the indices of the files they came from."""
        images, kept = [], []
        for index in indices:
            image = read_image(self.paths[index], self.size)
            if image is None:
                self.skipped.append(self.paths[index])
            else:
                images.append(image)
                kept.append(index)
        if not images:
            return np.zeros((0, 1, 1, 3), np.uint8), None, np.zeros(0, np.int64)
        side = self.size or max(image.shape[0] for image in images)
        images = [resize_square(image, side) for image in images]
        return np.stack(images), None, np.asarray(kept, dtype=np.int64)


def read_prompts(path: str) -> list[str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"--prompts-file {path}: no such file")
    prompts = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise InputError(f"--prompts-file {path}: no prompts (one prompt a line)")
    return prompts


# --------------------------------------------------------------------------------------------
# CLIP score
# --------------------------------------------------------------------------------------------


class _ClipOutputsAsTensors(torch.nn.Module):
    """torchmetrics 1.9 expects ``get_*_features`` to return tensors; transformers 5 returns
    output objects whose ``pooler_output`` holds the projected embedding."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _as_tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _as_tensor(self.model.get_text_features(*args, **kwargs))


def _as_tensor(output: Any) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipScorer:
    """Per-sample CLIP scores (100·cos) through torchmetrics' CLIP score update.

    Not the ``CLIPScore`` class itself: it accepts only a fixed list of hub ids (a local folder
    such as the zoo's CLIP is refused), and per-sample scores go into the checkpoint chunks,
    which makes resume and multi-process runs exact without a metric state of their own.
    """

    def __init__(self, model_path: str, device: str) -> None:
        from transformers import CLIPModel, CLIPProcessor

        try:
            model = CLIPModel.from_pretrained(model_path).eval().to(device)
            self.processor = CLIPProcessor.from_pretrained(model_path)
        except OSError as error:
            raise InputError(
                f"--clip-model {model_path}: cannot load ({str(error)[:120]})"
            ) from None
        self.model = _ClipOutputsAsTensors(model)

    def scores(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update

        tensors = list(torch.from_numpy(images).permute(0, 3, 1, 2))
        with torch.inference_mode():
            score, _ = _clip_score_update(tensors, prompts, self.model, self.processor)
        return score.double().cpu().numpy()


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


def _layout(extractor: FeatureExtractor, with_logits: bool, with_clip: bool,
            cmmd_dim: int) -> list[tuple[str, int]]:  # fmt: skip
    widths = [("indices", 1), ("features", extractor.num_features)]
    if with_logits:
        widths.append(("logits", 10 if extractor.name == "digits" else 1008))
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
    return {k: (v.astype(np.float32) if k in ("features", "logits", "cmmd") else v)
            for k, v in out.items()}  # fmt: skip


def _save_chunk(ctx: RunContext, start: int, chunk: dict[str, np.ndarray]) -> None:
    if not ctx.is_main:
        return
    target = ctx.writer.checkpoint_dir / f"metrics-chunk-{start:09d}.npz"
    with atomic_path(target) as tmp:
        np.savez(tmp, **chunk)


def _load_chunks(ctx: RunContext) -> tuple[Collected, int]:
    collected, next_index = Collected(), 0
    for path in sorted(ctx.writer.checkpoint_dir.glob(CHUNK_GLOB)):
        with np.load(path, allow_pickle=False) as data:
            chunk = {key: data[key] for key in data.files}
        collected.add(chunk)
        next_index = max(next_index, int(chunk["end"]))
    return collected, next_index


def load_reference(ctx: RunContext, extractor: FeatureExtractor) -> ReferenceStats:
    args = ctx.args
    if not args.reference:
        raise InputError("--reference: a reference folder or .npz statistics file is needed")
    if Path(args.reference).suffix.lower() == ".npz":
        return load_npz_stats(Path(args.reference), expected_dim=extractor.num_features)
    return reference_from_folder(args.reference, extractor, args.batch_size or 64,
                                 progress=ctx.progress, log=ctx.log)  # fmt: skip


def run_metrics(ctx: RunContext, options: Any) -> ModeResult:
    from diffusionscope.core.loading import resolve_device
    from diffusionscope.core.metrics.outputs import finish

    args = ctx.args
    device = resolve_device(args.device)
    extractor = get_extractor(options.features, device, inception_weights=args.inception_weights,
                              model=args.feature_model)  # fmt: skip
    ctx.log(f"features: {extractor.name} ({extractor.num_features}-d; {extractor.resize_policy})")
    reference = load_reference(ctx, extractor)
    ctx.log(f"reference: {reference.n} images from {reference.source}"
            + (" (cached statistics)" if reference.cached else ""))  # fmt: skip

    if args.generated:
        source: Any = FolderImages(args.generated, size=args.height)
        total = min(len(source.paths), args.num_samples or len(source.paths))
        prompts = None
    else:
        prompts = options.prompts
        source = PipelineImages(ctx, prompts, GenerationSettings.from_args(args))
        total = options.num_samples
    with_logits = "is" in options.metrics and extractor.has_logits
    clip = ClipScorer(options.clip_model, device) if "clip" in options.metrics and prompts else None
    cmmd_extractor = None
    if "cmmd" in options.metrics:
        cmmd_extractor = get_extractor("clip", device, model=options.clip_model)
    layout = _layout(extractor, with_logits, clip is not None,
                     cmmd_extractor.num_features if cmmd_extractor else 0)  # fmt: skip

    collected, next_index = _load_chunks(ctx) if ctx.resume else (Collected(), 0)
    if next_index:
        ctx.log(f"resuming at sample {next_index} of {total}")
    batch = args.batch_size or 16
    world = ctx.dist.world_size
    all_points = stream_points(total, options.stream_at)
    # A resumed run recomputes the points it had already passed (their events are in the log).
    curve = [_stream(ctx, collected, reference, p, emit=False) for p in all_points
             if p <= next_index]  # fmt: skip
    points = [p for p in all_points if p > next_index]
    gather = StepRows()
    started = time.monotonic()
    grid_done = next_index > 0
    for step_start in range(next_index, total, batch * world):
        step_end = min(step_start + batch * world, total)
        mine = range(min(step_start + ctx.dist.rank * batch, step_end),
                     min(step_start + (ctx.dist.rank + 1) * batch, step_end))  # fmt: skip
        rows = torch.zeros(0, sum(w for _, w in layout), dtype=torch.float64)
        if len(mine):
            images, batch_prompts, kept = source.batch(mine)
            features, logits = extract(extractor, images, with_logits=with_logits)
            columns = [kept[:, None].astype(np.float64), features.astype(np.float64)]
            if with_logits:
                columns.append(logits.astype(np.float64))
            if clip is not None:
                columns.append(clip.scores(images, batch_prompts)[:, None])
            if cmmd_extractor is not None:
                columns.append(extract(cmmd_extractor, images)[0].astype(np.float64))
            rows = torch.from_numpy(np.concatenate(columns, axis=1))
            if options.save_images:
                # Each process saves the PNGs it made (distinct names): sending images to rank 0
                # would cost more than the features themselves.
                for index, image in zip(kept, images, strict=True):
                    save_png(image, ctx.writer.artifact_path(f"samples/{index:07d}.png"))
            if not grid_done and ctx.is_main:
                ctx.save_image(make_grid(images[:64]), "sample_grid.png", "first samples")
                grid_done = True
        gather.update(rows)
        chunk = _split(gather.compute(), layout)
        gather.reset()
        chunk["end"] = np.asarray(step_end)
        collected.add(chunk)
        _save_chunk(ctx, step_start, chunk)
        ctx.progress("generate" if not args.generated else "features", step_end, total, "img")
        while points and step_end >= points[0]:
            curve.append(_stream(ctx, collected, reference, points.pop(0)))
    elapsed = time.monotonic() - started
    if isinstance(source, FolderImages) and source.skipped:
        ctx.warn(f"generated folder {args.generated}: skipped {len(source.skipped)} unreadable "
                 "file(s)")  # fmt: skip
    if collected.count < 2:
        raise InputError(f"only {collected.count} usable generated image(s); need at least 2")
    return finish(ctx, options, extractor, reference, collected, curve, elapsed)


def _stream(
    ctx: RunContext, collected: Collected, reference: ReferenceStats, n: int, emit: bool = True
) -> list[float]:
    """FID (and KID) on the first ``n`` samples, emitted as points of the live curves."""
    from diffusionscope.core.metrics.scores import kid

    features = collected.array("features")
    order = np.argsort(np.concatenate(collected.indices))[:n]
    subset = features[order]
    value = fid_from_features(subset, reference.mu, reference.sigma)
    if emit:
        ctx.series("fid", n, value, x_label="N samples", y_label="FID")
    point = [float(n), value, math.nan]
    if reference.features is not None and n >= 4:
        kid_mean, _, _ = kid(reference.features, subset, subset_size=min(1000, n), subsets=20)
        if emit:
            ctx.series("kid", n, kid_mean, x_label="N samples", y_label="KID")
        point[2] = kid_mean
    return point
