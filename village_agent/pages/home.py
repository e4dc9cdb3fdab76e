"""首页: today's work at a glance: what waits for the agent, counts, and the sync state in one line."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from sanji_domain.search import MAX_PAGE, CaseFilter
from sanji_domain.states import VILLAGE_HANDLED
from sanji_node.actions import cases, catalog, ledger
from sanji_node.web import workspace
from sanji_node.web.auth import require
from sanji_node.workspace import today

from . import sync
from .common import village

bp = Blueprint("home", __name__)

HANDLED_HERE_STATES = ("SUBMITTED", "PRE_ACCEPTED", "ACCEPTED", "IN_PROCESS")
SHOWN = 10  # rows per list on the home page


@bp.get("/")
@require()
def index() -> Any:
    ws = workspace()
    v = village()
    me = v.config.node_id

    def page(state: str, **kw: Any) -> dict[str, Any]:
        return cases.find_cases(ws, CaseFilter(state=state, village=me, **kw), limit=MAX_PAGE)

    supplement = page("NEED_SUPPLEMENT", order="urgent")
    deliver = page("COMPLETED")
    delivered = page("DELIVERED")
    open_cases = page("open", order="urgent")
    filed_today = cases.find_cases(ws, CaseFilter(village=me, date_from=today(), date_to=today()), limit=1)["total"]
    here = {i["task_code"] for i in catalog.search_items(ws, None) if i.get("village_mode") == VILLAGE_HANDLED}
    handle_here = [r for r in open_cases["rows"] if r["item_code"] in here and r["state"] in HANDLED_HERE_STATES]
    # 好差评 still to record: delivered cases whose ledger row has no satisfaction yet
    book = ledger.ledger(ws, village=me)
    rated = {r["办件编号"] for r in book if r["满意度"]}
    evaluate = [r for r in delivered["rows"] if r["number"] not in rated]
    view = sync.facts(v)
    return render_template(
        "village/home.html",
        supplement=supplement,
        deliver=deliver,
        evaluate=evaluate,
        handle_here=handle_here,
        open_total=open_cases["total"],
        filed_today=filed_today,
        overdue_unsent=sum(1 for r in book if r["状态"] == "委托" and r["逾期"]),
        sync=view,
        sync_line=sync.one_line(view),
        shown=SHOWN,
    )
