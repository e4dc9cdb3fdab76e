"""代办台账: this village's proxy requests by month, on screen, printed (notices) and as Excel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from sanji_node.actions import ledger as ledgers
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.web.downloads import xlsx_download

from .common import month_arg, village, village_name

bp = Blueprint("ledger", __name__, url_prefix="/ledger")


@bp.get("")
@require()
def index() -> Any:
    ws = workspace()
    month = month_arg(request.args.get("month"))
    rows = ledgers.ledger(ws, month=month, village=village().config.node_id)
    return render_template("village/ledger.html", rows=rows, month=month)


@bp.get("/export")
@require()
def export() -> Any:
    """The month's 代办台账 as an Excel file named with the village's name: 梅花村代办台账2026-06.xlsx."""
    ws = workspace()
    v = village()
    month = month_arg(request.args.get("month"))
    name = f"{village_name(v)}代办台账{month}.xlsx"
    return xlsx_download(lambda p: ledgers.export_ledger(ws, p, "xlsx", month=month, village=v.config.node_id), name)
