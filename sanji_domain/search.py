"""Finding cases the way people ask for them: by name, 身份证号, case number or 查询码, a page at a time.

A villager who asks "how is my case going?" knows their name, their ID
number, or the 收件凭证 with its number and 查询码. `find_cases` takes one
search text and works out which of these it is; filters (state, village, dates)
and the order (newest first, or most urgent first) apply on top, and only the
page asked for is built in full (clock, applicant).

查询码 (`query_code`) is six digits derived from the case's UUID: it is as
secret as the UUID (which never appears on a printed page), needs no storage
or protocol field, and is the same at every node that holds the case. The
window's 进度查询 asks for the case number *and* the 查询码, so a guessed
number alone shows nothing.

Personal data on a village laptop is sealed: the search opens it row by row
with the caller's `opener` (a village holds hundreds of cases). At a township
or the county it is plain JSON, so a substring test in SQL narrows the rows
before they are decoded and checked field by field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

import orjson

from .commands import CST
from .errors import ValidationError
from .states import OPEN_STATES, STATE_LABELS
from .views import (
    _CASE_SELECT,
    Opener,
    _applicants,
    _case_summary,
    _dicts,
    _ms_range,
    _pauses,
    _state_code,
    _Where,
    calendar,
    clock_of,
    clock_settings,
    to_local_date,
)
from .workdays import WorkCalendar, promise_date, remaining_workdays

_ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]")
_CASE_NO = re.compile(r"[0-9]{6,}-[0-9]{8}-[0-9]+|[0-9]{14,}")
_QUERY_CODE = re.compile(r"[0-9]{6}")
ORDERS = ("newest", "urgent")
# the cases whose latest applied event (in the fold's order) was recorded by a person (`by`)
_HANDLED_BY = (
    "c.case_id IN (SELECT e.case_id FROM case_events e WHERE e.conflict IS NULL AND json_extract(e.body, '$.by') = ? "
    "AND NOT EXISTS (SELECT 1 FROM case_events l WHERE l.case_id = e.case_id AND l.conflict IS NULL "
    "AND (l.hlc, l.author, l.feed, l.seq) > (e.hlc, e.author, e.feed, e.seq)))"
)
MAX_PAGE = 200


def query_code(case_id: str) -> str:
    """The case's six-digit 查询码, printed on the 收件凭证."""
    digest = hashlib.sha256(b"sanji-query-code\x00" + case_id.encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


@dataclass(frozen=True)
class CaseFilter:
    """What a list or a search asks for; every field optional."""

    text: str | None = None  # name, 身份证号, case number (local or 办件编号) or 查询码
    state: str | None = None  # a state code or its label; "open" for every open state
    village: str | None = None
    township: str | None = None
    item: str | None = None  # 实施编码
    date_from: date | None = None  # filed on or after
    date_to: date | None = None  # filed on or before
    order: str = "newest"
    states: tuple[str, ...] = ()  # any of these states (codes or labels), on top of `state`
    handled_by: str | None = None  # the person (`by`) who recorded the case's latest applied event
    county_copies: bool = True  # False: leave out the county case a 转报 opened (its origin case stands for it)


def _text_terms(w: _Where, text: str) -> tuple[str, str] | None:
    """Add the SQL terms a number-like text implies; return (kind, value) for the personal-data kinds."""
    t = text.strip().replace(" ", "")
    if _ID_NUMBER.fullmatch(t):
        return ("id_number", t.upper())
    if _CASE_NO.fullmatch(t):
        w.add("(c.local_no = ? OR c.official_no = ?)", t, t)
        return None
    if _QUERY_CODE.fullmatch(t):
        return ("query_code", t)
    return ("name", text.strip())


def _pii_matches(conn: Any, kind: str, value: str, opener: Opener | None) -> set[str]:
    """Case ids whose applicant's name contains `value`, or whose 身份证号 is `value`."""
    rows = conn.execute(
        "SELECT c.case_id, c.origin_case_id FROM cases c JOIN case_pii p "
        "ON p.case_id = COALESCE(c.origin_case_id, c.case_id) "
        "WHERE p.purged_ms IS NULL AND (p.sealed = 1 OR instr(CAST(p.data AS TEXT), ?) > 0)",
        (value,),
    ).fetchall()
    ids = [r[0] for r in rows]
    found = set()
    for case_id, applicant in _applicants(conn, ids, opener).items():
        if not isinstance(applicant, dict):
            continue
        field = str(applicant.get(kind) or "")
        if (kind == "name" and value in field) or (kind == "id_number" and field.upper() == value):
            found.add(case_id)
    return found


def find_cases(
    conn: Any,
    f: CaseFilter,
    *,
    today: date,
    offset: int = 0,
    limit: int = 20,
    opener: Opener | None = None,
    minute: int | None = None,
    tz: tzinfo = CST,
) -> dict[str, Any]:
    """One page of the cases matching `f`: {"total", "offset", "limit", "rows"}; each row is a case summary
    (as `views.list_cases` gives) with the applicant's name and the 查询码. `minute` (now, minutes after
    midnight) applies the 即办件 rule to the clocks shown (`clock_of`)."""
    if f.order not in ORDERS:
        raise ValidationError(f"排序须为 {'/'.join(ORDERS)} (got {f.order!r})")
    if type(offset) is not int or offset < 0 or type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"分页参数不对: offset ≥ 0，limit 1–{MAX_PAGE}")
    w = _Where()
    w.eq("c.village", f.village)
    w.eq("c.township", f.township)
    w.eq("c.item_code", f.item)
    if f.state == "open":
        w.add(f"c.state IN ({','.join('?' * len(OPEN_STATES))})", *sorted(OPEN_STATES))
    elif f.state:
        w.eq("c.state", _state_code(f.state))
    if f.states:
        codes = sorted({_state_code(s) for s in f.states})
        w.add(f"c.state IN ({','.join('?' * len(codes))})", *codes)
    if not f.county_copies:
        w.add("c.origin_case_id IS NULL")
    if f.handled_by:
        w.add(_HANDLED_BY, f.handled_by)
    if f.date_from or f.date_to:
        lo, hi = _ms_range(f.date_from or date(1970, 1, 2), f.date_to or date(9999, 12, 30), tz)
        w.add("c.filed_ms >= ? AND c.filed_ms < ?", lo, hi)
    wanted: set[str] | None = None
    if f.text and f.text.strip():
        personal = _text_terms(w, f.text)
        if personal is not None:
            kind, value = personal
            if kind == "query_code":
                ids = [r[0] for r in conn.execute("SELECT case_id FROM cases")]
                wanted = {i for i in ids if query_code(i) == value}
            else:
                wanted = _pii_matches(conn, kind, value, opener)
    if wanted is not None:
        if not wanted:
            return {"total": 0, "offset": offset, "limit": limit, "rows": []}
        w.add("c.case_id IN (SELECT value FROM json_each(?))", orjson.dumps(sorted(wanted)).decode())
    cal, cs = calendar(conn), clock_settings(conn)
    if f.order == "newest":
        total = conn.execute("SELECT COUNT(*) FROM cases c" + w.sql, w.params).fetchone()[0]
        page = _dicts(
            conn.execute(
                _CASE_SELECT + w.sql + " ORDER BY c.filed_ms DESC, c.case_id LIMIT ? OFFSET ?",
                [*w.params, limit, offset],
            )
        )
        rows = [_case_summary(r, clock_of(r, cal, cs, today, tz=tz, minute=minute), tz) for r in page]
    else:  # most urgent first: fewest working days left, overdue first, cases without a clock last
        order = _urgent_order(conn, w, cal, today, tz)
        total, ids = len(order), order[offset : offset + limit]
        found = {
            r["case_id"]: r
            for r in _dicts(
                conn.execute(
                    _CASE_SELECT + " WHERE c.case_id IN (SELECT value FROM json_each(?))", (orjson.dumps(ids).decode(),)
                )
            )
        }
        rows = [_case_summary(found[i], clock_of(found[i], cal, cs, today, tz=tz, minute=minute), tz) for i in ids]
    names = _applicants(conn, [r["case_id"] for r in rows], opener)
    for r in rows:
        a = names.get(r["case_id"])
        r["applicant_name"] = a.get("name", "") if isinstance(a, dict) else (a or "")
        r["query_code"] = query_code(r["case_id"])
        r["state_label"] = STATE_LABELS.get(r["state"], r["state"])
    return {"total": total, "offset": offset, "limit": limit, "rows": rows}


