"""The scheduled card scan (电子监察) inside `county-server serve`.

Every `card_scan_interval_s` seconds (node.json, or `serve --card-scan-interval`;
0 turns it off) the server runs what `county-server cards scan` runs by hand:
`sanji_node.actions.county.scan_cards`, which issues each 预警/黄牌/红牌 once
as a `card.issue` record, deciding and writing each card in one write
transaction. A scan by hand while the server scans issues nothing twice. The
first scheduled scan comes one interval after the server starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sanji_node.actions.county import scan_cards
from sanji_node.scheduler import PeriodicJob
from sanji_node.workspace import LocalNode, Workspace, now_ms

from . import monitor_tables

log = logging.getLogger("sanji.cards")


def scan_once(load: Callable[[], LocalNode]) -> int:
    """One scan with its own connection (the server's request threads keep theirs); how many cards it issued."""
    with Workspace(load()) as ws:
        at = now_ms()
        issued = scan_cards(ws, at_ms=at)
        db = ws.store.db
        if db["card_scans"].exists():  # the county's store (open_county_store): the 电子监察 page shows it
            with db.atomic():
                monitor_tables.record_scan(db, at_ms=at, source="schedule", issued=len(issued))
    if issued:
        log.info("电子监察: 已发出 %d 张牌 (cards issued)", len(issued))
    return len(issued)


def job(load: Callable[[], LocalNode], interval_s: int) -> PeriodicJob:
    return PeriodicJob("sanji-card-scan", lambda: scan_once(load), interval_s=interval_s)
