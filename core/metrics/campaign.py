"""A campaign: several points (a ``--sweep`` grid, a checkpoint series, ``--watch DIR``) in one
run directory, measured with one :class:`~.loop.Measures` (the reference statistics are
computed once), from the same prompts and seeds (sample ``i`` = seed ``S + i`` at every point),
so points differ only in the swept setting.

Each point is a :class:`~.loop.MetricsRun` with its own checkpoint folder
(``checkpoint/points/NNN/``) and artifacts (``artifacts/points/NNN/``). The campaign's own
checkpoint (``checkpoint/sweep-points.json``) records each point's settings when it starts
and its metrics when it ends, so ``--resume`` keeps the finished points, continues the
interrupted one from its chunks, and goes on: a kill at any moment gives the same numbers.
Several processes run every point together (the loop's global steps), never points apart.

Live events of point ``k`` (label ``guidance-scale=3.0``): its curves as series named
``fid@guidance-scale=3.0`` and ``kid@...`` (x = N samples), its final numbers as metric events
named the same way; when it ends, one point of each campaign curve: ``sweep:<metric>``
(x = point index, y = the metric's headline number) and ``sweep:fid_clip`` (x = CLIP score,
y = FID).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json
from ..errors import InputError, RunInterrupted
from ..modes import ModeResult, RunContext
from ..options import with_values
from ..runs import read_json
from .loop import Measures, MetricsRun
from .sweep import Plan, check_checkpoint, family_key, plan_from_args, point_label

POINTS_FILE = "sweep-points.json"
WATCH_POLL_SECONDS = 2.0
STOP_WATCHING = threading.Event()  # set (e.g. by an embedding program) to end a --watch


@dataclass
class PointContext(RunContext):
    """A run context whose events and artifacts belong to one point of the campaign."""

    label: str = ""
    folder: str = ""

    def series(self, series: str, x: float, y: float, x_label: str = "", y_label: str = ""):
        super().series(f"{series}@{self.label}", x, y, x_label=x_label, y_label=y_label)

    def metric(self, name: str, value: float, *, unit: str = "", n=None, **extra: Any) -> None:
        super().metric(f"{name}@{self.label}", value, unit=unit, n=n, **extra)

    def progress(
        self, phase: str, done: int, total: int, unit: str = "it", *, force: bool = False
    ) -> None:
        super().progress(f"{phase} ({self.label})", done, total, unit, force=force)

    def save_figure(self, figure: Any, name: str, caption: str = "", trim: bool = True) -> Any:
        return super().save_figure(figure, f"{self.folder}/{name}", caption, trim)

    def save_image(self, image: Any, name: str, caption: str = "") -> Any:
        return super().save_image(image, f"{self.folder}/{name}", caption)

    def save_csv(self, name: str, header: list[str], rows: Any, caption: str = "") -> Any:
        return super().save_csv(f"{self.folder}/{name}", header, rows, caption)

    def save_npz(self, name: str, caption: str = "", **arrays: Any) -> Any:
        return super().save_npz(f"{self.folder}/{name}", caption, **arrays)


class Pipelines:
    """The pipeline each point samples: the run's own model, or a point's checkpoint or dtype
    (one loaded at a time); and the scheduler a point's ``sampler``/``flow-shift`` asks for."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.loaded: tuple[tuple[str, str], Any] | None = None
        self.schedulers: dict[int, Any] = {}

    def for_point(self, options: Any, settings: dict[str, Any]) -> Any:
        if "model" in settings or "dtype" in settings:
            pipeline = self._load(options.run.model, options.run.dtype)
        else:
            pipeline = self.ctx.model().pipeline
        original = self.schedulers.setdefault(id(pipeline), pipeline.scheduler)
        pipeline.scheduler = scheduler_for(original, settings)
        return pipeline

    def _load(self, model: str, dtype: str) -> Any:
        from ..loading import load_pipeline

        key = (model, dtype)
        if self.loaded is None or self.loaded[0] != key:
            self.loaded = None  # the previous point's pipeline is freed before the next loads
            self.ctx.log(f"loading {model} ({dtype})")
            args = self.ctx.options.run
            loaded = load_pipeline(
                model,
                args.device,
                dtype,
                allow_pickle=args.allow_pickle,
                single_file_config=args.single_file_config,
            )
            self.loaded = (key, loaded.pipeline)
        return self.loaded[1]


