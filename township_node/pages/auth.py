"""登录 / 退出: a clerk signs in with their login name and password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from sanji_node.web.auth import current_user, sign_in, sign_out
from sanji_node.web.site import safe_next

from .. import clerks
from .common import local, now

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    login = StringField(
        "登录名",
        validators=[DataRequired("请输入登录名"), Length(max=64)],
        render_kw={"autocomplete": "username", "autofocus": True, "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        "密码", validators=[DataRequired("请输入密码"), Length(max=200)], render_kw={"autocomplete": "current-password"}
    )
    submit = SubmitField("登录")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user() is not None and request.method == "GET":
        return redirect(url_for("inbox.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            clerk = local(
                lambda db: clerks.authenticate(db, form.login.data or "", form.password.data or "", now_ms=now())
            )
        except clerks.LoginError as e:
            error = e.message + (f"（{e.hint}）" if e.hint else "")
        else:
            sign_in(clerks.session_user(clerk))
            flash(f"{clerk['name']}，您好。", "success")
            return redirect(safe_next(request.args.get("next")) or url_for("inbox.index"))
    no_accounts = local(clerks.count) == 0
    status = 401 if error else 200
    return render_template("township/login.html", form=form, error=error, no_accounts=no_accounts), status


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    flash("已退出。", "info")
    return redirect(url_for("auth.login"))
