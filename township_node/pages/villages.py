"""村情况: each village of the township: duty today, last contact, what waits, open and overdue cases."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .. import villages
from .common import STAFF, now, today, ws

bp = Blueprint("villages", __name__)


@bp.get("/villages")
@require(*STAFF)
def index() -> Any:
    rows = villages.overview(ws(), today=today())
    return render_template("township/villages.html", rows=rows, today=today(), now_ms=now())
