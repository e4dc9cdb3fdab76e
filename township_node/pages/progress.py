"""进度查询: a villager at the window gives the case number and the 查询码 from the 收件凭证."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from sanji_node.web.auth import require

from .. import progress
from .common import STAFF, ws

bp = Blueprint("progress", __name__)


class ProgressForm(FlaskForm):
    number = StringField(
        "办件编号",
        validators=[DataRequired("请输入办件编号"), Length(max=40, message="编号太长")],
        render_kw={"autocomplete": "off", "inputmode": "numeric", "placeholder": "收件凭证上的编号"},
    )
    code = StringField(
        "查询码",
        validators=[DataRequired("请输入查询码"), Length(max=10, message="查询码是 6 位数字")],
        render_kw={"autocomplete": "off", "inputmode": "numeric", "placeholder": "6 位数字"},
    )
    submit = SubmitField("查询")


@bp.route("/progress", methods=["GET", "POST"])
@require(*STAFF)
def index() -> Any:
    form = ProgressForm()
    found = None
    missing = False
    if form.validate_on_submit():
        found = progress.lookup(ws(), form.number.data or "", form.code.data or "")
        missing = found is None
        if found is not None:
            form = ProgressForm(formdata=None)  # the next villager starts from an empty form
    return render_template("township/progress.html", form=form, found=found, missing=missing)
