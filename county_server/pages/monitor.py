"""电子监察: 超期和亮牌的办件、督办 (being built)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_node.web.auth import require

from .common import READ

bp = Blueprint("monitor", __name__)


@bp.get("/monitor")
@require(*READ)
def index() -> Any:
    return render_template("county/building.html", heading="电子监察", description="超期和亮牌的办件、督办")
