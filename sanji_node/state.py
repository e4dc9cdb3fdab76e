"""Node tables beside the protocol's: sync state, what the parent holds, who was seen.

Same SQLite file as the entries, their own migration set. Small key/value rows,
written by the sync session and the sync API, read by `status` and `nodes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain.fold import DomainFold, refold_all
from sanji_domain.schema import domain_migrations
from sync_protocol.entries import Entry
from sync_protocol.planning import Vector
from sync_protocol.sqlite_store import FoldHook, Seal, Store

from .config import DataDir, NodeConfig

BUSY_TIMEOUT_ENV = "SANJI_BUSY_TIMEOUT_MS"
log = logging.getLogger("sanji.fold")

node_migrations = Migrations("sanji.node")


@node_migrations()
def m001_node_state(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE parent_acks (feed TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL, at_ms INTEGER NOT NULL)"
    )
    db.execute(
        "CREATE TABLE peers (node TEXT PRIMARY KEY, last_seen_ms INTEGER NOT NULL, last_action TEXT NOT NULL, "
        "pushes INTEGER NOT NULL DEFAULT 0, pulls INTEGER NOT NULL DEFAULT 0)"
    )


@node_migrations()
def m002_peer_vectors(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE peer_vectors (node TEXT NOT NULL, feed TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, "
        "PRIMARY KEY (node, feed)) WITHOUT ROWID"
    )


@node_migrations()
def m003_resent(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE peers ADD COLUMN resent_batches INTEGER NOT NULL DEFAULT 0")


def record_resent(store: Store, node: str, batches: int) -> None:
    """Batches a child pushed that were already held here (sent twice): should stay near zero."""
    if batches:
        with store.db.atomic():
            store.conn.execute("UPDATE peers SET resent_batches = resent_batches + ? WHERE node = ?", (batches, node))


KIND_RECEIPT = "sync.receipt"
RECEIPT_FORGED = "只有县级能写回执 sync.receipt (only the county writes a receipt)"


@node_migrations()
def m004_receipt_marks(db: sqlite_utils.Database) -> None:
    """The newest county receipt per feed, folded from `sync.receipt` entries (so nobody scans them)."""
    db.execute("CREATE TABLE receipt_marks (feed TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID")
    db.execute(
        "INSERT INTO receipt_marks (feed, seq) SELECT key, MAX(json_extract(CAST(body AS TEXT), '$.seq')) "
        "FROM entries WHERE kind = ? AND json_valid(CAST(body AS TEXT)) GROUP BY key",
        (KIND_RECEIPT,),
    )


@node_migrations()
def m005_receipt_times(db: sqlite_utils.Database) -> None:
    """When each county receipt was given: a village purges personal data some days after (sanji_node.purge)."""
    db.execute(
        "CREATE TABLE receipt_times (feed TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL, "
        "PRIMARY KEY (feed, seq)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT OR IGNORE INTO receipt_times (feed, seq, at_ms) "
        "SELECT key, json_extract(CAST(body AS TEXT), '$.seq'), hlc / 1000 FROM entries "
        "WHERE kind = ? AND json_valid(CAST(body AS TEXT))",
        (KIND_RECEIPT,),
    )


@node_migrations()
def m006_peer_own_heads(db: sqlite_utils.Database) -> None:
    """A child's heads of the feeds it writes, as it last said (hello or pull): what waits on it to go up."""
    db.execute(
        "CREATE TABLE peer_own_heads (node TEXT NOT NULL, feed TEXT NOT NULL, seq INTEGER NOT NULL, "
        "at_ms INTEGER NOT NULL, PRIMARY KEY (node, feed)) WITHOUT ROWID"
    )
    db.execute("ALTER TABLE peers ADD COLUMN own_heads_ms INTEGER")  # when it last said (it may write nothing yet)


