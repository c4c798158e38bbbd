"""Bar charts as plain SVG geometry, drawn by templates/staff/_bar_chart.html inside the page.

Why not pygal or matplotlib: the site's CSP allows styles from its own files only (style-src 'self'),
and both libraries write inline styles (matplotlib a style="" attribute on every shape and a <style>
element; pygal a <style> element, inline styles and a <script> for its tooltips), which the browser
would refuse. Here every shape is a <rect>, <line> or <text> with presentation attributes and a class,
coloured by static/css/site.css, so the chart needs no script and no inline style and is valid HTML.
The numbers themselves are in the table under each chart; the SVG is a picture of them (role="img").

Charts and tables are written here rather than by template loops: a year of weeks is thousands of cells,
and Django's template engine took most of the page's time drawing them (measured: ~300 ms of ~550 ms).
Every value passes through format_html, so it is escaped as a template would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from django.utils.html import format_html, format_html_join, strip_tags
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 260
LEFT = 56  # room for the y-axis labels (larger on a phone)
RIGHT = 8
TOP = 12
BOTTOM = 40  # room for the x-axis labels
MAX_X_LABELS = 13


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    label: str  # the bar's tooltip (<title>): category, series and value


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    minor: bool = False  # left out on a phone, where the labels are drawn larger (static/css/site.css)


def _nice_top(value: float) -> float:
    """A round axis maximum at or above `value`: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(
    *, categories: list[str], series: list[tuple[str, list[float | None]]], unit: str = "", top: float | None = None
) -> dict:
    """Stacked vertical bars, one per category; a value of None (a hidden small number) draws nothing.

    Returns the template's context: the view box, the bars, the axis ticks and the legend's names.
    """
    totals = [sum(values[i] or 0 for _name, values in series) for i in range(len(categories))]
    top = top or _nice_top(max(totals, default=0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(categories), 1)
    bar_width = max(slot * 0.7, 1)
    bars = []
    for index, category in enumerate(categories):
        base = 0.0
        x = LEFT + index * slot + (slot - bar_width) / 2
        for number, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                continue
            height = plot_height * value / top
            y = TOP + plot_height - plot_height * (base + value) / top
            bars.append(
                Bar(
                    round(x, 1),
                    round(y, 1),
                    round(bar_width, 1),
                    round(height, 1),
                    number,
                    f"{category}: {name} {_number(round(value, 1))}{unit}",
                )
            )
            base += value
    y_ticks = [
        Tick(round(TOP + plot_height - plot_height * fraction, 1), f"{_number(top * fraction)}{unit}")
        for fraction in (0, 0.25, 0.5, 0.75, 1)
    ]
    every = max(1, math.ceil(len(categories) / MAX_X_LABELS))
    x_ticks = [
        Tick(round(LEFT + index * slot + slot / 2, 1), category, minor=bool(number % 2))
        for number, (index, category) in enumerate((i, c) for i, c in enumerate(categories) if i % every == 0)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": TOP + plot_height,
        "label_y": TOP + plot_height + 18,
        "bars": bars,
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "legend": [name for name, _values in series] if len(series) > 1 else [],
    }


def chart_svg(chart: dict, *, chart_id: str, title: str) -> SafeString:
    """The chart as an inline SVG figure with its legend (the numbers are in the table after it)."""
    grid = format_html_join(
        "",
        '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="chart-axis" x="{}" y="{}" dy="4" text-anchor="end">{}</text>',
        (
            (chart["left"], chart["right"], t.position, t.position, chart["left"] - 6, t.position, t.label)
            for t in chart["y_ticks"]
        ),
    )
    bars = format_html_join(
        "",
        '<rect class="chart-series-{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        ((b.series, b.x, b.y, b.width, b.height, b.label) for b in chart["bars"]),
    )
    x_labels = format_html_join(
        "",
        '<text class="chart-axis{}" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((" chart-minor" if t.minor else "", t.position, chart["label_y"], t.label) for t in chart["x_ticks"]),
    )
    legend = ""
    if chart["legend"]:
        legend = format_html(
            '<figcaption><ul class="list-inline small mb-0">{}</ul></figcaption>',
            format_html_join(
                "",
                '<li class="list-inline-item"><span class="chart-swatch chart-series-{}"></span> {}</li>',
                enumerate(chart["legend"]),
            ),
        )
    return format_html(
        '<figure class="insights-chart"><svg viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title" class="chart" '
        'xmlns="http://www.w3.org/2000/svg"><title id="{}-title">{} (chart; the numbers are in the table below)'
        '</title>{}{}<line class="chart-baseline" x1="{}" x2="{}" y1="{}" y2="{}"/>{}</svg>{}</figure>',
        chart["width"],
        chart["height"],
        chart_id,
        chart_id,
        title,
        grid,
        bars,
        chart["left"],
        chart["right"],
        chart["baseline"],
        chart["baseline"],
        x_labels,
        legend,
    )


def html_table(*, caption: SafeString | str, header: list[str], rows: list[list], wide: bool = True) -> SafeString:
    """A table whose first column heads each row and whose other cells are numbers (right-aligned)."""
    head = format_html_join(
        "",
        '<th scope="col" class="{}">{}</th>',
        (("" if i == 0 else "text-end", name) for i, name in enumerate(header)),
    )
    # The standard library's escape on each cell: format_html per cell was most of a year-long table's time.
    body = "".join(
        f'<tr><th scope="row">{escape(str(row[0]))}</th>'
        + "".join(f'<td class="text-end">{escape(str(cell))}</td>' for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    # On a phone the table scrolls inside its box: a focusable region, so that the keyboard can scroll it too.
    return format_html(
        '<div class="table-responsive" tabindex="0" role="region" aria-label="{}">'
        '<table class="table table-sm{}"><caption>{}</caption><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table></div>",
        strip_tags(str(caption)),
        "" if wide else " w-auto",
        caption,
        head,
        mark_safe(body),  # noqa: S308 - every cell was escaped above
    )
