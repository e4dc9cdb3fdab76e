"""电子监察: the open cases carded across the county (预警, 黄牌, 红牌), by township, village, item and clerk;
one case's facts, history, cards and 督办; the card scan now; revoking a card; 督办 for a case or a window,
and where each 督办 stands (已发出, 已送达乡镇, 已阅).

The counts and the list come from the summary tables `county_server.monitor_tables` keeps as entries are
folded, never from a scan of the cases. The clock is the county's (`common.now`, injectable): a 即办件
accepted today reads 正常 until the working day ends (`views.clock_of` with the minute of the day).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from sanji_domain import views
from sanji_domain.applicant import mask_id, mask_phone
from sanji_domain.errors import NotFoundError
from sanji_node.actions import county as county_actions
from sanji_node.actions import supervision as supervision_actions
from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .. import monitor_tables as mt
from .common import PAGE_SIZE, READ, WRITE, error_text, flash_error, local, me, now, page_number, record, today, ws

bp = Blueprint("monitor", __name__)
REASON_LIMIT = 500


def _minute() -> int:
    return views.minute_of_day(now())


def _refreshed(db: Any) -> None:
    with db.atomic():
        mt.refresh_promises(db, today())


def _filters() -> dict[str, str]:
    """The list's filters from the query; `village=~` (mt.WINDOWS) stands for the townships' own windows."""
    out = {}
    for key in (*mt.DIMS, "level"):
        value = request.args.get(key) or ""
        if value:
            out[key] = "" if key == "village" and value == mt.WINDOWS else value
    return out


def _next_scan() -> int | None:
    job = current_app.extensions.get("sanji_card_scan")
    return job.next_run_ms() if job is not None else None


@bp.get("/monitor")
@require(*READ)
def index() -> Any:
    group = request.args.get("group", "township")
    group = group if group in mt.DIMS else "township"
    order = request.args.get("order", "overdue")
    order = order if order in mt.ORDERS else "overdue"
    filters = _filters()
    page = page_number()
    day = today()

    def read(db: Any) -> dict[str, Any]:
        _refreshed(db)
        conn = db.conn
        return {
            "totals": mt.totals(conn),
            "overdue": mt.overdue_count(conn, day),
            "groups": mt.groups(conn, group),
            "choices": {dim: mt.groups(conn, dim) for dim in mt.DIMS},
            "result": mt.listing(
                conn, today=day, filters=filters, order=order, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            ),
            "scan": mt.last_scan(conn),
            "notices": mt.notices(conn)[:5],
            "townships": mt.townships(conn),
        }

    data = local(read)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "county/monitor.html",
        **data,
        group=group,
        order=order,
        filters=filters,
        chosen={k: v for k, v in request.args.items() if v},
        args=args,
        next_scan=_next_scan(),
        dims=mt.DIM_LABELS,
        orders=mt.ORDERS,
        levels=mt.LEVELS,
    )


@bp.post("/monitor/scan")
@require(*WRITE)
def scan() -> Any:
    at = now()
    try:
        issued = county_actions.scan_cards(ws(), at_ms=at)
    except SyncError as e:
        flash_error(e)
        return redirect(url_for("monitor.index"))

    def note(db: Any) -> None:
        with db.atomic():
            mt.record_scan(db, at_ms=at, source="page", issued=len(issued), who=me()["name"])
            record(db, "card.scan", target_kind="cards", details={"issued": len(issued)})

    local(note)
    flash(f"扫描完成：新发出 {len(issued)} 张牌。" if issued else "扫描完成：没有需要新发的牌。", "success")
    return redirect(url_for("monitor.index"))


@bp.get("/monitor/case/<case_id>")
@require(*READ)
def case(case_id: str) -> Any:
    day, minute = today(), _minute()

    def read(db: Any) -> dict[str, Any] | None:
        try:
            detail = views.show_case(db.conn, case_id, day, minute=minute)
        except NotFoundError:
            return None
        return {"case": detail, "notices": mt.notices(db.conn, case_id=detail["case_id"])}

    data = local(read)
    if data is None:
        abort(404)
    data["applicant"] = _masked(data["case"].get("applicant"))
    return render_template("county/monitor_case.html", **data, reason_limit=REASON_LIMIT)


def _masked(applicant: Any) -> dict[str, str] | str | None:
    """What the county shows of the applicant: the name, the 身份证号 and phone masked."""
    if not isinstance(applicant, dict):
        return applicant
    return {
        "name": str(applicant.get("name") or ""),
        "id_number": mask_id(str(applicant.get("id_number") or "")) if applicant.get("id_number") else "",
        "phone": mask_phone(str(applicant.get("phone") or "")) if applicant.get("phone") else "",
    }


def _reason() -> str | None:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash("请填写督办事由。", "error")
        return None
    if len(reason) > REASON_LIMIT:
        flash(f"督办事由太长：最多 {REASON_LIMIT} 字。", "error")
        return None
    return reason


@bp.post("/monitor/case/<case_id>/supervise")
@require(*WRITE)
def supervise_case(case_id: str) -> Any:
    back = redirect(url_for("monitor.case", case_id=case_id))
    reason = _reason()
    if reason is None:
        return back
    try:
        sent = supervision_actions.send_notice(ws(), case=case_id, window=None, reason=reason, person=me()["name"])
    except SyncError as e:
        flash_error(e)
        return back
    local(lambda db: _audit_notice(db, sent, reason))
    flash("督办已发出，乡镇下次同步时收到。", "success")
    return back


@bp.post("/monitor/window/supervise")
@require(*WRITE)
def supervise_window() -> Any:
    back = redirect(url_for("monitor.notices"))
    township = (request.form.get("township") or "").strip()
    if not township:
        flash("请选择要督办的乡镇窗口。", "error")
        return back
    reason = _reason()
    if reason is None:
        return back
    try:
        sent = supervision_actions.send_notice(ws(), case=None, window=township, reason=reason, person=me()["name"])
    except SyncError as e:
        flash(error_text(e), "error")
        return back
    local(lambda db: _audit_notice(db, sent, reason))
    flash(f"已向{sent.get('window') or township}窗口发出督办，乡镇下次同步时收到。", "success")
    return back


def _audit_notice(db: Any, sent: dict[str, Any], reason: str) -> None:
    with db.atomic():
        record(db, "supervision.notice", **supervision_actions.audit_of(sent, reason))


@bp.post("/monitor/card/<card_id>/revoke")
@require(*WRITE)
def revoke(card_id: str) -> Any:
    case_id = request.form.get("case_id") or ""
    back = redirect(url_for("monitor.case", case_id=case_id) if case_id else url_for("monitor.index"))
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash("请填写撤销亮牌的原因。", "error")
        return back
    try:
        done = county_actions.revoke_card(ws(), card_id, reason)
    except SyncError as e:
        flash_error(e)
        return back

    def note(db: Any) -> None:
        with db.atomic():
            record(db, "card.revoke", target_kind="card", target=card_id, reason=reason, details=_small(done))

    local(note)
    flash("已撤销这张牌。", "success")
    return back


def _small(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k in ("case_id", "level") and v is not None}


@bp.get("/monitor/notices")
@require(*READ)
def notices() -> Any:
    state = request.args.get("state") or None
    state = state if state in mt.NOTICE_STATES else None
    township = request.args.get("township") or None

    def read(db: Any) -> dict[str, Any]:
        conn = db.conn
        return {
            "rows": mt.notices(conn, township=township, state=state),
            "townships": mt.townships(conn),
        }

    return render_template(
        "county/monitor_notices.html",
        **local(read),
        state=state,
        township=township,
        states=mt.NOTICE_STATES,
        reason_limit=REASON_LIMIT,
    )
