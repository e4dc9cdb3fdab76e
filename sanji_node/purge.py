"""Purging villagers' personal data from the laptop once the county holds the case (ARCHITECTURE §3).

The county's receipts (`sync.receipt` in `county/<village>`) say up to which
entry of `<village>/up` the county has committed, and when; only those whose
hash matches this laptop's entry count (`sanji_node.branch`), so a case a
restored laptop wrote on another branch keeps its personal data here. A case filed here
whose entry a receipt covers, older than the county's rule allows, loses its
personal data on this laptop: the entry body (sealed anyway) is emptied by the
store, and the case's `case_pii` row is cleared. The hash chain, the state and
the ledger row stay; the county keeps the full record.
"""

from __future__ import annotations

from typing import Any

from sanji_domain import commands, pii
from sync_protocol.sqlite_store import Store

from .branch import receipted_marks


def rule(store: Store) -> pii.PurgeRule:
    return pii.PurgeRule.from_settings(commands.settings(store.conn))


def candidates(store: Store, node: str) -> list[pii.PurgeCandidate]:
    """Every case filed here whose personal data is still on the laptop, with its receipt time (or None).

    The time is that of the first county receipt that covers the case's entry (`receipt_times`, folded
    from the receipts as they arrive).
    """
    up = f"{node}/up"
    mark = receipted_marks(store, node).get(up, 0)  # receipts on this laptop's own branch only
    rows = store.conn.execute(
        "SELECT c.case_id, c.feed, c.seq, (SELECT MIN(r.at_ms) FROM receipt_times r WHERE r.feed = c.feed "
        "AND r.seq >= c.seq AND r.seq <= ?) FROM cases c JOIN case_pii p ON p.case_id = c.case_id "
        "WHERE c.feed = ? AND c.origin_case_id IS NULL AND p.purged_ms IS NULL ORDER BY c.seq",
        (mark, up),
    ).fetchall()
    return [(case_id, feed, seq, at_ms) for case_id, feed, seq, at_ms in rows]


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
    up = f"{node}/up"
    bound = receipted_marks(store, node).get(up, 0)
    store.purge_bodies(up, [seq for _, _, seq, _ in due], r.describe(), bound=bound)
    with store.db.atomic():
        store.conn.executemany(
            "UPDATE case_pii SET data = NULL, purged_ms = ? WHERE case_id = ?", [(now_ms, cid) for cid, *_ in due]
        )
    return len(due)
