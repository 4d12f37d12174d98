"""Inline SVG charts for the HTML report.

The charts are drawn from values that are already aggregated (one bar per band, one
bin per 10 score points), so their size does not grow with the number of accounts.
Every text that reaches the SVG goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = [
    "Bar",
    "histogram_chart",
    "horizontal_bar_chart",
    "nice_ticks",
    "vertical_bar_chart",
]

CHART_WIDTH = 560
AXIS_COLOR = "#52606d"
GRID_COLOR = "#e4e7eb"
TEXT_COLOR = "#1f2933"
MUTED_COLOR = "#52606d"

# Estimated mean advance of one glyph of a 12 px system sans-serif font, in pixels.
# Labels are cut to fit with this estimate, so a wide font may still overflow a little.
CHAR_WIDTH = 6.8

TickFormat = Callable[[float], str]


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart.

    Parameters
    ----------
    label
        Category name, drawn beside or under the bar.
    value
        Bar length in axis units. NaN draws no bar, only ``text``.
    text
        Value text drawn at the end of the bar, such as ``"120 · 40.0%"``.
    color
        CSS colour of the bar.
    """

    label: str
    value: float
    text: str
    color: str


def nice_ticks(
    max_value: float, count: int = 5, *, integer: bool = False
) -> list[float]:
    """Compute evenly spaced axis ticks from 0 to a round number at or above a maximum.

    Parameters
    ----------
    max_value
        Largest value the axis must show. Zero, negative and non-finite values give
        the axis 0 to 1.
    count
        Approximate number of intervals between ticks.
    integer
        Use whole-number steps only, for counts.

    Returns
    -------
    list[float]
        Tick values, starting at 0 and ending at the top of the axis.

    Examples
    --------
    >>> nice_ticks(87)
    [0, 20, 40, 60, 80, 100]
    >>> nice_ticks(3, integer=True)
    [0, 1, 2, 3]
    """
    if not math.isfinite(max_value) or max_value <= 0:
        max_value = 1.0

    raw_step = max_value / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = 10 * magnitude
    for factor in (1, 2, 2.5, 5, 10):
        candidate = factor * magnitude
        if integer and not float(candidate).is_integer():
            continue
        if candidate >= raw_step:
            step = candidate
            break
    if integer:
        step = max(step, 1)

    intervals = math.ceil(max_value / step - 1e-9)
    return [_round_tick(i * step) for i in range(intervals + 1)]


def vertical_bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    y_label: str,
    chart_id: str,
    tick_format: TickFormat = lambda value: f"{value:g}",
    integer_ticks: bool = False,
    y_max: float | None = None,
) -> str:
    """Draw bars that rise from a horizontal axis, one per category.

    Parameters
    ----------
    bars
        Bars from left to right.
    title
        Accessible chart title, read by screen readers and shown as a tooltip.
    y_label
        Title of the value axis.
    chart_id
        ``id`` attribute of the ``<svg>`` element, unique in the page.
    tick_format
        Formats a tick value for the value axis.
    integer_ticks
        Use whole-number ticks, for counts.
    y_max
        Top of the value axis before rounding up. Defaults to the largest bar.

    Returns
    -------
    str
        An ``<svg>`` element. Each bar is a ``rect`` with class ``bar`` and a
        ``data-label`` attribute with its category.
    """
    height, top, bottom, left, right = 300, 28, 52, 64, 16
    plot_width = CHART_WIDTH - left - right
    plot_height = height - top - bottom

    ticks = nice_ticks(_max_value(bars, y_max), integer=integer_ticks)
    parts = _value_axis_y(ticks, tick_format, left, top, plot_width, plot_height)
    parts.append(_rotated_axis_title(y_label, 16, top + plot_height / 2))

    slot = plot_width / max(len(bars), 1)
    bar_width = min(72.0, slot * 0.62)
    for index, bar in enumerate(bars):
        x = left + slot * index + (slot - bar_width) / 2
        bar_height = _scaled(bar.value, ticks[-1], plot_height)
        y = top + plot_height - bar_height
        parts.append(_bar_rect(bar, x, y, bar_width, bar_height))
        parts.append(_text(bar.text, x + bar_width / 2, y - 7, anchor="middle"))
        label = _fit(bar.label, slot - 4)
        parts.append(_text(label, x + bar_width / 2, top + plot_height + 18, "middle"))

    parts.append(
        _axis_line(left, top + plot_height, left + plot_width, top + plot_height)
    )
    return _svg(chart_id, title, height, parts)


