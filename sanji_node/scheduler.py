"""Periodic upstream sync under APScheduler, with backoff and jitter while the parent is away.

`next_delay` is a pure function of the failure count and a random number, so
tests control it. The job reschedules itself after every run: the normal
interval after a success, a growing, jittered delay after each failure (up to
`max_backoff_s`), and immediately when someone asks to sync now.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from sync_protocol.errors import SyncError, TransportError

log = logging.getLogger("sanji.sync")


def next_delay(failures: int, interval_s: float, max_backoff_s: float, rand: float) -> float:
    """Seconds until the next attempt; `rand` in [0, 1) spreads nodes apart (±20 %). After failures the
    delay never exceeds `max_backoff_s` (at the cap the spread is downward only)."""
    if failures == 0:
        return max(1.0, interval_s * (0.8 + 0.4 * rand))
    base = min(max_backoff_s, interval_s * 2.0 ** min(failures, 16) / 4)
    return max(1.0, min(max_backoff_s, base * (0.8 + 0.4 * rand)))


class SyncScheduler:
    """Runs `job()` now and then, forever, until `stop()`."""

    def __init__(
        self,
        job: Callable[[], object],
        *,
        interval_s: float,
        max_backoff_s: float = 900.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.job, self.interval_s, self.max_backoff_s, self.rand = job, interval_s, max_backoff_s, rand
        self.failures = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._again = threading.Event()  # a "sync now" that arrived while a run was going
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._job_id = "sanji-sync"

    def start(self, first_delay_s: float = 0.0) -> None:
        self._scheduler.start()
        self._schedule(first_delay_s)

    def _schedule(self, delay_s: float) -> None:
        when = datetime.now(UTC) + timedelta(seconds=delay_s)
        self._scheduler.add_job(
            self._run, "date", run_date=when, id=self._job_id, replace_existing=True, misfire_grace_time=None
        )

    def _run(self) -> None:
        if not self._lock.acquire(blocking=False):
            self._again.set()
            return
        self._again.clear()
        try:
            self.job()
            self.failures, self.last_error = 0, None
        except TransportError as e:
            self.failures += 1
            self.last_error = str(e)
            log.warning("sync failed (attempt %d): %s", self.failures, e)
        except SyncError as e:
            self.failures += 1
            self.last_error = str(e)
            log.error("sync refused: %s", e)
        except Exception as e:  # keep the schedule alive whatever happens
            self.failures += 1
            self.last_error = repr(e)
            log.exception("sync crashed")
        finally:
            self._lock.release()
            if self._scheduler.running:
                # data that arrived during this run goes up at once, not at the next interval
                again = self._again.is_set() and self.failures == 0
                self._schedule(
                    0 if again else next_delay(self.failures, self.interval_s, self.max_backoff_s, self.rand())
                )

    @property
    def running(self) -> bool:
        """A sync is under way now."""
        return self._lock.locked()

    def next_run_ms(self) -> int | None:
        """When the next attempt is due (ms since the epoch), or None when none is scheduled."""
        if not self._scheduler.running:
            return None
        job = self._scheduler.get_job(self._job_id)
        when = job.next_run_time if job is not None else None
        return int(when.timestamp() * 1000) if when is not None else None

    def sync_now(self) -> None:
        """Sync as soon as possible; if a sync is running, run another right after it."""
        if self._lock.locked():
            self._again.set()
        else:
            self._schedule(0)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)


class PeriodicJob:
    """Runs `job()` every `interval_s` seconds on a background thread until `stop()` (e.g. the county's
    card scan). Runs never overlap: one still going when the next is due makes that one wait and merge
    (APScheduler's `max_instances=1`, `coalesce`). A run that fails is logged; the next comes on time."""

    def __init__(self, name: str, job: Callable[[], object], *, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name, self.job, self.interval_s = name, job, interval_s
        self.runs = 0
        self.last_error: str | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def start(self, first_delay_s: float = 0.0) -> None:
        self._scheduler.start()
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=self.interval_s,
            next_run_time=datetime.now(UTC) + timedelta(seconds=first_delay_s),
            id=self.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _run(self) -> None:
        try:
            self.job()
            self.last_error = None
        except Exception as e:  # keep the schedule alive whatever happens
            self.last_error = str(e) if isinstance(e, SyncError) else repr(e)
            log.exception("%s failed", self.name)
        finally:
            self.runs += 1

    def next_run_ms(self) -> int | None:
        """When the next run is due (ms since the epoch), or None when the job is not running."""
        if not self._scheduler.running:
            return None
        job = self._scheduler.get_job(self.name)
        when = job.next_run_time if job is not None else None
        return int(when.timestamp() * 1000) if when is not None else None

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
