"""SQLite store adapter: entries, feed heads, quarantine and forks.

This is an I/O adapter beside the pure core; the core never imports it.
sqlite-utils builds the schema and runs the migrations and queries; the apply
hot path calls `executemany` on its connection. Every change to a feed is
one transaction (`BEGIN IMMEDIATE` … `COMMIT`) that also runs the fold hook,
so the domain tables never disagree with the entries.

One `Store` per thread: open one per Flask request or scheduler job.

Sealing: a store opened with a `Seal` (the village laptop, where bodies carry
applicants' personal data) keeps every entry body, and every batch kept for
review, encrypted at rest, bound to its place (`feed#seq`) so a sealed value
cannot be moved to another row. Hashes are over the plain canonical body and
the wire carries plain bodies, so nothing else changes; without a seal the
write and read paths are exactly those of an unsealed store. `meta.sealed`
marks a sealed file, so it cannot be opened without the seal.

Purging: `purge_bodies` replaces bodies with an empty marker and records them
in `purged`; entries, hashes, vectors and heads stay, so chains still verify.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson
import sqlite_utils
from sqlite_utils.migrations import Migrations

from . import faults, files, writer_lock
from .batches import BATCH_OVERHEAD, ENTRY_OVERHEAD, PAGE_OVERHEAD, decode_page_prefix, encode_batch, entry_wire_size
from .bundle import BundleInfo, BundleWriter, check_bundle, iter_bundle
from .entries import Entry, Record, genesis_hash, make_entries
from .errors import AuthorizationError, BundleError, ProtocolError, SequenceError, StoreError, SyncError
from .evidence import KIND_FORK_EVIDENCE, Part, check_fork, check_part
from .feeds import check_node_id, feed_of
from .forks import KIND_FORK_RESOLVE, check_resolution
from .heads import SignedHead, decode_head, head_positions, sign_head
from .keys import PublicKey, SigningKey
from .limits import DEFAULT_LIMITS, Limits
from .membership import PROTOCOL_KINDS, Directory
from .planning import Range, Vector, cut_range, paginate, plan_ranges
from .routing import should_hold
from .verify import NO_HASHES, Checked, LocalFeed, Outcome, Status, Verdict, check_batch, classify
from .verify_pool import Membership, VerifyPool

log = logging.getLogger("sanji.store")
_REFUSED = (Status.REJECTED, Status.FORBIDDEN, Status.QUARANTINED, Status.FORK)

FoldHook = Callable[[sqlite_utils.Database, list[Entry]], None]


class Seal(Protocol):
    """Authenticated encryption of stored bytes, bound to their place (`aad`)."""

    scheme: str  # names the algorithm and format, recorded in `meta.sealed`

    def seal(self, plain: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """The plain bytes; raises a `SyncError` if they were sealed for another place or key, or damaged."""
        ...


SEAL_CHECK = b"sanji/seal-check/v1\n"  # sealed into meta.seal_check: proves the seal is this store's
PURGED = b""  # the body of a purged entry: never a canonical JSON value

migrations = Migrations("sanji.sync_protocol")


@migrations()
def m001_core(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.table("entries").create(
        {
            "id": int,
            "feed": str,
            "seq": int,
            "hash": bytes,
            "hlc": int,
            "kind": str,
            "key": str,
            "body": bytes,
        },
        pk="id",
        not_null={"feed", "seq", "hash", "hlc", "kind", "key", "body"},
    )
    db.execute("CREATE UNIQUE INDEX entries_feed_seq ON entries (feed, seq)")
    db.table("feeds").create(
        {"feed": str, "seq": int, "hash": bytes, "frozen": int, "frozen_reason": str},
        pk="feed",
        not_null={"seq", "hash", "frozen"},
        defaults={"frozen": 0},
    )
    db.execute(
        "CREATE TABLE heads (feed TEXT NOT NULL, seq INTEGER NOT NULL, head BLOB NOT NULL, PRIMARY KEY (feed, seq)) WITHOUT ROWID"
    )
    # review tables: one row per distinct batch or fork, however often it is delivered
    db.table("quarantine").create(
        {
            "id": int,
            "feed": str,
            "first_seq": int,
            "last_seq": int,
            "reason": str,
            "batch": bytes,
            "batch_sha256": bytes,
            "received_at": float,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX quarantine_once ON quarantine (feed, first_seq, last_seq, batch_sha256)")
    db.table("forks").create(
        {
            "id": int,
            "feed": str,
            "seq": int,
            "local_hash": bytes,
            "remote_hash": bytes,
            "reason": str,
            "batch": bytes,
            "detected_at": float,
        },
        pk="id",
    )
    db.execute("CREATE UNIQUE INDEX forks_once ON forks (feed, seq, remote_hash)")
    # every distinct batch of the other history, kept whole for the review
    db.execute(
        "CREATE TABLE fork_batches (batch_sha256 BLOB PRIMARY KEY, fork_id INTEGER NOT NULL REFERENCES forks (id), "
        "first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, batch BLOB NOT NULL, received_at REAL NOT NULL)"
    )


@migrations()
def m002_purged(db: sqlite_utils.Database) -> None:
    """Entries whose bodies were purged from this node (the county holds them)."""
    db.execute(
        "CREATE TABLE purged (feed TEXT NOT NULL, seq INTEGER NOT NULL, purged_at REAL NOT NULL, "
        "reason TEXT NOT NULL, PRIMARY KEY (feed, seq)) WITHOUT ROWID"
    )


@migrations()
def m003_fork_resolutions(db: sqlite_utils.Database) -> None:
    """The county's decisions on forks (`fork.resolve`, §8.7), and which fork each one settled."""
    db.execute(
        "CREATE TABLE fork_resolutions (feed TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, "
        "node TEXT NOT NULL, reason TEXT NOT NULL, decided_in TEXT NOT NULL, decided_seq INTEGER NOT NULL, "
        "PRIMARY KEY (feed, seq, hash)) WITHOUT ROWID"
    )
    db.execute("ALTER TABLE forks ADD COLUMN resolved_seq INTEGER")  # the canonical seq of the decision, else NULL


