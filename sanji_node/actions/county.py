"""The county's supervision actions: 电子监察 cards and county-wide settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from sanji_domain import commands, monitoring, views
from sanji_domain.commands import Actor, Command

from ..workspace import Workspace, now_ms


def scan_cards(ws: Workspace, *, at_ms: int | None = None) -> list[dict[str, Any]]:
    """Issue a 预警, 黄牌 or 红牌 to every open case that has reached the threshold and has none yet.

    Idempotent, also against a scan in another process (the scheduled scan in `serve` and one run by
    hand): each card is decided again, from the database locked for writing, in the transaction that
    writes it (`Workspace.write_if`), so a card already issued by the other scan is not issued twice."""
    at = now_ms() if at_ms is None else at_ms
    day, minute = views.to_local_date(at), views.minute_of_day(at)
    issued = []
    for case_id, _level, _reason in ws.read(lambda conn: views.cards_due(conn, today=day, minute=minute)):
        feed = ws.read(partial(commands.case_feed, root=ws.config.root_node, ref=case_id))
        cmd = ws.write_if(feed, _card_if_due(case_id, day, minute, at))
        if cmd is not None:
            issued.append(cmd.result)
    return issued


def _card_if_due(case_id: str, day: date, minute: int, at: int) -> Callable[[Any, Actor], Command | None]:
    def build(conn: Any, actor: Actor) -> Command | None:
        due = views.cards_due(conn, today=day, minute=minute, case_id=case_id)
        if not due:
            return None  # issued meanwhile (another scan), or no longer due
        _, level, reason = due[0]
        return commands.issue_card(conn, actor, case_id, level, reason, now_ms=at)

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