def scheduler_for(original: Any, settings: dict[str, Any]) -> Any:
    """The model's scheduler, or the one the point's ``sampler`` names, with its
    ``flow-shift`` (diffusers' ``from_config``: the model's schedule, another sampler)."""
    if "sampler" not in settings and "flow_shift" not in settings:
        return original
    import diffusers

    cls = type(original)
    if "sampler" in settings:
        cls = getattr(diffusers, str(settings["sampler"]), None)
        if cls is None or not hasattr(cls, "from_config"):
            raise InputError(f"--sweep sampler={settings['sampler']}: not a diffusers scheduler")
    overrides = {}
    if "flow_shift" in settings:
        keys = [k for k in ("shift", "flow_shift") if k in original.config]
        if not keys:
            raise InputError(f"--sweep flow-shift: {type(original).__name__} has no shift")
        overrides = dict.fromkeys(keys, settings["flow_shift"])
    return cls.from_config(original.config, **overrides)


# --------------------------------------------------------------------------------------------
# The campaign's own checkpoint
# --------------------------------------------------------------------------------------------


class PointBook:
    """Each point's settings (from its start) and metrics (once it ends), saved atomically."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.path = ctx.writer.checkpoint_dir / POINTS_FILE
        saved = read_json(self.path) if ctx.resume else None
        self.points: list[dict[str, Any]] = list((saved or {}).get("points", []))

    def index_of(self, settings: dict[str, Any]) -> int:
        for index, point in enumerate(self.points):
            if point["settings"] == settings:
                return index
        self.points.append({"settings": settings, "metrics": None})
        self._save()
        return len(self.points) - 1

    def finished(self, index: int, metrics: dict[str, Any], report: str) -> None:
        self.points[index].update(metrics=metrics, report=report)
        self._save()

    def _save(self) -> None:
        if self.ctx.is_main:
            atomic_write_json(self.path, {"points": self.points})


# --------------------------------------------------------------------------------------------
# Running the points
# --------------------------------------------------------------------------------------------


class Campaign:
    """The points of one run directory, measured one after another with shared measures."""

    def __init__(self, ctx: RunContext, options: Any, axes: dict[str, list[Any]]) -> None:
        self.ctx, self.options, self.axes = ctx, options, axes
        self.measures = Measures.open(ctx, options, scores_prompts=options.prompts is not None)
        self.book = PointBook(ctx)
        self.pipelines = Pipelines(ctx)

    def measure(self, settings: dict[str, Any]) -> None:
        """One point, unless it finished before an interruption."""
        index = self.book.index_of(settings)
        point = self.book.points[index]
        label = point_label(settings)
        if point["metrics"] is not None:
            self.ctx.log(f"point {index + 1} ({label}): kept from before the interruption")
            return
        self.ctx.log(f"point {index + 1} ({label}): starting")
        point_options = with_values(self.ctx.options, settings)
        point_ctx = PointContext(
            options=point_options,
            writer=self.ctx.writer,
            mode=self.ctx.mode,
            dist=self.ctx.dist,
            resume=self.ctx.resume,
            _model_loader=self.ctx._model_loader,
            label=label,
            folder=f"points/{index:03d}",
        )
        pipeline = self.pipelines.for_point(point_options, settings)
        run = MetricsRun.for_context(point_ctx, self.options, self.measures, pipeline)
        run.checkpoint_dir = self.ctx.writer.checkpoint_dir / point_ctx.folder
        run.samples_dir = self.ctx.writer.artifact_path(f"{point_ctx.folder}/samples")
        result = run.run()
        self.book.finished(index, result.results, result.report)
        self.emit_point(index, result.results)

    def emit_point(self, index: int, metrics: dict[str, Any]) -> None:
        from .paired import VALUE_KEYS, headline

        for key in VALUE_KEYS:
            value = headline(metrics, key)
            if value is not None:
                self.ctx.series(f"sweep:{key}", index, value, x_label="point", y_label=key)
        fid, clip = headline(metrics, "fid"), headline(metrics, "clip_score")
        if fid is not None and clip is not None:
            self.ctx.series("sweep:fid_clip", clip, fid, x_label="CLIP score", y_label="FID")

    def finish(self) -> ModeResult:
        from .stats_files import with_protocol
        from .sweep_outputs import write_campaign

        measures = self.measures
        return with_protocol(write_campaign(self), measures.extractor, measures.reference)

    def point_folder(self, index: int) -> Path:
        return self.ctx.writer.checkpoint_dir / f"points/{index:03d}"


def run_campaign(ctx: RunContext, options: Any) -> ModeResult:
    """``--sweep`` (every point of the grid) or ``--watch DIR`` (each new checkpoint)."""
    plan = plan_from_args(ctx.options)
    if ctx.options.watch:
        return watch(ctx, options)
    assert plan is not None
    campaign = Campaign(ctx, options, plan.to_json())
    for settings in plan.points:
        campaign.measure(settings)
    return campaign.finish()


# --------------------------------------------------------------------------------------------
# --watch DIR
# --------------------------------------------------------------------------------------------


def checkpoints_in(folder: Path) -> list[Path]:
    """The pipeline checkpoints in ``folder``, in name order: diffusers folders (with a
    ``model_index.json``) and single ``.safetensors`` files."""
    found = [
        path
        for path in folder.iterdir()
        if (path.is_dir() and (path / "model_index.json").is_file())
        or (path.is_file() and path.suffix.lower() == ".safetensors")
    ]
    return sorted(found, key=lambda path: path.name)


def snapshot(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under ``path`` with its size and modification time."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        out.append((str(file), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class Watcher:
    """New checkpoints of a folder, each handed out once its files have stopped changing
    (the same sizes and times over one poll interval)."""

    def __init__(self, folder: Path, seen: set[str]) -> None:
        self.folder, self.seen = folder, set(seen)
        self.last: dict[str, tuple] = {}

    def ready(self) -> list[Path]:
        ready = []
        for path in checkpoints_in(self.folder):
            if str(path) in self.seen:
                continue
            now = snapshot(path)
            if now and self.last.get(str(path)) == now:
                ready.append(path)
                self.seen.add(str(path))
            self.last[str(path)] = now
        return ready


def watch(ctx: RunContext, options: Any) -> ModeResult:
    """Measure each checkpoint of ``--watch DIR`` (those there now, then each new one), until
    stopped (Ctrl-C, SIGTERM or :data:`STOP_WATCHING` while it waits; a stop while a point is
    measured interrupts the run, resumable)."""
    folder = Path(ctx.options.watch).expanduser()
    campaign = Campaign(ctx, options, {"model": []})
    done = {str(p["settings"]["model"]) for p in campaign.book.points if p["metrics"]}
    for point in campaign.book.points:  # the interrupted one first
        if point["metrics"] is None:
            measure_checkpoint(campaign, Path(point["settings"]["model"]))
    watcher = Watcher(folder, done)
    family: tuple[str, str] | None = None
    STOP_WATCHING.clear()
    while True:
        try:
            ctx.log(f"waiting for new checkpoints in {folder}")
            ready = wait_for(watcher)
        except (KeyboardInterrupt, RunInterrupted):
            ready = None
        if ready is None:
            ctx.log("watch stopped")
            break
        for path in ready:
            key = family_key(str(path), ctx.options.run.single_file_config)
            family = family or key
            if key != family:
                ctx.warn(f"--watch: {path.name} is a {key[0]} checkpoint, not {family[0]}; skipped")
                continue
            measure_checkpoint(campaign, path)
    if not campaign.book.points:
        raise InputError(f"--watch {folder}: stopped before any checkpoint was measured")
    return campaign.finish()


def wait_for(watcher: Watcher) -> list[Path] | None:
    """The next checkpoints that are ready, or None once told to stop."""
    while not STOP_WATCHING.is_set():
        ready = watcher.ready()
        if ready:
            return ready
        STOP_WATCHING.wait(WATCH_POLL_SECONDS)
    return None


def measure_checkpoint(campaign: Campaign, path: Path) -> None:
    """One checkpoint of the watched folder; one that cannot be read is reported and skipped
    (the campaign goes on watching)."""
    args = campaign.ctx.options.run
    try:
        check_checkpoint(str(path), args.single_file_config, args.allow_pickle)
    except InputError as error:
        campaign.ctx.warn(f"--watch: {path.name} skipped: {error}")
        return
    if str(path) not in campaign.axes["model"]:
        campaign.axes["model"].append(str(path))
    campaign.measure({"model": str(path)})


__all__ = ["Campaign", "Plan", "run_campaign", "watch"]
