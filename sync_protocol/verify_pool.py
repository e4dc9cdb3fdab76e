"""Check batches in worker processes, so verification uses every core.

An I/O adapter beside the pure core (it starts processes). `check_batch` —
hashing, the signature and the canonical-JSON proof of every body — is pure
and needs no local state, so it can run anywhere; the receiving store then
classifies each checked batch against its own state and applies it, in order,
one transaction per batch, exactly as the sequential path does. While the
store writes batch k, the workers check batch k+1, k+2 … .

Workers are spawned (not forked), so this runs on Windows too. Each worker
keeps the directory it was last given, keyed by a digest of the membership.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import orjson

from .keys import PublicKey
from .limits import DEFAULT_LIMITS, Limits
from .membership import Directory
from .verify import Checked, check_batch

Membership = tuple[str, str, str, tuple[tuple[str, Any], ...]]  # county, root node, root key hex, (kind, body)…

_worker_directories: dict[bytes, Directory] = {}  # per worker process


def membership_key(membership: Membership) -> bytes:
    return hashlib.sha256(orjson.dumps(membership)).digest()


def directory_from(membership: Membership) -> Directory:
    county, root, root_key, items = membership
    return Directory(county, root, PublicKey.from_hex(root_key)).apply_all(items)


def _check_in_worker(batch: bytes, key: bytes, membership: Membership, limits: Limits) -> Checked:
    directory = _worker_directories.get(key)
    if directory is None:
        _worker_directories.clear()
        directory = _worker_directories[key] = directory_from(membership)
    return check_batch(batch, county=directory.county, directory=directory, limits=limits, keep_values=False).compact()


class VerifyPool:
    """A pool of processes that run `check_batch`; one per node program, shared by its stores."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def warm_up(self) -> None:
        """Start every worker now rather than on the first batch."""
        list(self._executor.map(abs, range(self.workers * 2)))

    def check(
        self,
        batches: Sequence[bytes],
        membership: Membership,
        *,
        limits: Limits = DEFAULT_LIMITS,
        window: int | None = None,
    ) -> Iterator[Checked]:
        """Yield a compacted `Checked` for each batch, in order, keeping `window` batches in flight.

        Call `Checked.expand(batch)` to get its entries back.
        """
        key = membership_key(membership)
        window = window or self.workers * 2
        pending: deque[Future[Checked]] = deque()
        items: Iterable[bytes] = iter(batches)
        for batch in items:
            pending.append(self._executor.submit(_check_in_worker, batch, key, membership, limits))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VerifyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
