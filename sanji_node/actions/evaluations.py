"""好差评 and the rectification (整改) a 差评 opens."""

from __future__ import annotations

from typing import Any

from sanji_domain import commands, views

from ..workspace import Workspace, now_ms, today


def evaluate(ws: Workspace, data: dict[str, Any], *, person: str | None = None) -> dict[str, Any]:
    """Record an evaluation {case, level 1–5, stage, channel, target_type, target_name, comment}."""
    (cmd,) = ws.write(lambda conn, actor: commands.evaluate(conn, actor, data, now_ms=now_ms()), person)
    return cmd.result


def rectify(ws: Workspace, evaluation_id: str, step: str, data: dict[str, Any]) -> dict[str, Any]:
    (cmd,) = ws.write(lambda conn, actor: commands.rectify(conn, actor, evaluation_id, step, data, now_ms=now_ms()))
    return cmd.result


def rectifications(ws: Workspace) -> list[dict[str, Any]]:
    return ws.read(lambda conn: views.rectifications(conn, today=today()))
