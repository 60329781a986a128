"""What the form checks before it starts a run: only what needs no torch.

The workbench process never imports torch (quitting it would take seconds, and the first check
would take tens of seconds on a busy host). So Start checks the options' syntax, the modes and
what kind of model ``--model`` names -- all instant -- and the run process checks everything
else before it writes anything (devices, reference folders, prompt files). A refusal from the
run process is one line on its stderr; the form puts it under the field it is about, which is
what :func:`error_field` and :func:`is_model_error` find from the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: How a refusal about the model starts (the CLI's and the loader's own wording).
MODEL_ERROR_HEADS = (
    "model",
    "--model",
    "weights",
    "--single-file-config",
    "--allow-pickle",
    "model_index.json",
)


def quick_check(argv: Sequence[str]) -> None:
    """Raise :class:`~diffusionscope.core.errors.InputError` for what is wrong on its face."""
    from ..core.cli import build_parser, parse_modes
    from ..core.loading import classify_source

    args = build_parser().parse_args(["run", *argv])
    parse_modes(args.modes)
    if args.model is not None:
        classify_source(args.model)


def _head(message: str) -> str:
    return message.split(":", 1)[0].strip().lower()


def is_model_error(message: str) -> bool:
    return _head(message).startswith(MODEL_ERROR_HEADS)


def error_field(message: str, specs: Sequence[Any]) -> str | None:
    """The field a refusal names in words rather than by flag (``reference folder 2: no such
    folder``, ``prompts file p.txt: not UTF-8``): the longest option name the line starts with."""
    head = _head(message)
    best: tuple[int, str] | None = None
    for spec in specs:
        names = {spec.dest.replace("_", " "), spec.flag.lstrip("-").replace("-", " ")}
        for name in names:
            named = head == name or head.startswith(name + " ")
            if named and (best is None or len(name) > best[0]):
                best = (len(name), spec.dest)
    return best[1] if best else None
