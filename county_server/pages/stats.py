"""统计: 按时办结率、即时办结率、满意率 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("stats", __name__)


@bp.get("/stats")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="统计", description="按时办结率、即时办结率、满意率")
