"""Check batches in worker processes, so verification uses every core.

An I/O adapter beside the pure core (it starts processes). `check_batch` —
hashing, the signature and the canonical-JSON proof of every body — is pure
and needs no local state, so it can run anywhere; the receiving store then
classifies each checked batch against its own state and applies it, in order,
one transaction per batch, exactly as the sequential path does. While the
store writes batch k, the workers check batch k+1, k+2 … .

Workers are spawned (not forked), so this runs on Windows too. Each worker
keeps the directory it was last given, keyed by a digest of the membership.

A batch travels to a worker through a shared-memory buffer rather than being
pickled through a pipe (which copies it four times and wakes both processes
for every 64 KiB). The buffers are reused. Where shared memory cannot be had
(a small /dev/shm in a container, or the pool's cap reached) the batch goes
through the pipe instead, with the same result.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import orjson

from .keys import PublicKey
from .limits import DEFAULT_LIMITS, Limits
from .membership import Directory
from .verify import Checked, check_batch

Membership = tuple[str, str, str, tuple[tuple[str, Any], ...]]  # county, root node, root key hex, (kind, body)…
Carried = bytes | tuple[str, int]  # a batch itself, or (name of the shared buffer holding it, its length)

MIN_BUFFER = 1 << 20
BUFFER_CAP = 256 << 20  # shared memory one pool holds at most

_worker_directories: dict[bytes, Directory] = {}  # per worker process
_worker_buffers: dict[str, SharedMemory] = {}  # per worker process: the pool's buffers, attached once each


def membership_key(membership: Membership) -> bytes:
    return hashlib.sha256(orjson.dumps(membership)).digest()


def directory_from(membership: Membership) -> Directory:
    county, root, root_key, items = membership
    return Directory(county, root, PublicKey.from_hex(root_key)).apply_all(items)


def _check_in_worker(carried: Carried, key: bytes, membership: Membership, limits: Limits) -> Checked:
    if isinstance(carried, tuple):
        name, size = carried
        shm = _worker_buffers.get(name)
        if shm is None:
            shm = _worker_buffers[name] = SharedMemory(name)
        view = shm.buf
        assert view is not None  # open until the pool closes
        batch = bytes(view[:size])
    else:
        batch = carried
    directory = _worker_directories.get(key)
    if directory is None:
        _worker_directories.clear()
        directory = _worker_directories[key] = directory_from(membership)
    return check_batch(batch, county=directory.county, directory=directory, limits=limits, compact=True)


WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Run a worker below the node's own threads.

    The writer that applies checked batches in order is the pipeline's one
    serial step; on a two-core PC, three busy processes sharing the cores
    fairly would give it two thirds of one. Below it, the workers take what
    the writer leaves, and the clerk's pages stay quick during a big sync.
    """
    try:
        if sys.platform == "win32":
            import ctypes

            below_normal = 0x4000  # BELOW_NORMAL_PRIORITY_CLASS
            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
            kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), below_normal)
        else:
            os.nice(WORKER_NICENESS)
    except (OSError, AttributeError):  # not allowed here: the workers run as they are
        pass


def _worker_pid(_: int) -> int:
    time.sleep(0.02)  # long enough that a worker still starting gets a task too
    return os.getpid()


def _room_for(size: int) -> bool:
    """Whether /dev/shm has room: a write to a full one kills the process (SIGBUS) rather than failing."""
    if sys.platform != "linux":
        return True
    try:
        return shutil.disk_usage("/dev/shm").free >= 2 * size
    except OSError:
        return False


class _Buffers:
    """Reusable shared-memory buffers that carry batches to the workers; safe across threads."""

    def __init__(self, cap: int = BUFFER_CAP) -> None:
        self._cap = cap
        self._free: list[SharedMemory] = []
        self._all: list[SharedMemory] = []
        self._lock = threading.Lock()

    def take(self, batch: bytes) -> SharedMemory | None:
        """A buffer now holding `batch`, or None: send it through the pipe."""
        n = len(batch)
        with self._lock:
            fits = [b for b in self._free if b.size >= n]
            if fits:
                buf = min(fits, key=lambda b: b.size)
                self._free.remove(buf)
            else:
                new = self._new(max(MIN_BUFFER, 1 << (n - 1).bit_length()))
                if new is None:
                    return None
                buf = new
        view = buf.buf
        assert view is not None
        view[:n] = batch
        return buf

    def _new(self, size: int) -> SharedMemory | None:
        if sum(b.size for b in self._all) + size > self._cap or not _room_for(size):
            return None
        try:
            buf = SharedMemory(create=True, size=size)
        except OSError:
            return None
        self._all.append(buf)
        return buf

    def give(self, buf: SharedMemory) -> None:
        with self._lock:
            if buf in self._all:
                self._free.append(buf)

    def close(self) -> None:
        with self._lock:
            for buf in self._all:
                buf.close()
                buf.unlink()
            self._all.clear()
            self._free.clear()


class VerifyPool:
    """A pool of processes that run `check_batch`; one per node program, shared by its stores."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
        )
        self._buffers = _Buffers()

    def warm_up(self, timeout: float = 60.0) -> None:
        """Start every worker now rather than on the first batch; return once each has run a task."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < self.workers and time.monotonic() < deadline:
            seen.update(self._executor.map(_worker_pid, range(self.workers * 2)))

    def check(
        self,
        batches: Sequence[bytes],
        membership: Membership,
        *,
        limits: Limits = DEFAULT_LIMITS,
        window: int | None = None,
    ) -> Iterator[Checked]:
        """Yield a compact `Checked` for each batch, in order, keeping `window` batches in flight.

        Call `Checked.expand(batch)` to get its entries back.
        """
        key = membership_key(membership)
        window = window or self.workers * 2
        pending: deque[tuple[Future[Checked], SharedMemory | None]] = deque()
        items: Iterable[bytes] = iter(batches)
        try:
            for batch in items:
                buf = self._buffers.take(batch)
                carried: Carried = batch if buf is None else (buf.name, len(batch))
                pending.append((self._executor.submit(_check_in_worker, carried, key, membership, limits), buf))
                if len(pending) >= window:
                    yield self._result(*pending.popleft())
            while pending:
                yield self._result(*pending.popleft())
        finally:  # left part-way: a buffer is reused only once no worker can still be reading it
            for future, buf in pending:
                future.cancel()
                if buf is not None:
                    future.add_done_callback(functools.partial(self._give_back, buf))

    def _give_back(self, buf: SharedMemory, _done: Future[Checked]) -> None:
        self._buffers.give(buf)

    def _result(self, future: Future[Checked], buf: SharedMemory | None) -> Checked:
        try:
            return future.result()
        finally:
            if buf is not None:
                self._buffers.give(buf)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._buffers.close()

    def __enter__(self) -> VerifyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
