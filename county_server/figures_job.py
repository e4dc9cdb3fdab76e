"""Keeping the pages' figures current in the background, inside `county-server serve`.

The statistics summaries (`stats_summary`) and the 电子监察 promise dates
(`monitor_tables`) are brought up to date by the page that reads them when
something changed; after a large upload (a township's month of cases) that
first page view would pay for all of it (about 9 s for 100,000 cases). So
`serve` runs `refresh_once` at start and then every `FIGURES_INTERVAL_S`
seconds: the page then finds little or nothing left to do. A run that fails
(the database busy for long) is logged and the next comes on time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sanji_domain.commands import CST
from sanji_node.scheduler import PeriodicJob

from . import monitor_tables, stats_summary
from .node import CountyNode

log = logging.getLogger("sanji.figures")

FIGURES_INTERVAL_S = 60


def refresh_once(load: Callable[[], CountyNode], *, clock_ms: Callable[[], int] | None = None) -> tuple[int, int]:
    """One refresh with its own connection: (cases whose statistics were recomputed, promise dates computed)."""
    node = load()
    today = datetime.fromtimestamp(clock_ms() / 1000, CST).date() if clock_ms is not None else datetime.now(CST).date()
    with node.open_store() as store:
        cases = stats_summary.refresh(store.db, today=today)
        with store.db.atomic():
            promises = monitor_tables.refresh_promises(store.db, today)
    if cases or promises:
        log.info("figures refreshed: %d cases, %d promise dates", cases, promises)
    return cases, promises


def job(load: Callable[[], CountyNode], interval_s: int = FIGURES_INTERVAL_S) -> PeriodicJob:
    return PeriodicJob("sanji-figures", lambda: refresh_once(load), interval_s=interval_s)
