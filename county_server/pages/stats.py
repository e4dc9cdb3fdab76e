"""统计: 按时办结率、即时办结率、满意率 by township, village, item and month; the ranking of townships; Excel;
the printable monthly 通报 (one A4 page).

The figures come from the summaries `county_server.stats_summary` keeps up to date (a few thousand rows
for a year), brought up to date with the cases that changed since the last look, never from every case.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Blueprint, abort, current_app, flash, render_template, request

from sanji_domain import exports
from sanji_node.web import charts
from sanji_node.web.auth import require
from sanji_node.web.downloads import xlsx_download
from sync_protocol.errors import SyncError

from .. import stats_summary
from ..stats_summary import Period, month_label, parse_period
from .common import READ, error_text, local, today

bp = Blueprint("stats", __name__)

SERIES = (charts.ON_TIME, charts.INSTANT, charts.SATISFIED)
RATE_COLUMNS = [
    ("filed", "收件数"),
    ("completions", "办结数"),
    ("on_time", "按时办结数"),
    ("on_time_rate", "按时办结率"),
    ("instant", "即时办结数"),
    ("instant_rate", "即时办结率"),
    ("avg_handling_days", "平均办理工作日"),
    ("evaluations", "评价数"),
    ("satisfied", "满意数"),
    ("satisfaction_rate", "满意率"),
    ("warn_cards", "预警"),
    ("yellow_cards", "黄牌"),
    ("red_cards", "红牌"),
]
EXPORTS = {"township": "乡镇", "village": "村(社区)", "item": "事项", "month": "月份"}


def _this_month() -> str:
    return stats_summary.month_of(today())


def _period(text: str | None, default: str) -> Period:
    try:
        return parse_period(text or default)
    except SyncError as e:
        flash(error_text(e), "error")
        return parse_period(default)


def _figures(period: Period) -> dict[str, Any]:
    def read(db: Any) -> dict[str, Any]:
        try:
            stats_summary.refresh(db, today=today())
        except sqlite3.OperationalError:  # another writer held the database past the busy timeout
            flash("统计数字正在更新，这次显示的是上次更新的数字；请稍后刷新页面。", "warning")
        got = stats_summary.figures(db.conn, period)
        got["first_month"] = db.execute("SELECT MIN(month) FROM stats_place_month").fetchone()[0]
        return got

    return local(read)


def _choices(first_month: str | None) -> dict[str, list[tuple[str, str]]]:
    """The periods to choose from: months (newest first, at most 36), quarters and years since the first figure."""
    this = _this_month()
    first = min(first_month or this, this)
    months = stats_summary.month_range(max(first, _months_back(this, 35)), this)[::-1]
    years = sorted({m[:4] for m in stats_summary.month_range(first, this)}, reverse=True)
    quarters = [
        (f"{y}-Q{q}", parse_period(f"{y}-Q{q}").label)
        for y in years
        for q in (4, 3, 2, 1)
        if f"{y}-{3 * q - 2:02d}" <= this
    ]
    return {
        "按月": [(m, month_label(m)) for m in months],
        "按季度": quarters,
        "按年": [(y, f"{y}年") for y in years],
    }


def _months_back(month: str, n: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:]) - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@bp.get("/stats")
@require(*READ)
def index() -> Any:
    period = _period(request.args.get("period"), _this_month())
    got = _figures(period)
    township = request.args.get("township") or ""
    groups = [g for g in got["village_groups"] if not township or g[0]["group"] == township]
    return render_template(
        "county/stats.html",
        choices=_choices(got["first_month"]),
        township=township,
        shown_groups=groups,
        township_chart=charts.bar_chart(got["townships"], SERIES, f"各乡镇按时办结率、即时办结率和满意率（{period.label}）", bar_height=15),
        trend_chart=charts.line_chart(got["trend"], SERIES, "近 12 个月全县走势"),
        **got,
    )  # fmt: skip


@bp.get("/stats/export")
@require(*READ)
def export() -> Any:
    """The table of one grouping for the period as Excel: Chinese headers, places and items by name."""
    group_by = request.args.get("by", "township")
    if group_by not in EXPORTS:
        abort(404)
    period = _period(request.args.get("period"), _this_month())
    got = _figures(period)
    columns = [("label", EXPORTS[group_by]), *RATE_COLUMNS]
    if group_by == "village":
        columns.insert(0, ("township_label", "乡镇"))
        rows = [{**r, "township_label": t["label"]} for t, villages in got["village_groups"] for r in villages]
    else:
        rows = got[{"township": "townships", "item": "items", "month": "months"}[group_by]]
    rows = [{**r, "avg_handling_days": "—" if r["avg_handling_days"] is None else r["avg_handling_days"]} for r in rows]
    county = _county_name()
    title = f"{county}政务服务办件统计（按{EXPORTS[group_by]}）{period.label}"
    name = f"办件统计_按{EXPORTS[group_by]}_{period.text}.xlsx"
    return xlsx_download(lambda path: exports.write_table(path, "xlsx", title, columns, rows), name)


def _county_name() -> str:
    """The county's name as the pages show it (示范县)."""
    return str(current_app.extensions["sanji_site"].county_name() or "")


@bp.get("/stats/bulletin")
@require(*READ)
def bulletin() -> Any:
    """The monthly 通报: one A4 page (headline figures, the ranking, the best and the lowest, cards, a chart)."""
    last_month = _months_back(_this_month(), 1)
    month = request.args.get("month") or last_month
    try:
        period = parse_period(month)
    except SyncError as e:
        flash(error_text(e), "error")
        period = parse_period(last_month)
    if period.kind != "month":
        period = parse_period(period.last)
    got = _figures(period)
    previous = got["trend"][-2] if len(got["trend"]) > 1 else None
    trend = got["trend"][-6:]
    trend[0] = {**trend[0], "label": month_label(trend[0]["group"])}
    chart = charts.line_chart(trend, SERIES, "近 6 个月全县走势", width=720, height=170, font=15)
    return render_template("county/bulletin.html", previous=previous, chart=chart, county=_county_name(), **got)
