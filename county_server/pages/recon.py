"""对账: 每个乡镇、每个村的联系和上报情况 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("recon", __name__)


@bp.get("/")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="对账", description="每个乡镇、每个村的联系和上报情况")
