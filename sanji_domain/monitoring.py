"""电子监察 across the county: the open cases that are overdue or carded, with their township, village,
item and clerk by name, and the totals by each of those (the county's 电子监察 page renders this).

A case is listed when it is open (an open state, accepted, not a 转报's county copy) and either
**overdue** (its clock reads 红牌: today is after its promise date, pauses counted, `views.clock_of`) or
**carded** (it holds a 预警, 黄牌 or 红牌 not revoked). Its **clerk** is who accepted it (受理人: the
`by` of its newest 受理 event), or （未记录） when no name was recorded; a window case has no village
(（乡镇窗口）). Totals count each listed case once per group: listed, overdue, carded, and carded by its
highest card.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, tzinfo
from typing import Any

import orjson

from . import places
from .commands import CST
from .states import OPEN_STATES, STATE_LABELS
from .views import calendar, clock_of, clock_settings
from .workdays import EARLY_WARNING, RED_CARD, YELLOW_CARD

CARD_ORDER = (EARLY_WARNING, YELLOW_CARD, RED_CARD)  # lowest first
NO_CLERK, WINDOW = "（未记录）", "（乡镇窗口）"
GROUPS = (("township", "township_name"), ("village", "village_name"), ("item", "item_name"), ("clerk", "clerk"))


def _clerks(conn: Any, case_ids: list[str]) -> dict[str, str]:
    """case_id → who accepted it (the newest 受理 event that names someone), for the cases listed only."""
    out: dict[str, str] = {}
    for i in range(0, len(case_ids), 500):
        chunk = case_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for case_id, body in conn.execute(
            "SELECT case_id, body FROM case_events WHERE action = 'accept' AND conflict IS NULL "
            f"AND case_id IN ({marks}) ORDER BY hlc, feed, seq",
            chunk,
        ):
            by = orjson.loads(body).get("by")
            if isinstance(by, str) and by:
                out[case_id] = by
    return out


def overdue_and_carded(conn: Any, *, today: date, minute: int | None = None, tz: tzinfo = CST) -> dict[str, Any]:
    """`rows`: one per open case overdue or carded, most overdue first; `totals`: by township, village, item
    and clerk (each a list of {name, cases, overdue, carded, 预警, 黄牌, 红牌}, by name) and `all`."""
    cal, cs = calendar(conn), clock_settings(conn)
    cards: dict[str, set[str]] = defaultdict(set)
    for case_id, level in conn.execute("SELECT case_id, level FROM cards WHERE revoked_ms IS NULL"):
        cards[case_id].add(level)
    known = places.names(conn)
    marks = ",".join("?" * len(OPEN_STATES))
    cur = conn.execute(
        "SELECT c.*, l.pauses AS linked_pauses, l.state AS linked_state FROM cases c "
        "LEFT JOIN cases l ON l.case_id = c.linked_case_id "
        f"WHERE c.origin_case_id IS NULL AND c.accepted_ms IS NOT NULL AND c.state IN ({marks})",
        sorted(OPEN_STATES),
    )
    cols = [c[0] for c in cur.description]
    rows = []
    for row in (dict(zip(cols, r, strict=True)) for r in cur.fetchall()):
        clock = clock_of(row, cal, cs, today, tz=tz, minute=minute)
        held = cards.get(row["case_id"], set())
        overdue = clock.warning == RED_CARD
        if not overdue and not held:
            continue
        top = max(held, key=CARD_ORDER.index) if held else None
        rows.append(
            {
                "case_id": row["case_id"],
                "case_no": row["official_no"] or row["local_no"],
                "township_name": places.label(known, row["township"]),
                "village_name": places.label(known, row["village"]) or WINDOW,
                "item_name": row["item_name"] or row["item_code"],
                "clerk": NO_CLERK,
                "state_label": STATE_LABELS.get(row["state"], row["state"]),
                "clock": clock.label,
                "promise_date": clock.promise.isoformat() if clock.promise else None,
                "remaining_days": clock.remaining,
                "overdue": overdue,
                "cards": [lv for lv in CARD_ORDER if lv in held],
                "card": top,
            }
        )
    clerks = _clerks(conn, [r["case_id"] for r in rows])
    for r in rows:
        r["clerk"] = clerks.get(r["case_id"], NO_CLERK)
    rows.sort(key=lambda r: (r["remaining_days"] if r["remaining_days"] is not None else 0, r["case_no"] or ""))
    return {"rows": rows, "totals": _totals(rows), "all": _count(rows)}


def _count(rows: list[dict[str, Any]]) -> dict[str, int]:
    top = Counter(r["card"] for r in rows if r["card"])
    return {
        "cases": len(rows),
        "overdue": sum(r["overdue"] for r in rows),
        "carded": sum(bool(r["cards"]) for r in rows),
        **{lv: top[lv] for lv in CARD_ORDER},
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for group, field in GROUPS:
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by[r[field]].append(r)
        out[group] = [{"name": name, **_count(by[name])} for name in sorted(by)]
    return out
