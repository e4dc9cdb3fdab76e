"""人员管理 (中心负责人 only): add clerk accounts, reset a password, disable or enable an account."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from sanji_node.web.auth import require
from sync_protocol.errors import SyncError

from .. import clerks
from .common import error_text, flash_error, local, me, now, options

bp = Blueprint("staff", __name__)


class AddForm(FlaskForm):
    name = StringField("姓名", validators=[DataRequired("请输入姓名"), Length(max=20, message="最多 20 个字")])
    login = StringField(
        "登录名",
        validators=[DataRequired("请输入登录名"), Length(max=32, message="最多 32 个字符")],
        render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    )
    role = SelectField("岗位", choices=options(clerks.ROLES.items()), default=clerks.CLERK)
    password = PasswordField(
        "初始密码",
        validators=[DataRequired("请输入初始密码"), Length(min=clerks.MIN_PASSWORD, message="至少 8 位")],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "再输一次",
        validators=[DataRequired("请再输一次密码"), EqualTo("password", message="两次输入的密码不一样")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("添加账号")


class ResetForm(FlaskForm):
    password = PasswordField(
        "新密码",
        validators=[DataRequired("请输入新密码"), Length(min=clerks.MIN_PASSWORD, message="至少 8 位")],
        render_kw={"autocomplete": "new-password", "placeholder": "新密码，至少 8 位"},
    )
    submit = SubmitField("重设密码")


class SwitchForm(FlaskForm):
    submit = SubmitField("确定")


def _page(add: AddForm | None = None, reset: tuple[int, ResetForm] | None = None, status: int = 200) -> Any:
    people = local(clerks.list_clerks)
    resets = {p["clerk_id"]: ResetForm(formdata=None, prefix=f"r{p['clerk_id']}") for p in people}
    if reset is not None:
        resets[reset[0]] = reset[1]
    return (
        render_template(
            "township/staff.html",
            people=people,
            add=add or AddForm(formdata=None),
            resets=resets,
            switch=SwitchForm(formdata=None),
            me_id=int(me()["id"]),
        ),
        status,
    )


@bp.get("/staff")
@require(clerks.HEAD)
def index() -> Any:
    return _page()


@bp.post("/staff/add")
@require(clerks.HEAD)
def add() -> Any:
    form = AddForm()
    if not form.validate_on_submit():
        return _page(add=form, status=400)
    try:
        made = local(
            lambda db: clerks.add(
                db,
                name=form.name.data or "",
                login=form.login.data or "",
                role=form.role.data or clerks.CLERK,
                password=form.password.data or "",
                now_ms=now(),
            )
        )
    except SyncError as e:
        form.login.errors = [*form.login.errors, error_text(e)]
        return _page(add=form, status=400)
    flash(f"已添加{made['role_label']} {made['name']}（登录名 {made['login']}）。请把初始密码当面告诉本人。", "success")
    return redirect(url_for("staff.index"))


@bp.post("/staff/<int:clerk_id>/password")
@require(clerks.HEAD)
def password(clerk_id: int) -> Any:
    form = ResetForm(prefix=f"r{clerk_id}")
    if not form.validate_on_submit():
        return _page(reset=(clerk_id, form), status=400)
    try:
        who = local(lambda db: clerks.set_password(db, clerk_id, form.password.data or "", now_ms=now()))
    except SyncError as e:
        form.password.errors = [*form.password.errors, error_text(e)]
        return _page(reset=(clerk_id, form), status=400)
    flash(f"已重设 {who['name']} 的密码。", "success")
    return redirect(url_for("staff.index"))


@bp.post("/staff/<int:clerk_id>/disable")
@require(clerks.HEAD)
def disable(clerk_id: int) -> Any:
    return _switch(clerk_id, active=False)


@bp.post("/staff/<int:clerk_id>/enable")
@require(clerks.HEAD)
def enable(clerk_id: int) -> Any:
    return _switch(clerk_id, active=True)


def _switch(clerk_id: int, *, active: bool) -> Any:
    if SwitchForm().validate_on_submit():
        if not active and clerk_id == int(me()["id"]):
            flash("不能停用自己的账号。(you cannot disable your own account)", "error")
            return redirect(url_for("staff.index"))
        try:
            who = local(lambda db: clerks.set_active(db, clerk_id, active, now_ms=now()))
        except SyncError as e:
            flash_error(e)
        else:
            flash(f"已{'启用' if active else '停用'} {who['name']} 的账号。", "success")
    return redirect(url_for("staff.index"))
