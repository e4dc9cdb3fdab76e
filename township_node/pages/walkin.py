"""窗口收件: a villager at the window. The clerk picks the item, fills the shared case form
(`sanji_node.web.case_form`), files the case into the township's own feed (channel 窗口), and prints
the 收件凭证 with its 查询码."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sanji_node.actions import catalog
from sanji_node.web.auth import require
from sanji_node.web.case_form import case_form, file_from_form
from sync_protocol.errors import SyncError

from .common import STAFF, flash_error, me, ws

bp = Blueprint("walkin", __name__)


@bp.route("/walkin", methods=["GET", "POST"])
@require(*STAFF)
def index() -> Any:
    w = ws()
    items = sorted(catalog.list_items(w), key=lambda i: (i.get("level") != "乡", i["name"]))
    code = (request.args.get("item") or "").strip()
    item = None
    if code:
        try:
            item = catalog.show_item(w, code)
        except SyncError as e:
            flash_error(e)
            return redirect(url_for("walkin.index"))
    form = case_form(item, role="clerk") if item is not None else None
    duplicates: list[dict[str, Any]] = []
    status = 200
    if form is not None and request.method == "POST":
        if form.validate_on_submit():
            outcome = file_from_form(w, form, person=me()["name"])
            if outcome.case is not None:
                flash(
                    f"已收件：办件 {outcome.case['local_no']}（{item['name'] if item else ''}），"
                    f"查询码 {outcome.case['query_code']}。请打印收件凭证交给申请人。",
                    "success",
                )
                return redirect(url_for("case.show", case_id=outcome.case["case_id"], done="filed"))
            duplicates = outcome.duplicates
        status = 400 if not duplicates else 200
    return render_template("township/walkin.html", items=items, item=item, form=form, duplicates=duplicates), status
