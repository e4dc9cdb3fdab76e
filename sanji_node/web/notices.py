"""The printed notices of a case, the 一次性告知单 of an item, the 代办台账 and the 值班表: one A4 sheet each.

Both the village's and the township's pages mount this blueprint with
`register_notices(app)` (after `init_pages`). Every view needs a signed-in
user (any role) and reads through `sanji_node.actions`; every page extends
`sanji/print.html` (the screen toolbar never prints). Page titles carry the
notice's name and the case number only, never the applicant's name.

Routes:
    GET /print/case/<case_id>/<kind>   a case's notice: receipt 收件凭证, accept 受理通知书,
                                       supplement 补齐补正通知书, reject 不予受理通知书,
                                       complete 办结通知书, deliver 送达回执
    GET /print/item/<task_code>        an item's 一次性告知单
    GET /print/ledger?month=YYYY-MM    代办台账 (landscape); a township may add &village=<node id>
    GET /print/roster?month=YYYY-MM    值班表; a township may add &village=<node id>

`available(case_detail)` lists the notices that apply to a case now, for the
print buttons on the case pages.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, request

from sanji_domain.errors import NotFoundError, ValidationError

from ..actions import cases, catalog
from ..actions import ledger as ledgers
from ..workspace import Workspace, today
from . import workspace
from .auth import require

bp = Blueprint("notices", __name__, template_folder="templates")

KINDS: dict[str, str] = {
    "receipt": "收件凭证",
    "accept": "受理通知书",
    "supplement": "补齐补正通知书",
    "reject": "不予受理通知书",
    "complete": "办结通知书",
    "deliver": "送达回执",
}
# what a case must have reached before its notice can be printed, said as the clerk would
NOT_YET: dict[str, str] = {
    "receipt": "办件还是草稿，尚未收件",
    "accept": "办件尚未受理",
    "supplement": "办件没有被要求补齐补正",
    "reject": "办件没有被不予受理",
    "complete": "办件尚未办结",
    "deliver": "办件尚未送达",
}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def available(case_detail: dict[str, Any]) -> list[tuple[str, str]]:
    """The notices that apply to a case now (from its state and events): [(kind, label)], in the case's order."""
    state = case_detail.get("state")
    if not state or state == "DRAFT":
        return []
    kinds = ["receipt"]
    if case_detail.get("accepted_date") or _event(case_detail, "accept") is not None:
        kinds.append("accept")
    if _event(case_detail, "request_supplement") is not None:
        kinds.append("supplement")
    if state == "NOT_ACCEPTED":
        kinds.append("reject")
    if state in ("COMPLETED", "DELIVERED"):
        kinds.append("complete")
    if state == "DELIVERED":
        kinds.append("deliver")
    return [(k, KINDS[k]) for k in kinds]


def _event(case: dict[str, Any], action: str) -> dict[str, Any] | None:
    """The latest applied (not conflicting) event of `action` on the case."""
    found = [e for e in case.get("events") or [] if e.get("action") == action and not e.get("conflict")]
    return found[-1] if found else None


def mask_id(number: str) -> str:
    """A 身份证号 as a notice prints it: the first 6 and the last 4 characters, the rest hidden."""
    if len(number) <= 10:
        return number
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def cn_date(value: Any) -> str:
    """2026-12-03 (or a longer stamp starting with it) → 2026年12月3日; empty stays a blank to fill in."""
    text = str(value or "")
    try:
        d = date.fromisoformat(text[:10])
    except ValueError:
        return "　　年　　月　　日" if not text else text
    return f"{d.year}年{d.month}月{d.day}日"


bp.add_app_template_filter(cn_date, "cn_date")


def station_name(name: str | None) -> str:
    """梅花村 → 梅花村便民服务站 (a name that already says 站 or 中心 stays as it is)."""
    if not name:
        return "村便民服务站"
    return name if name.endswith(("站", "中心")) else f"{name}便民服务站"


bp.add_app_template_filter(station_name, "station_name")


def centre_of(name: str | None) -> str:
    """城关镇 → 城关镇便民服务中心 (a name that already says 中心 stays as it is)."""
    if not name:
        return "乡镇便民服务中心"
    return name if name.endswith("中心") else f"{name}便民服务中心"


def _applicant(case: dict[str, Any]) -> dict[str, str]:
    """The applicant as printed: name, masked 身份证号, phone; 已加密/已清除 where the data cannot be read here."""
    a = case.get("applicant")
    if isinstance(a, dict):
        return {
            "name": str(a.get("name") or ""),
            "id_masked": mask_id(str(a.get("id_number") or "")),
            "phone": str(a.get("phone") or ""),
        }
    shown = str(a) if a else "（本机无申请人信息）"
    return {"name": shown, "id_masked": shown, "phone": shown}


def _item_of(ws: Workspace, case: dict[str, Any]) -> dict[str, Any]:
    """The catalog item as the case pinned it (its version), for department, phones and address."""
    try:
        return catalog.show_item(ws, case["item_code"], version=case.get("item_version"))
    except NotFoundError:
        try:
            return catalog.show_item(ws, case["item_code"])
        except NotFoundError:
            return {}


