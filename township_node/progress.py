"""进度查询: what a villager at the window may learn of their case from its number and 查询码.

The number alone shows nothing: both the case number (the local number on the
收件凭证, or the county's 办件编号) and the six-digit 查询码 must match, and any
mismatch answers the same 未找到, so a guess never learns whether a number
exists. What is shown is what the 收件凭证 already says plus the progress:
the item, the state, each step with its date, the promised date, and the
applicant's surname with the rest masked (张**). No ID number, phone,
address, village or clerk name.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from sanji_domain.search import CaseFilter
from sanji_node.actions import cases
from sanji_node.workspace import Workspace

_NUMBER = re.compile(r"[0-9]{6,}-[0-9]{8}-[0-9]+(-县)?|[0-9]{14,}")
_CODE = re.compile(r"[0-9]{6}")


def masked(name: Any) -> str:
    """The surname and a * for every other character: 张** (— when there is no name)."""
    text = str(name or "").strip() if isinstance(name, str) else ""
    return text[0] + "*" * max(1, len(text) - 1) if text else "—"


def normalise(number: str, code: str) -> tuple[str, str]:
    return "".join(str(number or "").split()), "".join(str(code or "").split())


def lookup(ws: Workspace, number: str, code: str) -> dict[str, Any] | None:
    """The public progress of the case with this number and 查询码; None for any mismatch."""
    number, code = normalise(number, code)
    if not _NUMBER.fullmatch(number) or not _CODE.fullmatch(code):
        return None
    page = cases.find_cases(ws, CaseFilter(text=number), limit=10)
    row = next(
        (
            r
            for r in page["rows"]
            if number in (r["local_no"], r["official_no"]) and hmac.compare_digest(r["query_code"], code)
        ),
        None,
    )
    if row is None:
        return None
    detail = cases.show_case(ws, row["case_id"])
    if detail.get("origin_case") and detail.get("origin_case_id"):  # the county's copy: show the villager's case
        detail = cases.show_case(ws, detail["origin_case_id"])
    applicant = detail.get("applicant")
    steps = [
        {"day": (e.get("at") or "")[:10], "label": e["action_label"], "after": e.get("after_label")}
        for e in detail["events"]
        if not e.get("conflict")
    ]
    linked = detail.get("linked_case")
    return {
        "number": detail["number"],
        "item_name": detail["item_name"],
        "state_label": detail["state_label"],
        "filed_date": detail["filed_date"],
        "accepted_date": detail.get("accepted_date"),
        "promise_date": detail.get("promise_date"),
        "completed_date": detail.get("completed_date"),
        "clock": detail.get("clock"),
        "paused": detail.get("paused"),
        "surname": masked(applicant.get("name") if isinstance(applicant, dict) else None),
        "steps": steps,
        "county_state_label": linked["state_label"] if linked else None,
    }
