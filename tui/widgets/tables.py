"""Filling a ``DataTable`` in one go, with column widths known before anything is drawn.

``DataTable`` measures new cells when the app is next idle, and a header drawn before that
keeps the old widths (the data rows below it are drawn at the new ones). Every table here is
rebuilt whole from text, so the widths are simply the longest text of each column, given to
``add_column`` up front: the header and the rows always line up.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable


def fill_table(
    table: DataTable,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[str | None, Sequence[Text]]],
) -> None:
    """Replace ``table``'s columns (``(key, label)``) and rows (``(key, cells)``)."""
    widths = [len(label) for _, label in columns]
    for _, cells in rows:
        for index, content in enumerate(cells):
            widths[index] = max(widths[index], content.cell_len)
    table.clear(columns=True)
    for (key, label), width in zip(columns, widths, strict=True):
        table.add_column(label, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)
