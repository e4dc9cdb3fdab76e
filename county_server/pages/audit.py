"""操作日志: every action that changed data at the county, newest first, filtered by action or target."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from sanji_node.web.auth import require

from .. import audit
from .common import PAGE_SIZE, READ, local, page_number

bp = Blueprint("audit", __name__)


@bp.get("/audit")
@require(*READ)
def index() -> Any:
    action = request.args.get("action") or None
    if action not in audit.ACTIONS:
        action = None
    page = page_number()
    rows = local(lambda db: audit.rows(db, action=action, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE))
    return render_template(
        "county/audit.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        action=action,
        actions=audit.ACTIONS,
    )
