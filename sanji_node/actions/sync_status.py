"""Sync as a person sees it: when it last worked, what waits, whether the parent answers, what happens next.

`SyncMonitor` wraps the node's sync job: it records the progress of the run
under way (上传/下载 done of total) and the outcome of the last run, so the
sync page can show a progress bar and the truth about the last attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync_protocol.errors import SyncError, TransportError

from ..syncer import SyncReport
from ..workspace import now_ms


class Schedule(Protocol):
    failures: int
    last_error: str | None

    @property
    def running(self) -> bool: ...

    def next_run_ms(self) -> int | None: ...

    def sync_now(self) -> None: ...


@dataclass
class SyncMonitor:
    """Progress of the sync under way and the outcome of the last one, for the pages."""

    sync: Callable[..., SyncReport]
    phase: str = ""
    done: int = 0
    total: int = 0
    last_report: SyncReport | None = None
    last_error: str = ""
    last_finished_ms: int = 0
    unreachable: bool = False  # the last run could not reach the parent (or the county as fallback)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self.phase, self.done, self.total = phase, done, total

    def run(self) -> SyncReport:
        """The scheduler's job: one sync with progress recorded; errors are recorded, then re-raised."""
        self.progress("hello", 0, 0)
        try:
            report = self.sync(progress=self.progress)
        except SyncError as e:
            with self._lock:
                self.last_error = e.for_people + (f"（{e.hint}）" if e.hint else "")
                self.unreachable = isinstance(e, TransportError)
                self.last_finished_ms = now_ms()
            raise
        finally:
            self.progress("", 0, 0)
        with self._lock:
            self.last_report, self.last_error, self.last_finished_ms = report, "", now_ms()
            self.unreachable = False
        return report


PHASES = {"hello": "正在联系上级", "push": "正在上传", "pull": "正在下载", "": ""}


def sync_view(status: dict[str, Any], schedule: Schedule | None, monitor: SyncMonitor | None) -> dict[str, Any]:
    """The sync page's facts from the node's status, its schedule and the monitor, in people's words."""
    reachable: bool | None = None
    if monitor is not None and monitor.last_finished_ms:
        reachable = not monitor.unreachable
    elif status.get("last_attempt_ms"):
        reachable = not status.get("last_error")
    out = {
        **status,
        "reachable": reachable,
        "running": bool(schedule and schedule.running),
        "next_attempt_ms": schedule.next_run_ms() if schedule else None,
        "failures": schedule.failures if schedule else 0,
        "phase": PHASES.get(monitor.phase, monitor.phase) if monitor else "",
        "done": monitor.done if monitor else 0,
        "total": monitor.total if monitor else 0,
        "last_summary": monitor.last_report.summary() if monitor and monitor.last_report else "",
        "monitor_error": monitor.last_error if monitor else "",
    }
    return out


__all__ = ["PHASES", "Schedule", "SyncMonitor", "sync_view"]
