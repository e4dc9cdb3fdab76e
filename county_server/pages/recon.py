"""对账, the county's home page: each township and village by name, what came up, who has gone quiet.

Routes: `/` the table (sortable `?sort=`, filtered by `?township=`, `?problems=1`, `?silent=1`),
`/recon.json` the same figures as JSON, `/recon/export` the table as Excel, `/completeness?period=`
which villages reported in a month or week, and `/recon/settings` (管理员) the 静默 threshold.
The figures come from `county_server.reconcile`; each problem links to the node's page `/nodes/<id>`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from sanji_domain import commands
from sanji_domain.errors import DomainError
from sanji_node.web import charts
from sanji_node.web.auth import require
from sanji_node.web.downloads import xlsx_download
from sync_protocol.errors import SyncError

from .. import reconcile
from .common import READ, WRITE, county, flash_error, now, record, ws

bp = Blueprint("recon", __name__)
SERIES = [
    charts.Series("reported", "已上报（上报率）", "#2e7d32", "bar-reported", "— 没有村"),
    charts.Series("late", "迟报", "#ef8c00", "bar-late", "— 没有村"),
    charts.Series("silent", "静默", "#c62828", "bar-silent", "— 没有村"),
]


def _filters() -> reconcile.Filters:
    sort = request.args.get("sort", "name")
    return reconcile.Filters(
        township=request.args.get("township") or None,
        problems=request.args.get("problems") == "1",
        silent=request.args.get("silent") == "1",
        sort=sort if sort in reconcile.SORTS else "name",
    )


def _figures(filters: reconcile.Filters) -> dict[str, Any]:
    return county().ws.read(lambda _conn: reconcile.reconciliation(county().ws.store, now_ms=now(), filters=filters))


@bp.get("/")
@require(*READ)
def index() -> Any:
    filters = _filters()
    figures = _figures(filters)
    return render_template(
        "county/recon.html", f=figures, sorts=reconcile.SORTS, args=request.args.to_dict(), fmt=reconcile.fmt_time
    )


@bp.get("/recon.json")
@require(*READ)
def as_json() -> Any:
    return jsonify(_figures(_filters()))


@bp.get("/recon/export")
@require(*READ)
def export() -> Any:
    figures = _figures(_filters())
    return xlsx_download(lambda path: reconcile.export_xlsx(path, figures), f"对账_{figures['today']}.xlsx")


@bp.get("/completeness")
@require(*READ)
def completeness() -> Any:
    kind = "week" if request.args.get("kind") == "week" else "month"
    period = request.args.get("period") or reconcile.current_period(now(), kind)
    try:
        figures = county().ws.read(lambda _conn: reconcile.completeness(county().ws.store, period, now_ms=now()))
    except DomainError as e:
        flash(e.message + (f"（建议：{e.hint}）" if e.hint else ""), "error")
        return redirect(url_for("recon.completeness"))
    current = reconcile.current_period(now(), "month")
    months = [current]
    y, m = int(current[:4]), int(current[5:])
    for _ in range(11):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        months.append(f"{y}-{m:02d}")
    chart = charts.bar_chart(figures["townships"], SERIES, f"各乡镇上报情况（{figures['label']}）", label_key="name",
                             bar_height=15, label_width=200, label_chars=10)  # fmt: skip
    week = reconcile.current_period(now(), "week")
    return render_template("county/recon_completeness.html", c=figures, months=months, week=week, chart=chart)


@bp.post("/recon/settings")
@require(*WRITE)
def settings() -> Any:
    try:
        value = int(request.form.get("silent_workdays", ""))
    except ValueError:
        flash("静默天数须为整数（例如 3）", "error")
        return redirect(url_for("recon.index"))
    reason = request.form.get("reason", "").strip()

    def build(conn: Any, actor: Any) -> commands.Command:
        cmd = commands.setting(conn, actor, "silent_workdays", value, now_ms=now())
        # the audit row in the transaction that writes the setting: both or neither
        record(county().ws.store.db, "settings", target_kind="setting", target="silent_workdays", reason=reason,
               details={"silent_workdays": value})  # fmt: skip
        return cmd

    try:
        ws().write_if(f"{county().node.config.root_node}/*", build)
    except SyncError as e:
        flash_error(e)
        return redirect(url_for("recon.index"))
    flash(f"已设置：连续 {value} 个工作日没有联系即标为静默。", "success")
    return redirect(url_for("recon.index"))
