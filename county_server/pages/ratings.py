"""好差评: 差评整改 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("ratings", __name__)


@bp.get("/ratings")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="好差评", description="差评整改")
