"""The upstream sync schedule: backoff with jitter, and "sync now" never lost."""

from __future__ import annotations

import threading

from sanji_node.scheduler import SyncScheduler, next_delay
from sync_protocol.errors import TransportError


def test_backoff_grows_with_failures_is_jittered_and_capped() -> None:
    assert next_delay(0, 60, 900, 0.5) == 60
    assert next_delay(0, 60, 900, 0.0) == 48 and next_delay(0, 60, 900, 0.999) < 72
    delays = [next_delay(f, 60, 900, 0.5) for f in range(1, 12)]
    assert delays == sorted(delays) and delays[-1] == 900
    assert next_delay(50, 60, 900, 0.999) <= 900  # the documented longest wait, jitter included
    assert next_delay(50, 60, 900, 0.0) == 720  # spread downward at the cap
    assert next_delay(1, 0.01, 900, 0.0) >= 1.0  # never spin


def test_a_sync_now_during_a_run_runs_again_right_after() -> None:
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []
    second = threading.Event()

    def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            started.set()
            release.wait(10)
        else:
            second.set()

    s = SyncScheduler(job, interval_s=3600, rand=lambda: 0.5)
    s.start()
    try:
        assert started.wait(10)
        s.sync_now()  # arrives while the first run is going
        release.set()
        assert second.wait(10), "the sync asked for during a run was dropped"
    finally:
        s.stop()
    assert len(runs) == 2


def test_failures_are_counted_and_the_schedule_survives() -> None:
    calls = threading.Event()
    count: list[int] = []

    def job() -> None:
        count.append(1)
        if len(count) >= 3:
            calls.set()
        raise TransportError("county unreachable")

    s = SyncScheduler(job, interval_s=0.01, max_backoff_s=0.01, rand=lambda: 0.0)
    s.start()
    try:
        assert calls.wait(20)
    finally:
        s.stop()
    assert s.failures >= 3 and "unreachable" in (s.last_error or "")
