"""The mode option forms, described by the headless CLI's own parser.

The form fields are read from ``core.cli.build_parser()`` rather than written out again, so a
mode that adds an option gets a field for it, and the TUI can never offer an option the CLI
would refuse. Values become the same ``--flag value`` arguments a shell user would type.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from diffusionscope.core.errors import InputError

SHARED_GROUP = "generation (shared by modes)"

#: The shared generation options each mode reads (the CLI defines them once for all modes).
SHARED_OPTIONS: dict[str, tuple[str, ...]] = {
    "metrics": (
        "num_samples",
        "reference",
        "prompts_file",
        "batch_size",
        "steps",
        "guidance_scale",
        "features",
    ),  # fmt: skip
    "schedule": (),
    "attention": ("prompt", "steps", "guidance_scale"),
    "latent": ("prompt", "steps", "reference"),
}


@dataclass(frozen=True)
class OptionSpec:
    """One form field: a CLI option of a mode or a shared option a mode uses."""

    dest: str
    flag: str
    help: str
    default: Any
    kind: str  # "text" | "int" | "float" | "bool" | "choice"
    choices: tuple[str, ...] = ()
    convert: Any = None

    @property
    def label(self) -> str:
        return self.flag.lstrip("-")

    def check(self, text: str) -> str | None:
        """The one-line complaint about ``text`` (as the CLI would word it), or None."""
        text = text.strip()
        if not text or self.kind in ("text", "bool"):
            return None
        if self.kind == "choice":
            return (
                None
                if text in self.choices
                else f"{self.flag}: choose one of {', '.join(self.choices)}"
            )
        try:
            value = self.convert(text) if self.convert else text
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            detail = (
                str(error)
                if isinstance(error, argparse.ArgumentTypeError)
                else f"invalid value {text!r}"
            )
            return f"{self.flag}: {detail}"
        if self.dest == "num_samples" and isinstance(value, int) and value <= 0:
            return f"{self.flag}: must be positive, got {value}"
        return None


def _kind(action: argparse.Action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "bool"
    if action.choices:
        return "choice"
    if action.type is int or getattr(action.type, "__name__", "") == "_positive_int":
        return "int"
    if action.type is float:
        return "float"
    return "text"


def _spec(action: argparse.Action) -> OptionSpec:
    flag = max(action.option_strings, key=len)
    kind = _kind(action)
    return OptionSpec(
        dest=action.dest,
        flag=flag,
        help=(action.help or "").replace("%%", "%"),
        default=None if action.default is argparse.SUPPRESS else action.default,
        kind=kind,
        choices=tuple(str(c) for c in action.choices or ()),
        convert=action.type if kind in ("int", "float") else None,
    )


@lru_cache(maxsize=1)
def _run_groups() -> dict[str, list[OptionSpec]]:
    from diffusionscope.core.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = subparsers.choices["run"]
    groups: dict[str, list[OptionSpec]] = {}
    for group in run._action_groups:
        specs = [_spec(a) for a in group._group_actions if a.option_strings]
        groups[group.title or ""] = specs
    return groups


def mode_options(mode: str) -> list[OptionSpec]:
    """The fields of ``mode``'s form: the shared options it reads, then its own."""
    groups = _run_groups()
    shared = {spec.dest: spec for spec in groups.get(SHARED_GROUP, [])}
    specs = [shared[dest] for dest in SHARED_OPTIONS.get(mode, ()) if dest in shared]
    return specs + list(groups.get(f"{mode} mode", []))


def form_options(modes: list[str]) -> list[tuple[str, list[OptionSpec]]]:
    """The form for several modes: each option once, under the first mode that uses it."""
    seen: set[str] = set()
    sections = []
    for mode in modes:
        specs = [s for s in mode_options(mode) if s.dest not in seen]
        seen.update(s.dest for s in specs)
        sections.append((mode, specs))
    return sections


def build_arguments(values: dict[str, Any], specs: list[OptionSpec]) -> list[str]:
    """``--flag value`` for every field the user filled in (empty fields keep CLI defaults)."""
    argv: list[str] = []
    for spec in specs:
        value = values.get(spec.dest)
        if spec.kind == "bool":
            if value:
                argv.append(spec.flag)
            continue
        if value is None or str(value).strip() == "":
            continue
        argv += [spec.flag, str(value).strip()]
    return argv


def validate_arguments(argv: list[str]) -> None:
    """The CLI's own validation of a run's arguments, without running anything.

    Raises :class:`InputError` exactly as ``diffusionscope run`` would. Slow the first time
    (device checks import torch): call it from a worker.
    """
    from diffusionscope.core.cli import build_parser, validate_run_args

    args = build_parser().parse_args(["run", *argv])
    validate_run_args(args)


def field_for_error(message: str, specs: list[OptionSpec]) -> str | None:
    """The form field an :class:`InputError` message is about (it starts with the flag)."""
    head = message.split(":", 1)[0].strip().split()[0] if message.strip() else ""
    for spec in specs:
        if head == spec.flag:
            return spec.dest
    for spec in specs:
        if spec.flag in message:
            return spec.dest
    return None


__all__ = ["InputError", "OptionSpec", "build_arguments", "form_options", "mode_options",
           "validate_arguments", "field_for_error"]  # fmt: skip
