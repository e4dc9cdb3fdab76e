"""事项清单: 导入、预览、发布、修改事项 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("catalog", __name__)


@bp.get("/catalog")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="事项清单", description="导入、预览、发布、修改事项")