# what the most-urgent order needs of every matching case: no body, no names, no summary
_URGENCY_SELECT = (
    "SELECT c.case_id, c.filed_ms, c.state, c.accepted_ms, c.completed_ms, c.promised_days, c.pauses, "
    "l.pauses FROM cases c LEFT JOIN cases l ON l.case_id = c.linked_case_id"
)


def _urgent_order(conn: Any, w: _Where, cal: WorkCalendar, today: date, tz: tzinfo) -> list[str]:
    """The matching case ids, most urgent first: open cases by working days left (overdue first), then
    the cases without a running clock (not accepted yet, or closed); newer first, then by case id.

    The order needs every matching case (a township's inbox holds thousands) but of each only the
    working days left, which is what `clock_of` gives as `remaining` (the same branches and the same
    `promise_date`), computed from the clock columns alone and once per distinct (accepted day, time
    limit, pauses): cases accepted on the same day for items with the same time limit share it.
    Only the page is then built in full.
    """
    days_left: dict[tuple[date, int, Any, Any], int] = {}
    keys: list[tuple[int, int, int, str]] = []
    for case_id, filed_ms, state, accepted_ms, completed_ms, promised, pauses, linked in conn.execute(
        _URGENCY_SELECT + w.sql, w.params
    ):
        if accepted_ms is None or completed_ms is not None or state not in OPEN_STATES:
            keys.append((1, 0, -filed_ms, case_id))
            continue
        accepted = to_local_date(accepted_ms, tz)
        memo = (accepted, int(promised or 0), pauses, linked)
        left = days_left.get(memo)
        if left is None:
            spans = _pauses(pauses, tz) + _pauses(linked, tz)
            promise = promise_date(accepted, int(promised or 0), spans, cal, today)
            left = days_left[memo] = remaining_workdays(today, promise, cal)
        keys.append((0, left, -filed_ms, case_id))
    keys.sort()
    return [k[3] for k in keys]
