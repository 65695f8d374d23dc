"""The report's four kinds of chart, written as SVG text: stacked columns, a line, bars.

A plotting library took about a second per run to import and draw, most of a small import's
time, for charts this plain. These are drawn straight from the numbers: every shape carries a
``<title>`` with its exact value (shown on hover), and the same input gives the same text.
"""

from __future__ import annotations

import html
import math

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
           "#bab0ac")
FONT = "font-family='sans-serif' font-size='11'"
CHAR_WIDTH = 7.2  # at most about how wide one character of the labels is, in pixels
LEFT, TOP, BOTTOM = 60, 10, 24  # margins around a plot, in pixels
MAX_COLUMN = 48  # the widest a column is drawn, in pixels, however few there are


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high``: steps of 1, 2 or 5 times a power of ten,
    and never under 1, since every chart here counts things or shows a percentage."""
    if high <= 0:
        return [0, 1]
    raw = max(high / count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def stacked_columns(categories: list[str], series: dict[str, list[float]], y_label: str, width: int = 900,
                    height: int = 300) -> str:
    """A column per category, each stacked from the series in order, with a legend at the right."""
    legend_width = 20 + int(CHAR_WIDTH * max((len(name) for name in series), default=0))
    plot = _Plot(width - legend_width, height, max(_column_totals(categories, series), default=0), y_label)
    slot = plot.width / max(len(categories), 1)
    shapes = []
    for i, category in enumerate(categories):
        base = 0.0
        for k, (name, values) in enumerate(series.items()):
            value = values[i]
            if value:
                top = plot.y(base + value)
                shapes.append(_rect(plot.column_x(i, slot), top, plot.column_width(slot), plot.y(base) - top,
                                    PALETTE[k % len(PALETTE)], f"{category} {name}: {_number(value)}"))
            base += value
    legend = [f"<rect x='{width - legend_width + 4}' y='{TOP + 14 * k}' width='10' height='10' "
              f"fill='{PALETTE[k % len(PALETTE)]}'/><text x='{width - legend_width + 18}' y='{TOP + 14 * k + 9}' "
              f"{FONT}>{_e(name)}</text>" for k, name in enumerate(series)]
    return _svg(width, height, plot.axes() + shapes + plot.x_labels(categories, slot) + legend)


def line(categories: list[str], values: list[float], y_label: str, y_max: float | None = None, width: int = 900,
         height: int = 260) -> str:
    """A line through one value per category, with a dot on each value."""
    plot = _Plot(width, height, y_max if y_max is not None else max(values, default=0), y_label)
    slot = plot.width / max(len(categories), 1)
    points = [(plot.x0 + (i + 0.5) * slot, plot.y(v)) for i, v in enumerate(values)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    shapes = [f"<path d='{path}' fill='none' stroke='{PALETTE[0]}' stroke-width='1.5'/>"] if points else []
    shapes += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{PALETTE[0]}'><title>{_e(c)}: {_number(v)}"
               f"</title></circle>" for c, v, (x, y) in zip(categories, values, points, strict=True)]
    return _svg(width, height, plot.axes() + shapes + plot.x_labels(categories, slot))


def columns(categories: list[str], values: list[float], y_label: str, color: str = PALETTE[1], width: int = 900,
            height: int = 260) -> str:
    """A column per category."""
    plot = _Plot(width, height, max(values, default=0), y_label)
    slot = plot.width / max(len(categories), 1)
    shapes = [_rect(plot.column_x(i, slot), plot.y(v), plot.column_width(slot), plot.y(0) - plot.y(v), color,
                    f"{c}: {_number(v)}") for i, (c, v) in enumerate(zip(categories, values, strict=True))]
    return _svg(width, height, plot.axes() + shapes + plot.x_labels(categories, slot))


def bars(pairs: list[tuple], x_label: str, width: int = 800, color: str = PALETTE[0]) -> str:
    """A horizontal bar per (label, value) pair, top to bottom in the given order."""
    labels = [str(k)[:48] for k, _ in pairs]
    left = 10 + int(CHAR_WIDTH * max((len(label) for label in labels), default=0))
    row, top = 20, TOP
    height = top + row * len(pairs) + 34
    high = nice_ticks(max((v for _, v in pairs), default=0))[-1]
    scale = (width - left - 20) / high
    shapes = []
    for i, (label, (_, value)) in enumerate(zip(labels, pairs, strict=True)):
        y = top + i * row
        shapes.append(f"<text x='{left - 6}' y='{y + 14}' text-anchor='end' {FONT}>{_e(label)}</text>")
        shapes.append(_rect(left, y + 3, value * scale, row - 6, color, f"{label}: {_number(value)}"))
    axis_y = top + row * len(pairs)
    shapes.append(f"<line x1='{left}' y1='{axis_y}' x2='{width - 20}' y2='{axis_y}' stroke='#888'/>")
    for tick in nice_ticks(high):
        x = left + tick * scale
        shapes.append(f"<text x='{x:.1f}' y='{axis_y + 14}' text-anchor='middle' {FONT}>{_number(tick)}</text>")
    shapes.append(f"<text x='{(left + width - 20) / 2:.0f}' y='{height - 4}' text-anchor='middle' {FONT}>"
                  f"{_e(x_label)}</text>")
    return _svg(width, height, shapes)


class _Plot:
    """The frame of a vertical chart: its y scale, axes, grid lines and x labels."""

    def __init__(self, width: int, height: int, high: float, y_label: str):
        self.ticks = nice_ticks(high)
        self.x0, self.x1 = LEFT, width - 10
        self.y0, self.y1 = height - BOTTOM - 40, TOP  # the x labels stand below, turned
        self.width = self.x1 - self.x0
        self.height = height
        self.y_label = y_label

    def y(self, value: float) -> float:
        return self.y0 - (self.y0 - self.y1) * value / self.ticks[-1]

    def column_width(self, slot: float) -> float:
        return min(slot * 0.85, MAX_COLUMN)

    def column_x(self, i: int, slot: float) -> float:
        """Where column ``i`` starts: centred in its slot."""
        return self.x0 + (i + 0.5) * slot - self.column_width(slot) / 2

    def axes(self) -> list[str]:
        out = []
        for tick in self.ticks:
            y = self.y(tick)
            out.append(f"<line x1='{self.x0}' y1='{y:.1f}' x2='{self.x1}' y2='{y:.1f}' stroke='#e5e5e5'/>")
            out.append(f"<text x='{self.x0 - 4}' y='{y + 4:.1f}' text-anchor='end' {FONT}>{_number(tick)}</text>")
        out.append(f"<line x1='{self.x0}' y1='{self.y0}' x2='{self.x1}' y2='{self.y0}' stroke='#888'/>")
        middle = (self.y0 + self.y1) / 2
        out.append(f"<text transform='translate(12,{middle:.0f}) rotate(-90)' text-anchor='middle' {FONT}>"
                   f"{_e(self.y_label)}</text>")
        return out

    def x_labels(self, categories: list[str], slot: float) -> list[str]:
        """Turned labels under the columns; about twenty at most, evenly spaced."""
        step = max(len(categories) // 20, 1)
        return [f"<text transform='translate({self.x0 + (i + 0.5) * slot + 4:.1f},{self.y0 + 6}) rotate(-90)' "
                f"text-anchor='end' {FONT}>{_e(str(categories[i]))}</text>" for i in range(0, len(categories), step)]


def _column_totals(categories: list[str], series: dict[str, list[float]]) -> list[float]:
    return [sum(values[i] for values in series.values()) for i in range(len(categories))]


def _rect(x: float, y: float, width: float, height: float, color: str, title: str) -> str:
    return (f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(width, 0):.1f}' height='{max(height, 0):.1f}' "
            f"fill='{color}'><title>{_e(title)}</title></rect>")


def _svg(width: int, height: int, body: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' "
            f"height='{height}' role='img'>{''.join(body)}</svg>")


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
