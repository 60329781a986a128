"""The mode option forms, rendered from the declarations in ``diffusionscope.core.options``.

The fields are the same :class:`~diffusionscope.core.options.Option` objects the CLI is built
from, and a mode's fields are exactly the options its options type reads
(:func:`diffusionscope.core.modes.mode_options`), so the form checks a value exactly as the CLI
does, shows the default the mode will use, and values become the ``--flag value`` arguments a
shell user would type.
"""

from __future__ import annotations

from typing import Any

from ..core.options import Option, form_sections


def mode_options(mode: str) -> list[Option]:
    """The fields of ``mode``'s form: the options the mode reads."""
    return form_options([mode])[0][1]


def form_options(modes: list[str]) -> list[tuple[str, list[Option]]]:
    """The form for several modes: each option once, under the first mode that reads it."""
    from ..core.modes import available_modes
    from ..core.modes import mode_options as reads

    known = available_modes()
    return form_sections(modes, {mode: reads(mode, known) for mode in modes if mode in known})


def placeholder(option: Option, model: str | None = None) -> str:
    """What an empty field shows: what it stands for, from the option's declared values, for
    the ``model`` in the model pane (the shipped model's own N, reference, prompts ...)."""
    shown = option.shown_default_for(model)
    return shown or ("default" if option.kind == "choice" else "optional")


def build_arguments(values: dict[str, Any], specs: list[Option]) -> list[str]:
    """``--flag value`` for every field the user filled in (empty fields keep CLI defaults)."""
    argv: list[str] = []
    for spec in specs:
        argv += spec.as_arguments(values.get(spec.dest))
    return argv


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


__all__ = ["build_arguments", "form_options", "mode_options", "field_for_error", "placeholder"]
