"""督办 at the township: the county's supervision notices addressed to this township (待阅 first), and the
clerk's 已阅 with a reply (the `supervision.ack` record that goes up with the next sync; the county then
shows 已阅 with the clerk's name, the time and the reply). 待办 shows the unread ones in a box."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sanji_domain import supervision
from sanji_node.actions import supervision as actions
from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .common import STAFF, flash_error, me, ws

bp = Blueprint("supervision", __name__)
NOTE_LIMIT = 500


def unread() -> list[dict[str, Any]]:
    """The notices no one here has read yet, newest first (for the box on 待办)."""
    return actions.list_notices(ws(), state=supervision.PENDING)


@bp.get("/supervision")
@require(*STAFF)
def index() -> Any:
    rows = actions.list_notices(ws())
    rows.sort(key=lambda r: r["state"] != supervision.PENDING)  # unread first, newest first within each
    return render_template("township/supervision.html", rows=rows, note_limit=NOTE_LIMIT)


@bp.post("/supervision/<notice_id>/ack")
@require(*STAFF)
def ack(notice_id: str) -> Any:
    back = request.form.get("back") == "inbox"
    target = redirect(url_for("inbox.index") if back else url_for("supervision.index"))
    note = (request.form.get("note") or "").strip() or None
    if note is not None and len(note) > NOTE_LIMIT:
        flash(f"回复太长：最多 {NOTE_LIMIT} 字。", "error")
        return target
    try:
        actions.acknowledge(ws(), notice_id, note, person=me()["name"])
    except SyncError as e:
        flash_error(e)
        return target
    flash("已阅。县级在本乡镇下次同步后看到“已阅”和您的回复。", "success")
    return target
