"""One writer at a time per database file within a process, handed over instead of polled for.

An I/O adapter beside `sqlite_store`. SQLite lets one connection write at a
time; a connection that finds the write lock taken sleeps and polls (its busy
handler: 1, 2, 5 … 100 ms), so under many threads the lock often sits free
while the waiters sleep, and a deferred `BEGIN` that has read first may fail
at once (`SQLITE_BUSY_SNAPSHOT`). A parent's threads (waitress's request
threads, numbering, the card scan) all write to one file, so this module
serialises them in the process: a connection takes the file's lock when it
starts a write transaction (`BEGIN`, `SAVEPOINT`, or a first
`INSERT`/`UPDATE`/`DELETE`/`REPLACE`, which opens one implicitly) and gives it
back when the transaction ends (`COMMIT`, `ROLLBACK`, `commit()`,
`rollback()`, the `with conn:` block's end, `close()`), so the next thread in
line wakes as soon as it is free. Other processes (a CLI command beside the
server) still meet SQLite's own lock and busy timeout.

A plain `BEGIN` (sqlite-utils' `atomic()` issues one) is made `BEGIN
IMMEDIATE`: a transaction that reads, then writes, would otherwise fail at
its first write with "database is locked" as soon as another process had
committed since its read began (SQLite cannot wait there: the snapshot is
stale), instead of waiting for the lock at its start.

The lock is re-entrant for a thread (as SQLite's own locking already decides
what a second connection of the same thread may do); waiting longer than the
connection's timeout raises `sqlite3.OperationalError("database is locked")`,
as SQLite would. A connection gives back its hold in the name of the thread
that took it, whichever thread ends the transaction, and also when it is
collected in the middle of one (never closed: a bug elsewhere), so the file
is never left locked for the life of the process.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

_WRITE_START = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "SAVEPOINT")


class FileLock:
    """Re-entrant for the thread that holds it, as `threading.RLock`; but a hold can be given back from any
    thread in the name of the thread that took it (`release(owner)`), which an RLock forbids."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._count = 0

    def acquire(self, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._count += 1
                return True
            if not self._cond.wait_for(lambda: self._owner is None, None if timeout < 0 else timeout):
                return False
            self._owner, self._count = me, 1
            return True

    def release(self, owner: int | None = None) -> None:
        """Give back one hold of `owner` (default: this thread)."""
        with self._cond:
            if self._count == 0 or self._owner != (threading.get_ident() if owner is None else owner):
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if self._count == 0:
                self._owner = None
                self._cond.notify()


_LOCKS: dict[str, FileLock] = {}
_GUARD = threading.Lock()


def lock_for(path: str | Path) -> FileLock:
    key = str(Path(path).resolve())
    with _GUARD:
        found = _LOCKS.get(key)
        if found is None:
            found = _LOCKS[key] = FileLock()
        return found


def immediate(sql: str) -> str:
    """`BEGIN` / `BEGIN DEFERRED` as `BEGIN IMMEDIATE`; any other statement unchanged."""
    if sql.strip().rstrip(";").strip().upper() in ("BEGIN", "BEGIN DEFERRED", "BEGIN TRANSACTION"):
        return "BEGIN IMMEDIATE"
    return sql


def starts_write(sql: str) -> bool:
    """Whether `sql` begins a write transaction when none is open."""
    return sql.lstrip().upper().startswith(_WRITE_START)


class LockedConnection(sqlite3.Connection):
    """A connection that holds its file's in-process writer lock for the length of each write transaction."""

    _sanji_lock: FileLock | None = None
    _sanji_held = False
    _sanji_owner: int | None = None  # the thread that took the hold
    _sanji_timeout = 30.0

    def use_lock(self, lock: FileLock, timeout: float) -> None:
        self._sanji_lock = lock
        self._sanji_timeout = timeout

    def _take(self) -> None:
        lock = self._sanji_lock
        if lock is None or self._sanji_held:
            return
        if not lock.acquire(timeout=self._sanji_timeout):
            raise sqlite3.OperationalError("database is locked (another thread of this process is writing)")
        self._sanji_held, self._sanji_owner = True, threading.get_ident()

    def _release(self) -> None:
        if self._sanji_held:
            self._sanji_held = False
            assert self._sanji_lock is not None
            self._sanji_lock.release(self._sanji_owner)

    def _give_back(self) -> None:
        if self._sanji_held and not self.in_transaction:
            self._release()

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        sql = immediate(sql)
        if not self.in_transaction and starts_write(sql):
            self._take()
        try:
            return super().execute(sql, parameters)
        finally:
            self._give_back()

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if not self.in_transaction and starts_write(sql):
            self._take()
        try:
            return super().executemany(sql, parameters)
        finally:
            self._give_back()

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        self._take()
        try:
            return super().executescript(sql_script)
        finally:
            self._give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def __del__(self) -> None:
        # collected without close() in the middle of a write transaction: SQLite rolls it back as the object
        # goes; close it here first, so that the hold is given back only once SQLite's own lock is free
        if self._sanji_held:
            self.close()


def connect(path: str | Path, *, timeout: float = 30.0) -> LockedConnection:
    """A connection to `path` (check_same_thread off, as the stores share one across a node's threads)."""
    conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False, factory=LockedConnection)
    assert isinstance(conn, LockedConnection)
    conn.use_lock(lock_for(path), timeout)
    return conn
