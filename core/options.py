"""Every option of diffusionscope, declared once.

The argparse CLI (:func:`add_options`) and the workbench form (``diffusionscope.tui``) are both
rendered from these declarations, after harlequin's ``options.py``: an option's flag, type,
default, help text and value check are written here and nowhere else. The form therefore never
offers a value the CLI would refuse, and both word a complaint the same way
(``--steps: must be positive, got 0``).

Options several modes read (``--prompt``, ``--steps``, ``--reference`` ...) are declared here
with the modes that read them; an option only one mode reads is declared in that mode's
package as ``OPTIONS``. This module imports nothing heavy: the workbench reads it at start-up.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError

KINDS = ("text", "int", "float", "bool", "choice")


@dataclass(frozen=True)
class Option:
    """One option: how it is spelled, parsed, defaulted and explained.

    ``kind`` decides the parsing: ``int`` and ``float`` values must be finite numbers (``nan``
    would otherwise reach ``config.json``, which JSON cannot hold), ``positive`` ones above
    zero, and none above ``maximum`` (a count or size no run could reach is refused before
    anything is allocated or written, not hours later). ``default_text`` says what an empty
    form field stands for when the default is not a plain value (``--sampler-steps`` falls
    back to ``--steps``, say). ``modes`` lists the modes
    that read a shared option, so the form shows it under them. ``sweepable`` marks an option
    that changes the images but not the reference they are measured against: ``--sweep`` reads
    it to decide which options one campaign may vary over a shared reference. ``repeat``: the
    option may be given several times (``--sweep A=1,2 --sweep B=3,4``); its value is the list.
    """

    dest: str
    help: str
    kind: str = "text"
    default: Any = None
    choices: tuple[str, ...] = ()
    positive: bool = False
    short: str | None = None
    metavar: str | None = None
    default_text: str = ""
    modes: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # words a number option takes too (``--batch-size auto``)
    maximum: int | float | None = None
    sweepable: bool = False
    repeat: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.dest}: unknown option kind {self.kind!r}")

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def label(self) -> str:
        """The flag without its dashes: the name a form field shows."""
        return self.flag.removeprefix("--")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.short, self.flag) if self.short else (self.flag,)

    @property
    def shown_default(self) -> str:
        """What an empty field means, in words: ``default 50``, ``default: --steps or 50``."""
        if self.default_text:
            return self.default_text
        if self.default is None or self.kind == "bool":
            return ""
        return f"default {self.default}"

    def convert(self, text: str) -> Any:
        """The value of ``text`` for this option; the complaint names the option's flag."""
        try:
            return self._convert(text)
        except ValueError as error:
            raise InputError(f"{self.flag}: {error}") from None

    def _convert(self, text: str) -> Any:
        text = str(text).strip()
        if text in self.words:
            return text
        if self.kind == "choice" and text not in self.choices:
            raise ValueError(f"choose one of {', '.join(self.choices)}, got {text!r}")
        if self.kind == "int":
            try:
                value: Any = int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
        elif self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {text!r}")
        else:
            return text
        if self.positive and value <= 0:
            raise ValueError(f"must be positive, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"at most {self.maximum}, got {text}")
        return value

    def check(self, text: str) -> str | None:
        """The one-line complaint about a form field's text, or None (empty keeps the default)."""
        if self.kind in ("text", "bool") or not str(text).strip():
            return None
        try:
            self.convert(text)
        except InputError as error:
            return str(error)
        return None

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Declare this option on an argparse parser or group."""
        help_text = self.help + (f" ({self.shown_default})" if self.shown_default else "")
        if self.kind == "bool":
            parser.add_argument(*self.flags, dest=self.dest, action="store_true", help=self.help)
            return
        parser.add_argument(
            *self.flags,
            dest=self.dest,
            default=self.default,
            type=self._argparse_type(),
            action="append" if self.repeat else "store",
            metavar=self.metavar or (f"{{{','.join(self.choices)}}}" if self.choices else None),
            help=help_text.replace("%", "%%"),
        )

    def _argparse_type(self) -> Any:
        def parse(text: str) -> Any:
            try:
                return self._convert(text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        parse.__name__ = self.kind  # argparse names the type in some of its messages
        return parse

    def as_arguments(self, value: Any) -> list[str]:
        """``[flag, value]`` for a filled-in value, ``[flag]`` for a ticked box, else nothing."""
        if self.kind == "bool":
            return [self.flag] if value else []
        if self.repeat and isinstance(value, list | tuple):
            return [word for item in value for word in self.as_arguments(item)]
        if value is None or str(value).strip() == "":
            return []
        return [self.flag, str(value).strip()]


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: Iterable[Option]
) -> None:
    for option in options:
        option.add_to(parser)


# --------------------------------------------------------------------------------------------
# The run's own options, and the generation options several modes share
# --------------------------------------------------------------------------------------------

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

#: Upper bounds of counts and sizes: past them a run could not finish (or allocate) anyway.
MAX_SAMPLES = 10_000_000
MAX_STEPS = 10_000
MAX_IMAGE_SIDE = 16_384
MAX_BATCH = 65_536
#: Seeds feed ``torch.Generator.manual_seed`` (64-bit) as SEED + i.
MAX_SEED = 2**63 - 1 - MAX_SAMPLES
DTYPES = ("auto", "fp32", "fp16", "bf16")

MODEL = Option(
    "model",
    "hub id, local diffusers folder, single .safetensors file, or (schedule mode) a "
    "scheduler_config.json",
    default_text="default: the shipped digits-ldm model",
    sweepable=True,
)
MODES = Option("modes", "comma-separated analysis modes", default_text="required")
RUNS_ROOT = Option("runs_root", "where run directories go", default_text="default ./runs")
NAME = Option("name", "a name for the run directory", default_text="default: the modes")
DEVICE = Option(
    "device", "auto | cpu | cuda | cuda:N | mps (auto: CUDA when available)", default="auto"
)
DTYPE = Option(
    "dtype",
    "numeric precision (auto: fp16 on CUDA, else fp32)",
    kind="choice",
    default="auto",
    choices=DTYPES,
    sweepable=True,
)
SEED = Option("seed", "sample i uses seed SEED+i", kind="int", default=0)
ALLOW_PICKLE = Option(
    "allow_pickle",
    "allow .ckpt/.bin/.pt weights (pickles; read with weights_only=True)",
    kind="bool",
)
SINGLE_FILE_CONFIG = Option(
    "single_file_config",
    "diffusers folder or hub id whose configs a single-file checkpoint is read with",
)
RESUME = Option("resume", "continue an interrupted run", metavar="RUN_DIR")
JSON = Option("json", "print the final results as JSON on stdout", kind="bool")
QUIET = Option("quiet", "no progress display on stderr", kind="bool")

RUN_OPTIONS: tuple[Option, ...] = (
    MODEL,
    MODES,
    RUNS_ROOT,
    NAME,
    DEVICE,
    DTYPE,
    SEED,
    ALLOW_PICKLE,
    SINGLE_FILE_CONFIG,
    RESUME,
    JSON,
    QUIET,
)

#: Options that change only where or how a run works, not what it measures: given with
#: ``--resume`` they override the saved ones.
HOW_OPTIONS = ("device", "quiet", "json")

GENERATORS = ("metrics", "attention", "latent")  # the modes that sample the model

NUM_SAMPLES = Option(
    "num_samples",
    "samples to generate",
    kind="int",
    positive=True,
    short="-n",
    default_text="default 10000 (digits-ldm: 500)",
    modes=("metrics",),
    maximum=MAX_SAMPLES,
)
REFERENCE = Option(
    "reference",
    "reference image folder or .npz statistics",
    default_text="default: the shipped digits for digits-ldm",
    modes=("metrics", "latent"),
)
PROMPTS_FILE = Option(
    "prompts_file", "one prompt a line, used in turn (UTF-8 text)", modes=("metrics",)
)
PROMPT = Option("prompt", "the prompt", modes=("attention", "latent"))
NEGATIVE_PROMPT = Option("negative_prompt", "the negative prompt", modes=GENERATORS)
BATCH_SIZE = Option(
    "batch_size",
    "images per batch, or auto",
    kind="int",
    positive=True,
    words=("auto",),
    modes=("metrics",),
    default_text="default 16; auto: the largest that fits, on CUDA",
    maximum=MAX_BATCH,
    sweepable=True,
)
STEPS = Option(
    "steps",
    "sampler steps",
    kind="int",
    positive=True,
    default_text="default 25 (latent: 20)",
    modes=GENERATORS,
    maximum=MAX_STEPS,
    sweepable=True,
)
GUIDANCE_SCALE = Option(
    "guidance_scale",
    "classifier-free guidance scale",
    kind="float",
    default_text="default 5",
    modes=GENERATORS,
    sweepable=True,
)
HEIGHT = Option(
    "height",
    "image height in pixels",
    kind="int",
    positive=True,
    default_text="default: the model's",
    modes=GENERATORS,
    maximum=MAX_IMAGE_SIDE,
    sweepable=True,
)
WIDTH = Option(
    "width",
    "image width in pixels",
    kind="int",
    positive=True,
    default_text="default: the model's",
    modes=GENERATORS,
    maximum=MAX_IMAGE_SIDE,
    sweepable=True,
)
FEATURES = Option(
    "features",
    "feature extractor: inception | dinov2 | clip | digits",
    default_text="default inception (digits-ldm: digits)",
    modes=("metrics",),
)

GENERATION_OPTIONS: tuple[Option, ...] = (
    NUM_SAMPLES,
    REFERENCE,
    PROMPTS_FILE,
    PROMPT,
    NEGATIVE_PROMPT,
    BATCH_SIZE,
    STEPS,
    GUIDANCE_SCALE,
    HEIGHT,
    WIDTH,
    FEATURES,
)

GENERATION_TITLE = "generation (shared by modes)"


def shared_options_for(mode: str) -> list[Option]:
    """The shared generation options ``mode`` reads, in declaration order."""
    return [option for option in GENERATION_OPTIONS if mode in option.modes]


def form_sections(
    modes: Sequence[str], own: Mapping[str, Sequence[Option]]
) -> list[tuple[str, list[Option]]]:
    """The options of several modes, each once, under the first mode that reads it.

    ``own`` maps each mode to the options only it declares (its package's ``OPTIONS``).
    """
    seen: set[str] = set()
    sections = []
    for mode in modes:
        options = [o for o in (*shared_options_for(mode), *own.get(mode, ())) if o.dest not in seen]
        seen.update(o.dest for o in options)
        sections.append((mode, options))
    return sections
