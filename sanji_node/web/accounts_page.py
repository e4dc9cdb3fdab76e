"""The accounts page of a node with page accounts (a township's 人员管理, the county's 账号管理).

`accounts_blueprint(name, path, book, local, now, template, …)` builds one
blueprint, for the lead role only: the list of accounts, add an account,
reset a password, disable or enable an account (never one's own). `changed`,
when given, is called inside the same database transaction after each
change with (db, action, account, details): the county writes its audit log
there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils
from flask import Blueprint, Flask, flash, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from sync_protocol.errors import SyncError

from ..accounts import MIN_PASSWORD, AccountBook, session_user
from .auth import current_user, require, sign_out

Changed = Callable[[sqlite_utils.Database, str, dict[str, Any], dict[str, Any]], None]
Local = Callable[[Callable[[sqlite_utils.Database], Any]], Any]


class ResetForm(FlaskForm):  # type: ignore[misc]
    password = PasswordField(
        "新密码",
        validators=[DataRequired("请输入新密码"), Length(min=MIN_PASSWORD, message="至少 8 位")],
        render_kw={"autocomplete": "new-password", "placeholder": "新密码，至少 8 位"},
    )
    submit = SubmitField("重设密码")


class SwitchForm(FlaskForm):  # type: ignore[misc]
    submit = SubmitField("确定")


def _error_text(e: SyncError) -> str:
    return e.message + (f"（建议：{e.hint}）" if e.hint else "")


def guard_accounts(app: Flask, book: AccountBook, local: Local) -> None:
    """On every page request: a signed-in person whose account was disabled (or renamed, or given another
    role) is caught here; and a wrong method gets the JSON error on the API, a Chinese page elsewhere."""

    @app.before_request
    def account_still_active() -> Any:
        if request.path.startswith(("/api/", "/static/")):
            return None
        user = current_user()
        if user is None:
            return None
        account = local(lambda db: book.get(db, int(user.get("id") or 0)))
        if account is None or not account["active"]:
            sign_out()
            flash(f"您的账号已停用，请找{book.who_resets}。(this account is disabled)", "error")
            return redirect(url_for("auth.login"))
        fresh = session_user(account)
        if any(user.get(k) != v for k, v in fresh.items()):
            session["user"] = fresh  # the same session, under the account's current name and role
        return None

    @app.errorhandler(405)
    def wrong_method(_e: Exception) -> Any:
        if request.path.startswith("/api/"):  # as the sync API has always answered
            return jsonify({"code": "method_not_allowed", "message": "this route does not take that method"}), 405
        message = "这个地址不能这样打开，请从页面上的按钮进入。(method not allowed)"
        return render_template("sanji/error.html", status=405, message=message, hint=None), 405


def accounts_blueprint(
    name: str,
    path: str,
    book: AccountBook,
    local: Local,
    now: Callable[[], int],
    *,
    template: str,
    default_role: str,
    changed: Changed | None = None,
) -> Blueprint:
    bp = Blueprint(name, __name__)

    class AddForm(FlaskForm):  # type: ignore[misc]
        name = StringField("姓名", validators=[DataRequired("请输入姓名"), Length(max=20, message="最多 20 个字")])
        login = StringField(
            "登录名",
            validators=[DataRequired("请输入登录名"), Length(max=32, message="最多 32 个字符")],
            render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
        )
        role = SelectField("岗位", choices=[SelectChoice(k, v) for k, v in book.roles.items()], default=default_role)
        password = PasswordField(
            "初始密码",
            validators=[DataRequired("请输入初始密码"), Length(min=MIN_PASSWORD, message="至少 8 位")],
            render_kw={"autocomplete": "new-password"},
        )
        confirm = PasswordField(
            "再输一次",
            validators=[DataRequired("请再输一次密码"), EqualTo("password", message="两次输入的密码不一样")],
            render_kw={"autocomplete": "new-password"},
        )
        submit = SubmitField("添加账号")

    def me_id() -> int:
        user = current_user()
        return int(user["id"]) if user else 0

    def act(fn: Callable[[sqlite_utils.Database], dict[str, Any]], action: str, details: dict[str, Any]) -> Any:
        def run(db: sqlite_utils.Database) -> dict[str, Any]:
            with db.atomic():
                who = fn(db)
                if changed is not None:
                    changed(db, action, who, details)
            return who

        return local(run)

    def page(add: FlaskForm | None = None, reset: tuple[int, ResetForm] | None = None, status: int = 200) -> Any:
        people = local(book.list)
        resets = {p["clerk_id"]: ResetForm(formdata=None, prefix=f"r{p['clerk_id']}") for p in people}
        if reset is not None:
            resets[reset[0]] = reset[1]
        return (
            render_template(
                template,
                people=people,
                add=add or AddForm(formdata=None),
                resets=resets,
                switch=SwitchForm(formdata=None),
                me_id=me_id(),
                ep=name,
            ),
            status,
        )

    @bp.get(path)
    @require(book.lead)
    def index() -> Any:
        return page()

    @bp.post(f"{path}/add")
    @require(book.lead)
    def add() -> Any:
        form = AddForm()
        if not form.validate_on_submit():
            return page(add=form, status=400)
        try:
            made = act(
                lambda db: book.add(
                    db,
                    name=form.name.data or "",
                    login=form.login.data or "",
                    role=form.role.data or default_role,
                    password=form.password.data or "",
                    now_ms=now(),
                ),
                "account.add",
                {"role": form.role.data},
            )
        except SyncError as e:
            form.login.errors = [*form.login.errors, _error_text(e)]
            return page(add=form, status=400)
        flash(
            f"已添加{made['role_label']} {made['name']}（登录名 {made['login']}）。请把初始密码当面告诉本人。",
            "success",
        )
        return redirect(url_for(f"{name}.index"))

    @bp.post(f"{path}/<int:clerk_id>/password")
    @require(book.lead)
    def password(clerk_id: int) -> Any:
        form = ResetForm(prefix=f"r{clerk_id}")
        if not form.validate_on_submit():
            return page(reset=(clerk_id, form), status=400)
        try:
            who = act(
                lambda db: book.set_password(db, clerk_id, form.password.data or "", now_ms=now()),
                "account.password",
                {},
            )
        except SyncError as e:
            form.password.errors = [*form.password.errors, _error_text(e)]
            return page(reset=(clerk_id, form), status=400)
        flash(f"已重设 {who['name']} 的密码。", "success")
        return redirect(url_for(f"{name}.index"))

    def switch(clerk_id: int, *, active: bool) -> Any:
        if SwitchForm().validate_on_submit():
            if not active and clerk_id == me_id():
                flash("不能停用自己的账号。(you cannot disable your own account)", "error")
                return redirect(url_for(f"{name}.index"))
            try:
                who = act(
                    lambda db: book.set_active(db, clerk_id, active, now_ms=now()), "account.active", {"active": active}
                )
            except SyncError as e:
                flash(_error_text(e), "error")
            else:
                flash(f"已{'启用' if active else '停用'} {who['name']} 的账号。", "success")
        return redirect(url_for(f"{name}.index"))

    @bp.post(f"{path}/<int:clerk_id>/disable")
    @require(book.lead)
    def disable(clerk_id: int) -> Any:
        return switch(clerk_id, active=False)

    @bp.post(f"{path}/<int:clerk_id>/enable")
    @require(book.lead)
    def enable(clerk_id: int) -> Any:
        return switch(clerk_id, active=True)

    return bp
