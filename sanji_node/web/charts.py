"""Charts drawn on the server as SVG: rates by place (horizontal bars) and by month (a trend line).

No chart library and no script: a view computes the geometry here and the
macros in `sanji/charts.html` (`bar_chart`, `line_chart`) draw it. Colours
and type sizes are SVG attributes, so a chart looks the same on screen and on
a printed sheet. Rates are percentages from 0 to 100 (`stats` rows carry them
as `<series>_pct`, with the text `<series>_rate`); a missing rate (nothing to
divide) draws no bar and no point, and says so ("— 无办结").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Series:
    """One measure: rows hold `<key>_pct` (a number or None) and `<key>_rate` (its text)."""

    key: str
    label: str
    colour: str
    css: str  # the class of its bars and lines (bar-ontime), for tests and user style sheets
    none_text: str = "— 无办结"


ON_TIME = Series("on_time", "按时办结率", "#0b4ea2", "bar-ontime")
INSTANT = Series("instant", "即时办结率", "#b85c00", "bar-instant")
SATISFIED = Series("satisfaction", "满意率", "#1b6e20", "bar-satisfied", "— 无评价")


@dataclass
class Bar:
    series: Series
    y: float
    width: float | None  # None: no rate
    text: str


@dataclass
class BarRow:
    label: str
    label_y: float
    bars: list[Bar]


@dataclass
class BarChart:
    title: str
    series: Sequence[Series]
    left: int
    plot_width: int
    width: int
    height: int
    bar_height: int
    ticks: list[tuple[float, int]]  # (x, percent)
    rows: list[BarRow] = field(default_factory=list)
    font: int = 18
    value_font: int = 16  # the rate beside a bar: no taller than the bar, so stacked values never overlap


def _pct(row: Mapping[str, Any], s: Series) -> float | None:
    value = row.get(f"{s.key}_pct")
    return None if value is None else max(0.0, min(100.0, float(value)))


def bar_chart(
    rows: Sequence[Mapping[str, Any]],
    series: Sequence[Series],
    title: str,
    *,
    label_key: str = "label",
    bar_height: int = 18,
    label_width: int = 170,
    plot_width: int = 640,
    font: int = 18,
    label_chars: int = 8,
) -> BarChart:
    """One group of bars per row (a township, a village, a month), one bar per series, 0–100 %."""
    row_h = len(series) * (bar_height + 2) + 14
    chart = BarChart(
        title, series, label_width, plot_width, label_width + plot_width + 90, len(rows) * row_h + 40, bar_height,
        [(label_width + plot_width * x / 100, x) for x in (0, 25, 50, 75, 100)], font=font,
        value_font=min(font - 2, bar_height + 2),
    )  # fmt: skip
    for i, r in enumerate(rows):
        y0 = i * row_h + 6
        label = str(r.get(label_key, ""))
        label = label if len(label) <= label_chars else label[: label_chars - 1] + "…"
        bars = []
        for j, s in enumerate(series):
            pct = _pct(r, s)
            bars.append(
                Bar(s, y0 + j * (bar_height + 2), None if pct is None else plot_width * pct / 100, r.get(f"{s.key}_rate") or "—")
            )  # fmt: skip
        chart.rows.append(BarRow(label, y0 + (len(series) * (bar_height + 2)) / 2 + font / 3, bars))
    return chart


@dataclass
class Line:
    series: Series
    segments: list[str]  # SVG polyline `points`, broken where a month has no rate
    dots: list[tuple[float, float, str]]  # (x, y, text)


@dataclass
class LineChart:
    title: str
    series: Sequence[Series]
    width: int
    height: int
    left: int
    top: int
    plot_height: int
    x_labels: list[tuple[float, str]]
    y_ticks: list[tuple[float, int]]
    lines: list[Line]
    font: int = 16


def line_chart(
    rows: Sequence[Mapping[str, Any]],
    series: Sequence[Series],
    title: str,
    *,
    label_key: str = "label",
    width: int = 900,
    height: int = 300,
    font: int = 16,
) -> LineChart:
    """The series month by month (rows in time order), 0–100 %; a month with no rate breaks the line."""
    left, right, top, bottom = 64, 24, 16, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(rows) - 1) if len(rows) > 1 else 0.0

    def x(i: int) -> float:
        return left + (i * step if len(rows) > 1 else plot_w / 2)

    def y(pct: float) -> float:
        return top + plot_h * (1 - pct / 100)

    lines = []
    for s in series:
        segments: list[str] = []
        run: list[str] = []
        dots = []
        for i, r in enumerate(rows):
            pct = _pct(r, s)
            if pct is None:
                if run:
                    segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(i):.1f},{y(pct):.1f}")
            dots.append((round(x(i), 1), round(y(pct), 1), str(r.get(f"{s.key}_rate") or "")))
        if run:
            segments.append(" ".join(run))
        lines.append(Line(s, segments, dots))
    return LineChart(
        title, series, width, height, left, top, plot_h,
        [(round(x(i), 1), str(r.get(label_key, ""))) for i, r in enumerate(rows)],
        [(round(y(p), 1), p) for p in (0, 25, 50, 75, 100)], lines, font,
    )  # fmt: skip