@node_migrations()
def m007_branch_marks(db: sqlite_utils.Database) -> None:
    """Receipts and acks that count only on this node's own branch (sanji_node.branch): keep their hashes."""
    db.execute("ALTER TABLE receipt_times ADD COLUMN hash BLOB")
    db.execute("CREATE TABLE ack_marks (feed TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID")
    db.execute(
        "INSERT INTO ack_marks (feed, seq) SELECT a.feed, a.seq FROM parent_acks a "
        "JOIN entries e ON e.feed = a.feed AND e.seq = a.seq WHERE e.hash = a.hash"
    )


def _receipt_hash(value: dict[str, Any]) -> bytes | None:
    try:
        return bytes.fromhex(value["hash"]) if isinstance(value.get("hash"), str) else None
    except ValueError:
        return None


def fold_receipts(db: sqlite_utils.Database, entries: list[Entry]) -> None:
    """Keep `receipt_marks` and `receipt_times` in step with the receipts, in the same transaction."""
    receipts = [e for e in entries if e.kind == KIND_RECEIPT and isinstance(e.value, dict)]
    if receipts:
        # 县级已接收 is the county's word: a receipt in any other author's feed (a township's `T/V`) is a reject
        root = db.conn.execute("SELECT value FROM meta WHERE key = 'root_node'").fetchone()
        forged = [e for e in receipts if root is None or e.feed.split("/", 1)[0] != root[0]]
        if forged:
            db.conn.executemany(
                "INSERT OR IGNORE INTO fold_rejects (feed, seq, kind, key, reason) VALUES (?, ?, ?, ?, ?)",
                [(e.feed, e.seq, e.kind, e.key, RECEIPT_FORGED) for e in forged],
            )
            receipts = [e for e in receipts if e not in forged]
    if receipts:
        db.conn.executemany(
            "INSERT INTO receipt_marks (feed, seq) VALUES (?, ?) "
            "ON CONFLICT (feed) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            [(e.key, e.value["seq"]) for e in receipts],
        )
        db.conn.executemany(
            "INSERT OR IGNORE INTO receipt_times (feed, seq, at_ms, hash) VALUES (?, ?, ?, ?)",
            [(e.key, e.value["seq"], e.hlc // 1000, _receipt_hash(e.value)) for e in receipts],
        )


def receipt_marks(store: Store, author: str) -> dict[str, int]:
    """县级已接收: the county's newest receipt for each feed `author` writes."""
    rows = store.conn.execute(
        "SELECT feed, seq FROM receipt_marks WHERE substr(feed, 1, ?) = ?", (len(author) + 1, author + "/")
    )
    return dict(rows.fetchall())


def node_fold(domain: DomainFold, extra: FoldHook | None = None) -> FoldHook:
    """The node's folds in order (the receipts', the domain's, the program's); every entry of the call they keep
    as a reject (`fold_rejects`: a claim its author may not make) or a conflict (a case event its author may not
    take) is logged, without its body."""

    def folds(db: sqlite_utils.Database, entries: list[Entry]) -> None:
        fold_receipts(db, entries)
        domain(db, entries)
        if extra is not None:
            extra(db, entries)
        spans: dict[str, tuple[int, int]] = {}
        for e in entries:
            lo, hi = spans.get(e.feed, (e.seq, e.seq))
            spans[e.feed] = (min(lo, e.seq), max(hi, e.seq))
        for feed, (lo, hi) in spans.items():
            for seq, kind, reason in db.conn.execute(
                "SELECT seq, kind, reason FROM fold_rejects WHERE feed = ? AND seq BETWEEN ? AND ?", (feed, lo, hi)
            ):
                log.warning("reject %s#%d %s: %s", feed, seq, kind, reason[:300])
            for seq, reason in db.conn.execute(
                "SELECT seq, conflict FROM case_events WHERE feed = ? AND seq BETWEEN ? AND ? AND conflict IS NOT NULL",
                (feed, lo, hi),
            ):
                log.warning("conflict %s#%d case.event: %s", feed, seq, str(reason)[:300])

    return folds


def open_store(
    data: DataDir,
    config: NodeConfig,
    *,
    fold: FoldHook | None = None,
    extra: Callable[[Store], None] | None = None,
    sealer: Seal | None = None,
) -> Store:
    """The node's store, migrated, with its trust anchor set: the node's folds, then the domain's.

    `sealer` (a village laptop) seals entry bodies and personal data at rest.
    """
    domain = DomainFold(sealer)
    store = Store(data.db_path, fold=node_fold(domain, fold), seal=sealer)
    busy_ms = os.environ.get(BUSY_TIMEOUT_ENV, "")
    if busy_ms.isascii() and busy_ms.isdigit():  # how long to wait for another process's write lock (default 30 s)
        store.conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    tables = set(store.db.table_names())
    node_migrations.apply(store.db)
    upgrading = "nodes" not in store.db.table_names() and store.count() > 0
    domain_migrations.apply(store.db)
    if upgrading:  # entries stored before the domain tables existed: fold them once
        with store.db.atomic():
            refold_all(store.db, domain, [e for f in store.vector() for e in store.entries(f) if e.value is not None])
    elif sealer is not None and "nodes" in tables:
        # sealed bodies: the migrations could not read what the new tables need from the entries
        kinds = ({"case.number"} if "case_numbers" not in tables else set()) | (
            {KIND_RECEIPT} if "ack_marks" not in tables else set()
        )
        if kinds:
            _refold_sealed(store, domain, kinds)
    if extra is not None:
        extra(store)
    if store.trust_or_none() is None:
        store.set_trust(config.trust)
    if store.node_id is None:
        store.set_node(config.node_id)
    return store


def _refold_sealed(store: Store, domain: DomainFold, kinds: set[str]) -> None:
    """Once, after an upgrade: fill `case_numbers` and the receipts' hashes from a laptop's sealed entries."""
    marks = ",".join("?" * len(kinds))
    feeds = [r[0] for r in store.conn.execute(f"SELECT DISTINCT feed FROM entries WHERE kind IN ({marks})", [*kinds])]
    found = [e for f in feeds for e in store.entries(f) if e.kind in kinds and isinstance(e.value, dict)]
    with store.db.atomic():
        domain(store.db, [e for e in found if e.kind != KIND_RECEIPT])
        store.conn.executemany(
            "UPDATE receipt_times SET hash = ? WHERE feed = ? AND seq = ? AND hash IS NULL",
            [(_receipt_hash(e.value), e.key, e.value.get("seq")) for e in found if e.kind == KIND_RECEIPT],
        )


def set_state(store: Store, **values: Any) -> None:
    with store.db.atomic():
        for k, v in values.items():
            store.conn.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)", (k, str(v)))


def get_state(store: Store) -> dict[str, str]:
    return dict(store.conn.execute("SELECT key, value FROM sync_state").fetchall())


def record_acks(store: Store, vector: Vector, now_ms: int, absent: Iterable[str] = ()) -> None:
    """What the parent said, in an answer signed by its key, it holds of these feeds (已送达): recorded as said,
    lower than before too (a parent restored from an old copy holds less; a forged answer never got here).
    `absent`: feeds the parent said it holds nothing of."""
    gone = sorted(set(absent) - set(vector))
    if not vector and not gone:
        return
    with store.db.atomic():
        store.conn.executemany(
            "INSERT INTO parent_acks (feed, seq, hash, at_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (feed) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at_ms = excluded.at_ms",
            [(f, seq, h, now_ms) for f, (seq, h) in vector.items()],
        )
        # the seq the parent holds with *our* hash (sanji_node.branch), as it now says: an ack for the other
        # branch of a forked feed, or for seqs a restored laptop does not hold, leaves the mark as it was
        store.conn.executemany(
            "INSERT INTO ack_marks (feed, seq) SELECT e.feed, e.seq FROM entries e WHERE e.feed = ? AND e.seq = ? "
            "AND e.hash = ? ON CONFLICT (feed) DO UPDATE SET seq = excluded.seq",
            [(f, seq, h) for f, (seq, h) in vector.items()],
        )
        for table in ("parent_acks", "ack_marks"):
            store.conn.executemany(f"DELETE FROM {table} WHERE feed = ?", [(f,) for f in gone])


def parent_acks(store: Store) -> dict[str, int]:
    return dict(store.conn.execute("SELECT feed, seq FROM parent_acks").fetchall())


def record_peer_vector(store: Store, node: str, vector: Vector) -> None:
    """What a child holds, as it last said (its pull, or a hello whose digest matched): the base of its backlog."""
    with store.db.atomic():
        store.conn.execute("DELETE FROM peer_vectors WHERE node = ?", (node,))
        store.conn.executemany(
            "INSERT INTO peer_vectors (node, feed, seq, hash) VALUES (?, ?, ?, ?)",
            [(node, f, seq, h) for f, (seq, h) in vector.items()],
        )


def peer_vector(store: Store, node: str) -> Vector:
    """What a child said it held at its last pull from this node (empty if it never pulled here)."""
    rows = store.conn.execute("SELECT feed, seq, hash FROM peer_vectors WHERE node = ?", (node,)).fetchall()
    return {f: (seq, bytes(h)) for f, seq, h in rows}


def record_own_heads(store: Store, node: str, vector: Vector, now_ms: int) -> None:
    """What a child said it holds of the feeds it writes (only those: the rest of a claim is not kept)."""
    mine = [(node, f, seq, now_ms) for f, (seq, _h) in vector.items() if f.split("/", 1)[0] == node]
    with store.db.atomic():
        store.conn.execute("DELETE FROM peer_own_heads WHERE node = ?", (node,))
        store.conn.executemany("INSERT INTO peer_own_heads (node, feed, seq, at_ms) VALUES (?, ?, ?, ?)", mine)
        store.conn.execute("UPDATE peers SET own_heads_ms = ? WHERE node = ?", (now_ms, node))


def waiting_on(store: Store, node: str) -> tuple[int, int] | None:
    """(entries, at_ms): what `node` held of its own feeds and this node did not, as the child last said (hello
    or pull); None if it never said."""
    said = store.conn.execute("SELECT own_heads_ms FROM peers WHERE node = ?", (node,)).fetchone()
    if said is None or said[0] is None:
        return None
    rows = store.conn.execute(
        "SELECT h.seq, COALESCE(f.seq, 0) FROM peer_own_heads h LEFT JOIN feeds f ON f.feed = h.feed WHERE h.node = ?",
        (node,),
    ).fetchall()
    return sum(max(0, seq - held) for seq, held in rows), int(said[0])


def backlog(store: Store, node: str, should_hold: Callable[[str], bool]) -> tuple[int, int | None]:
    """Entries this node holds that `node` should hold but had not as it last said (a matching hello or a
    pull), and the oldest one's hlc."""
    theirs = dict(store.conn.execute("SELECT feed, seq FROM peer_vectors WHERE node = ?", (node,)).fetchall())
    count, oldest = 0, None
    for feed, seq in store.conn.execute("SELECT feed, seq FROM feeds").fetchall():
        have = theirs.get(feed, 0)
        if seq > have and should_hold(feed):
            count += seq - have
            row = store.conn.execute("SELECT hlc FROM entries WHERE feed = ? AND seq = ?", (feed, have + 1)).fetchone()
            if row and (oldest is None or row[0] < oldest):
                oldest = row[0]
    return count, oldest


def record_peer(store: Store, node: str, action: str, now_ms: int) -> None:
    col = {"push": "pushes", "pull": "pulls"}.get(action)
    bump = f", {col} = {col} + 1" if col else ""
    with store.db.atomic():
        store.conn.execute(
            "INSERT INTO peers (node, last_seen_ms, last_action, pushes, pulls) VALUES (?, ?, ?, ?, ?) "
            f"ON CONFLICT (node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, last_action = excluded.last_action{bump}",
            (node, now_ms, action, int(action == "push"), int(action == "pull")),
        )
