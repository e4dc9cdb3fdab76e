"""The county's supervision actions: 电子监察 cards and county-wide settings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

from sanji_domain import commands, monitoring, views
from sanji_domain.commands import Actor, Command

from ..workspace import Workspace, now_ms

SCAN_CHUNK = 200  # cards decided and written per transaction (one county feed at a time)


def scan_cards(ws: Workspace, *, at_ms: int | None = None) -> list[dict[str, Any]]:
    """Issue a 预警, 黄牌 or 红牌 to every open case that has reached the threshold and has none yet.

    Idempotent, also against a scan in another process (the scheduled scan in `serve` and one run by
    hand): the cards are decided again, from the database locked for writing, in the transaction that
    writes them (`Workspace.write_if`), so a card already issued by the other scan is not issued twice.
    One transaction per county feed (and at most `SCAN_CHUNK` cards), not one per card."""
    at = now_ms() if at_ms is None else at_ms
    day, minute = views.to_local_date(at), views.minute_of_day(at)
    root = ws.config.root_node
    by_feed: dict[str, list[str]] = defaultdict(list)

    def group(conn: Any) -> None:
        for case_id, _level, _reason in views.cards_due(conn, today=day, minute=minute):
            by_feed[commands.case_feed(conn, root, case_id)].append(case_id)

    ws.read(group)
    issued: list[dict[str, Any]] = []
    for feed, ids in sorted(by_feed.items()):
        for i in range(0, len(ids), SCAN_CHUNK):
            cmd = ws.write_if(feed, _cards_if_due(ids[i : i + SCAN_CHUNK], day, minute, at))
            if cmd is not None:
                issued.extend(cmd.result["cards"])
    return issued


def _cards_if_due(case_ids: list[str], day: date, minute: int, at: int) -> Callable[[Any, Actor], Command | None]:
    def build(conn: Any, actor: Actor) -> Command | None:
        due = views.cards_due(conn, today=day, minute=minute, case_ids=case_ids)
        if not due:
            return None  # issued meanwhile (another scan), or no longer due
        return commands.issue_cards(conn, actor, due, now_ms=at)

    return build


def overdue_overview(ws: Workspace, *, at_ms: int | None = None) -> dict[str, Any]:
    """电子监察 across the county: open cases overdue or carded, and the totals by township, village, item
    and clerk, by name (`monitoring.overdue_and_carded`), as of now (the 即办件 rule with the time of day)."""
    at = now_ms() if at_ms is None else at_ms
    day, minute = views.to_local_date(at), views.minute_of_day(at)
    return ws.read(lambda conn: monitoring.overdue_and_carded(conn, today=day, minute=minute))


def list_cards(ws: Workspace) -> list[dict[str, Any]]:
    return ws.read(views.cards)


def revoke_card(ws: Workspace, card_id: str, reason: str) -> dict[str, Any]:
    (cmd,) = ws.write(lambda conn, actor: commands.revoke_card(conn, actor, card_id, reason, now_ms=now_ms()))
    return cmd.result


def settings(ws: Workspace) -> dict[str, int]:
    return ws.read(commands.settings)


def set_setting(ws: Workspace, name: str, value: int) -> dict[str, Any]:
    (cmd,) = ws.write(lambda conn, actor: commands.setting(conn, actor, name, value, now_ms=now_ms()))
    return cmd.result
