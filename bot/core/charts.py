"""Charts as PNG: submission progress per branch, and satisfaction per evaluation item.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global figure state, so
two updates can draw at once in threads). Chinese text needs a font with CJK glyphs: Noto
Sans CJK SC, which the `mplfonts` package installs with the project, unless the CHART_FONT
setting names another font file.
"""

import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is loaded with the first chart: it costs 27 MB and 2 s
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

WIDTH_INCHES = 8.0
DPI = 100
BAR_INCHES = 0.42  # height per bar row
MAX_ROWS = 40  # more rows than this and the chart shows the first ones (the workbook has all)


@dataclass(frozen=True)
class Bar:
    """One labelled row of a chart: a share from 0 to 1 per series (None: not applicable)."""

    label: str
    shares: tuple[float | None, ...]


@cache
def font(path: str | None = None) -> "FontProperties":
    """The CJK font every chart's text is set in: the given file, or Noto Sans CJK SC."""
    from matplotlib import font_manager

    path = path or str(resources.files("mplfonts") / "fonts" / "NotoSansCJKsc-Regular.otf")
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path)


def bar_chart(title: str, series: tuple[str, ...], bars: list[Bar], **options) -> bytes:
    """`bar_figure` (the same arguments) as PNG."""
    figure = bar_figure(title, series, bars, **options)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def bar_figure(
    title: str,
    series: tuple[str, ...],
    bars: list[Bar],
    *,
    flag_below: float | None = None,
    flag_label: str | None = None,
    font_path: str | None = None,
) -> "Figure":
    """Horizontal bars in percent, one group per label; a dashed line at `flag_below`,
    named `flag_label` in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bars = bars[:MAX_ROWS]
    properties = font(font_path)
    rows = max(len(bars), 1)
    height = 1.2 + BAR_INCHES * rows * max(len(series), 1) ** 0.5
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    thickness = 0.8 / max(len(series), 1)
    for index, name in enumerate(series):
        positions = [row + index * thickness for row in range(len(bars))]
        values = [(bar.shares[index] or 0) * 100 for bar in bars]
        axes.barh(positions, values, height=thickness, label=name)
        for position, bar, value in zip(positions, bars, values, strict=True):
            if bar.shares[index] is not None:
                axes.text(value + 1, position, f"{value:.0f}%", va="center", fontsize=8)
    middle = thickness * (len(series) - 1) / 2
    axes.set_yticks([row + middle for row in range(len(bars))])
    axes.set_yticklabels([bar.label for bar in bars], fontproperties=properties)
    axes.invert_yaxis()
    axes.set_xlim(0, 110)
    axes.set_xticks(range(0, 101, 20))
    axes.set_xticklabels([f"{tick}%" for tick in range(0, 101, 20)])
    if flag_below is not None:
        axes.axvline(
            flag_below * 100, color="#c0392b", linestyle="--", linewidth=1, label=flag_label
        )
    axes.set_title(title, fontproperties=properties, fontsize=13)
    if len(series) > 1 or flag_label:
        axes.legend(prop=properties, loc="lower right")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return figure
