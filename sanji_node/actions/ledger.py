"""代办台账 and 值班表: on screen, and exported to Excel or CSV in the printed layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sanji_domain import commands, exports, views

from ..workspace import Workspace, now_ms, today


def ledger(ws: Workspace, *, month: str | None = None, village: str | None = None) -> list[dict[str, Any]]:
    return ws.read(lambda conn: views.ledger(conn, village=village, month=month, today=today(), opener=ws.opener))


def export_ledger(ws: Workspace, path: Path, fmt: str, *, month: str | None = None, village: str | None = None) -> int:
    return ws.read(
        lambda conn: exports.export_ledger(
            conn, path, fmt, village=village, month=month, today=today(), opener=ws.opener
        )
    )


def roster(ws: Workspace, *, month: str | None = None, village: str | None = None) -> list[dict[str, Any]]:
    return ws.read(lambda conn: views.roster(conn, village=village, month=month))


def set_duty(ws: Workspace, day: str, agent: str, substitute: str | None = None) -> dict[str, Any]:
    """值班表: who is on duty at this village on `day` (YYYY-MM-DD), and the substitute."""
    (cmd,) = ws.write(lambda conn, actor: commands.duty(conn, actor, day, agent, substitute, now_ms=now_ms()))
    return cmd.result


def export_roster(ws: Workspace, path: Path, fmt: str, *, month: str | None = None, village: str | None = None) -> int:
    return ws.read(lambda conn: exports.export_roster(conn, path, fmt, village=village, month=month))
