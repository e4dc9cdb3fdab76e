"""One node's open store for a process: the one way in for every user action, from the CLI or a page.

A `Workspace` opens (and so migrates) the node's database once, when a
command starts or when `serve` starts, and keeps that connection. Every user
action in `sanji_node.actions` takes a workspace: reads run against the folded
tables, writes build a validated command from them and append its entries in
one commit. A lock serialises the page server's threads on the one connection
(SQLite writes one at a time anyway; the sync job uses its own connection).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from sanji_domain.commands import CST, Actor, Command
from sanji_domain.views import Opener
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from . import backup
from .config import DataDir, NodeConfig

T = TypeVar("T")


class LocalNode(Protocol):
    data: DataDir
    config: NodeConfig
    key: SigningKey

    def open_store(self) -> Store: ...


def today() -> date:
    """Today in China time: days and deadlines never depend on the machine's time zone."""
    return datetime.now(CST).date()


def now_ms() -> int:
    return int(time.time() * 1000)


class Workspace:
    """A node, its store (opened once) and who is working: the argument of every user action."""

    def __init__(self, node: LocalNode, *, store: Store | None = None, offline: bool = False) -> None:
        self.node = node
        self.config = node.config
        self.store = store if store is not None else node.open_store()
        # the user chose to write although this node, restored from a backup, has not yet
        # spoken to its parent (`case new --offline`): the writes are recorded in the mark
        self.offline = offline
        self._lock = threading.RLock()

    @property
    def role(self) -> str:
        """county | township | village."""
        return self.config.role

    @property
    def opener(self) -> Opener | None:
        """Opens a village's sealed personal data (None where it is stored plain)."""
        sealer = getattr(self.node, "sealer", None)
        return sealer.open if sealer is not None else None

    def actor(self, person: str | None = None) -> Actor:
        c = self.config
        return Actor(c.node_id, c.role, c.division, c.parent, c.root_node, person)

    def read(self, query: Callable[[Any], T]) -> T:
        """Answer `query(conn)` from the folded tables."""
        with self._lock:
            return query(self.store.conn)

    def write(self, build: Callable[[Any, Actor], Command | list[Command]], person: str | None = None) -> list[Command]:
        """Build the command(s) from the folded state and append them: one commit per feed, all or nothing."""
        with self._lock:
            backup.check_may_write(self.config, offline=self.offline)  # a restored node: a dict lookup
            built = build(self.store.conn, self.actor(person))
            cmds = built if isinstance(built, list) else [built]
            written = []
            for cmd in cmds:
                if cmd.records:
                    entries, _ = self.store.append(self.node.key, cmd.feed, cmd.records)
                    written.append((cmd.feed, entries[0].seq, entries[-1].seq))
            if self.offline:
                backup.note_offline_writes(self.node.data, self.config, written, now_ms())
            return cmds

    def write_if(
        self, feed: str, build: Callable[[Any, Actor], Command | None], person: str | None = None
    ) -> Command | None:
        """Decide and write in one write transaction (`Store.append_if`): `build` reads the folded tables
        after the database is locked for writing and returns the command for `feed`, or None to write
        nothing. Two processes deciding "write this once" (a scheduled scan and one run by hand) cannot
        both write it."""
        with self._lock:
            backup.check_may_write(self.config, offline=self.offline)
            made: list[Command] = []

            def records(conn: Any) -> list[Any]:
                cmd = build(conn, self.actor(person))
                if cmd is None or not cmd.records:
                    return []
                if cmd.feed != feed:
                    raise ValueError(f"the command writes {cmd.feed}, not {feed}")
                made.append(cmd)
                return list(cmd.records)

            entries, _ = self.store.append_if(self.node.key, feed, records)
            if not entries:
                return None
            if self.offline:
                backup.note_offline_writes(
                    self.node.data, self.config, [(feed, entries[0].seq, entries[-1].seq)], now_ms()
                )
            return made[-1]

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