def _decision(ws: Workspace, case: dict[str, Any], action: str) -> dict[str, Any] | None:
    """The event that decided the case: its own, or (after 转报) the linked county case's."""
    found = _event(case, action)
    if found is None and case.get("linked_case_id"):
        try:
            found = _event(cases.show_case(ws, case["linked_case_id"]), action)
        except NotFoundError:
            found = None
    return found


def issuer_of(event: dict[str, Any], item: dict[str, Any], case: dict[str, Any]) -> str:
    """Who decided, as the notice names (and seals) it: the village station, the township centre, or for the
    county the item's department (实施主体)."""
    role = event.get("role")
    if role == "agent":
        return station_name(case.get("village_name"))
    if role == "county":
        return str(item.get("department") or event.get("author_name") or "")
    return centre_of(event.get("author_name") or case.get("township_name"))


def _not_found(message: str) -> Any:
    return render_template("sanji/error.html", status=404, message=message, hint="请从办件页面点“打印”进入"), 404


@bp.get("/print/case/<case_id>/<kind>")
@require()
def case_notice(case_id: str, kind: str) -> Any:
    if kind not in KINDS:
        abort(404)
    ws = workspace()
    try:
        case = cases.show_case(ws, case_id)
    except NotFoundError:
        return _not_found("找不到这个办件。(no such case)")
    if kind not in dict(available(case)):
        can = "、".join(label for _, label in available(case)) or "无"
        return (
            render_template(
                "sanji/error.html",
                status=409,
                message=f"{NOT_YET[kind]}，不能打印{KINDS[kind]}。办件当前状态：{case['state_label']}。",
                hint=f"这个办件现在可以打印：{can}",
            ),
            409,
        )
    event = {
        "accept": lambda: _decision(ws, case, "accept"),
        "supplement": lambda: _event(case, "request_supplement"),
        "reject": lambda: _decision(ws, case, "reject"),
        "complete": lambda: _decision(ws, case, "complete"),
        "deliver": lambda: _event(case, "deliver"),
    }.get(kind, lambda: None)()
    materials = case.get("materials") or []
    item = _item_of(ws, case)
    lacking = [m for m in materials if not m.get("received") and m.get("required")]
    if kind == "supplement" and event and event.get("requested"):  # exactly what the window asked for
        rows = {m["name"]: m for m in (item.get("material_rows") or materials)}
        lacking = [rows.get(name, {"name": name}) for name in event["requested"]]
    centre = centre_of(case.get("township_name"))
    return render_template(
        f"notices/{kind}.html",
        case=case,
        kind=kind,
        notice=KINDS[kind],
        event=event or {},
        item=item,
        issuer=issuer_of(event, item, case) if event else centre,
        applicant=_applicant(case),
        received=[m for m in materials if m.get("received")],
        lacking=lacking,
        station=station_name(case.get("village_name")) if case.get("village") else None,
        centre=centre,
        qr_text=f"办件 {case['number']} 查询码 {case['query_code']}",
    )


@bp.get("/print/item/<task_code>")
@require()
def item_guide(task_code: str) -> Any:
    try:
        item = catalog.show_item(workspace(), task_code)
    except NotFoundError:
        return _not_found("事项清单中没有这个事项。(no such item)")
    return render_template("notices/item.html", item=item, notice="一次性告知单")


def _month() -> str:
    month = (request.args.get("month") or "").strip() or today().strftime("%Y-%m")
    if not _MONTH.match(month):
        raise ValidationError(f"月份格式不对：{month[:20]} (month must be YYYY-MM)", hint="例如 2026-11")
    return month


def _month_text(month: str) -> str:
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def _villages(ws: Workspace) -> tuple[str | None, bool]:
    """Which village a list is for: a village's own; at a township, ?village=… or every village (None)."""
    if ws.role == "village":
        return ws.config.node_id, True
    chosen = (request.args.get("village") or "").strip() or None
    return chosen, chosen is not None


@bp.get("/print/ledger")
@require()
def ledger() -> Any:
    ws = workspace()
    month = _month()
    village, single = _villages(ws)
    if single:
        groups = [(village, ledgers.ledger(ws, month=month, village=village))]
    else:  # a township: one sheet per village that has proxy cases this month
        site = current_app.extensions["sanji_site"]
        names: dict[str, str] = site.place_names() or {}
        order = sorted(names, key=lambda v: names[v])
        groups = [(v, rows) for v in order if (rows := ledgers.ledger(ws, month=month, village=v))]
        if not groups:
            groups = [(None, ledgers.ledger(ws, month=month))]
    return render_template("notices/ledger.html", groups=groups, month=month, month_text=_month_text(month))


@bp.get("/print/roster")
@require()
def roster() -> Any:
    ws = workspace()
    month = _month()
    village, single = _villages(ws)
    rows = ledgers.roster(ws, month=month, village=village)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["village"], []).append(r)
    if single and village is not None and not groups:
        groups[village] = []
    return render_template(
        "notices/roster.html", groups=list(groups.items()), month=month, month_text=_month_text(month)
    )


def register_notices(app: Flask) -> None:
    """Mount the printouts on a node's app (after `init_pages`)."""
    app.register_blueprint(bp)
