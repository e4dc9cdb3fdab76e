"""The replay cache of signed requests, in the node's database: it survives a restart.

An I/O adapter beside `sqlite_store`. A parent remembers the nonce of every
request it accepted for twice the time window (`auth.verify_request` refuses a
request whose time is further than the window from the clock), so a request
replayed after the parent restarted is refused as it is before. Older nonces are
pruned on every check, so the table holds at most the requests of the last two
windows. Inserting is the check: two threads given the same nonce cannot both
succeed.
"""

from __future__ import annotations

from .auth import DEFAULT_WINDOW_MS, replayed
from .sqlite_store import Store


class StoredNonces:
    """`auth.Nonces` over a store's `request_nonces` table (migration m004)."""

    def __init__(self, store: Store, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self.store = store
        self.window_ms = window_ms

    def check_and_add(self, nonce: str, now_ms: int) -> None:
        with self.store.db.atomic():
            self.store.conn.execute("DELETE FROM request_nonces WHERE at_ms < ?", (now_ms - 2 * self.window_ms,))
            added = self.store.conn.execute(
                "INSERT OR IGNORE INTO request_nonces (nonce, at_ms) VALUES (?, ?)", (nonce, now_ms)
            ).rowcount
        if added != 1:
            raise replayed()

    def seen(self, nonce: str) -> bool:
        """Whether a request with this nonce was accepted (a read: the server's check before the body)."""
        return self.store.conn.execute("SELECT 1 FROM request_nonces WHERE nonce = ?", (nonce,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self.store.conn.execute("SELECT COUNT(*) FROM request_nonces").fetchone()[0])
