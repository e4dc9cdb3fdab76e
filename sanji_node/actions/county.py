"""The county's supervision actions: 电子监察 cards and county-wide settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanji_domain import commands, views
from sanji_domain.commands import Actor, Command

from ..workspace import Workspace, now_ms, today


def scan_cards(ws: Workspace) -> list[dict[str, Any]]:
    """Issue a 黄牌 or 红牌 to every open case that has reached the threshold and has none yet."""
    issued = []
    for case_id, level, reason in ws.read(lambda conn: views.cards_due(conn, today=today())):
        (cmd,) = ws.write(_card(case_id, level, reason))
        issued.append(cmd.result)
    return issued


def _card(case_id: str, level: str, reason: str) -> Callable[[Any, Actor], Command]:
    return lambda conn, actor: commands.issue_card(conn, actor, case_id, level, reason, now_ms=now_ms())


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
