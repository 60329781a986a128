"""The mode option forms, rendered from the declarations in ``diffusionscope.core.options``.

The fields are the same :class:`~diffusionscope.core.options.Option` objects the CLI is built
from (the shared generation options with the modes that read them, then each mode's own
``OPTIONS``), so a mode that declares an option gets a field for it, the form checks a value
exactly as the CLI does, and values become the ``--flag value`` arguments a shell user would type.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import InputError
from ..core.options import Option, form_sections

#: A form field is an option declaration; the name stays for the screens that use it.
OptionSpec = Option


def _mode_modules() -> dict[str, Any]:
    from ..core.modes import available_modes

    return available_modes()


def mode_options(mode: str) -> list[Option]:
    """The fields of ``mode``'s form: the shared options it reads, then its own."""
    return form_options([mode])[0][1]


def form_options(modes: list[str]) -> list[tuple[str, list[Option]]]:
    """The form for several modes: each option once, under the first mode that uses it."""
    known = _mode_modules()
    own = {mode: tuple(getattr(known.get(mode), "OPTIONS", ())) for mode in modes}
    return form_sections(modes, own)


def build_arguments(values: dict[str, Any], specs: list[Option]) -> list[str]:
    """``--flag value`` for every field the user filled in (empty fields keep CLI defaults)."""
    argv: list[str] = []
    for spec in specs:
        argv += spec.as_arguments(values.get(spec.dest))
    return argv


def validate_arguments(argv: list[str]) -> None:
    """The CLI's own validation of a run's arguments, without running anything.

    Raises :class:`InputError` exactly as ``diffusionscope run`` would. Slow the first time
    (device checks import torch): call it from a worker.
    """
    from ..core.cli import build_parser, validate_run_args

    args = build_parser().parse_args(["run", *argv])
    validate_run_args(args)


def field_for_error(message: str, specs: list[Option]) -> str | None:
    """The form field an :class:`InputError` message is about (it starts with the flag)."""
    head = message.split(":", 1)[0].strip().split()[0] if message.strip() else ""
    for spec in specs:
        if head == spec.flag:
            return spec.dest
    for spec in specs:
        if spec.flag in message:
            return spec.dest
    return None


__all__ = [
    "InputError",
    "OptionSpec",
    "build_arguments",
    "form_options",
    "mode_options",
    "validate_arguments",
    "field_for_error",
]
