"""我的岗位: A/B 岗 (mark oneself away and name the substitute; whom one covers for) and one's password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .. import absences, clerks
from .common import STAFF, error_text, flash_error, local, me, now, options, today

bp = Blueprint("mypost", __name__)


class AbsenceForm(FlaskForm):
    from_day = DateField("从（含）", validators=[DataRequired("请选择开始日期")])
    to_day = DateField("到（含）", validators=[DataRequired("请选择结束日期")])
    substitute = SelectField("替岗人员（B 岗）", choices=[], validate_choice=True)
    submit = SubmitField("登记请假")


class PasswordForm(FlaskForm):
    old = PasswordField(
        "原密码", validators=[DataRequired("请输入原密码")], render_kw={"autocomplete": "current-password"}
    )
    new = PasswordField(
        "新密码",
        validators=[DataRequired("请输入新密码"), Length(min=clerks.MIN_PASSWORD, message="至少 8 位")],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "再输一次",
        validators=[DataRequired("请再输一次"), EqualTo("new", message="两次输入的密码不一样")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("修改密码")


class CancelForm(FlaskForm):
    submit = SubmitField("取消这次请假")


def _substitutes(my_id: int) -> list[SelectChoice]:
    return options(
        (p["clerk_id"], f"{p['name']}（{p['role_label']}）")
        for p in local(lambda db: clerks.list_clerks(db, active_only=True))
        if p["clerk_id"] != my_id
    )


def _page(absence: AbsenceForm | None = None, password: PasswordForm | None = None, status: int = 200) -> Any:
    my_id = int(me()["id"])
    day = today()
    if absence is None:
        absence = AbsenceForm(formdata=None, data={"from_day": day, "to_day": day})
    absence.substitute.choices = _substitutes(my_id)
    return (
        render_template(
            "township/mypost.html",
            absence=absence,
            password=password or PasswordForm(formdata=None),
            cancel=CancelForm(formdata=None),
            mine=local(lambda db: absences.absences_of(db, my_id, today=day)),
            covering=local(lambda db: absences.covered_by(db, my_id, today=day)),
            today=day.isoformat(),
        ),
        status,
    )


@bp.get("/my-post")
@require(*STAFF)
def index() -> Any:
    return _page()


@bp.post("/my-post/absence")
@require(*STAFF)
def absent() -> Any:
    form = AbsenceForm()
    form.substitute.choices = _substitutes(int(me()["id"]))
    if not form.validate_on_submit():
        return _page(absence=form, status=400)
    try:
        made = local(
            lambda db: absences.mark_absent(
                db,
                int(me()["id"]),
                from_day=form.from_day.data,
                to_day=form.to_day.data,
                substitute_id=int(form.substitute.data),
                today=today(),
                now_ms=now(),
            )
        )
    except SyncError as e:
        form.substitute.errors = [*form.substitute.errors, error_text(e)]
        return _page(absence=form, status=400)
    flash(
        f"已登记：{made['from_day']} 至 {made['to_day']} 由 {made['substitute_name']} 替岗，"
        "您经办的在办件会出现在他（她）的待办里。",
        "success",
    )
    return redirect(url_for("mypost.index"))


@bp.post("/my-post/absence/<int:absence_id>/cancel")
@require(*STAFF)
def cancel(absence_id: int) -> Any:
    if CancelForm().validate_on_submit():
        try:
            local(lambda db: absences.cancel(db, absence_id, int(me()["id"]), now_ms=now()))
        except SyncError as e:
            flash_error(e)
        else:
            flash("已取消这次请假。", "success")
    return redirect(url_for("mypost.index"))


@bp.post("/my-post/password")
@require(*STAFF)
def password() -> Any:
    form = PasswordForm()
    if not form.validate_on_submit():
        return _page(password=form, status=400)
    try:
        local(
            lambda db: clerks.change_own_password(
                db, int(me()["id"]), form.old.data or "", form.new.data or "", now_ms=now()
            )
        )
    except SyncError as e:
        form.old.errors = [*form.old.errors, error_text(e)]
        return _page(password=form, status=400)
    flash("密码已修改，下次登录请用新密码。", "success")
    return redirect(url_for("mypost.index"))
