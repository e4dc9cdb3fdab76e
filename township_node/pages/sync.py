"""同步 at the township: the link to the county, 立即同步, and USB bundles to and from the villages and the county.

A village agent who had no network brings a bundle on a USB stick: the clerk
imports it here (verified like a sync). The clerk can write a bundle for a
village (what its laptop lacks, by what it last said it held) or for the
county when the county's link is down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from sanji_domain.commands import CST
from sanji_node.actions.sync_status import sync_view
from sanji_node.web.auth import require
from sanji_node.web.bundles import ImportForm, bundle_download, import_posted
from sanji_node.web.case_form import without_glosses

from .. import villages
from .common import STAFF, township, ws

bp = Blueprint("sync", __name__, url_prefix="/sync")


@bp.get("")
@require(*STAFF)
def index() -> Any:
    t = township()
    view = sync_view(t.node.status(), t.schedule, t.monitor) if t.node is not None else None
    if view is not None:
        view["last_summary"] = without_glosses(view["last_summary"])
    return render_template(
        "township/sync.html", view=view, form=ImportForm(), villages=villages.villages(ws()), now_ms=t.clock_ms()
    )


@bp.post("/now")
@require(*STAFF)
def now() -> Any:
    t = township()
    if t.schedule is None:
        flash("本机没有运行同步任务（请用 township-node serve 启动），无法立即同步。", "error")
    else:
        t.schedule.sync_now()
        flash("已开始和县里同步，稍后刷新本页查看结果。", "info")
    return redirect(url_for(".index"))


@bp.post("/import")
@require(*STAFF)
def import_bundle() -> Any:
    """A bundle a village agent (or the county) brought on a USB stick."""
    t = township()
    if t.node is None:
        abort(404)
    messages = import_posted(t.node)
    for category, text in messages:
        flash(text, category)
    ok = bool(messages) and messages[-1][0] == "success"
    if ok and t.schedule is not None:
        t.schedule.sync_now()  # store and forward: take it up to the county soon
    return redirect(url_for(".index"))


@bp.post("/export")
@require(*STAFF)
def export() -> Any:
    """A bundle for one village (what its laptop lacks) or for the county (`--for` of export-bundle)."""
    t = township()
    if t.node is None:
        abort(404)
    target = request.form.get("for") or ""
    names = dict(villages.villages(ws()))
    if target == "county":
        for_node, label = None, "县级"
    elif target in names:
        for_node, label = target, names[target]
    else:
        flash("请选择数据包给哪个村（或县级）。", "error")
        return redirect(url_for(".index"))
    return bundle_download(t.node, f"{label}-数据包-{datetime.now(CST):%Y%m%d-%H%M}.sjb", for_node=for_node)
