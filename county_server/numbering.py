"""办件编号: the county numbers every case it has committed, once, after receipt.

The numbers are `case.number` entries in the case's county feed
(`county/<village>` or `county/<township>`), so they travel down to the
township and the agent with the receipts; both numbers are kept.

Numbering is not in the push request's path: a push only pokes the
`NumberingJob`, whose thread numbers what has arrived (a signature and a
commit per county feed) while the township goes on pushing. The number
reaches the agent with the next sync either way. A burst of pushes is let
settle (no push for a second, at most ten) before numbering runs. Only the running server
numbers (at its start, after each push, and every minute), so two processes
never hand out the same number; cases imported from a bundle while it was
down are numbered when it starts.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from sanji_domain import commands
from sanji_node.config import NodeConfig
from sync_protocol.errors import SyncError
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store


def number_new_cases(store: Store, key: SigningKey, config: NodeConfig, now_ms: int) -> int:
    """Give every committed, unnumbered case its official number; return how many were numbered."""
    ids = [
        r[0]
        for r in store.conn.execute(
            "SELECT case_id FROM cases WHERE official_no IS NULL AND origin_case_id IS NULL AND state != 'DRAFT' "
            "ORDER BY filed_ms, case_id"
        )
    ]
    if not ids:
        return 0
    actor = commands.Actor(config.node_id, "county", config.division, None, config.root_node)
    n = 0
    for cmd in commands.case_number(store.conn, actor, ids, now_ms=now_ms):
        store.append(key, cmd.feed, cmd.records)
        n += len(cmd.records)
    return n


class NumberingJob:
    """A thread that numbers new cases when poked (after a push), and every `interval_s` regardless."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        key: SigningKey,
        config: NodeConfig,
        clock_ms: Callable[[], int],
        *,
        interval_s: float = 60.0,
        settle_s: float = 1.0,
        max_delay_s: float = 10.0,
    ) -> None:
        self._open_store, self._key, self._config, self._clock_ms = open_store, key, config, clock_ms
        self._interval_s, self._settle_s, self._max_delay_s = interval_s, settle_s, max_delay_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sanji-numbering", daemon=True)
                self._thread.start()
        self._wake.set()

    def run_once(self) -> int:
        with self._open_store() as store:
            return number_new_cases(store, self._key, self._config, self._clock_ms())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            # let a burst of pushes settle first (a township forwarding a backlog pushes page after page):
            # numbering then runs once, in the quiet, instead of competing with every page for the CPU
            deadline = time.monotonic() + self._max_delay_s
            while not self._stop.is_set() and time.monotonic() < deadline and self._wake.wait(self._settle_s):
                self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except SyncError as e:  # e.g. the database busy: the next poke or tick retries
                print(f"编号失败，稍后重试 numbering failed, will retry: {e}", file=sys.stderr)
            except Exception as e:  # the thread must outlive one bad run; the next poke or tick retries
                print(f"编号出错，稍后重试 numbering error, will retry: {e!r}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
