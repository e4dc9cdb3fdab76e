"""值班表: who sits at the station on which day (A/B 岗), by month; set a day; print; Excel."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import InputRequired, Length, Optional

from sanji_node.actions import ledger as ledgers
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.web.downloads import xlsx_download
from sync_protocol.errors import SyncError

from .common import month_arg, person, village, village_name

bp = Blueprint("roster", __name__, url_prefix="/roster")


class DutyForm(FlaskForm):  # type: ignore[misc]
    day = DateField("日期", validators=[InputRequired("请选择日期")], format="%Y-%m-%d")
    agent = StringField(
        "值班代办员", validators=[InputRequired("请填写值班代办员"), Length(max=50, message="最多 50 个字")]
    )
    substitute = StringField("替岗人员（B 岗）", validators=[Optional(), Length(max=50, message="最多 50 个字")])


@bp.route("", methods=["GET", "POST"])
@require()
def index() -> Any:
    ws = workspace()
    v = village()
    form = DutyForm()
    if form.validate_on_submit():
        day = form.day.data.isoformat()
        try:
            ledgers.set_duty(ws, day, form.agent.data.strip(), (form.substitute.data or "").strip() or None)
        except SyncError as e:
            form.agent.errors = [e.message]
        else:
            flash(f"已排班：{day} 由 {form.agent.data.strip()} 值班。", "success")
            return redirect(url_for(".index", month=day[:7]))
    if form.day.errors:
        form.day.errors = ["请选择日期（年-月-日）"]
    month = month_arg(request.args.get("month") or (form.day.data.isoformat()[:7] if form.day.data else None))
    if not form.is_submitted():
        form.agent.data = person()
    rows = ledgers.roster(ws, month=month, village=v.config.node_id)
    status = 400 if form.errors else 200
    return render_template("village/roster.html", rows=rows, month=month, form=form), status


@bp.get("/export")
@require()
def export() -> Any:
    """The month's 值班表 as an Excel file named with the village's name: 梅花村值班表2026-06.xlsx."""
    ws = workspace()
    v = village()
    month = month_arg(request.args.get("month"))
    return xlsx_download(
        lambda p: ledgers.export_roster(ws, p, "xlsx", month=month, village=v.config.node_id),
        f"{village_name(v)}值班表{month}.xlsx",
    )
