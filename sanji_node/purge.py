"""Purging villagers' personal data from the laptop once the county holds the case (ARCHITECTURE §3).

The county's receipts (`sync.receipt` in `county/<village>`) say up to which
entry of `<village>/up` the county has committed, and when. A case filed here
whose entry a receipt covers, older than the county's rule allows, loses its
personal data on this laptop: the entry body (sealed anyway) is emptied by the
store, and the case's `case_pii` row is cleared. The hash chain, the state and
the ledger row stay; the county keeps the full record.
"""

from __future__ import annotations

from typing import Any

from sanji_domain import commands, pii
from sync_protocol.sqlite_store import Store

from .state import KIND_RECEIPT


def rule(store: Store) -> pii.PurgeRule:
    return pii.PurgeRule.from_settings(commands.settings(store.conn))


def _receipts(store: Store, node: str) -> list[tuple[int, int]]:
    """(seq of <node>/up receipted, when in ms), in seq order."""
    feed = f"{store.trust.root_node}/{node}"
    up = f"{node}/up"
    out = [
        (int(e.value["seq"]), e.hlc // 1000)
        for e in store.entries(feed)
        if e.kind == KIND_RECEIPT and isinstance(e.value, dict) and e.value.get("feed") == up
    ]
    return sorted(out)


def candidates(store: Store, node: str) -> list[pii.PurgeCandidate]:
    """Every case filed here whose personal data is still on the laptop, with its receipt time (or None)."""
    receipts = _receipts(store, node)
    out: list[pii.PurgeCandidate] = []
    rows = store.conn.execute(
        "SELECT c.case_id, c.feed, c.seq FROM cases c JOIN case_pii p ON p.case_id = c.case_id "
        "WHERE c.feed = ? AND c.origin_case_id IS NULL AND p.purged_ms IS NULL ORDER BY c.seq",
        (f"{node}/up",),
    ).fetchall()
    i = 0
    for case_id, feed, seq in rows:
        while i < len(receipts) and receipts[i][0] < seq:
            i += 1
        out.append((case_id, feed, seq, receipts[i][1] if i < len(receipts) else None))
    return out


def status(store: Store, node: str, now_ms: int) -> dict[str, Any]:
    r = rule(store)
    cands = candidates(store, node)
    purged = store.conn.execute("SELECT COUNT(*) FROM case_pii WHERE purged_ms IS NOT NULL").fetchone()[0]
    return {
        "rule": r.describe(),
        "enabled": r.enabled,
        "after_days": r.after_days,
        "kept": len(cands),
        "kept_not_receipted": sum(1 for c in cands if c[3] is None),
        "due": len(pii.due_for_purge(cands, r, now_ms)),
        "purged": purged,
    }


def purge_due(store: Store, node: str, now_ms: int) -> int:
    """Purge what the rule says is due; return how many cases lost their personal data here."""
    r = rule(store)
    due = pii.due_for_purge(candidates(store, node), r, now_ms)
    if not due:
        return 0
    receipts = _receipts(store, node)
    bound = receipts[-1][0] if receipts else 0
    store.purge_bodies(f"{node}/up", [seq for _, _, seq, _ in due], r.describe(), bound=bound)
    with store.db.atomic():
        store.conn.executemany(
            "UPDATE case_pii SET data = NULL, purged_ms = ? WHERE case_id = ?", [(now_ms, cid) for cid, *_ in due]
        )
    return len(due)