@migrations()
def m004_fork_evidence(db: sqlite_utils.Database) -> None:
    """Forks found by a child's relay and reported up (`fork.evidence`, §8.8), and what this relay reported."""
    db.execute("ALTER TABLE forks ADD COLUMN reported_by TEXT")  # the relay that found it; NULL: found here
    db.execute("ALTER TABLE fork_batches ADD COLUMN reported INTEGER NOT NULL DEFAULT 0")  # written as evidence
    db.execute(
        "CREATE TABLE fork_evidence_parts (sha256 BLOB NOT NULL, part INTEGER NOT NULL, parts INTEGER NOT NULL, "
        "reported_in TEXT NOT NULL, reported_seq INTEGER NOT NULL, data BLOB NOT NULL, "
        "PRIMARY KEY (sha256, part)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE fork_evidence_refused (reported_in TEXT NOT NULL, reported_seq INTEGER NOT NULL, "
        "reason TEXT NOT NULL, PRIMARY KEY (reported_in, reported_seq)) WITHOUT ROWID"
    )


@migrations()
def m005_request_nonces(db: sqlite_utils.Database) -> None:
    """Nonces of the signed requests this node accepted, kept for the replay window (`nonce_store`)."""
    db.execute("CREATE TABLE request_nonces (nonce TEXT PRIMARY KEY, at_ms INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("CREATE INDEX request_nonces_at ON request_nonces (at_ms)")


@migrations()
def m006_quarantine_decisions(db: sqlite_utils.Database) -> None:
    """The county's review of a quarantined batch (§5.6): released into its feed or refused; NULL: waiting."""
    db.execute("ALTER TABLE quarantine ADD COLUMN decision TEXT")
    db.execute("ALTER TABLE quarantine ADD COLUMN decided_at REAL")
    db.execute("ALTER TABLE quarantine ADD COLUMN decision_reason TEXT")


RELEASED, REFUSED = "released", "refused"  # `quarantine.decision`


def _damaged_bundle(name: str, e: BundleError) -> BundleError:
    detail = e.message.replace(f"{name}: ", "", 1).replace(name, "the file")  # the file is named once, first
    return BundleError(
        f"数据包 {name} 已损坏或不完整（可能没有拷完），无法导入；本机数据没有改动 ({detail})",
        hint="请在导出数据包的电脑上重新导出一份，等提示“已写出数据包”后再拔 U 盘，拷好后再导入；"
        "仍然不行时请联系县级信息管理员" + (f" ({e.hint})" if e.hint else ""),
    )


FROZEN_HINT = (
    "已有的数据都保存在本机，不会丢失。请联系县级信息管理员处理分叉；处理之前不要重装、恢复或删除本机的数据目录"
)


def frozen_message(feed: str) -> str:
    """A write refused on a feed frozen after a fork (typically a laptop restored from an old copy)."""
    return f"日志 {feed} 与上级记录不一致（分叉），已冻结，不能再写入 (feed {feed} is frozen after a fork)"


@dataclass(frozen=True)
class Trust:
    """The trust anchor a node is given at enrolment."""

    county: str
    root_node: str
    root_key: str  # hex


def _connect(path: str | Path | None) -> sqlite_utils.Database:
    if path is None or str(path) == ":memory:":
        db = sqlite_utils.Database(memory=True, execute_plugins=False)
    else:
        files.private_database(Path(path))
        conn = writer_lock.connect(path, timeout=30)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def log_refusals(verdict: Verdict) -> None:
    """Every batch refused, quarantined or found forked is logged where it is met: the feed, the seqs, the outcome
    and the reason (the reasons name feeds, nodes and hashes, never an entry's body)."""
    for o in verdict.outcomes:
        if o.status in _REFUSED:
            log.warning("%s %s#%d-%d: %s", o.status.value, o.feed or "?", o.first, o.last, o.reason[:300])


class Store:
    """One node's copy of its feeds, in one SQLite file."""

    def __init__(
        self,
        path: str | Path | None,
        *,
        fold: FoldHook | None = None,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
        directory_cache: dict[tuple[object, ...], Directory] | None = None,
        seal: Seal | None = None,
    ) -> None:
        self.db = _connect(path)
        self._path = None if path is None or str(path) == ":memory:" else str(Path(path).resolve())
        self.directory_cache = directory_cache
        self.conn = self.db.conn
        self.fold = fold
        self.limits = limits
        self.clock = clock
        self.seal = seal
        try:
            migrations.apply(self.db)
            self._check_seal()
        except BaseException:
            self.conn.close()
            raise
        self._trust: Trust | None = None
        self._node_id: str | None = None
        self._directory: Directory | None = None
        self._directory_seq = -1

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sealing -------------------------------------------------------------
    def _check_seal(self) -> None:
        """Refuse a sealed file without its seal, and an unsealed file with data under a seal."""
        query = "SELECT key, value FROM meta WHERE key IN ('sealed', 'seal_check')"
        marks = dict(self.conn.execute(query).fetchall())
        if self.seal is None:
            if "sealed" in marks:
                raise StoreError(
                    "this village's database is encrypted: give the agent's passphrase to open it",
                    hint="the node opens it with the key file pii.key and the agent's passphrase",
                )
            return
        if "sealed" not in marks:  # mark an empty store sealed, once
            self._begin()
            try:
                marks = dict(self.conn.execute(query).fetchall())
                if "sealed" not in marks:
                    if self.conn.execute(
                        "SELECT EXISTS (SELECT 1 FROM entries) OR EXISTS (SELECT 1 FROM quarantine) "
                        "OR EXISTS (SELECT 1 FROM forks)"
                    ).fetchone()[0]:
                        raise StoreError(
                            "this database already holds unencrypted entries: it cannot be encrypted in place",
                            hint="open it without a passphrase, or start a new data directory and sync it again",
                        )
                    check = self.seal.seal(SEAL_CHECK, b"meta#seal_check").hex()
                    marks = {"sealed": self.seal.scheme, "seal_check": check}
                    self.conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", marks.items())
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
        if marks["sealed"] != self.seal.scheme:
            raise StoreError(f"this database is encrypted with {marks['sealed']}, not {self.seal.scheme}")
        try:
            ok = self.seal.open(bytes.fromhex(marks.get("seal_check", "")), b"meta#seal_check") == SEAL_CHECK
        except (SyncError, ValueError) as e:
            raise StoreError(
                "the agent's key does not open this database", hint="use the key file made with this database"
            ) from e
        if not ok:
            raise StoreError("the agent's key does not open this database")

    def _sealed(self, blob: bytes, aad: str) -> bytes:
        return blob if self.seal is None else self.seal.seal(blob, aad.encode())

    def _body(self, feed: str, seq: int, body: bytes) -> bytes:
        """A stored body made plain again; raises StoreError for a purged one."""
        if body == PURGED:
            raise _purged_error(feed, seq)
        return body if self.seal is None else self.seal.open(body, f"{feed}#{seq}".encode())

    # -- trust anchor -------------------------------------------------------
    def set_trust(self, trust: Trust) -> None:
        PublicKey.from_hex(trust.root_key)
        existing = self.trust_or_none()
        if existing is not None and existing != trust:
            raise StoreError(
                "this database already belongs to another county or root key", hint="use a new data directory"
            )
        with self.db.atomic():
            for k, v in (("county", trust.county), ("root_node", trust.root_node), ("root_key", trust.root_key)):
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, v))
        self._trust = trust

    def set_node(self, node_id: str) -> None:
        """Name the node this store belongs to: then it refuses feeds the holding rule keeps from it."""
        check_node_id(node_id)
        existing = self.node_id
        if existing is not None and existing != node_id:
            raise StoreError(
                f"this database belongs to node {existing}, not {node_id}", hint="use the node's own data directory"
            )
        with self.db.atomic():
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('node', ?)", (node_id,))
        self._node_id = node_id

    @property
    def node_id(self) -> str | None:
        if self._node_id is None:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'node'").fetchone()
            self._node_id = row[0] if row else None
        return self._node_id

    def trust_or_none(self) -> Trust | None:
        if self._trust is None:
            rows = dict(
                self.conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('county','root_node','root_key')"
                ).fetchall()
            )
            if len(rows) == 3:
                self._trust = Trust(rows["county"], rows["root_node"], rows["root_key"])
        return self._trust

    @property
    def trust(self) -> Trust:
        t = self.trust_or_none()
        if t is None:
            raise StoreError("this store has no trust anchor yet", hint="initialise or enrol the node first")
        return t

    @property
    def county(self) -> str:
        return self.trust.county

    def directory(self) -> Directory:
        """The membership directory, folded from the county's public feed.

        Rebuilt only when a membership entry was written (`meta.membership_seq`
        changes in the same transaction), not whenever the county feed grows,
        and shared through `directory_cache` by the stores of one process.
        """
        t = self.trust
        version = self._membership_version()
        if self._directory is not None and self._directory_seq == version:
            return self._directory
        cache_key = (t.county, t.root_node, t.root_key, self._path, version)
        d = self.directory_cache.get(cache_key) if self.directory_cache is not None else None
        if d is None:
            d = Directory(t.county, t.root_node, PublicKey.from_hex(t.root_key))
            d.apply_all(self._membership_changes(f"{t.root_node}/*"))
            if self.directory_cache is not None and self._path is not None:
                self.directory_cache.clear()
                self.directory_cache[cache_key] = d
        self._directory, self._directory_seq = d, version
        return d

    def _membership_version(self) -> int:
        """The seq of the last membership entry: changes exactly when the directory does."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'membership_seq'").fetchone()
        return int(row[0]) if row else 0

    def membership(self) -> Membership:
        """The trust anchor and membership entries, as plain data (for worker processes)."""
        t = self.trust
        return (t.county, t.root_node, t.root_key, tuple(self._membership_changes(f"{t.root_node}/*")))

    def _membership_changes(self, feed: str, before: int = 2**62) -> list[tuple[str, Any]]:
        """(kind, body value) of the membership entries of the root feed before seq `before`, in order."""
        rows = self.conn.execute(
            "SELECT seq, kind, body FROM entries WHERE feed = ? AND kind IN (?, ?, ?) AND seq < ? ORDER BY seq",
            (feed, *PROTOCOL_KINDS, before),
        )
        return [(kind, orjson.loads(self._body(feed, seq, body))) for seq, kind, body in rows]

    def _feed_seq(self, feed: str) -> int:
        row = self.conn.execute("SELECT seq FROM feeds WHERE feed = ?", (feed,)).fetchone()
        return row[0] if row else 0

    # -- reading ----------------------------------------------------------
    def local_feed(self, feed: str) -> LocalFeed | None:
        row = self.conn.execute("SELECT seq, hash, frozen FROM feeds WHERE feed = ?", (feed,)).fetchone()
        return LocalFeed(row[0], row[1], bool(row[2])) if row else None

    def vector(self) -> Vector:
        return {feed: (seq, h) for feed, seq, h in self.conn.execute("SELECT feed, seq, hash FROM feeds ORDER BY feed")}

    def frozen_feeds(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT feed, frozen_reason FROM feeds WHERE frozen = 1").fetchall())

    def head(self, feed: str) -> SignedHead | None:
        row = self.conn.execute("SELECT head FROM heads WHERE feed = ? ORDER BY seq DESC LIMIT 1", (feed,)).fetchone()
        return decode_head(row[0]) if row else None

    def entries(self, feed: str, start: int = 1, end: int | None = None) -> list[Entry]:
        """Stored entries of a feed with their headers rebuilt and bodies decoded (not the hot path).

        A purged entry keeps its hash and header; its body is empty and its value None.
        """
        rows = self.conn.execute(
            "SELECT seq, hash, hlc, kind, key, body FROM entries WHERE feed = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (feed, start, end if end is not None else 2**62),
        ).fetchall()
        out: list[Entry] = []
        if not rows:
            return out
        prev = self._prev_of(feed, rows[0][0])
        seal = self.seal
        for seq, h, hlc, kind, key, body in rows:
            if seal is not None and body != PURGED:
                body = seal.open(body, f"{feed}#{seq}".encode())
            out.append(Entry(feed, seq, prev, hlc, kind, key, body, h, orjson.loads(body) if body else None))
            prev = h
        return out

    def _prev_of(self, feed: str, seq: int) -> bytes:
        if seq == 1:
            return genesis_hash(self.county, feed)
        row = self.conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?", (feed, seq - 1)).fetchone()
        if row is None:
            raise StoreError(f"{feed}#{seq - 1} is missing from the store")
        return bytes(row[0])

    def count(self, table: str = "entries") -> int:
        return self.db[table].count

    def _known_hashes(self, feed: str) -> Callable[[int, int], dict[int, bytes]]:
        def lookup(start: int, end: int) -> dict[int, bytes]:
            rows = self.conn.execute(
                "SELECT seq, hash FROM entries WHERE feed = ? AND seq BETWEEN ? AND ?", (feed, start, end)
            )
            return dict(rows.fetchall())

        return lookup

    # -- writing: one transaction per feed change ---------------------------
    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(
                f"the database is busy or read-only: {e}", hint="retry; if it persists, check the disk"
            ) from e

    def _write_entries(self, feed: str, entries: Sequence[Entry], heads: Sequence[SignedHead]) -> None:
        seal = self.seal
        if seal is None:
            rows = [(feed, e.seq, e.hash, e.hlc, e.kind, e.key, e.body) for e in entries]
        else:
            rows = [
                (feed, e.seq, e.hash, e.hlc, e.kind, e.key, seal.seal(e.body, f"{feed}#{e.seq}".encode()))
                for e in entries
            ]
        self.conn.executemany(
            "INSERT INTO entries (feed, seq, hash, hlc, kind, key, body) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        last = entries[-1]
        self.conn.execute(
            "INSERT INTO feeds (feed, seq, hash, frozen) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (feed) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (feed, last.seq, last.hash),
        )
        # an author's heads inside its commit, or the head of a received batch if its last entry was accepted
        held = [(feed, h.seq, h.encode()) for h in heads if entries[0].seq <= h.seq <= last.seq]
        if held:
            self.conn.executemany("INSERT INTO heads (feed, seq, head) VALUES (?, ?, ?)", held)
        self._fold_protocol(feed, entries)
        if self.fold is not None:
            self.fold(self.db, list(entries))

    def _fold_protocol(self, feed: str, entries: Sequence[Entry]) -> None:
        """Check membership changes against the directory before they commit."""
        t = self.trust_or_none()
        if t is None:
            return
        self._fold_resolutions(feed, entries)
        self._fold_evidence(feed, entries)
        changes = [(e.kind, e.value) for e in entries if e.kind in PROTOCOL_KINDS]
        if changes and feed != f"{t.root_node}/*":
            raise AuthorizationError(
                f"{changes[0][0]} is written only in the county's public feed {t.root_node}/*, not in {feed}"
            )
        if changes:
            d = self.directory()
            trial = Directory(d.county, d.root, d.root_key)
            trial.apply_all(self._membership_changes(feed, entries[0].seq))
            trial.apply_all(changes)  # raises on an invalid membership: the transaction rolls back
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('membership_seq', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(entries[-1].seq),),
            )
            self._directory = None

    def _fold_resolutions(self, feed: str, entries: Sequence[Entry]) -> None:
        """`fork.resolve` (§8.7): checked strictly (a bad one rolls the batch back), recorded, and the freeze
        lifted where this node's copy holds the canonical entry."""
        decisions = [e for e in entries if e.kind == KIND_FORK_RESOLVE]
        if not decisions:
            return
        directory = self.directory()
        for e in decisions:
            value = e.value if e.value is not None else orjson.loads(e.body)
            r = check_resolution(value, feed=feed, directory=directory)
            self.conn.execute(
                "INSERT OR IGNORE INTO fork_resolutions (feed, seq, hash, node, reason, decided_in, decided_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (r.feed, r.seq, r.hash, r.node, r.reason, feed, e.seq),
            )
            if self._holds(r.feed, r.seq, r.hash):
                self.conn.execute("UPDATE feeds SET frozen = 0, frozen_reason = NULL WHERE feed = ?", (r.feed,))
                self.conn.execute(
                    "UPDATE forks SET resolved_seq = ? WHERE feed = ? AND resolved_seq IS NULL", (r.seq, r.feed)
                )

    def _fold_evidence(self, feed: str, entries: Sequence[Entry]) -> None:
        """`fork.evidence` (§8.8) from a child relay: parts kept until the batch is whole, then checked as any
        batch and recorded as a fork the relay found (this copy is not frozen). A failing report is kept as
        refused with its reason; it never rolls the relay's batch back."""
        reports = [e for e in entries if e.kind == KIND_FORK_EVIDENCE]
        writer = feed.split("/", 1)[0]
        if not reports or writer == self.node_id:
            return
        directory = self.directory()
        for e in reports:
            try:
                part = check_part(e.value if e.value is not None else orjson.loads(e.body), writer=writer,
                                  directory=directory)  # fmt: skip
            except SyncError as err:
                self._refuse_report(feed, e.seq, err.message)
                continue
            self.conn.execute(
                "INSERT OR IGNORE INTO fork_evidence_parts (sha256, part, parts, reported_in, reported_seq, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (part.sha256, part.part, part.parts, feed, e.seq,
                 self._sealed(part.data, f"fork_evidence#{part.sha256.hex()}#{part.part}")),
            )  # fmt: skip
            self._record_reported_fork(feed, e.seq, part, directory)

    def _record_reported_fork(self, feed: str, seq: int, part: Part, directory: Directory) -> None:
        rows = self.conn.execute(
            "SELECT part, data FROM fork_evidence_parts WHERE sha256 = ? ORDER BY part", (part.sha256,)
        ).fetchall()
        if len(rows) < part.parts:
            return
        parts = [
            Part(part.feed, part.fork_at, part.found_ms, part.local_hash, part.held, part.sha256, int(i), part.parts,
                 self._opened(bytes(data), f"fork_evidence#{part.sha256.hex()}#{i}"))
            for i, data in rows
        ]  # fmt: skip
        try:
            fork = check_fork(parts, county=self.county, directory=directory)
        except SyncError as err:
            self._refuse_report(feed, seq, err.message)
            return
        writer = feed.split("/", 1)[0]
        self._record_fork(
            fork.feed, fork.fork_at, fork.local_hash, fork.remote_hash,
            f"reported by {writer}: two histories of {fork.feed} part at {fork.fork_at}", fork.batch, fork.first,
            fork.last, fork.found_ms / 1000, writer,
        )  # fmt: skip
        self.conn.execute("DELETE FROM fork_evidence_parts WHERE sha256 = ?", (part.sha256,))

    def _record_fork(
        self, feed: str, fork_at: int, local_hash: bytes, remote_hash: bytes, reason: str, batch: bytes,
        first: int, last: int, detected_at: float, reported_by: str | None,
    ) -> int:  # fmt: skip
        """Keep a fork and the batch of the other history (evidence for the review); a fork at or before the
        county's decision on the feed is marked settled by it. Returns the fork's id."""
        digest = hashlib.sha256(batch).digest()
        self.conn.execute(
            "INSERT OR IGNORE INTO forks (feed, seq, local_hash, remote_hash, reason, batch, detected_at, "
            "reported_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (feed, fork_at, local_hash, remote_hash, reason, self._sealed(batch, f"forks#{digest.hex()}"),
             detected_at, reported_by),
        )  # fmt: skip
        (fork_id,) = self.conn.execute(
            "SELECT id FROM forks WHERE feed = ? AND seq = ? AND remote_hash = ?", (feed, fork_at, remote_hash)
        ).fetchone()
        self.conn.execute(
            "INSERT OR IGNORE INTO fork_batches (batch_sha256, fork_id, first_seq, last_seq, batch, received_at, "
            "reported) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (digest, fork_id, first, last, self._sealed(batch, f"fork_batches#{digest.hex()}"), detected_at,
             int(reported_by is not None)),
        )  # fmt: skip
        settled = self.resolved_at(feed)
        if settled and fork_at <= settled:
            # the other branch of a fork the county already decided: kept as evidence, refused, and this copy
            # (on the canonical branch) stays open
            self.conn.execute(
                "UPDATE forks SET resolved_seq = ? WHERE id = ? AND resolved_seq IS NULL", (settled, fork_id)
            )
        return int(fork_id)

    def _refuse_report(self, feed: str, seq: int, reason: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO fork_evidence_refused (reported_in, reported_seq, reason) VALUES (?, ?, ?)",
            (feed, seq, reason),
        )

    def _opened(self, blob: bytes, aad: str) -> bytes:
        return blob if self.seal is None else self.seal.open(blob, aad.encode())

    def unreported_fork_batches(self) -> list[dict[str, Any]]:
        """The batches of other branches this relay kept and has not yet reported up (§8.8), oldest first,
        with what a report needs: the fork point, our hash there, when found, our newest signed head."""
        rows = self.conn.execute(
            "SELECT b.batch_sha256, b.batch, f.feed, f.seq, f.local_hash, f.detected_at FROM fork_batches b "
            "JOIN forks f ON f.id = b.fork_id WHERE b.reported = 0 AND f.reported_by IS NULL ORDER BY b.received_at"
        ).fetchall()
        out = []
        for digest, blob, feed, seq, local_hash, detected_at in rows:
            head = self.head(feed)
            if head is None:
                continue
            out.append(
                {
                    "sha256": bytes(digest),
                    "batch": self._opened(bytes(blob), f"fork_batches#{bytes(digest).hex()}"),
                    "feed": feed,
                    "fork_at": int(seq),
                    "local_hash": bytes(local_hash),
                    "found_ms": int(detected_at * 1000),
                    "held": head,
                }
            )
        return out

    def mark_fork_batch_reported(self, digest: bytes) -> None:
        self.conn.execute("UPDATE fork_batches SET reported = 1 WHERE batch_sha256 = ?", (digest,))
        self.conn.commit()

    def refused_fork_reports(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT reported_in, reported_seq, reason FROM fork_evidence_refused"))

    def _holds(self, feed: str, seq: int, digest: bytes) -> bool:
        row = self.conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?", (feed, seq)).fetchone()
        return row is not None and bytes(row[0]) == digest

    def resolved_at(self, feed: str) -> int:
        """The canonical seq of the newest county decision on `feed` that this copy follows (0: none)."""
        rows = self.conn.execute(
            "SELECT seq, hash FROM fork_resolutions WHERE feed = ? ORDER BY seq DESC", (feed,)
        ).fetchall()
        for seq, digest in rows:
            if self._holds(feed, seq, bytes(digest)):
                return int(seq)
        return 0

    def resolutions(self, feed: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE feed = ?", [feed]) if feed is not None else ("", [])
        return list(
            self.db.query(
                f"SELECT feed, seq, hash, node, reason, decided_in, decided_seq FROM fork_resolutions {where} "
                "ORDER BY decided_in, decided_seq",
                args,
            )
        )

    def append(
        self, key: SigningKey, feed: str, records: Iterable[Record], *, precondition: Callable[[], None] | None = None
    ) -> tuple[list[Entry], SignedHead]:
        """Author new entries on one of this node's own feeds and sign the head.

        A large commit gets heads inside it too (`head_positions`, §3.4), so that
        no run between two heads is more than `HEAD_SPAN_BYTES`; returns the last.
        `precondition`, if given, runs inside the write transaction before anything
        is written (it may read the store); if it raises, nothing is written.
        """
        recs = list(records)
        if not recs:
            raise ProtocolError("nothing to append")
        self._begin()
        return self._append_begun(key, feed, recs, precondition)

    def append_if(
        self, key: SigningKey, feed: str, build: Callable[[sqlite3.Connection], list[Record]]
    ) -> tuple[list[Entry], SignedHead | None]:
        """Check and write in one write transaction: `build(conn)` runs after `BEGIN IMMEDIATE` and returns
        the records to append (none: nothing is written). No other process or connection can write
        between what `build` read and the append, so a "write once" decision holds across processes."""
        self._begin()
        try:
            recs = list(build(self.conn))
        except BaseException:
            self.conn.rollback()
            raise
        if not recs:
            self.conn.rollback()
            return [], None
        return self._append_begun(key, feed, recs)

    def _append_begun(
        self, key: SigningKey, feed: str, recs: list[Record], precondition: Callable[[], None] | None = None
    ) -> tuple[list[Entry], SignedHead]:
        fid = feed_of(feed)
        county = self.county
        try:
            if precondition is not None:
                precondition()
            if len(recs) > self.limits.max_entries_per_batch:
                raise ProtocolError(
                    f"one commit may hold at most {self.limits.max_entries_per_batch} entries, not {len(recs)}",
                    hint="append in several commits",
                )
            local = self.local_feed(feed)
            if local is not None and local.frozen:
                raise SequenceError(frozen_message(feed), hint=FROZEN_HINT)
            directory = self.directory()
            author = directory.check_author(fid)
            if author.key.raw != key.public.raw:
                raise ProtocolError(f"this key is not the enrolled key of {fid.author}")
            entries = make_entries(
                county, feed, local.seq if local else 0, local.hash if local else None, recs, limits=self.limits
            )
            sizes = [entry_wire_size(e.kind, e.key, e.body) for e in entries]
            size = sum(sizes) + BATCH_OVERHEAD
            if size > self.limits.max_batch_bytes:
                raise ProtocolError(
                    f"one commit may hold at most {self.limits.max_batch_bytes} bytes, not {size}",
                    hint="append in several commits",
                )
            # heads inside the commit too (§3.4), so that a page can end there however large the commit
            heads = [sign_head(key, county, feed, entries[i].seq, entries[i].hash) for i in head_positions(sizes)]
            self._write_entries(feed, entries, heads)
            faults.point("append")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        faults.point("append")
        return entries, heads[-1]

    def receive(self, batch: bytes) -> Verdict:
        """Verify one batch and apply what is new, all in one transaction."""
        return self._receive_checked(batch, None)

    def _receive_in_transaction(self, batch: bytes, checked: Checked | None = None) -> Verdict:
        directory = self.directory()
        if checked is None:
            checked = check_batch(batch, county=self.county, directory=directory, limits=self.limits)
        else:
            checked = checked.expand(batch)
        feed = checked.feed
        me = self.node_id
        # the root's public feed is how every node learns the membership, so everyone takes it
        if (
            feed
            and me
            and checked.error is None
            and feed != directory.root_feed
            and not should_hold(me, feed, directory)
        ):
            err = AuthorizationError(
                f"{me} must not hold feed {feed}", hint="only the nodes the holding rule names receive a feed"
            )
            return Verdict(
                feed,
                checked.head,
                [Outcome(Status.FORBIDDEN, feed, checked.first, checked.last, err.message, error=err)],
            )
        verdict = classify(
            checked,
            directory=directory,
            local=self.local_feed(feed) if feed else None,
            known_hashes=self._known_hashes(feed) if feed else NO_HASHES,
        )
        now = self.clock()
        for o in verdict.outcomes:
            if o.status is Status.ACCEPTED:
                if self.fold is not None or feed == directory.root_feed:
                    for e in o.entries:
                        if e.value is None:  # checked in a worker: proven canonical, decode once more here
                            e.value = orjson.loads(e.body)
                self._write_entries(o.feed, o.entries, [verdict.head] if verdict.head else [])
            elif o.status is Status.QUARANTINED:
                digest = hashlib.sha256(batch).digest()
                self.conn.execute(
                    "INSERT OR IGNORE INTO quarantine (feed, first_seq, last_seq, reason, batch, batch_sha256, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (o.feed, o.first, o.last, o.reason, self._sealed(batch, f"quarantine#{digest.hex()}"), digest, now),
                )
            elif o.status is Status.FORK:
                assert o.fork_at is not None and o.local_hash is not None and o.remote_hash is not None
                self._record_fork(
                    o.feed, o.fork_at, o.local_hash, o.remote_hash, o.reason, batch, o.first, o.last, now, None
                )
                settled = self.resolved_at(o.feed)
                if not (settled and o.fork_at <= settled):
                    self.conn.execute(
                        "UPDATE feeds SET frozen = 1, frozen_reason = ? WHERE feed = ?", (o.reason, o.feed)
                    )
        log_refusals(verdict)
        return verdict

    def receive_many(self, batches: Sequence[bytes], pool: VerifyPool | None = None) -> list[Verdict]:
        """Receive batches in order, one transaction each; checked in `pool`'s workers if given.

        The outcome is exactly that of calling `receive` on each in turn. If a
        batch changes the membership, the batches after it are checked again
        here against the new directory.
        """
        if pool is None or len(batches) < 2:
            return [self.receive(b) for b in batches]
        version = self._membership_version()
        checked_batches = zip(batches, pool.check(batches, self.membership(), limits=self.limits), strict=True)
        if self.db.memory:
            return [
                self._receive_checked(b, None if self._membership_version() != version else c)
                for b, c in checked_batches
            ]
        # Pipeline: this thread collects and expands the workers' results while a writer
        # thread applies them in order (SQLite releases the GIL while it writes).
        todo: queue.Queue[tuple[bytes, Checked] | None] = queue.Queue(maxsize=4)
        out: list[Verdict] = []
        failure: list[BaseException] = []

        def writer() -> None:
            while (item := todo.get()) is not None:
                if failure:
                    continue  # drain after a failure; nothing more is applied
                batch, checked = item
                try:
                    stale = self._membership_version() != version  # checked against an older directory
                    out.append(self._receive_checked(batch, None if stale else checked))
                except BaseException as e:
                    failure.append(e)

        thread = threading.Thread(target=writer, name="sanji-apply", daemon=True)
        thread.start()
        try:
            for batch, checked in checked_batches:
                todo.put((batch, checked.expand(batch)))
                if failure:
                    break
        finally:
            todo.put(None)
            thread.join()
        if failure:
            raise failure[0]
        return out

    def _receive_checked(self, batch: bytes, checked: Checked | None) -> Verdict:
        self._begin()
        try:
            verdict = self._receive_in_transaction(batch, checked)
            faults.point("apply")
            self.conn.commit()
        except SyncError as e:
            self.conn.rollback()
            verdict = Verdict(None, None, [Outcome(Status.REJECTED, "", 0, 0, e.message, error=e)])
            log_refusals(verdict)
        except BaseException:
            self.conn.rollback()
            raise
        faults.point("apply")
        return verdict

    def receive_page(self, page: bytes) -> list[Verdict]:
        """Apply each batch of a page in order; a cut-short page keeps its whole batches."""
        batches, error = decode_page_prefix(page, limits=self.limits)
        out = [self.receive(b) for b in batches]
        if error is not None:
            out.append(Verdict(None, None, [Outcome(Status.REJECTED, "", 0, 0, error.message, error=error)]))
            log_refusals(out[-1])
        return out

    # -- what to send --------------------------------------------------------
    def commits(self, rng: Range) -> list[tuple[int, int]]:
        """Signed head seqs in `rng` with the wire bytes of the entries since the previous one."""
        sizes = self.conn.execute(
            f"SELECT seq, {ENTRY_OVERHEAD} + length(kind) + length(CAST(key AS BLOB)) + length(body) FROM entries "
            "WHERE feed = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (rng.feed, rng.start, rng.end),
        ).fetchall()
        heads = {
            s
            for (s,) in self.conn.execute(
                "SELECT seq FROM heads WHERE feed = ? AND seq BETWEEN ? AND ?", (rng.feed, rng.start, rng.end)
            )
        }
        out, acc = [], 0
        for seq, n in sizes:
            acc += n
            if seq in heads:
                out.append((seq, acc))
                acc = 0
        return out

    def read_batch(self, rng: Range) -> bytes:
        """A framed batch of stored entries, ending at the signed head held for `rng.end`."""
        rows = self.conn.execute(
            "SELECT hlc, kind, key, body FROM entries WHERE feed = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (rng.feed, rng.start, rng.end),
        ).fetchall()
        head = self.conn.execute(
            "SELECT head, (SELECT MIN(seq) FROM purged WHERE feed = ?1 AND seq BETWEEN ?2 AND ?3) "
            "FROM heads WHERE feed = ?1 AND seq = ?3",
            (rng.feed, rng.start, rng.end),
        ).fetchone()
        if len(rows) != rng.count or head is None:
            raise StoreError(f"cannot read {rng.feed} {rng.start}..{rng.end} with a signed head at its end")
        if head[1] is not None:
            raise _purged_error(rng.feed, head[1])
        if self.seal is not None:
            rows = [
                (hlc, kind, key, self._body(rng.feed, seq, body))
                for seq, (hlc, kind, key, body) in enumerate(rows, rng.start)
            ]
        return encode_batch(rng.feed, rng.start, self._prev_of(rng.feed, rng.start), rows, head[0], limits=self.limits)

    def plan(
        self,
        theirs: Vector,
        wanted: Callable[[str], bool],
        *,
        max_batch_bytes: int = 1 << 20,
        max_page_bytes: int = 4 << 20,
    ) -> list[list[Range]]:
        """Pages of batches the peer with vector `theirs` lacks and should hold.

        A batch is sized as its entries' wire bytes plus `BATCH_OVERHEAD`, and
        a page as the sum of its batches (plus `PAGE_OVERHEAD`), so neither
        passes its bound unless one run between two held heads alone is larger (§9.4).
        """
        target = max(1, min(max_batch_bytes, max_page_bytes - PAGE_OVERHEAD) - BATCH_OVERHEAD)
        sized: list[tuple[Range, int]] = []
        for rng in plan_ranges(self.vector(), theirs, wanted):
            commits = self.commits(rng)
            if not commits:
                continue
            rng = Range(rng.feed, rng.start, commits[-1][0])  # end at the last signed head held
            sizes = dict(commits)
            for b in cut_range(rng, commits, target, self.limits.max_entries_per_batch):
                sized.append((b, BATCH_OVERHEAD + sum(n for s, n in sizes.items() if b.start <= s <= b.end)))
        return paginate(sized, max_page_bytes - PAGE_OVERHEAD, self.limits.max_batches_per_page)

    # -- bundles -------------------------------------------------------------
    def export_bundle(
        self,
        out: BinaryIO,
        *,
        key: SigningKey,
        source: str,
        theirs: Vector,
        wanted: Callable[[str], bool],
        created: int,
        target: str | None = None,
    ) -> BundleWriter:
        """Write every batch a peer with vector `theirs` lacks and should hold.

        The header records the vector the bundle was cut against (the peer's,
        restricted to the feeds it should hold), not this node's own vector.
        """
        cut_against = {feed: v for feed, v in theirs.items() if wanted(feed)}
        writer = BundleWriter(
            out,
            key=key,
            county=self.county,
            source=source,
            vector=cut_against,
            created=created,
            target=target,
            limits=self.limits,
        )
        for page in self.plan(theirs, wanted):
            for rng in page:
                writer.add(self.read_batch(rng))
        writer.finish()
        return writer

    def import_bundle(self, src: BinaryIO, *, name: str = "bundle") -> list[Verdict]:
        """Import a bundle file: all of it or, if any batch is refused, none of it.

        The whole file is read once to prove its length, digest and the source
        node's signature; then its batches go through the same verification as
        the network path, in one transaction. Importing it again changes nothing.
        """
        try:
            info = check_bundle(src, name=name, limits=self.limits)
        except BundleError as e:
            raise _damaged_bundle(name, e) from e
        if info.header.county != self.county:
            raise BundleError(
                f"数据包 {name} 是别的县的，不能导入 ({name} was made in county {info.header.county}; "
                f"this node belongs to county {self.county})",
                hint="确认拿的是本县乡镇或县里导出的数据包",
            )
        directory = self.directory()
        member = directory.get(info.header.source)
        if member is None:
            raise BundleError(
                f"数据包 {name} 来自未注册的节点 {info.header.source}，不能导入 "
                f"({name} comes from {info.header.source!r}, which is not enrolled in this county)",
                hint="先联网同步一次（取得县里的节点名单），或确认数据包的来源",
            )
        try:
            info.verify(member.key, name=name)
        except BundleError as e:
            raise _damaged_bundle(name, e) from e
        src.seek(0)
        verdicts: list[Verdict] = []
        self._begin()
        try:
            for item in iter_bundle(src, name=name, limits=self.limits):
                if isinstance(item, BundleInfo) and item.sha256 != info.sha256:
                    raise BundleError(f"{name} changed while it was being imported; nothing was imported")
                if isinstance(item, bytes):
                    v = self._receive_in_transaction(item)
                    if not v.ok:
                        err = v.first_error()
                        raise BundleError(
                            f"数据包 {name} 中第 {len(verdicts) + 1} 批数据没有通过校验，整个数据包都没有导入，"
                            f"本机数据没有改动 ({name}: batch {len(verdicts) + 1} ({v.feed or 'unreadable'}) "
                            f"was refused: {err.message if err else 'rejected'}; nothing from this bundle was imported)",
                            hint="请在导出它的电脑上重新导出一份；仍然不行时，把这段提示告诉县级信息管理员",
                        )
                    verdicts.append(v)
                    faults.point("bundle")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        faults.point("bundle")
        return verdicts

    # -- purging --------------------------------------------------------------
    def purge_bodies(self, feed: str, seqs: Iterable[int], reason: str, *, bound: int | None = None) -> int:
        """Replace the bodies of `feed`'s entries `seqs` with an empty marker; returns how many were newly purged.

        One transaction; entries, hashes, vectors and signed heads stay, so the
        chain still verifies and syncs still plan the same. The caller decides
        what may go (the county's receipt covers it) and may pass that as
        `bound`; the store refuses seqs beyond it or beyond the feed's head.
        Purging an entry again changes nothing. Freed pages are overwritten
        (`secure_delete`) and the WAL checkpointed, so the old bytes do not linger.
        """
        wanted = sorted(set(seqs))
        if not wanted:
            return 0
        if not reason.strip():
            raise StoreError("say why the entries are purged", hint="e.g. 'county receipt + 30 days'")
        t = self.trust
        if feed == f"{t.root_node}/*":
            raise StoreError(f"{feed} is the county's membership feed: it is never purged")
        self.conn.execute("PRAGMA secure_delete = ON")
        try:
            self._begin()
            try:
                local = self.local_feed(feed)
                top = local.seq if local else 0
                if local is not None and local.frozen:
                    raise StoreError(frozen_message(feed), hint=FROZEN_HINT)
                if bound is not None:
                    top = min(top, bound)
                if wanted[0] < 1 or wanted[-1] > top:
                    bad = wanted[0] if wanted[0] < 1 else wanted[-1]
                    raise StoreError(
                        f"cannot purge {feed}#{bad}: only entries 1..{top} of {feed} may be purged",
                        hint="purge only entries this node holds and the county has receipted",
                    )
                now = self.clock()
                n = self.conn.executemany(
                    "INSERT OR IGNORE INTO purged (feed, seq, purged_at, reason) VALUES (?, ?, ?, ?)",
                    [(feed, s, now, reason) for s in wanted],
                ).rowcount
                self.conn.executemany(
                    "UPDATE entries SET body = ? WHERE feed = ? AND seq = ? AND body != ?",
                    [(PURGED, feed, s, PURGED) for s in wanted],
                )
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
        finally:
            self.conn.execute("PRAGMA secure_delete = OFF")
        if n and not self.db.memory:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n

    def purged(self, feed: str | None = None) -> list[dict[str, Any]]:
        """What was purged from this node, and why."""
        where, args = ("WHERE feed = ?", [feed]) if feed is not None else ("", [])
        return list(self.db.query(f"SELECT feed, seq, purged_at, reason FROM purged {where} ORDER BY feed, seq", args))

    # -- review -------------------------------------------------------------
    def quarantined(self, *, waiting_only: bool = False) -> list[dict[str, Any]]:
        """Batches kept for review (§5.3), oldest first, with the decision on each (None: still waiting)."""
        where = " WHERE decision IS NULL" if waiting_only else ""
        return list(
            self.db.query(
                "SELECT id, feed, first_seq, last_seq, reason, received_at, decision, decided_at, decision_reason "
                f"FROM quarantine{where} ORDER BY id"
            )
        )

    def decide_quarantined(
        self, qid: int, decision: str, reason: str, *, also: Callable[[], None] | None = None
    ) -> bool:
        """Release a quarantined batch into its feed, or refuse it for good (§5.6), in one transaction.

        Released: the batch is checked again (chain, head, signature) and its new
        entries are applied as if received now, revocation or not: they must
        continue the feed exactly (an earlier batch still waiting goes first; a
        frozen feed waits for the county's decision on its fork). Refused: it
        stays recorded, out of the feed. `also` runs inside the same transaction
        (the caller's audit row). Returns False when the batch was already so
        decided (nothing changes, `also` does not run); deciding it the other
        way afterwards is refused.
        """
        if decision not in (RELEASED, REFUSED):
            raise ProtocolError(f"a quarantined batch is released or refused, not {decision!r}")
        if not reason.strip():
            raise StoreError("请写明放行或拒收的原因 (say why the batch is released or refused)")
        self._begin()
        try:
            row = self.conn.execute(
                "SELECT feed, batch, batch_sha256, decision FROM quarantine WHERE id = ?", (qid,)
            ).fetchone()
            if row is None:
                raise StoreError(f"没有编号为 {qid} 的隔离批次 (no quarantined batch {qid})")
            feed, blob, digest, done = row
            if done == decision:
                self.conn.rollback()
                return False
            if done is not None:
                raise StoreError(
                    f"隔离批次 {qid} 已经{'放行' if done == RELEASED else '拒收'}，不能再改 "
                    f"(batch {qid} was already {done})"
                )
            if decision == RELEASED:
                self._release(feed, self._opened(bytes(blob), f"quarantine#{bytes(digest).hex()}"))
            faults.point("quarantine")
            self.conn.execute(
                "UPDATE quarantine SET decision = ?, decided_at = ?, decision_reason = ? WHERE id = ?",
                (decision, self.clock(), reason.strip(), qid),
            )
            if also is not None:
                also()
            faults.point("quarantine")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        faults.point("quarantine")
        return True

    def _release(self, feed: str, batch: bytes) -> None:
        """Apply the new entries of a quarantined batch (inside the caller's transaction)."""
        checked = check_batch(batch, county=self.county, directory=self.directory(), limits=self.limits)
        if checked.error is not None or checked.head is None:
            why = checked.error.message if checked.error else "unreadable"
            raise StoreError(f"隔离批次没有通过校验，不能放行 (the batch no longer verifies: {why})")
        local = self.local_feed(feed)
        if local is not None and local.frozen:
            raise StoreError(
                f"日志 {feed} 因分叉冻结，请先裁决分叉再放行 (feed {feed} is frozen after a fork)",
                hint="在该节点页面先裁决分叉",
            )
        have = local.seq if local else 0
        known = self._known_hashes(feed)(checked.first, min(checked.last, have))
        for e in checked.entries:
            if e.seq <= have and known.get(e.seq) != e.hash:
                raise StoreError(
                    f"隔离批次与县级所存的 {feed} 第 {e.seq} 条不一致，不能放行 (it forks from the feed at {e.seq})",
                    hint="只能拒收",
                )
        new = [e for e in checked.entries if e.seq > have]
        if not new:
            return  # every entry is already in the feed: releasing it changes nothing more
        continues = local is None or checked.first <= have or checked.prev == local.hash
        if new[0].seq != have + 1 or not continues:
            raise StoreError(
                f"县级只存到 {feed} 第 {have} 条，这一批从第 {new[0].seq} 条开始：请先放行前面的批次 "
                f"(release the earlier batch of {feed} first)"
            )
        self._write_entries(feed, new, [checked.head])

    def forks(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT id, feed, seq, local_hash, remote_hash, reason, detected_at, resolved_seq, reported_by, "
                "(SELECT MAX(last_seq) FROM fork_batches b WHERE b.fork_id = forks.id) AS remote_last_seq, "
                "(SELECT COUNT(*) FROM fork_batches b WHERE b.fork_id = forks.id) AS batches, "
                "(SELECT MIN(reported) FROM fork_batches b WHERE b.fork_id = forks.id) AS reported FROM forks ORDER BY id"
            )
        )


def _purged_error(feed: str, seq: int) -> StoreError:
    return StoreError(
        f"entry {feed}#{seq} was purged from this laptop after the county's receipt; the county holds it",
        hint="ask the county (or the township) for it",
    )
