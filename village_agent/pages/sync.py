"""同步: when the last sync worked, what waits, whether the township answers, 立即同步, USB bundles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, session, url_for

from sanji_domain.commands import CST
from sanji_node.actions.sync_status import sync_view
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.web.bundles import ImportForm, bundle_download, import_posted
from sanji_node.web.case_form import without_glosses
from sanji_node.workspace import now_ms

from ..app import Village
from .common import village, village_name

bp = Blueprint("sync", __name__, url_prefix="/sync")

REFRESH_S = 2  # the page reloads itself this often while a sync runs
WAIT_FOR_START_MS = 60_000  # after 立即同步, keep refreshing until the run has ended (at most this long)


def facts(v: Village) -> dict[str, Any]:
    """The sync page's facts (`sync_view`), plus the cases not yet at the township."""
    assert v.node is not None
    view = sync_view(v.node.status(), v.scheduler, v.monitor)
    view["cases_not_sent"] = sum(1 for c in view["cases"] if not c["held_by_parent"])
    view["cases_not_receipted"] = sum(1 for c in view["cases"] if not c["receipted_by_county"])
    view["cases_stranded"] = sum(1 for c in view["cases"] if c.get("stranded"))
    view["has_job"] = v.scheduler is not None and v.serving
    view["next_in"] = _from_now(view["next_attempt_ms"])
    view["last_summary"] = without_glosses(view["last_summary"])
    ran = v.monitor is not None and v.monitor.last_finished_ms > 0
    view["error_text"] = view["monitor_error"] if ran else view["last_error"]
    view["problem"] = _problem(view, fallback=bool(v.config.fallback_url))
    return view


def _from_now(ms: int | None) -> str:
    """When the next attempt is, as people say it: 1 分钟内, 约 5 分钟后."""
    if not ms:
        return ""
    minutes = (ms - now_ms()) / 60_000
    return "1 分钟内" if minutes <= 1 else f"约 {round(minutes)} 分钟后"


def _problem(view: dict[str, Any], *, fallback: bool) -> str:
    """The last error in the agent's words (the technical text stays behind 技术细节)."""
    text = view["error_text"] or ""
    if not text:
        return ""
    if view["reachable"] is False:
        return "上次同步没有连上乡镇" + ("，也没有连上县里。" if fallback else "。")
    return without_glosses(text.split("（")[0]) or "上次同步没有完成。"


def one_line(view: dict[str, Any]) -> str:
    """Sync state in one line, for the home page."""
    parts = []
    if view["reachable"] is False:
        parts.append("联系不上乡镇")
    elif view["reachable"]:
        parts.append("乡镇联系正常")
    if view["running"]:
        parts.append("正在同步")
    else:
        waiting = view["waiting_up"]
        parts.append(f"待上传 {waiting} 条" if waiting else "没有待上传的数据")
    return "，".join(parts)


@bp.get("")
@require()
def index() -> Any:
    workspace()  # a locked laptop asks for the login first
    v = village()
    view = facts(v)
    asked = int(session.get("sync_asked_ms") or 0)
    last_end = v.monitor.last_finished_ms if v.monitor is not None else 0
    waiting_for_run = bool(asked) and last_end < asked and now_ms() - asked < WAIT_FOR_START_MS
    if asked and not waiting_for_run and not view["running"]:
        session.pop("sync_asked_ms", None)
    refresh = view["running"] or waiting_for_run
    return render_template(
        "village/sync.html", view=view, refresh=refresh, refresh_s=REFRESH_S, form=ImportForm(), asked=waiting_for_run
    )


@bp.post("/now")
@require()
def now() -> Any:
    workspace()
    v = village()
    if v.sync_now():
        session["sync_asked_ms"] = now_ms()
        flash("已开始同步，请稍候，本页会自动刷新。", "info")
    else:
        flash("本机没有运行同步任务，无法立即同步。", "error")
    return redirect(url_for(".index"))


@bp.post("/export")
@require()
def export() -> Any:
    """USB: a bundle of what the township lacks, downloaded as a file (`village-agent export-bundle`)."""
    workspace()
    v = village()
    assert v.node is not None
    return bundle_download(v.node, f"{village_name(v)}-上报-{datetime.now(CST):%Y%m%d-%H%M}.sjb")


@bp.post("/import")
@require()
def import_bundle() -> Any:
    """USB: import a bundle file from the township, verified like a sync (`village-agent import-bundle`)."""
    workspace()
    v = village()
    assert v.node is not None
    for category, text in import_posted(v.node):
        flash(text, category)
    return redirect(url_for(".index"))
