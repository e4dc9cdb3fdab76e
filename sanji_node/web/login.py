"""登录 / 退出 for a node whose pages have accounts (`sanji_node.accounts`): one blueprint named `auth`.

`login_blueprint(book, local, now, home, template)` builds it: `local` runs a
function on the node's database, `now` is the clock (ms), `home` the endpoint
after signing in, `template` the login page (given `form`, `error` and
`no_accounts`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlite_utils
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ..accounts import AccountBook, LoginError, session_user
from .auth import current_user, sign_in, sign_out
from .site import safe_next


class LoginForm(FlaskForm):  # type: ignore[misc]
    login = StringField(
        "登录名",
        validators=[DataRequired("请输入登录名"), Length(max=64)],
        render_kw={"autocomplete": "username", "autofocus": True, "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        "密码", validators=[DataRequired("请输入密码"), Length(max=200)], render_kw={"autocomplete": "current-password"}
    )
    submit = SubmitField("登录")


def login_blueprint(
    book: AccountBook,
    local: Callable[[Callable[[sqlite_utils.Database], Any]], Any],
    now: Callable[[], int],
    *,
    home: str,
    template: str,
) -> Blueprint:
    bp = Blueprint("auth", __name__)

    @bp.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if current_user() is not None and request.method == "GET":
            return redirect(url_for(home))
        form = LoginForm()
        error = None
        if form.validate_on_submit():
            try:
                account = local(
                    lambda db: book.authenticate(db, form.login.data or "", form.password.data or "", now_ms=now())
                )
            except LoginError as e:
                error = e.message + (f"（{e.hint}）" if e.hint else "")
            else:
                sign_in(session_user(account))
                flash(f"{account['name']}，您好。", "success")
                return redirect(safe_next(request.args.get("next")) or url_for(home))
        no_accounts = local(book.count) == 0
        status = 401 if error else 200
        return render_template(template, form=form, error=error, no_accounts=no_accounts), status

    @bp.post("/logout")
    def logout() -> Any:
        sign_out()
        flash("已退出。", "info")
        return redirect(url_for("auth.login"))

    return bp
