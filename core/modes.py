"""The contract between the headless CLI and the analysis modes.

Each mode is a package ``core/<mode>/`` whose ``__init__.py`` is light (no torch or diffusers
import at module level, so the CLI's ``--help`` and the TUI stay fast) and defines:

``DESCRIPTION: str``
    one line for ``--help`` and the TUI's mode list.
``NEEDS_PIPELINE: bool``
    whether the mode needs the full pipeline loaded (schedule mode does not).
``OPTIONS: tuple[Option, ...]``
    the options only this mode uses (:class:`diffusionscope.core.options.Option`), rendered by
    the CLI and by the workbench's form; names are unique across modes. Options several modes
    share (``--prompt``, ``--steps``, ``--reference`` ...) are declared in ``core.options``
    with the modes that read them.
``validate(args: argparse.Namespace) -> None``
    cheap checks of the options; raise :class:`diffusionscope.core.errors.InputError` with one line naming the
    input. Runs before the run directory exists, so bad input leaves nothing behind.
``run(ctx: RunContext) -> ModeResult``
    does the work, reporting through ``ctx`` and writing files through ``ctx.writer``.
"""

from __future__ import annotations

import argparse
import importlib
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .runs import RunWriter

if TYPE_CHECKING:
    from .distributed import DistInfo
    from .loading import LoadedModel

MODE_NAMES: tuple[str, ...] = ("metrics", "schedule", "attention", "latent")


def mode_module(name: str) -> ModuleType:
    """Import ``diffusionscope.core.<name>``, the package implementing one mode."""
    if name not in MODE_NAMES:
        raise KeyError(name)
    return importlib.import_module(f"{__package__}.{name}")


def available_modes() -> dict[str, ModuleType]:
    """The modes whose package is present (all four once every mode has landed)."""
    found: dict[str, ModuleType] = {}
    for name in MODE_NAMES:
        try:
            found[name] = mode_module(name)
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.{name}":
                raise
    return found


@dataclass
class ModeResult:
    """What a mode hands back: its section of ``results.json`` and of ``report.md``, and any
    top-level sections of ``results.json`` beside its own (a campaign's ``sweep``)."""

    results: dict[str, Any]
    report: str = ""
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything a mode needs while it runs; one per (run, mode).

    ``args`` is the full validated configuration (the same values as ``config.json``).
    Sample ``i`` of any mode uses seed ``args.seed + i``. ``resume`` is true when the run is
    continued with ``--resume``: a mode that checkpoints reads ``writer.load_checkpoint``.
    """

    args: argparse.Namespace
    writer: RunWriter
    mode: str
    dist: DistInfo
    resume: bool = False
    _model_loader: Any = None
    _last_progress: dict[str, float] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def seed(self) -> int:
        return int(self.args.seed)

    def model(self) -> LoadedModel:
        """The loaded pipeline and its summary; loaded on first use and shared by modes."""
        if self._model_loader is None:
            raise RuntimeError("this run has no model")
        return self._model_loader()

    # ---- reporting, with the mode filled in ---------------------------------------------

    def progress(self, phase: str, done: int, total: int, unit: str = "it") -> None:
        """Report progress; throttled to a few events a second, first and last always kept."""
        now = time.monotonic()
        key = phase
        if 0 < done < total and now - self._last_progress.get(key, 0.0) < 0.25:
            return
        self._last_progress[key] = now
        self.writer.progress(phase, done, total, unit=unit, mode=self.mode)

    def log(self, message: str, level: str = "info") -> None:
        self.writer.log(message, level=level, mode=self.mode)

    def warn(self, message: str) -> None:
        self.log(message, level="warning")

    def metric(
        self, name: str, value: float, *, unit: str = "", n: int | None = None, **extra: Any
    ) -> None:
        self.writer.metric(name, value, mode=self.mode, unit=unit, n=n, **extra)

    def series(self, series: str, x: float, y: float, x_label: str = "", y_label: str = "") -> None:
        self.writer.series(series, x, y, mode=self.mode, x_label=x_label, y_label=y_label)

    def save_figure(self, figure: Any, name: str, caption: str = "", trim: bool = True) -> Any:
        return self.writer.save_figure(figure, name, caption, mode=self.mode, trim=trim)

    def save_image(self, image: Any, name: str, caption: str = "") -> Any:
        return self.writer.save_image(image, name, caption, mode=self.mode)

    def save_csv(self, name: str, header: list[str], rows: Any, caption: str = "") -> Any:
        return self.writer.save_csv(name, header, rows, caption, mode=self.mode)

    def save_npz(self, name: str, caption: str = "", **arrays: Any) -> Any:
        return self.writer.save_npz(name, caption, mode=self.mode, **arrays)
