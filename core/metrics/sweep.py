"""What a campaign measures: ``--sweep NAME=V1,V2,...`` axes, their grid, and the checkpoints
of ``--sweep model=...``, all checked before the run directory exists.

Which options may be swept is the ``sweepable`` mark of their declaration
(:class:`diffusionscope.core.options.Option`): the options that change the images but not the
reference they are measured against. Values are parsed by the option's own declaration, so
``--sweep steps=0`` is refused as ``--steps 0`` is. Several ``--sweep`` flags make a grid,
visited in declared order (the first axis changes slowest). ``model=DIR/*`` expands a glob in
name order; every checkpoint must be of one family, which its configs say.

Torch-free: it runs in the CLI's checks.
"""

from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..options import Option

MAX_POINTS = 1000  # a larger grid needs --yes


def declared_options() -> dict[str, Option]:
    """Every option of ``run``, by destination, from the declarations."""
    from ..modes import declared_options as declared

    return declared()


def sweepable_names() -> list[str]:
    return [option.label for option in declared_options().values() if option.sweepable]


@dataclass(frozen=True)
class Axis:
    """One swept option and its values, each of the option's declared kind."""

    name: str  # the option's destination (``guidance_scale``)
    values: tuple[Any, ...]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def spelled(self) -> str:
        """The axis as ``--sweep`` takes it (checkpoint globs expanded)."""
        return f"{self.name.replace('_', '-')}={','.join(str(v) for v in self.values)}"


def parse_axis(text: str, options: dict[str, Option] | None = None) -> Axis:
    """``NAME=V1,V2,...`` as an axis; one line naming what is wrong otherwise."""
    options = options if options is not None else declared_options()
    name, equals, values_text = str(text).partition("=")
    dest = name.strip().removeprefix("--").replace("-", "_")
    if not equals or not dest:
        raise InputError(f"--sweep {text!r}: expected NAME=V1,V2,... (e.g. guidance-scale=1,3)")
    option = options.get(dest)
    if option is None or not option.sweepable:
        raise InputError(
            f"--sweep {name.strip()}: not an option a sweep can vary (sweepable: "
            f"{', '.join(sweepable_names())})"
        )
    words = [word.strip() for word in values_text.split(",")]
    if not any(words):
        raise InputError(f"--sweep {option.label}: no values (give V1,V2,...)")
    if not all(words):
        raise InputError(f"--sweep {option.label}: an empty value in {values_text!r}")
    if dest == "model":
        words = expand_checkpoints(words)
    values = tuple(option.convert(word) for word in words)
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise InputError(f"--sweep {option.label}: {', '.join(repeated)} given more than once")
    return Axis(dest, values)


def expand_checkpoints(words: list[str]) -> list[str]:
    """Checkpoint values with any glob (``DIR/*``) expanded in name order."""
    found: list[str] = []
    for word in words:
        if glob.has_magic(word):
            matches = sorted(glob.glob(str(Path(word).expanduser())))
            if not matches:
                raise InputError(f"--sweep model={word}: no checkpoint matches")
            found += matches
        else:
            found.append(word)
    return found


@dataclass(frozen=True)
class Plan:
    """The axes and the grid of points they make, in visiting order."""

    axes: tuple[Axis, ...]

    @property
    def points(self) -> list[dict[str, Any]]:
        names = [axis.name for axis in self.axes]
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(axis.values for axis in self.axes))
        ]

    @property
    def size(self) -> int:
        count = 1
        for axis in self.axes:
            count *= len(axis.values)
        return count

    def to_json(self) -> dict[str, list[Any]]:
        return {axis.name: list(axis.values) for axis in self.axes}


def plan_from_args(args: Any) -> Plan | None:
    """The campaign ``--sweep`` asks for, or None for a single run (no model checks)."""
    texts = getattr(args, "sweep", None) or []
    if not texts:
        return None
    options = declared_options()
    axes = [parse_axis(text, options) for text in texts]
    names = [axis.name for axis in axes]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"--sweep {twice[0].replace('_', '-')}: swept by two --sweep flags")
    return Plan(tuple(axes))


