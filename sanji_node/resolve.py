"""At the laptop: taking the county's decision on a fork of its own feed (docs/protocol.md §8.7).

When a `fork.resolve` for one of this node's own feeds has arrived and the
feed is still frozen here (this copy holds the other branch):

1. the own entries past the last seq the parent holds with our hash (the
   stranded entries, `sanji_node.branch`) are set aside in `fork_stash`
   (bodies sealed again where the laptop seals at rest) and removed from the
   feed and from the domain tables; the feed is unfrozen at that mark;
2. a sync pulls the canonical branch from the parent (an ordinary
   continuation of the feed now);
3. each stranded domain record is re-issued as a new entry after the
   canonical head, same kind and key, with `reissue_of` (the original entry's
   hash); a case whose local number another case now holds gets a new one and
   keeps the old as `original_local_no`; a record whose content is already on
   the canonical branch is not re-issued;
4. the next sync pushes them.
"""

from __future__ import annotations

from typing import Any

import orjson

from sanji_domain import kinds
from sanji_domain.commands import next_local_numbers
from sanji_domain.fold import refold_cases
from sync_protocol import faults
from sync_protocol.entries import Entry, Record
from sync_protocol.errors import SequenceError
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from . import branch, state

REISSUE_FIELDS = ("reissue_of", "original_local_no")
REISSUABLE = (kinds.CASE_NEW, kinds.CASE_EVENT, kinds.EVALUATION, kinds.ROSTER)


def ensure_table(store: Store) -> None:
    store.conn.execute(
        "CREATE TABLE IF NOT EXISTS fork_stash (feed TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, "
        "hlc INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, "
        "resolution_seq INTEGER NOT NULL, reissued_seq INTEGER, skipped INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (feed, seq, hash)) WITHOUT ROWID"
    )


def decided_own_forks(store: Store, author: str) -> list[str]:
    """Own feeds in doubt here (frozen, forked, or found diverged by a sync: a laptop ahead of its parent is
    not frozen) for which the county's decision has arrived and this copy does not hold the canonical entry."""
    doubtful = branch.doubtful_feeds(store, author)
    decided = {r["feed"] for r in store.resolutions() if r["node"] == author and r["feed"] in doubtful}
    return sorted(f for f in decided if not _holds_newest_decision(store, f))


def _holds_newest_decision(store: Store, feed: str) -> bool:
    """This copy holds the canonical entry of the county's newest decision on `feed` (holding an older
    decision's is not enough: a laptop restored again forks again after it, and that fork is decided anew)."""
    newest = max(store.resolutions(feed), key=lambda r: r["seq"])
    row = store.conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?", (feed, newest["seq"])).fetchone()
    return row is not None and bytes(row[0]) == bytes(newest["hash"])


def set_aside(store: Store, author: str, feed: str) -> int:
    """Step 1: move the stranded entries of `feed` to `fork_stash`; the feed continues from the parent's mark."""
    ensure_table(store)
    mark = branch.held_marks(store, author).get(feed, 0)
    decision = max(r["seq"] for r in store.resolutions(feed))
    stranded = store.entries(feed, mark + 1)
    seal = store.seal
    with store.db.atomic():
        for e in stranded:
            body = e.body if seal is None else seal.seal(e.body, f"fork_stash#{feed}#{e.seq}".encode())
            store.conn.execute(
                "INSERT OR IGNORE INTO fork_stash (feed, seq, hash, hlc, kind, key, body, resolution_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (feed, e.seq, e.hash, e.hlc, e.kind, e.key, body, decision),
            )
        _forget_domain(store, feed, mark, stranded)
        store.conn.execute("DELETE FROM entries WHERE feed = ? AND seq > ?", (feed, mark))
        store.conn.execute("DELETE FROM heads WHERE feed = ? AND seq > ?", (feed, mark))
        if mark:
            (digest,) = store.conn.execute(
                "SELECT hash FROM entries WHERE feed = ? AND seq = ?", (feed, mark)
            ).fetchone()
            store.conn.execute(
                "UPDATE feeds SET seq = ?, hash = ?, frozen = 0, frozen_reason = NULL WHERE feed = ?",
                (mark, digest, feed),
            )
        else:
            store.conn.execute("DELETE FROM feeds WHERE feed = ?", (feed,))
        store.conn.execute(
            "UPDATE forks SET resolved_seq = ? WHERE feed = ? AND resolved_seq IS NULL", (decision, feed)
        )
        faults.point("resolve")
    faults.point("resolve")
    forked = {f for f in state.get_state(store).get("forked_feeds", "").split(",") if f and f != feed}
    state.set_state(store, forked_feeds=",".join(sorted(forked)))
    return len(stranded)


