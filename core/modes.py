"""The contract between the headless CLI and the analysis modes.

Each mode is a package ``core/<mode>/`` whose ``__init__.py`` is light (no torch or diffusers
import at module level, so the CLI's ``--help`` and the TUI stay fast) and is a
:class:`Mode`: its description, its own option declarations, the frozen options type it reads
(whose fields say which options it reads: :func:`mode_options`), and its checks and its run.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from .options import GENERATION_OPTIONS, RUN_OPTIONS, Option, option_reads
from .runs import RunWriter

if TYPE_CHECKING:
    from .distributed import DistInfo
    from .families import ModelConfigs
    from .loading import LoadedModel


class Mode(Protocol):
    """What the CLI and the workbench read from a mode's package."""

    #: One line for ``--help`` and the workbench's mode list.
    DESCRIPTION: str
    #: Whether the mode needs the full pipeline loaded (the schedule mode does not).
    NEEDS_PIPELINE: bool
    #: The options only this mode declares; names are unique across modes. Options several
    #: modes read are declared in :mod:`diffusionscope.core.options`.
    OPTIONS: tuple[Option, ...]
    #: The frozen dataclass the mode receives: one field per option it reads (named as the
    #: option's ``dest``), ``run`` for the run's own options and ``generation`` for the shared
    #: generation options where it samples images.
    Options: type

    def validate(self, options: Any) -> None:
        """Cheap checks of the options; raise :class:`~diffusionscope.core.errors.InputError`
        with one line naming the input. Runs before the run directory exists, so bad input
        leaves nothing behind."""

    def check_model(self, options: Any, model: ModelConfigs | None) -> None:
        """Refuse, in one line, a model the mode cannot analyse, from its configs alone (None:
        no model named); runs before the run directory exists."""

    def planned_work(self, options: Any) -> list[dict[str, Any]]:
        """The phases the mode will report, with their sizes, before anything is loaded
        (``events.planned_phase``): the run's overall progress and ETA."""

    def run(self, ctx: RunContext) -> ModeResult:
        """Do the work, reporting through ``ctx`` and writing files through ``ctx.writer``."""


MODE_NAMES: tuple[str, ...] = ("metrics", "schedule", "attention", "latent")


def mode_module(name: str) -> Mode:
    """Import ``diffusionscope.core.<name>``, the package implementing one mode."""
    if name not in MODE_NAMES:
        raise KeyError(name)
    return cast(Mode, importlib.import_module(f"{__package__}.{name}"))


def available_modes() -> dict[str, Mode]:
    """The modes whose package is present (all four once every mode has landed)."""
    found: dict[str, Mode] = {}
    for name in MODE_NAMES:
        try:
            found[name] = mode_module(name)
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.{name}":
                raise
    return found


def declared_options(modes: dict[str, Mode] | None = None) -> dict[str, Option]:
    """Every option of ``run`` by destination: the run's, the shared ones and each mode's."""
    modes = available_modes() if modes is None else modes
    own = [option for module in modes.values() for option in module.OPTIONS]
    return {option.dest: option for option in (*RUN_OPTIONS, *GENERATION_OPTIONS, *own)}


def mode_options(name: str, modes: dict[str, Mode] | None = None) -> list[Option]:
    """The options mode ``name`` reads, derived from its options type: the shared ones first,
    then its own, then any another mode declares, each in declaration order."""
    modes = available_modes() if modes is None else modes
    reads = set(option_reads(modes[name].Options))
    order = [
        *GENERATION_OPTIONS,
        *modes[name].OPTIONS,
        *(option for other, module in modes.items() if other != name for option in module.OPTIONS),
    ]
    return [option for option in order if option.dest in reads]


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

    ``options`` is the mode's own frozen options object (its ``Options``), built from the
    validated configuration (the values of ``config.json`` with the declared defaults filled
    in). Sample ``i`` of any mode uses seed ``options.run.seed + i``. ``resume`` is true when the run is
    continued with ``--resume``: a mode that checkpoints reads ``writer.load_checkpoint``.
    """

    options: Any
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
        return int(self.options.run.seed)

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