def check_plan(args: Any) -> Plan | None:
    """Everything about the campaign checked before anything is written (the metrics mode's
    options); ``--sweep`` is read with checkpoint globs expanded already (:func:`spelled_axis`,
    its declaration's parse), so ``config.json`` (and ``--resume``) holds the exact points."""
    plan = plan_from_args(args)
    watch = getattr(args, "watch", None)
    if plan is None and not watch:
        return None
    if getattr(args, "generated", None):
        flag = "--sweep" if plan else "--watch"
        raise InputError(f"{flag}: samples the model at each point; --generated reads a folder")
    if watch and plan is not None:
        raise InputError("--watch: evaluates each new checkpoint as it is; give no --sweep")
    if plan is not None and plan.size > MAX_POINTS and not getattr(args, "yes", False):
        raise InputError(
            f"--sweep: the grid has {plan.size} points (over {MAX_POINTS}); add --yes to run it"
        )
    if watch:
        check_watch_folder(watch)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError(
                "--watch: runs in one process (each process would find new checkpoints at its "
                "own moment); a --sweep over the checkpoints runs on several"
            )
        return None
    models = next((axis.values for axis in plan.axes if axis.name == "model"), None)
    if models:
        check_one_family(models, args.run.single_file_config, args.run.allow_pickle)
    return plan


def spelled_axis(text: str) -> str:
    """A ``--sweep`` value as the run keeps it: checked, its values as the option reads them
    and its checkpoint globs expanded (the declaration's parse)."""
    return parse_axis(text).spelled()


def check_watch_folder(folder: str) -> None:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"--watch {folder}: no such folder")


def family_key(source: str, single_file_config: str | None) -> tuple[str, str]:
    """What makes two checkpoints comparable: the pipeline class and its denoiser's class,
    as the configs say."""
    from ..families import read_model_configs

    configs = read_model_configs(source, single_file_config)
    denoiser = configs.components.get(configs.denoiser or "", ("", ""))[1]
    return configs.pipeline_class, denoiser


def check_checkpoint(
    source: str, single_file_config: str | None, allow_pickle: bool
) -> tuple[str, str]:
    """A checkpoint's whole weights files and its family key; one line if either fails."""
    from ..loading import check_model_weights, classify_source

    kind = classify_source(source)
    if kind == "single_file" and Path(source).suffix.lower() != ".safetensors" and not allow_pickle:
        raise InputError(
            f"--sweep model={source}: a pickle checkpoint; convert to .safetensors or pass "
            "--allow-pickle"
        )
    if kind not in ("folder", "single_file", "hub"):
        raise InputError(f"--sweep model={source}: not a pipeline checkpoint")
    if kind != "hub":
        check_model_weights(source)
    key = family_key(source, single_file_config)
    if not key[0]:
        raise InputError(
            f"--sweep model={source}: its configs do not name a pipeline (a single file needs "
            "--single-file-config)"
        )
    return key


def check_one_family(
    sources: tuple[str, ...], single_file_config: str | None, allow_pickle: bool
) -> None:
    """Every checkpoint exists, is whole, and is of the first one's family."""
    first = None
    for source in sources:
        key = check_checkpoint(source, single_file_config, allow_pickle)
        if first is None:
            first = (source, key)
        elif key != first[1]:
            raise InputError(
                f"--sweep model={source}: a {key[0]} ({key[1]}) checkpoint, not of the family of "
                f"{first[0]} ({first[1][0]}, {first[1][1]})"
            )


def point_label(settings: dict[str, Any]) -> str:
    """A point's settings in words: ``guidance-scale=3.0``; a checkpoint by its name."""
    parts = []
    for name, value in settings.items():
        shown = Path(str(value)).name or str(value) if name == "model" else value
        parts.append(f"{name.replace('_', '-')}={shown}")
    return ", ".join(parts) or "the run's settings"
