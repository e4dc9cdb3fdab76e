"""Cases (办件): file, find, show, move through their states, and list conflicts."""

from __future__ import annotations

from datetime import date
from typing import Any

from sanji_domain import commands, search, views
from sanji_domain import rejects as domain_rejects
from sanji_domain.search import CaseFilter
from sanji_domain.states import ACTIONS, NODE_ROLE_ACTOR, acting_role

from ..workspace import Workspace, now_ms


def file_cases(ws: Workspace, requests: list[Any], *, person: str | None = None) -> list[dict[str, Any]]:
    """收件: file one or more cases, all or none; returns [{case_id, local_no, state, query_code}]."""
    (cmd,) = ws.write(lambda conn, actor: commands.new_cases(conn, actor, requests, now_ms=now_ms()), person)
    made: list[dict[str, Any]] = cmd.result["cases"]
    for c in made:
        c["query_code"] = search.query_code(c["case_id"])
    return made


def file_case(ws: Workspace, data: dict[str, Any], *, person: str | None = None) -> dict[str, Any]:
    return file_cases(ws, [data], person=person)[0]


def transition(
    ws: Workspace, ref: str, action: str, data: dict[str, Any] | None = None, *, person: str | None = None
) -> dict[str, Any]:
    """A state change (预受理, 受理, 补正, 不予受理, 办结, 送达, 转报, …): {case_id, local_no, action, from, to}."""
    (cmd,) = ws.write(
        lambda conn, actor: commands.transition(conn, actor, ref, action, data or {}, now_ms=now_ms()), person
    )
    return cmd.result


def list_cases(
    ws: Workspace,
    *,
    village: str | None = None,
    state: str | None = None,
    item: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    day, minute = _now()
    return ws.read(
        lambda conn: views.list_cases(
            conn, village=village, state=state, item=item, limit=limit, today=day, minute=minute
        )
    )


def _now() -> tuple[date, int]:
    """Today and the minute of the day (China time): a 即办件 accepted today reads 正常 until the working
    day ends (`views.clock_of`), in every list and case page, as the card scan judges it."""
    at = now_ms()
    return views.to_local_date(at), views.minute_of_day(at)


def find_cases(ws: Workspace, f: CaseFilter, *, offset: int = 0, limit: int = 20) -> dict[str, Any]:
    """One page of cases matching a filter or a search text (name, 身份证号, number, 查询码)."""
    day, minute = _now()
    return ws.read(
        lambda conn: search.find_cases(conn, f, today=day, minute=minute, offset=offset, limit=limit, opener=ws.opener)
    )


def show_case(ws: Workspace, ref: str) -> dict[str, Any]:
    """One case in full, with the 查询码, the actions this node may take on it now, and on each
    补正 event the materials it asked for (`asked_materials`)."""
    day, minute = _now()
    detail: dict[str, Any] = ws.read(
        lambda conn: views.show_case(conn, ref, today=day, minute=minute, opener=ws.opener)
    )
    detail["query_code"] = search.query_code(detail["case_id"])
    detail["actions"] = available_actions(ws, detail)
    _mark_asked_materials(detail)
    return detail


def _mark_asked_materials(detail: dict[str, Any]) -> None:
    """What each 补正 asked for: the materials the window named on the request (`requested`); for a request
    that named none, the required materials missing from the checklist in force at that event (as filed,
    or as the last applied event that carried one recorded it)."""
    missing = list(detail.get("missing") or [])
    for ev in detail.get("events", []):
        checklist = ev.get("materials")
        if not ev.get("conflict") and isinstance(checklist, list):
            missing = [m["name"] for m in checklist if m.get("required") and not m.get("received")]
        if ev.get("action") == "request_supplement":
            ev["asked_materials"] = list(ev.get("requested") or missing)


def role_actions(node_role: str) -> list[str]:
    """Every transition a node of this role (county, township, village) may take in some state, in order."""
    actor = NODE_ROLE_ACTOR[node_role]
    return [name for name, spec in ACTIONS.items() if any(actor in roles for roles in spec.sources.values())]


def available_actions(ws: Workspace, case: dict[str, Any]) -> list[dict[str, str]]:
    """The transitions this node's role may make on the case in its current state: [{action, label}]."""
    role = ws.actor().role
    if role == "agent" and case.get("village") != ws.config.node_id:
        return []
    acting = acting_role(role, _village_mode(ws, case))
    out = []
    for name, spec in ACTIONS.items():
        if acting in spec.sources.get(case["state"], ()):
            out.append({"action": name, "label": spec.label})
    return out


def _village_mode(ws: Workspace, case: dict[str, Any]) -> str | None:
    return ws.read(lambda conn: commands.case_village_mode(conn, case["case_id"]))


def open_duplicates(ws: Workspace, item: str, id_number: str) -> list[dict[str, Any]]:
    """Open cases of the same applicant (身份证号) for the same item: the form warns before filing another."""
    if not item or not id_number:
        return []
    page = find_cases(ws, CaseFilter(text=id_number, state="open"), limit=search.MAX_PAGE)
    code = ws.read(lambda conn: commands.item_code_of(conn, item))
    return [r for r in page["rows"] if r["item_code"] == code]


def conflicts(ws: Workspace) -> list[dict[str, Any]]:
    return ws.read(views.conflicts)


def rejects(ws: Workspace) -> list[dict[str, Any]]:
    """Entries kept but refused by the fold (a claim the author may not make, a body the domain cannot use)."""
    return ws.read(domain_rejects.listed)
