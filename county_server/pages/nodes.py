"""节点与登记: 登记乡镇和村、令牌、吊销 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("nodes", __name__)


@bp.get("/nodes")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="节点与登记", description="登记乡镇和村、令牌、吊销")
