"""The in-process writer lock (`sync_protocol.writer_lock`): a node's threads take turns to write one file
instead of polling SQLite's lock, and a read-then-write transaction never fails with "database is locked"."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from sync_protocol import writer_lock
from sync_protocol.sqlite_store import Store


def counter_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO c VALUES (1, 0)")
    conn.commit()
    conn.close()


def hammer(path: Path, connect: object, threads: int = 8, rounds: int = 40) -> tuple[int, list[str]]:
    """`threads` threads, each on its own connection, each `rounds` times: BEGIN; read n; write n + 1; COMMIT."""
    errors: list[str] = []

    def work() -> None:
        conn = connect(path)  # type: ignore[operator]
        try:
            for _ in range(rounds):
                try:
                    conn.execute("BEGIN")
                    (n,) = conn.execute("SELECT n FROM c WHERE id = 1").fetchone()
                    time.sleep(0.0005)  # another thread's commit lands between the read and the write
                    conn.execute("UPDATE c SET n = ? WHERE id = 1", (n + 1,))
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as e:
                    errors.append(str(e))
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
        finally:
            conn.close()

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    conn = sqlite3.connect(path)
    (n,) = conn.execute("SELECT n FROM c WHERE id = 1").fetchone()
    conn.close()
    return n, errors


def test_without_the_lock_read_then_write_transactions_fail_busy(tmp_path: Path) -> None:
    """The failure the lock removes, shown on plain connections (so the test below means something)."""
    path = tmp_path / "plain.sqlite"
    counter_db(path)
    n, errors = hammer(path, lambda p: sqlite3.connect(p, timeout=5, check_same_thread=False))
    assert errors and all("locked" in e for e in errors)
    assert n == 8 * 40 - len(errors)


def test_with_the_lock_every_thread_writes_in_turn_and_nothing_fails(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    counter_db(path)
    n, errors = hammer(path, lambda p: writer_lock.connect(p, timeout=5))
    assert errors == []
    assert n == 8 * 40


def test_the_lock_is_given_back_after_commit_rollback_a_failed_statement_and_close(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    counter_db(path)
    lock = writer_lock.lock_for(path)
    conn = writer_lock.connect(path)

    def free() -> bool:
        got = [False]

        def probe() -> None:  # from another thread: the lock is re-entrant for its holder
            got[0] = lock.acquire(timeout=0.5)
            if got[0]:
                lock.release()

        t = threading.Thread(target=probe)
        t.start()
        t.join()
        return got[0]

    conn.execute("UPDATE c SET n = 5")  # opens a transaction implicitly
    assert not free()
    conn.commit()
    assert free()
    conn.execute("BEGIN IMMEDIATE")
    assert not free()
    conn.rollback()
    assert free()
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert free()
    with conn:
        conn.execute("UPDATE c SET n = 6")
        assert not free()
    assert free()
    conn.execute("UPDATE c SET n = 7")
    conn.close()  # an open transaction is rolled back by close; the lock goes with it
    assert free()


def test_a_writer_waiting_longer_than_the_timeout_gets_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "y.sqlite"
    counter_db(path)
    holder = writer_lock.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    seen: list[str] = []

    def late() -> None:
        other = writer_lock.connect(path, timeout=0.2)
        try:
            other.execute("UPDATE c SET n = 1")
        except sqlite3.OperationalError as e:
            seen.append(str(e))
        finally:
            other.close()

    t = threading.Thread(target=late)
    t.start()
    t.join()
    holder.rollback()
    holder.close()
    assert seen and "database is locked" in seen[0]


def test_stores_on_one_file_use_the_lock(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")
    try:
        assert isinstance(a.conn, writer_lock.LockedConnection)
        assert a.conn._sanji_lock is b.conn._sanji_lock
    finally:
        a.close()
        b.close()


def test_a_plain_begin_waits_for_another_processs_writer_instead_of_failing(tmp_path: Path) -> None:
    """sqlite-utils' atomic() says BEGIN; read; write. If another process (here a plain connection in another
    thread: it does not know this process's lock) commits between the read and the write, a deferred BEGIN
    fails at the write ("database is locked", the snapshot is stale); made BEGIN IMMEDIATE, the other writer
    waits for this transaction instead, and both succeed."""

    def run(path: Path, conn: sqlite3.Connection) -> tuple[str, int]:
        counter_db(path)
        outcome = "ok"

        def other_process() -> None:
            other = sqlite3.connect(path, timeout=5, check_same_thread=False)
            other.execute("UPDATE c SET n = n + 1")
            other.commit()
            other.close()

        t = threading.Thread(target=other_process)
        try:
            conn.execute("BEGIN")
            (n,) = conn.execute("SELECT n FROM c").fetchone()
            t.start()
            time.sleep(0.3)  # the other writer commits now if it can
            conn.execute("UPDATE c SET n = ?", (n + 10,))
            conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            outcome = str(e)
            conn.execute("ROLLBACK")
        t.join()
        conn.close()
        check = sqlite3.connect(path)
        (final,) = check.execute("SELECT n FROM c").fetchone()
        check.close()
        return outcome, final

    plain = run(
        tmp_path / "plain.sqlite", sqlite3.connect(tmp_path / "plain.sqlite", timeout=5, check_same_thread=False)
    )
    assert "locked" in plain[0] and plain[1] == 1  # the failure this change removes
    assert run(tmp_path / "z.sqlite", writer_lock.connect(tmp_path / "z.sqlite", timeout=5)) == ("ok", 11)
    assert writer_lock.immediate("begin;") == "BEGIN IMMEDIATE" and writer_lock.immediate("SELECT 1") == "SELECT 1"


@pytest.mark.parametrize("dropped_in", ["its own thread", "another thread"])
def test_a_connection_dropped_in_a_write_transaction_gives_the_file_back(tmp_path: Path, dropped_in: str) -> None:
    """A connection left in a write transaction and never closed (a bug elsewhere) must not lock the file for
    the life of the process: when it is collected, in whatever thread, its hold goes back."""
    path = tmp_path / "z.sqlite"
    counter_db(path)
    kept: list[sqlite3.Connection] = []

    def leak() -> None:
        conn = writer_lock.connect(path)
        conn.execute("UPDATE c SET n = 9")  # a write transaction, never committed, rolled back nor closed
        if dropped_in == "another thread":
            kept.append(conn)  # collected later, in the main thread

    t = threading.Thread(target=leak)
    t.start()
    t.join()
    kept.clear()
    gc.collect()
    other = writer_lock.connect(path, timeout=1.0)
    other.execute("UPDATE c SET n = n + 1")  # not "database is locked" after a second
    other.commit()
    (n,) = other.execute("SELECT n FROM c WHERE id = 1").fetchone()
    other.close()
    assert n == 1  # the dropped transaction was rolled back
