"""Browsing a run's image artifacts in the terminal with textual-image.

textual-image draws with the Kitty graphics protocol or Sixel where the terminal speaks them
and with half-cell blocks otherwise. The renderer is chosen once per app (tests pin half-cell
blocks, since probing a terminal that is not there would hang or guess).

Attention overlays come one image per word, timestep and layer; their file names carry those
coordinates (``..._word-seven_t-020_layer-up1.png``), so the ``w``/``t``/``l`` keys move along
one axis while holding the others. A key is offered only where the run's images vary along its
axis (the attention mode writes per-word and per-timestep overlays; per-layer ones appear when
a run writes files named with a ``layer`` coordinate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from ..run_model import Artifact
from ..text import literal

AXES = {
    "word": ("word", "token", "w"),
    "timestep": ("t", "step", "timestep"),
    "layer": ("layer", "l", "block"),
}
# A coordinate is ``name-value``/``name=value`` or a name glued to digits (``t020``, ``layer3``).
_TOKEN = re.compile(
    r"(?:^|[_.-])(word|token|timestep|step|layer|block|t|w|l)(?:[-=]([a-z0-9]+)|(\d+))(?=$|[_.-])"
)


def image_axes(path: str) -> dict[str, str]:
    """The word/timestep/layer coordinates a file name carries (possibly none)."""
    found: dict[str, str] = {}
    for key, named, numbered in _TOKEN.findall(Path(path).stem.lower()):
        value = named or numbered
        for axis, names in AXES.items():
            if key in names and axis not in found:
                found[axis] = value
    return found


@dataclass
class ImageEntry:
    artifact: Artifact
    axes: dict[str, str]


def image_widget_class(renderer: str) -> type[Widget]:
    """The textual-image widget for ``renderer``: auto | halfcell | unicode | sixel | tgp."""
    from textual_image import widget as image_widgets

    return {
        "auto": image_widgets.Image,
        "halfcell": image_widgets.HalfcellImage,
        "unicode": image_widgets.UnicodeImage,
        "sixel": image_widgets.SixelImage,
        "tgp": image_widgets.TGPImage,
    }[renderer]


class ImageBrowser(Vertical):
    """One image at a time, with its caption and the PNG's path under the runs root."""

    def __init__(self, renderer: str = "auto", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.renderer = renderer
        self.run_dir: Path | None = None
        self.entries: list[ImageEntry] = []
        self.index = 0

    def compose(self) -> ComposeResult:
        yield Static("no images yet", id="image-caption")
        yield image_widget_class(self.renderer)(id="image-view")
        yield Static("", id="image-path")

    def set_images(self, run_dir: Path, artifacts: list[Artifact]) -> None:
        images = [a for a in artifacts if a.is_image]
        paths = [e.artifact.path for e in self.entries]
        if [a.path for a in images] == paths and run_dir == self.run_dir:
            return
        current = self.entries[self.index].artifact.path if self.entries else None
        self.run_dir = run_dir
        self.entries = [ImageEntry(a, image_axes(a.path)) for a in images]
        self.index = next((i for i, e in enumerate(self.entries) if e.artifact.path == current), 0)
        self._show()

    @property
    def current(self) -> ImageEntry | None:
        return self.entries[self.index] if self.entries else None

    def step(self, delta: int) -> None:
        if self.entries:
            self.index = (self.index + delta) % len(self.entries)
            self._show()

    def has_axis(self, axis: str) -> bool:
        """Whether the images vary along ``axis`` (attention overlays per layer, say)."""
        return len({e.axes[axis] for e in self.entries if axis in e.axes}) > 1

    def step_axis(self, axis: str) -> bool:
        """Show the next image along ``axis`` with the other coordinates held; False if none."""
        current = self.current
        if current is None or axis not in current.axes:
            return False
        others = {k: v for k, v in current.axes.items() if k != axis}
        # The same kind of image too: from a word's map over the selected steps (no timestep
        # in its name), the next word's map over them, not one of its single steps.
        same_row = [
            i
            for i, e in enumerate(self.entries)
            if set(e.axes) == set(current.axes) and {k: e.axes[k] for k in others} == others
        ]
        if len(same_row) < 2:
            return False
        position = same_row.index(self.index) if self.index in same_row else -1
        self.index = same_row[(position + 1) % len(same_row)]
        self._show()
        return True

    def _show(self) -> None:
        caption = self.query_one("#image-caption", Static)
        view = self.query_one("#image-view")
        path = self.query_one("#image-path", Static)
        entry = self.current
        if entry is None or self.run_dir is None:
            caption.update("no images yet")
            view.image = None  # type: ignore[attr-defined]
            path.update("")
            return
        where = " ".join(f"{k}={v}" for k, v in entry.axes.items())
        counter = f"[{self.index + 1}/{len(self.entries)}]"
        title = entry.artifact.caption or Path(entry.artifact.path).name
        caption.update(
            literal(f"{counter} {title}" + (f"  ({where})" if where else ""), one_line=True)
        )
        full = self.run_dir / entry.artifact.path
        view.image = str(full) if full.is_file() else None  # type: ignore[attr-defined]
        path.update(literal(f"PNG: {self.run_dir.name}/{entry.artifact.path}", one_line=True))
