"""Every option of diffusionscope, declared once.

The argparse CLI (:func:`add_options`), the workbench form (``diffusionscope.tui``) and the
typed options object each mode receives (:func:`build_options`) are all rendered from these
declarations, after harlequin's ``options.py``: an option's flag, kind, default (with the
defaults of particular modes and of the shipped model), help text and value check are written
here and nowhere else. The form therefore never offers a value the CLI would refuse, both word a
complaint the same way (``--steps: must be positive, got 0``), and ``--help``, the form's
placeholder and the value a mode reads come from one declared value.

Options several modes read (``--prompt``, ``--steps``, ``--reference`` ...) are declared here;
an option only one mode declares is in that mode's package as ``OPTIONS``. Which options a mode
reads is the fields of its options type (:func:`option_reads`), never a list kept by hand. This
module imports nothing heavy: the workbench reads it at start-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .zoo import DIGITS_LDM, DIGITS_PROMPTS, DIGITS_REFERENCE

KINDS = (
    "text",
    "int",
    "float",
    "bool",
    "choice",
    "numbers",  # a comma list of numbers: ``--strengths 0,0.5,1``
    "choices",  # a comma list of choices: ``--metrics fid,kid``
    "count_or_all",  # a count, ``all``, or a comma list of indices: ``--attention-steps``
    "path",  # a file or folder (``path`` says which)
    "device",  # auto | cpu | cuda | cuda:N | mps
)
PATH_KINDS = ("file", "folder", "npz", "folder or npz", "file or folder")

#: The devices ``--device`` takes; ``cuda:N`` names one GPU by index.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: The devices the workbench's list offers: :data:`DEVICES`, ``cuda:N`` as the first few GPUs.
FORM_DEVICES = tuple(
    named
    for device in DEVICES
    for named in ([f"cuda:{index}" for index in range(8)] if device == "cuda:N" else [device])
)
DTYPES = ("auto", "fp32", "fp16", "bf16")

#: Upper bounds of counts and sizes: past them a run could not finish (or allocate) anyway.
MAX_SAMPLES = 10_000_000
MAX_STEPS = 10_000
MAX_IMAGE_SIDE = 16_384
MAX_BATCH = 65_536
#: Seeds feed ``torch.Generator.manual_seed`` (64-bit) as SEED + i.
MAX_SEED = 2**63 - 1 - MAX_SAMPLES
_CUDA_INDEX = re.compile(r"cuda:\d+")

#: The shipped model, by the name its model defaults are declared under.
DIGITS_LDM_NAME = "digits-ldm"


def model_name(model: str | None) -> str | None:
    """The name a model's own defaults are declared under (the shipped ``digits-ldm``), or
    None for any other model."""
    if not model:
        return None
    try:
        same = Path(model).expanduser().resolve() == DIGITS_LDM.resolve()
    except (OSError, RuntimeError):
        return None
    return DIGITS_LDM_NAME if same else None


def _shown(value: Any) -> str:
    """A default as a user types it: ``5`` for 5.0, ``0,0.5,1`` for a list, a zoo folder by
    its name."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, Path):
        return value.name
    return str(value)


