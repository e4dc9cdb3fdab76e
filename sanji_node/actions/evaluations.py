"""好差评 and the rectification (整改) a 差评 opens."""

from __future__ import annotations

from datetime import date
from typing import Any

from sanji_domain import commands, views

from ..workspace import Workspace, now_ms, today


def evaluate(ws: Workspace, data: dict[str, Any], *, person: str | None = None) -> dict[str, Any]:
    """Record an evaluation {case, level 1–5, stage, channel, target_type, target_name, comment}."""
    (cmd,) = ws.write(lambda conn, actor: commands.evaluate(conn, actor, data, now_ms=now_ms()), person)
    return cmd.result


def rectify(
    ws: Workspace, evaluation_id: str, step: str, data: dict[str, Any], *, person: str | None = None
) -> dict[str, Any]:
    """One step of a 差评's 整改 (assign, followup, close, rate), signed, with the person who took it; the
    county's steps travel to the evaluation's township, a township's up to the county."""
    (cmd,) = ws.write(
        lambda conn, actor: commands.rectify(conn, actor, evaluation_id, step, data, now_ms=now_ms()), person
    )
    return cmd.result


def rectifications(
    ws: Workspace, *, township: str | None = None, state: str | None = None, day: date | None = None
) -> list[dict[str, Any]]:
    """The 整改 of every 差评 held here, oldest first, with the steps taken (`views.rectifications`)."""
    return ws.read(lambda conn: views.rectifications(conn, township=township, state=state, today=day or today()))
