"""The rejects view: entries the fold kept but refused (`fold_rejects`), as a county officer reads them.

An entry that is signed and part of its feed but claims what its author may
not (sanji_domain.claims), or lacks what the domain needs, changes no state;
it is listed here, next to the conflicts (`views.conflicts`), by
`case conflicts` on every node that holds it.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

from . import kinds, places
from .commands import CST
from .views import to_local_datetime

KIND_LABELS = {
    kinds.CASE_NEW: "办件登记",
    kinds.CASE_EVENT: "办件操作",
    kinds.CASE_NUMBER: "办件编号",
    kinds.EVALUATION: "评价",
    kinds.RECTIFICATION: "整改",
    kinds.ROSTER: "值班表",
    kinds.NODE_CONTACT: "联络报告",
    kinds.CARD_ISSUE: "发牌",
    kinds.CARD_REVOKE: "撤牌",
    kinds.SUPERVISION_NOTICE: "督办",
    kinds.SUPERVISION_ACK: "督办签收",
    "sync.receipt": "县级回执",
}


def listed(conn: Any, *, tz: tzinfo = CST) -> list[dict[str, Any]]:
    """Every entry the fold kept but refused (`fold_rejects`): who wrote what, and why it changes nothing.

    Names, not ids: the author and the nodes the reason mentions are shown by their display names; for a
    refused `case.new` the case that holds the id (`owner_name`, `local_no`) is beside it."""
    has_entries = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
    stamp = "(SELECT e.hlc FROM entries e WHERE e.feed = r.feed AND e.seq = r.seq)" if has_entries else "NULL"
    cur = conn.execute(
        f"SELECT r.feed, r.seq, r.kind, r.key, r.reason, {stamp} AS hlc, c.author AS owner, c.local_no "
        "FROM fold_rejects r LEFT JOIN cases c ON c.case_id = r.key AND r.kind = 'case.new' "
        "ORDER BY hlc, r.feed, r.seq"
    )
    known = places.names(conn)
    ids = sorted((n for n in known if known[n] != n), key=len, reverse=True)
    named = re.compile("|".join(rf"(?<![\w-]){re.escape(n)}(?![\w-])" for n in ids)) if ids else None
    out = []
    for row in [dict(zip([c[0] for c in cur.description], r, strict=True)) for r in cur.fetchall()]:
        row["author"] = row["feed"].split("/", 1)[0]
        row["author_name"] = places.label(known, row["author"])
        row["owner_name"] = places.label(known, row["owner"])
        row["kind_label"] = KIND_LABELS.get(row["kind"], row["kind"])
        hlc = row.pop("hlc")
        row["at"] = to_local_datetime(hlc // 1000, tz).strftime("%Y-%m-%d %H:%M") if hlc else None
        if named is not None:
            row["reason"] = named.sub(lambda m: known[m.group(0)], row["reason"])
        out.append(row)
    return out
