"""Forks a township found on its villages' feeds, reported up to the county (`fork.evidence`, protocol §8.8).

The township is where a restored laptop's other branch arrives; the county
must see it to decide (`county-server resolve-fork`). Before each sync up (and
each bundle for the county) the township writes, in its own up feed, the
evidence of every batch of another branch it kept and has not reported yet:
both signed heads, the fork point and the batch itself (sync_protocol.evidence).
The county checks it like any batch and lists the fork in `forks` and `nodes`
after the township's next sync. Each batch is reported once.
"""

from __future__ import annotations

from sanji_domain.commands import stamps
from sync_protocol.entries import Record
from sync_protocol.evidence import KIND_FORK_EVIDENCE, evidence_bodies
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store


def report_forks(store: Store, key: SigningKey, township: str, now_ms: int) -> int:
    """Write the evidence of each unreported batch of another branch (one commit per batch); return how many
    batches were reported."""
    feed = f"{township}/up"
    n = 0
    for row in store.unreported_fork_batches():
        bodies = evidence_bodies(
            feed=row["feed"],
            fork_at=row["fork_at"],
            found_ms=row["found_ms"],
            local_hash=row["local_hash"],
            held=row["held"],
            batch=row["batch"],
        )
        hlcs = stamps(store.conn, feed, now_ms, len(bodies))
        store.append(
            key, feed, [Record(KIND_FORK_EVIDENCE, row["feed"], b, h) for b, h in zip(bodies, hlcs, strict=True)]
        )
        store.mark_fork_batch_reported(row["sha256"])
        n += 1
    return n
