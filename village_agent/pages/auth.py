"""登录 and 退出: the agent's name (recorded on every event) and the passphrase that unlocks the laptop."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from sanji_node.web.auth import current_user, sign_in, sign_out
from sanji_node.web.site import safe_next
from sync_protocol.errors import SyncError

from ..app import WRONG_PASSPHRASE, WrongPassphraseError
from .common import village

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):  # type: ignore[misc]
    name = StringField(
        "代办员姓名",
        validators=[InputRequired("请填写您的姓名"), Length(max=50, message="姓名最多 50 个字")],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    passphrase = PasswordField("口令", render_kw={"autocomplete": "current-password"})


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    v = village()
    if request.method == "GET" and current_user() and not v.locked:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET" and v.last_agent:
        form.name.data = v.last_agent
    if form.validate_on_submit():
        secret = form.passphrase.data or ""
        if v.needs_passphrase and not secret:
            form.passphrase.errors = ["请输入口令"]
        else:
            try:
                v.unlock(secret)
            except WrongPassphraseError:
                form.passphrase.errors = [WRONG_PASSPHRASE]
            except SyncError as e:
                form.form_errors.append(e.message + (f"（{e.hint}）" if e.hint else ""))
            else:
                name = " ".join(form.name.data.split())
                v.last_agent = name
                sign_in({"id": name, "name": name, "role": "agent", "role_label": "代办员"})
                flash(f"{name}，您好。", "success")
                return redirect(safe_next(request.args.get("next")) or url_for("home.index"))
    return render_template("village/login.html", form=form, needs_passphrase=v.needs_passphrase, locked=v.locked)


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    flash("已退出。下次使用请重新登录。", "info")
    return redirect(url_for("auth.login"))
