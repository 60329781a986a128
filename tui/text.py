"""User-supplied strings as widgets show them: literally, never as Textual markup.

A run name, model path, prompt or status message may contain ``[/b]``, ``[/INST]`` or
``[bold red]x[/]``. Passed to a widget as a ``str`` it would be parsed as markup (restyling the
screen, or raising ``MarkupError`` on a stray closing tag), so such strings are wrapped here:
:func:`literal` for Textual widgets (``Static``, ``Label``, options), :func:`cell` for
``DataTable`` cells, :func:`styled` to combine literal parts with the app's own styles.
Terminal escape sequences are stripped on the way (:func:`diffusionscope.core.text.printable`).
"""

from __future__ import annotations

import functools

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.text import Text
from textual.content import Content

from ..core.text import printable


def folded(text: object) -> str:
    """:func:`printable`, its lines joined by spaces (spacing within a line kept as it is)."""
    return " ".join(printable(text).splitlines())


def literal(text: object, *, one_line: bool = False) -> Content:
    """Content showing ``text`` exactly (less any escape sequences; line breaks folded into
    spaces with ``one_line``)."""
    return Content(folded(text) if one_line else printable(text))


class Cell(Text):
    """One line of literal text whose width is measured once, by its characters.

    ``DataTable`` measures every cell of every new row (to size its columns); Rich's general
    measurement of a ``Text`` splits it into lines and words, which for a thousand-row runs
    list costs most of a second. A cell is one line, so its width is simply its length.
    """

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.cell_len
        return Measurement(width, width)


def cell(text: object) -> Text:
    """A ``DataTable`` cell showing ``text`` exactly."""
    return Cell(folded(text), no_wrap=True)


def styled(*parts: str | tuple[str, str]) -> Content:
    """Literal parts, some with a style of ours: ``styled((name, "bold"), "  ", state)``."""
    pieces: list[str | tuple[str, str]] = []
    for part in parts:
        if isinstance(part, tuple):
            pieces.append((printable(part[0]), part[1]))
        else:
            pieces.append(printable(part))
    return Content.assemble(*pieces)


@functools.lru_cache(maxsize=1024)
def short_model(model: str, limit: int = 40) -> str:
    """How a model is named in a crowded line: a local path by its last part, a hub id whole
    (``org/name`` is its name), anything long by its end."""
    from pathlib import Path

    text = str(model)
    path = Path(text).expanduser()
    if text.startswith(("/", ".", "~")) or path.exists():
        text = path.name or text
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
