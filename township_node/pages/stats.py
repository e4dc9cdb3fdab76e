"""统计: the township's 按时办结率 and 满意率 by village and by month, as bar charts and tables, and Excel."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, render_template, request

from sanji_node.web import charts
from sanji_node.web.auth import require
from sanji_node.web.downloads import xlsx_download

from .. import villages
from .common import STAFF, today, ws

bp = Blueprint("stats", __name__)
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
GROUPS = {"village": "按村", "month": "按月"}


def _month() -> str | None:
    month = request.args.get("month") or None
    return month if month and _MONTH.fullmatch(month) else None


@bp.get("/stats")
@require(*STAFF)
def index() -> Any:
    month = _month()
    figures = villages.stats_page(ws(), month=month)
    months = sorted({r["group"] for r in figures["by_month"]} | {today().strftime("%Y-%m")}, reverse=True)
    series = (charts.ON_TIME, charts.SATISFIED)
    return render_template(
        "township/stats.html",
        month=month,
        months=months,
        village_chart=charts.bar_chart(figures["by_village"], series, "各村按时办结率和满意率"),
        month_chart=charts.bar_chart(figures["by_month"], series, "各月按时办结率和满意率"),
        **figures,
    )


@bp.get("/stats/export")
@require(*STAFF)
def export() -> Any:
    group_by = request.args.get("by", "village")
    if group_by not in GROUPS:
        abort(404)
    month = _month() if group_by == "village" else None
    name = f"办件统计_{GROUPS[group_by]}{'_' + month if month else ''}.xlsx"
    return xlsx_download(lambda path: villages.export_statistics(ws(), path, group_by=group_by, month=month), name)
