"""What the parent and the county hold of this node's own feeds, on this node's own branch.

A receipt (已送达乡镇 from the parent's acks, 县级已接收 from the county's
`sync.receipt` entries) says "I hold feed F up to seq S, whose hash is H". It
covers this node's entries 1..S only if this node's entry at S has hash H: the
chain then makes every earlier entry the same too. A laptop restored from an
old copy that wrote on offline holds, at the same seqs, entries the parent
never saw; a receipt for those seqs names the other branch and must not count.

So a mark is the highest seq at which the parent (or the county) was seen
holding *our* hash:

- the parent's latest ack (`parent_acks`), if we hold its seq with its hash;
- `ack_marks`, the seq of the latest ack that named our hash (an ack for seqs
  beyond our head, or on the other branch, leaves it as it was; an ack on our
  branch sets it, lower too: the parent's answers are signed, protocol.md
  §10.2, so a parent that proves it holds less is believed);
- the county's receipts (`receipt_times` keeps each one with its hash).

Receipts folded before the hash was kept (hash NULL) count only while the feed
is neither forked nor frozen here. What lies past the mark in a forked or
frozen own feed is *stranded*: kept on this laptop, held by nobody above.
"""

from __future__ import annotations

from collections.abc import Iterable

from sync_protocol.sqlite_store import Store

from . import state


def _own(feed: str, author: str) -> bool:
    return feed.split("/", 1)[0] == author


def doubtful_feeds(store: Store, author: str) -> set[str]:
    """Own feeds that are frozen here, forked here (and not yet decided by the county), or that a sync found
    diverged from the parent's."""
    said = {f for f in state.get_state(store).get("forked_feeds", "").split(",") if f}
    found = {f["feed"] for f in store.forks() if f["resolved_seq"] is None} | set(store.frozen_feeds())
    return {f for f in said | found if _own(f, author)}


def receipted_marks(store: Store, author: str, doubtful: Iterable[str] | None = None) -> dict[str, int]:
    """县级已接收 on our branch: per own feed, the highest county receipt whose hash matches our entry."""
    doubt = set(doubtful_feeds(store, author) if doubtful is None else doubtful)
    rows = store.conn.execute(
        "SELECT r.feed, r.seq, r.hash IS NULL FROM receipt_times r JOIN entries e ON e.feed = r.feed AND e.seq = r.seq "
        "WHERE substr(r.feed, 1, ?) = ? AND (r.hash = e.hash OR r.hash IS NULL)",
        (len(author) + 1, author + "/"),
    ).fetchall()
    out: dict[str, int] = {}
    for feed, seq, legacy in rows:
        if legacy and feed in doubt:
            continue  # a receipt that names no hash: not trusted where two branches exist
        out[feed] = max(out.get(feed, 0), seq)
    return out


def held_marks(store: Store, author: str, receipted: dict[str, int] | None = None) -> dict[str, int]:
    """已送达上级 on our branch: per own feed, the highest seq the parent (or the county) holds with our hash."""
    out = dict(receipted if receipted is not None else receipted_marks(store, author))
    for feed, seq in store.conn.execute("SELECT feed, seq FROM ack_marks").fetchall():
        if _own(feed, author):
            out[feed] = max(out.get(feed, 0), seq)
    rows = store.conn.execute(
        "SELECT a.feed, a.seq FROM parent_acks a JOIN entries e ON e.feed = a.feed AND e.seq = a.seq "
        "WHERE a.hash = e.hash"
    ).fetchall()
    for feed, seq in rows:
        if _own(feed, author):
            out[feed] = max(out.get(feed, 0), seq)
    return out


def stranded(store: Store, author: str, held: dict[str, int] | None = None) -> dict[str, int]:
    """Own entries past the parent's mark in forked or frozen own feeds: on this laptop only, not confirmed."""
    marks = held if held is not None else held_marks(store, author)
    vector = store.vector()
    out = {}
    for feed in sorted(doubtful_feeds(store, author)):
        n = vector.get(feed, (0, b""))[0] - marks.get(feed, 0)
        if n > 0:
            out[feed] = n
    return out