def horizontal_bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    x_label: str,
    chart_id: str,
    tick_format: TickFormat = lambda value: f"{value:g}",
    x_max: float | None = None,
) -> str:
    """Draw bars that grow to the right, one row per category.

    Parameters
    ----------
    bars
        Bars from top to bottom.
    title
        Accessible chart title.
    x_label
        Title of the value axis under the bars.
    chart_id
        ``id`` attribute of the ``<svg>`` element, unique in the page.
    tick_format
        Formats a tick value for the value axis.
    x_max
        Right end of the value axis before rounding up. Defaults to the longest bar.

    Returns
    -------
    str
        An ``<svg>`` element with one ``rect.bar`` per bar that has a value.
    """
    row_height, bar_height, top, bottom, right = 30, 18, 8, 44, 120
    longest_label = max((len(bar.label) for bar in bars), default=0)
    left = min(200.0, max(80.0, longest_label * CHAR_WIDTH + 16))
    plot_width = CHART_WIDTH - left - right
    plot_height = row_height * max(len(bars), 1)
    height = top + plot_height + bottom

    ticks = nice_ticks(_max_value(bars, x_max))
    parts = _value_axis_x(ticks, tick_format, left, top, plot_width, plot_height)
    parts.append(_text(x_label, left + plot_width / 2, height - 8, "middle", "axis"))

    for index, bar in enumerate(bars):
        y = top + row_height * index + (row_height - bar_height) / 2
        width = _scaled(bar.value, ticks[-1], plot_width)
        parts.append(_bar_rect(bar, left, y, width, bar_height))
        baseline = y + bar_height / 2 + 4
        parts.append(_text(_fit(bar.label, left - 12), left - 8, baseline, "end"))
        parts.append(_text(bar.text, left + width + 6, baseline))

    parts.append(_axis_line(left, top, left, top + plot_height))
    return _svg(chart_id, title, height, parts)


def histogram_chart(
    counts: Sequence[int],
    edges: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    chart_id: str,
    colors: Sequence[str],
) -> str:
    """Draw a histogram of counts per bin, with the bin edges on the horizontal axis.

    Parameters
    ----------
    counts
        Count per bin, from the lowest bin to the highest.
    edges
        Bin edges, one more than ``counts``.
    title
        Accessible chart title.
    x_label, y_label
        Titles of the horizontal and vertical axes.
    chart_id
        ``id`` attribute of the ``<svg>`` element, unique in the page.
    colors
        CSS colour of each bin, in the order of ``counts``.

    Returns
    -------
    str
        An ``<svg>`` element with one ``rect.bin`` per bin.

    Raises
    ------
    ValueError
        If ``edges`` does not have exactly one more item than ``counts``, or
        ``colors`` not exactly as many.
    """
    if len(edges) != len(counts) + 1 or len(colors) != len(counts):
        raise ValueError(
            f"histogram needs one more edge than counts and one colour per count; "
            f"got {len(counts)} counts, {len(edges)} edges and {len(colors)} colours."
        )

    height, top, bottom, left, right = 300, 24, 52, 64, 16
    plot_width = CHART_WIDTH - left - right
    plot_height = height - top - bottom
    ticks = nice_ticks(max(counts, default=0), integer=True)
    parts = _value_axis_y(ticks, _format_count, left, top, plot_width, plot_height)
    parts.append(_rotated_axis_title(y_label, 16, top + plot_height / 2))

    bin_width = plot_width / max(len(counts), 1)
    for index, count in enumerate(counts):
        x = left + bin_width * index
        bin_height = _scaled(count, ticks[-1], plot_height)
        y = top + plot_height - bin_height
        tooltip = f"{edges[index]:g}–{edges[index + 1]:g}: {_format_count(count)}"
        parts.append(
            f'<rect class="bin" x="{x + 1:.1f}" y="{y:.1f}" '
            f'width="{bin_width - 2:.1f}" height="{bin_height:.1f}" '
            f'fill="{_escape(colors[index])}">'
            f"<title>{_escape(tooltip)}</title></rect>"
        )

    for index, edge in enumerate(edges):
        x = left + bin_width * index
        parts.append(_text(f"{edge:g}", x, top + plot_height + 18, "middle"))
    parts.append(_text(x_label, left + plot_width / 2, height - 8, "middle", "axis"))
    parts.append(
        _axis_line(left, top + plot_height, left + plot_width, top + plot_height)
    )
    return _svg(chart_id, title, height, parts)


