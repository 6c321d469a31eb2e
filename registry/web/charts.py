"""Bar charts drawn on the server as inline SVG: no script, no inline style, no CDN.

Every bar is a ``<g class="bar">`` carrying ``data-label``, ``data-series`` and ``data-value``,
with its value written above it and a ``<title>`` for the tooltip, so the chart can be read
by people, screen readers (``role="img"`` plus the data table the page shows) and tests.
Colours come from the stylesheet through the series' CSS class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

HEIGHT = 240
TOP = 24
BOTTOM = 56
LEFT = 44
RIGHT = 12
BAR_WIDTH = 16
BAR_GAP = 2
GROUP_GAP = 14
MIN_WIDTH = 320
TICKS = 4


@dataclass(frozen=True)
class Series:
    """One kind of bar: its key in the data, its (translated) label and its CSS class."""

    key: str
    label: str
    css: str


def nice_maximum(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 or 10 times a power of 10)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * power
        if top >= value:
            return int(math.ceil(top))
    return int(10 * power)


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _bar(x: float, value: int, maximum: int, series: Series, category: str) -> str:
    plot = HEIGHT - TOP - BOTTOM
    height = plot * value / maximum if maximum else 0
    y = TOP + plot - height
    tip = f"{category} · {series.label}: {value}"
    return (
        f'<g class="bar" data-label="{_attr(category)}" data-series="{_attr(series.key)}" '
        f'data-value="{value}">'
        f'<rect class="series-{_attr(series.css)}" x="{x:.1f}" y="{y:.1f}" '
        f'width="{BAR_WIDTH}" height="{height:.1f}"><title>{_attr(tip)}</title></rect>'
        f'<text class="bar-value" x="{x + BAR_WIDTH / 2:.1f}" y="{y - 3:.1f}" '
        f'text-anchor="middle">{value}</text></g>'
    )


def _axis(width: int, maximum: int) -> list[str]:
    plot = HEIGHT - TOP - BOTTOM
    parts = []
    for tick in range(TICKS + 1):
        value = maximum * tick / TICKS
        y = TOP + plot - plot * tick / TICKS
        label = f"{value:g}" if value != int(value) else str(int(value))
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    return parts


def _category_label(x: float, category: str, rotate: bool) -> str:
    y = HEIGHT - BOTTOM + 16
    transform = f' transform="rotate(-40 {x:.1f} {y})"' if rotate else ""
    anchor = "end" if rotate else "middle"
    return (
        f'<text class="category" x="{x:.1f}" y="{y}" text-anchor="{anchor}"{transform}>'
        f"{_attr(category)}</text>"
    )


def bar_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    values: Mapping[tuple[str, str], int],
) -> Markup:
    """A grouped vertical bar chart: one group per category, one bar per series."""
    group = len(series) * (BAR_WIDTH + BAR_GAP) - BAR_GAP
    width = max(MIN_WIDTH, LEFT + RIGHT + len(categories) * (group + GROUP_GAP) + GROUP_GAP)
    maximum = nice_maximum(
        max((values.get((c, s.key), 0) for c in categories for s in series), default=0)
    )
    rotate = any(len(category) > 4 for category in categories) and len(categories) > 4
    parts = [
        f'<svg class="chart" id="{_attr(chart_id)}" role="img" '
        f'aria-labelledby="{_attr(chart_id)}-title" viewBox="0 0 {width} {HEIGHT}" '
        f'width="{width}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_attr(chart_id)}-title">{_attr(title)}</title>',
        *_axis(width, maximum),
    ]
    x = LEFT + GROUP_GAP
    for category in categories:
        for index, item in enumerate(series):
            value = int(values.get((category, item.key), 0))
            parts.append(_bar(x + index * (BAR_WIDTH + BAR_GAP), value, maximum, item, category))
        parts.append(_category_label(x + group / 2, category, rotate))
        x += group + GROUP_GAP
    baseline = HEIGHT - BOTTOM
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{baseline}" y2="{baseline}"/>'
    )
    if not categories:
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{HEIGHT / 2}" text-anchor="middle">–</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