def _plain(value: Any) -> Any:
    """A declared value as a mode reads it (a zoo folder as its path text)."""
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class Option:
    """One option: how it is spelled, parsed, defaulted and explained.

    ``kind`` decides the parsing (:data:`KINDS`): ``int`` and ``float`` values must be finite
    numbers (``nan`` would otherwise reach ``config.json``, which JSON cannot hold),
    ``positive`` ones above zero, and none above ``maximum`` (a count or size no run could reach
    is refused before anything is allocated or written, not hours later); list kinds check each
    item and ``length`` (fewest, most). ``parse`` is a text option's own reading where no kind
    says it (``--sweep``'s checkpoint globs expanded, so ``config.json`` holds the exact
    points). ``repeat``: the option may be given several times (``--sweep A=1,2 --sweep
    B=3,4``); its value is the list.
    ``default`` is the value every mode reads when none is given; ``per_mode`` and
    ``per_model`` are the modes' and the shipped model's own defaults, in that order of
    precedence below a given value (``per_model`` wins over ``per_mode``). ``unset`` says, in a
    few words and never as a value, what no value means where no value can stand for it (the
    model's own size, say). ``unset_with`` names options that, when given, leave this one
    unset (``--num-samples`` with ``--generated``: every image of the folder).
    ``sweepable`` marks an option that changes the images but not the reference they are
    measured against: ``--sweep`` reads it to decide which options one campaign may vary over
    a shared reference.
    """

    dest: str
    help: str
    kind: str = "text"
    default: Any = None
    choices: tuple[str, ...] = ()
    positive: bool = False
    short: str | None = None
    metavar: str | None = None
    words: tuple[str, ...] = ()  # words an option takes besides its kind (``--batch-size auto``)
    maximum: int | float | None = None
    sweepable: bool = False
    repeat: bool = False
    parse: Callable[[str], Any] | None = None
    per_mode: tuple[tuple[str, Any], ...] = ()
    per_model: tuple[tuple[str, Any], ...] = ()
    unset: str = ""
    unset_with: tuple[str, ...] = ()
    length: tuple[int, int | None] = (1, None)
    number: str = "int"  # the item kind of a ``numbers`` option: int or float
    path: str = ""  # what a ``path`` option names (:data:`PATH_KINDS`)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.dest}: unknown option kind {self.kind!r}")
        if self.kind == "path" and self.path not in PATH_KINDS:
            raise ValueError(f"{self.dest}: a path option names one of {PATH_KINDS}")
        if self.unset and self.default is not None:
            raise ValueError(f"{self.dest}: an option with a default is never unset")

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

    # ---- defaults -----------------------------------------------------------------------

    @property
    def varies(self) -> bool:
        """Whether the default depends on the mode, the model or another option: then the
        command line leaves the value unset and each mode's options object fills it in."""
        return bool(self.per_mode or self.per_model or self.unset_with)

    @property
    def cli_default(self) -> Any:
        """What argparse (and so ``config.json``) holds when the option is not given."""
        if self.kind == "bool":
            return False
        return None if self.varies else _plain(self.default)

    def default_for(
        self, mode: str | None = None, model: str | None = None, given: Mapping[str, Any] = {}
    ) -> Any:
        """The value ``mode`` reads when this option is not given, for the run's ``model``
        (:func:`model_name`) and the other values ``given`` (read only)."""
        if any(given.get(other) for other in self.unset_with):
            return None
        if model is not None and model in dict(self.per_model):
            return _plain(dict(self.per_model)[model])
        if mode is not None and mode in dict(self.per_mode):
            return _plain(dict(self.per_mode)[mode])
        return False if self.kind == "bool" and self.default is None else _plain(self.default)

    @property
    def shown_default(self) -> str:
        """What an empty field means, from the declared values: ``default 25; latent: 20``."""
        if self.kind == "bool":
            return ""
        parts = []
        if self.default is not None:
            parts.append(f"default {_shown(self.default)}")
        elif self.unset:
            parts.append(f"unset: {self.unset}")
        parts += [f"{mode}: {_shown(value)}" for mode, value in self.per_mode]
        parts += [f"{model}: {_shown(value)}" for model, value in self.per_model]
        parts += [f"with --{other.replace('_', '-')}: unset" for other in self.unset_with]
        return "; ".join(parts)

    def shown_default_for(self, model: str | None) -> str:
        """What an empty value means for the run's ``model`` (:func:`model_name`): that
        model's own declared default where it has one (``default 500 for digits-ldm``), else
        :attr:`shown_default`. The form's placeholders say this for the model loaded."""
        name = model_name(model)
        own = dict(self.per_model)
        if name is None or name not in own or self.kind == "bool":
            return self.shown_default
        return f"default {_shown(own[name])} for {name}"

    @property
    def help_text(self) -> str:
        """The help with what an empty value means: ``--help``'s line and the form's."""
        return self.help + (f" ({self.shown_default})" if self.shown_default else "")

    # ---- parsing ------------------------------------------------------------------------

    def convert(self, text: Any) -> Any:
        """The value of ``text`` for this option; the complaint names the option's flag."""
        try:
            return self._convert(text)
        except ValueError as error:
            raise InputError(f"{self.flag}: {error}") from None

    def _convert(self, text: Any) -> Any:
        text = str(text).strip()
        if text in self.words:
            return text
        if self.kind == "choice" and text not in self.choices:
            raise ValueError(f"choose one of {', '.join(self.choices)}, got {text!r}")
        if self.kind in ("int", "float"):
            return self._number(text, self.kind)
        if self.kind == "numbers":
            return self._counted(tuple(self._number(p, self.number) for p in _items(text)), text)
        if self.kind == "choices":
            return self._counted(tuple(self._choice(p) for p in _items(text)), text)
        if self.kind == "count_or_all":
            return self._count_or_indices(text)
        if self.kind == "device":
            return self._device(text)
        if self.kind == "path" and not text:
            raise ValueError(f"expected a {self.path}, got an empty path")
        return self.parse(text) if self.parse is not None else text

    def _number(self, text: str, kind: str) -> int | float:
        if kind == "int":
            try:
                value: int | float = int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {text!r}")
        if self.positive and value <= 0:
            raise ValueError(f"must be positive, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"at most {self.maximum}, got {text}")
        return value

    def _choice(self, text: str) -> str:
        if text not in self.choices:
            known = ", ".join((*self.choices, *self.words))
            item = self.dest.rsplit("_", 1)[-1].removesuffix("s")  # metrics: metric
            raise ValueError(f"unknown {item} {text!r} (known: {known})")
        return text

    def _counted(self, items: tuple[Any, ...], text: str) -> tuple[Any, ...]:
        fewest, most = self.length
        if not items and self.kind == "choices":
            raise ValueError(f"name at least one of {', '.join(self.choices)}")
        if len(items) < fewest or (most is not None and len(items) > most):
            words = {1: "one", 2: "two", 3: "three"}
            wanted = words.get(fewest, str(fewest))
            if most is None:
                wanted = f"at least {wanted}"
            elif most != fewest:
                wanted = f"{wanted} to {words.get(most, str(most))}"
            things = self.dest.rsplit("_", 1)[-1]  # seeds, strengths
            raise ValueError(f"expected {wanted} {things}, got {text!r}")
        return items

    def _count_or_indices(self, text: str) -> int | tuple[int, ...]:
        """A count (``4``), or step indices (``0,5,9``; ``5,`` is the one index 5)."""
        if text.isdigit():
            if int(text) <= 0:
                raise ValueError(f"must be positive, got {text}")
            return int(text)
        parts = _items(text)
        if not parts or not all(part.isdigit() for part in parts):
            words = "".join(f", {word!r}" for word in self.words)
            raise ValueError(f"expected a count{words} or step indices, got {text!r}")
        return tuple(int(part) for part in parts)

    def _device(self, text: str) -> str:
        device = text.lower()
        if device in DEVICES and device != "cuda:N" or _CUDA_INDEX.fullmatch(device):
            return device
        raise ValueError(f"expected one of {', '.join(DEVICES)}, got {text!r}")

    def check(self, text: Any) -> str | None:
        """The one-line complaint about a form field's text, or None (empty keeps the default)."""
        if self.kind in ("text", "bool") or not str(text).strip():
            return None
        try:
            self.convert(text)
        except InputError as error:
            return str(error)
        return None

    def check_saved(self, value: Any) -> str | None:
        """Why ``value`` (as ``config.json`` holds it) cannot be this option's, or None (a
        repeated option: of each of its values)."""
        if self.repeat and isinstance(value, list):
            single = dataclasses.replace(self, repeat=False)
            return next(filter(None, (single.check_saved(item) for item in value)), None)
        if isinstance(value, str) and value in self.words:
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else "not true or false"
        if self.kind in ("numbers", "choices", "count_or_all") and isinstance(value, list):
            value = self.as_text(value)
        elif self.kind in ("int", "float", "count_or_all") and not isinstance(value, str):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "not a number"
            if self.kind in ("int", "count_or_all") and not isinstance(value, int):
                return "not a whole number"
            if not math.isfinite(value):
                return "not a finite number"
        elif not isinstance(value, str):
            return "not text"
        try:
            self.convert(str(value))
        except InputError as error:
            return str(error)
        return None

    def restore(self, value: Any) -> Any:
        """A value as ``config.json`` holds it, as the CLI parses it: a list kind's list (or
        its text, in a configuration saved as text) becomes the parsed tuple."""
        if self.repeat and isinstance(value, list | tuple):
            return tuple(value)
        if value is None or self.kind not in ("numbers", "choices", "count_or_all"):
            return value
        if isinstance(value, tuple | int) and not isinstance(value, bool):
            return value  # parsed already (the command line's own value)
        return self.convert(self.as_text(value))

    # ---- rendering ----------------------------------------------------------------------

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Declare this option on an argparse parser or group."""
        if self.kind == "bool":
            parser.add_argument(*self.flags, dest=self.dest, action="store_true", help=self.help)
            return
        parser.add_argument(
            *self.flags,
            dest=self.dest,
            default=self.cli_default,
            type=self._argparse_type(),
            action="append" if self.repeat else "store",
            metavar=self._metavar(),
            help=self.help_text.replace("%", "%%"),
        )

    def _metavar(self) -> str | None:
        if self.metavar:
            return self.metavar
        if self.kind == "choice":
            return f"{{{','.join(self.choices)}}}"
        if self.kind == "path":
            return self.path.upper().replace(" ", "_")
        if self.kind == "device":
            return "|".join(DEVICES)
        return None

    def _argparse_type(self) -> Any:
        def parse(text: str) -> Any:
            try:
                return self._convert(text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        parse.__name__ = self.kind  # argparse names the type in some of its messages
        return parse

    def as_text(self, value: Any) -> str:
        """``value`` as a user types it (a list kind's items comma-separated); "" for none."""
        if value is None:
            return ""
        if isinstance(value, tuple | list):
            return ",".join(str(item) for item in value) + ("," if len(value) == 1 else "")
        return str(value).strip()

    def as_arguments(self, value: Any) -> list[str]:
        """``[flag, value]`` for a filled-in value, ``[flag]`` for a ticked box, else nothing."""
        if self.kind == "bool":
            return [self.flag] if value else []
        if self.repeat and isinstance(value, list | tuple):
            return [word for item in value for word in self.as_arguments(item)]
        text = self.as_text(value)
        return [self.flag, text] if text else []


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: Iterable[Option]
) -> None:
    for option in options:
        option.add_to(parser)


# --------------------------------------------------------------------------------------------
# The run's own options, and the generation options several modes share
# --------------------------------------------------------------------------------------------

MODEL = Option(
    "model",
    "hub id, local diffusers folder, single .safetensors file, or (schedule mode) a "
    "scheduler_config.json",
    unset="the shipped digits-ldm model",
    sweepable=True,
)
MODES = Option("modes", "comma-separated analysis modes", unset="required")
RUNS_ROOT = Option(
    "runs_root",
    "where run directories go",
    kind="path",
    path="folder",
    unset="$DIFFUSIONSCOPE_RUNS, else ./runs",
)
NAME = Option("name", "a name for the run directory", unset="the modes, joined by -")
DEVICE = Option("device", "where to run (auto: CUDA when available)", kind="device", default="auto")
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
RESUME = Option(
    "resume", "continue an interrupted run", kind="path", path="folder", metavar="RUN_DIR"
)
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

NUM_SAMPLES = Option(
    "num_samples",
    "samples to generate",
    kind="int",
    positive=True,
    short="-n",
    default=10000,
    per_model=((DIGITS_LDM_NAME, 500),),
    unset_with=("generated",),
    maximum=MAX_SAMPLES,
)
REFERENCE = Option(
    "reference",
    "reference image folder or .npz statistics",
    kind="path",
    path="folder or npz",
    per_model=((DIGITS_LDM_NAME, DIGITS_REFERENCE),),
    unset_with=("reference_set",),
)
PROMPTS_FILE = Option(
    "prompts_file",
    "one prompt a line, used in turn (UTF-8 text)",
    kind="path",
    path="file",
    per_model=((DIGITS_LDM_NAME, DIGITS_PROMPTS),),
    unset_with=("generated", "reference_set"),
)
DIGITS_PROMPT = "a red seven on a white background"
PROMPT = Option("prompt", "the prompt", per_model=((DIGITS_LDM_NAME, DIGITS_PROMPT),))
NEGATIVE_PROMPT = Option("negative_prompt", "the negative prompt", sweepable=True)
BATCH_SIZE = Option(
    "batch_size",
    "images per batch, or auto (the largest that fits, on CUDA)",
    kind="int",
    positive=True,
    words=("auto",),
    default=16,
    maximum=MAX_BATCH,
    sweepable=True,
)
STEPS = Option(
    "steps",
    "sampler steps",
    kind="int",
    positive=True,
    default=25,
    per_mode=(("latent", 20), ("schedule", 50)),
    maximum=MAX_STEPS,
    sweepable=True,
)
GUIDANCE_SCALE = Option(
    "guidance_scale",
    "classifier-free guidance scale",
    kind="float",
    default=5.0,
    sweepable=True,
)
HEIGHT = Option(
    "height",
    "image height in pixels",
    kind="int",
    positive=True,
    unset="the model's own",
    maximum=MAX_IMAGE_SIDE,
    sweepable=True,
)
WIDTH = Option(
    "width",
    "image width in pixels",
    kind="int",
    positive=True,
    unset="the model's own",
    maximum=MAX_IMAGE_SIDE,
    sweepable=True,
)
FEATURE_EXTRACTORS = ("inception", "dinov2", "clip", "digits")
FEATURES = Option(
    "features",
    "feature extractor",
    kind="choice",
    choices=FEATURE_EXTRACTORS,
    words=("digits-features",),  # the zoo folder's name for digits
    default="inception",
    per_model=((DIGITS_LDM_NAME, "digits"),),
)
INCEPTION_WEIGHTS = Option(
    "inception_weights",
    "local pt_inception-2015-12-05 weights for offline hosts",
    kind="path",
    path="file",
)
FEATURE_MODEL = Option("feature_model", "hub id or folder for the dinov2/clip extractors")

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
    INCEPTION_WEIGHTS,
    FEATURE_MODEL,
)

