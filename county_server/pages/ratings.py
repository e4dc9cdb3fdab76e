"""好差评: the rectification (整改) every 差评 opens, across the county: the case, village, item, comment,
level, deadline and state; assign it (a person at the evaluation's township, a deadline), follow it up (a
note) and close it (the result) from the page. Each step is the same signed record the CLI's `rectify`
writes (`sanji_node.actions.evaluations.rectify`), so the township sees it with its next sync; each is
audited at the county."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sanji_domain.commands import LEVEL_LABELS
from sanji_node.actions import evaluations
from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .. import monitor_tables
from .common import READ, WRITE, flash_error, local, me, record, today, ws

bp = Blueprint("ratings", __name__)
STATES = ("待整改", "整改中", "已回访", "已办结")
OPEN = "open"  # the filter for every rectification not closed yet
TEXT_LIMIT = 500


def _townships() -> list[tuple[str, str]]:
    return local(lambda db: monitor_tables.townships(db.conn))


@bp.get("/ratings")
@require(*READ)
def index() -> Any:
    state = request.args.get("state", OPEN)
    township = request.args.get("township") or None
    rows = evaluations.rectifications(ws(), township=township, state=state if state in STATES else None, day=today())
    if state == OPEN:
        rows = [r for r in rows if r["state"] != "已办结"]
    overdue = sum(1 for r in rows if r["overdue"] and r["state"] != "已办结")
    return render_template(
        "county/ratings.html",
        rows=rows,
        state=state,
        township=township,
        states=STATES,
        open_filter=OPEN,
        townships=_townships(),
        overdue=overdue,
        levels=LEVEL_LABELS,
        text_limit=TEXT_LIMIT,
    )


def _text(field: str, label: str, *, required: bool) -> str | None:
    value = (request.form.get(field) or "").strip()
    if not value:
        if required:
            flash(f"请填写{label}。", "error")
        return None
    if len(value) > TEXT_LIMIT:
        flash(f"{label}太长：最多 {TEXT_LIMIT} 字。", "error")
        return None
    return value


def _step(evaluation_id: str, step: str, data: dict[str, Any], action: str, reason: str, done: str) -> Any:
    back = redirect(url_for("ratings.index"))
    try:
        evaluations.rectify(ws(), evaluation_id, step, data, person=me()["name"])
    except SyncError as e:
        flash_error(e)
        return back

    def note(db: Any) -> None:
        with db.atomic():
            details = {k: v for k, v in data.items() if v is not None}
            record(db, action, target_kind="rectification", target=evaluation_id, reason=reason, details=details)

    local(note)
    flash(done, "success")
    return back


@bp.post("/ratings/<evaluation_id>/assign")
@require(*WRITE)
def assign(evaluation_id: str) -> Any:
    back = redirect(url_for("ratings.index"))
    owner = _text("owner", "整改责任人", required=True)
    if owner is None:
        return back
    days_text = (request.form.get("deadline_days") or "").strip()
    days = None
    if days_text:
        if not days_text.isdigit() or not 1 <= int(days_text) <= 60:
            flash("整改期限须为 1–60 个工作日。", "error")
            return back
        days = int(days_text)
    data = {"owner": owner, "deadline_days": days}
    return _step(evaluation_id, "assign", data, "rectification.assign", owner, f"已指派 {owner} 整改。")


@bp.post("/ratings/<evaluation_id>/follow")
@require(*WRITE)
def follow(evaluation_id: str) -> Any:
    note = _text("note", "跟进情况", required=True)
    if note is None:
        return redirect(url_for("ratings.index"))
    return _step(evaluation_id, "followup", {"note": note}, "rectification.follow", note, "已记录跟进情况。")


@bp.post("/ratings/<evaluation_id>/close")
@require(*WRITE)
def close(evaluation_id: str) -> Any:
    back = redirect(url_for("ratings.index"))
    result = _text("result", "整改结果", required=True)
    if result is None:
        return back
    level_text = request.form.get("level") or ""
    level = int(level_text) if level_text.isdigit() and int(level_text) in LEVEL_LABELS else None
    if level_text and level is None:
        flash("整改评价须为 1–5。", "error")
        return back
    data = {"result": result, "level": level}
    return _step(evaluation_id, "close", data, "rectification.close", result, "整改已办结。")
