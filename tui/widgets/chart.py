"""A plotext line chart of named curves, redrawn only when its data changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual_plotext import PlotextPlot

from ...core.text import one_line
from ..curves import Curve, finite

#: plotext colour names, cycled over the lines of one chart.
LINE_COLORS = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")


class CurveChart(PlotextPlot):
    """Lines over a shared x axis; names in ``right`` use the right-hand y axis."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.curves: dict[str, Curve] = {}
        self.placeholder = "no data yet"

    def show(
        self,
        curves: Mapping[str, Curve],
        *,
        title: str = "",
        xlabel: str = "",
        ylabel: str = "",
        right: Sequence[str] = (),
        logy: bool = False,
    ) -> None:
        self.curves = {name: finite(points) for name, points in curves.items()}
        # plotext's output is read back as ANSI text: nothing user-named may carry escapes.
        title, xlabel, ylabel = (one_line(t) for t in (title, xlabel, ylabel))
        plt = self.plt
        plt.clear_figure()
        plt.title(title)
        if xlabel:
            plt.xlabel(xlabel)
        if ylabel:
            plt.ylabel(ylabel)
        drawn = 0
        for index, (name, points) in enumerate(self.curves.items()):
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            side = "right" if name in right else "left"
            marker = "braille" if len(points) > 40 else "hd"
            color = LINE_COLORS[index % len(LINE_COLORS)]
            plt.plot(
                list(xs), list(ys), label=one_line(name), yside=side, marker=marker, color=color
            )
            drawn += 1
        if logy and drawn:
            plt.yscale("log")
        if not drawn:
            plt.title(f"{title}  ({self.placeholder})" if title else self.placeholder)
        self.refresh()