GENERATION_TITLE = "generation (shared by modes)"


# --------------------------------------------------------------------------------------------
# The typed options a mode receives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """The run's own options every mode may read (not shown in a mode's form)."""

    model: str | None
    seed: int
    device: str
    dtype: str
    allow_pickle: bool
    single_file_config: str | None


@dataclass(frozen=True)
class Generation:
    """The shared options a generating mode samples images with, embedded in its options as
    ``generation``. Its defaults are the declarations' (a mode's own defaults are filled in by
    :func:`build_options`); constructed directly, it is the generation settings of a test."""

    steps: int = STEPS.default
    guidance_scale: float = GUIDANCE_SCALE.default
    height: int | None = HEIGHT.default
    width: int | None = WIDTH.default
    negative_prompt: str | None = NEGATIVE_PROMPT.default


def _field_types(options_type: type) -> dict[str, Any]:
    hints = typing.get_type_hints(options_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(options_type)}


def _embedded(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def option_reads(options_type: type) -> list[str]:
    """The options a mode reads: the fields of its options type, with an embedded options
    object (``generation``) read field by field and the run's own options (``run``) left
    out. The CLI checks, the form and the tests all derive a mode's options from this."""
    reads: list[str] = []
    for name, kind in _field_types(options_type).items():
        if kind is RunOptions:
            continue
        reads += option_reads(kind) if _embedded(kind) else [name]
    return reads


def build_options(
    options_type: type,
    values: Mapping[str, Any],
    mode: str,
    declared: Mapping[str, Option],
) -> Any:
    """``options_type`` filled from the run's ``values`` (the parsed command line or a resumed
    ``config.json``): each field is the given value, else its declaration's default for
    ``mode`` and the run's model."""
    model = model_name(values.get("model"))
    fields: dict[str, Any] = {}
    for name, kind in _field_types(options_type).items():
        if _embedded(kind):
            fields[name] = build_options(kind, values, mode, declared)
            continue
        option = declared[name]
        value = values.get(name)
        fields[name] = (
            option.default_for(mode, model, values) if value is None else option.restore(value)
        )
    return options_type(**fields)


def with_values(options: Any, values: Mapping[str, Any]) -> Any:
    """``options`` with the fields ``values`` names replaced, at whatever depth it holds them
    (``steps`` in its ``generation``, ``model`` in its ``run``); a name it does not hold is
    left out (a campaign point's ``sampler`` is the pipeline's business)."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        current = getattr(options, field.name)
        if dataclasses.is_dataclass(current):
            changes[field.name] = with_values(current, values)
        elif field.name in values:
            changes[field.name] = values[field.name]
    return dataclasses.replace(options, **changes)


def form_sections(
    modes: Sequence[str], reads: Mapping[str, Sequence[Option]]
) -> list[tuple[str, list[Option]]]:
    """The options of several modes, each once, under the first mode that reads it.

    ``reads`` maps each mode to the options it reads (:func:`option_reads`, as declarations).
    """
    seen: set[str] = set()
    sections = []
    for mode in modes:
        options = [o for o in reads.get(mode, ()) if o.dest not in seen]
        seen.update(o.dest for o in options)
        sections.append((mode, options))
    return sections
