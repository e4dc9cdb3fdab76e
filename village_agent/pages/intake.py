"""新建代办: the shared case form (`sanji_node.web.case_form`) in the agent's role."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from sanji_node.actions import catalog
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.web.case_form import Outcome, case_form, file_from_form

from .common import person

bp = Blueprint("intake", __name__, url_prefix="/cases/new")


@bp.route("", methods=["GET", "POST"])
@require()
def index() -> Any:
    ws = workspace()
    code = (request.form.get("item") if request.method == "POST" else request.args.get("item")) or ""
    if not code:
        return render_template("village/intake.html", items=catalog.search_items(ws, None), item=None, form=None)
    item = catalog.show_item(ws, code)
    form = case_form(item, role="agent")
    outcome = Outcome()
    if form.validate_on_submit():
        outcome = file_from_form(ws, form, person=person())
        if outcome.case is not None:
            made = outcome.case
            session["just_filed"] = made["case_id"]
            flash(
                f"已收件：办件编号 {made['local_no']}，查询码 {made['query_code']}。请打印收件凭证交给村民。", "success"
            )
            return redirect(url_for("cases.detail", case_id=made["case_id"]))
    return render_template(
        "village/intake.html",
        items=catalog.search_items(ws, None),
        item=item,
        form=form,
        duplicates=outcome.duplicates,
    )
