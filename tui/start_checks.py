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


def expects_path(spec: Any) -> tuple[bool, bool] | None:
    """``(folder, file)``: what a path option accepts, from its declared kind (``path``, and
    what it names: :data:`~diffusionscope.core.options.PATH_KINDS`); None for another kind."""
    if spec.kind != "path":
        return None
    return "folder" in spec.path, "file" in spec.path or "npz" in spec.path


def path_problem(spec: Any, value: str) -> str | None:
    """What is wrong with the path typed into a path option, checked as it is typed (exists,
    readable, a folder or a file as the option wants, ``.npz`` where statistics are meant)."""
    import os
    from pathlib import Path

    wants = expects_path(spec)
    text = value.strip()
    if wants is None or not text:
        return None
    folder, file = wants
    path = Path(text).expanduser()
    if not path.exists():
        return f"{spec.flag} {text}: no such {'folder' if folder and not file else 'file'}"
    if not os.access(path, os.R_OK):
        return f"{spec.flag} {text}: cannot be read (permissions)"
    if path.is_dir() and not folder:
        return f"{spec.flag} {text}: a folder; a file is expected"
    if path.is_file() and not file:
        return f"{spec.flag} {text}: a file; a folder is expected"
    if path.is_file() and "npz" in spec.path and path.suffix.lower() != ".npz":
        return f"{spec.flag} {text}: expected a folder or a .npz statistics file"
    return None
