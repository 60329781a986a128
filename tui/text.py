"""User-supplied strings as widgets show them: literally, never as Textual markup.

A run name, model path, prompt or status message may contain ``[/b]``, ``[/INST]`` or
``[bold red]x[/]``. Passed to a widget as a ``str`` it would be parsed as markup (restyling the
screen, or raising ``MarkupError`` on a stray closing tag), so such strings are wrapped here:
:func:`literal` for Textual widgets (``Static``, ``Label``, options), :func:`cell` for
``DataTable`` cells, :func:`styled` to combine literal parts with the app's own styles.
Terminal escape sequences are stripped on the way (:func:`diffusionscope.core.printable.printable`).
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from diffusionscope.core.printable import printable


def literal(text: object, *, one_line: bool = False) -> Content:
    """Content showing ``text`` exactly (less any escape sequences)."""
    return Content(printable(text, one_line=one_line))


def cell(text: object) -> Text:
    """A ``DataTable`` cell showing ``text`` exactly."""
    return Text(printable(text, one_line=True))


def styled(*parts: str | tuple[str, str]) -> Content:
    """Literal parts, some with a style of ours: ``styled((name, "bold"), "  ", state)``."""
    pieces: list[str | tuple[str, str]] = []
    for part in parts:
        if isinstance(part, tuple):
            pieces.append((printable(part[0]), part[1]))
        else:
            pieces.append(printable(part))
    return Content.assemble(*pieces)


def short_model(model: str, limit: int = 40) -> str:
    """How a model is named in a crowded line: a local path by its last part, a hub id whole
    (``org/name`` is its name), anything long by its end."""
    from pathlib import Path

    text = str(model)
    path = Path(text).expanduser()
    if text.startswith(("/", ".", "~")) or path.exists():
        text = path.name or text
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