def _svg(chart_id: str, title: str, height: float, parts: list[str]) -> str:
    # Inline SVG in HTML needs no xmlns, and without it the page contains no URL.
    chart_id = _escape(chart_id)
    body = "\n".join(parts)
    return (
        f'<svg id="{chart_id}" class="chart" '
        f'viewBox="0 0 {CHART_WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title">\n'
        f'<title id="{chart_id}-title">{_escape(title)}</title>\n{body}\n</svg>'
    )


def _value_axis_y(
    ticks: list[float],
    tick_format: TickFormat,
    left: float,
    top: float,
    plot_width: float,
    plot_height: float,
) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + plot_height - _scaled(tick, ticks[-1], plot_height)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOR}" stroke-width="1"/>'
        )
        parts.append(_text(tick_format(tick), left - 8, y + 4, "end", "tick"))
    return parts


def _value_axis_x(
    ticks: list[float],
    tick_format: TickFormat,
    left: float,
    top: float,
    plot_width: float,
    plot_height: float,
) -> list[str]:
    parts = []
    for tick in ticks:
        x = left + _scaled(tick, ticks[-1], plot_width)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_height}" '
            f'stroke="{GRID_COLOR}" stroke-width="1"/>'
        )
        parts.append(
            _text(tick_format(tick), x, top + plot_height + 16, "middle", "tick")
        )
    return parts


def _bar_rect(bar: Bar, x: float, y: float, width: float, height: float) -> str:
    # A zero-length bar is still drawn, so every category has its element.
    if not (math.isfinite(bar.value) and bar.value >= 0):
        return ""
    tooltip = f"{bar.label}: {bar.text}"
    return (
        f'<rect class="bar" data-label="{_escape(bar.label)}" x="{x:.1f}" y="{y:.1f}" '
        f'width="{width:.1f}" height="{height:.1f}" rx="2" fill="{_escape(bar.color)}">'
        f"<title>{_escape(tooltip)}</title></rect>"
    )


def _text(
    content: str, x: float, y: float, anchor: str = "start", css_class: str = "label"
) -> str:
    return (
        f'<text class="{css_class}" x="{x:.1f}" y="{y:.1f}" '
        f'text-anchor="{anchor}">{_escape(content)}</text>'
    )


def _rotated_axis_title(content: str, x: float, y: float) -> str:
    return (
        f'<text class="axis" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 {x:.1f} {y:.1f})">{_escape(content)}</text>'
    )


def _axis_line(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
        f'stroke="{AXIS_COLOR}" stroke-width="1.5"/>'
    )


def _max_value(bars: Sequence[Bar], limit: float | None) -> float:
    if limit is not None:
        return limit
    values = [bar.value for bar in bars if math.isfinite(bar.value)]
    return max(values, default=0.0)


def _scaled(value: float, axis_top: float, length: float) -> float:
    if not math.isfinite(value) or value <= 0:
        return 0.0
    return min(value / axis_top, 1.0) * length


def _fit(label: str, max_width: float) -> str:
    max_chars = max(int(max_width / CHAR_WIDTH), 2)
    if len(label) <= max_chars:
        return label
    return label[: max_chars - 1] + "…"


def _round_tick(value: float) -> float:
    rounded = round(value, 9)
    return int(rounded) if float(rounded).is_integer() else rounded


def _format_count(value: float) -> str:
    return f"{value:,.0f}"


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)