def _forget_domain(store: Store, feed: str, mark: int, stranded: list[Entry]) -> None:
    conn = store.conn
    cases = [e.key for e in stranded if e.kind == kinds.CASE_NEW]
    conn.execute("DELETE FROM case_events WHERE feed = ? AND seq > ?", (feed, mark))
    conn.execute("DELETE FROM fold_rejects WHERE feed = ? AND seq > ?", (feed, mark))
    for cid in cases:
        conn.execute("DELETE FROM cases WHERE case_id = ? AND feed = ? AND seq > ?", (cid, feed, mark))
        conn.execute("DELETE FROM case_pii WHERE case_id = ? AND case_id NOT IN (SELECT case_id FROM cases)", (cid,))
    evaluations = [e.key for e in stranded if e.kind == kinds.EVALUATION]
    for eid in evaluations:
        conn.execute("DELETE FROM evaluations WHERE evaluation_id = ?", (eid,))
    touched = {e.key for e in stranded if e.kind == kinds.CASE_EVENT} - set(cases)
    if touched:
        refold_cases(conn, touched)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in REISSUE_FIELDS}
    return value


def _on_canonical(store: Store, feed: str, kind: str, key: str, value: Any) -> bool:
    """The same record (kind, key, body without the re-issue fields) is already in the feed."""
    rows = store.conn.execute("SELECT seq FROM entries WHERE feed = ? AND kind = ? AND key = ?", (feed, kind, key))
    seqs = [s for (s,) in rows.fetchall()]
    return any(_plain(e.value) == _plain(value) for s in seqs for e in store.entries(feed, s, s))


def _reissued(store: Store, feed: str, kind: str, key: str, original: str) -> int | None:
    """The seq of the entry already re-issued from the entry with hash `original`, if there is one."""
    rows = store.conn.execute("SELECT seq FROM entries WHERE feed = ? AND kind = ? AND key = ?", (feed, kind, key))
    for (s,) in rows.fetchall():
        value = store.entries(feed, s, s)[0].value
        if isinstance(value, dict) and value.get("reissue_of") == original:
            return int(s)
    return None


def reissue(store: Store, key: SigningKey, division: str, now_us: int) -> int:
    """Step 3: re-issue what was set aside and is not on the canonical branch; returns how many."""
    ensure_table(store)
    rows = store.conn.execute(
        "SELECT feed, seq, hash, kind, key, body FROM fork_stash WHERE reissued_seq IS NULL AND skipped = 0 "
        "ORDER BY feed, seq"
    ).fetchall()
    seal = store.seal
    n = 0
    for feed, seq, digest, kind, rkey, body in rows:
        if seal is not None:
            body = seal.open(body, f"fork_stash#{feed}#{seq}".encode())
        value = orjson.loads(body) if body else None  # (a purged body: nothing to re-issue)
        done = _reissued(store, feed, kind, rkey, bytes(digest).hex())
        if done is not None:  # appended, then the process died before this row was marked: never twice
            store.conn.execute("UPDATE fork_stash SET reissued_seq = ? WHERE feed = ? AND seq = ?", (done, feed, seq))
            store.conn.commit()
            continue
        if kind not in REISSUABLE or not isinstance(value, dict) or _on_canonical(store, feed, kind, rkey, value):
            store.conn.execute("UPDATE fork_stash SET skipped = 1 WHERE feed = ? AND seq = ?", (feed, seq))
            store.conn.commit()
            continue
        new = {**value, "reissue_of": bytes(digest).hex()}
        if kind == kinds.CASE_NEW and value.get("local_no"):
            taken = store.conn.execute(
                "SELECT 1 FROM cases WHERE local_no = ? AND case_id != ?", (value["local_no"], rkey)
            ).fetchone()
            if taken:
                new["original_local_no"] = value["local_no"]
                day = str(value["local_no"]).rsplit("-", 2)[-2] if str(value["local_no"]).count("-") >= 2 else ""
                new["local_no"] = next_local_numbers(store.conn, division, day, 1)[0]
        entries, _ = store.append(key, feed, [Record(kind, rkey, new, now_us + n)])
        faults.point("resolve")
        store.conn.execute(
            "UPDATE fork_stash SET reissued_seq = ? WHERE feed = ? AND seq = ?", (entries[0].seq, feed, seq)
        )
        store.conn.commit()
        n += 1
    return n


def pending(store: Store) -> int:
    """Records set aside and not yet re-issued (nor found on the canonical branch)."""
    ensure_table(store)
    (n,) = store.conn.execute("SELECT COUNT(*) FROM fork_stash WHERE reissued_seq IS NULL AND skipped = 0").fetchone()
    return int(n)


def refusal() -> SequenceError:
    """A write refused while a decision is half applied (our branch set aside, not yet re-issued)."""
    return SequenceError(
        "本机正在按县级的分叉裁决恢复日志，另一分支上的记录还没有重新登记，暂不写入"
        " (a fork decision is being applied; not written)",
        hint="接通网络后运行 sync（或在「同步」页点「立即同步」），成功后即可登记",
    )


def stash_view(store: Store) -> list[dict[str, Any]]:
    ensure_table(store)
    return list(
        store.db.query(
            "SELECT feed, seq, kind, key, resolution_seq, reissued_seq, skipped FROM fork_stash ORDER BY seq"
        )
    )
