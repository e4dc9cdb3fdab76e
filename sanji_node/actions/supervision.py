"""督办: the county sends a supervision notice about a case or a township's window; the township's clerk
acknowledges it (签收). One function per action, for the CLI now and the pages later."""

from __future__ import annotations

from typing import Any

from sanji_domain import supervision

from ..workspace import Workspace, now_ms


def send_notice(
    ws: Workspace, *, case: str | None, window: str | None, reason: str, person: str | None = None
) -> dict[str, Any]:
    """The county: a notice to the township concerned; it travels down with the township's next sync."""
    (cmd,) = ws.write(
        lambda conn, actor: supervision.supervise(
            conn, actor, case=case, window=window, reason=reason, now_ms=now_ms()
        ),
        person=person,
    )
    return cmd.result


def audit_of(sent: dict[str, Any], reason: str) -> dict[str, Any]:
    """What the county's audit log records of a notice sent (`send_notice`'s result): the case, else the township."""
    return {
        "target_kind": "case" if sent.get("case_id") else "node",
        "target": sent.get("case_id") or sent["township"],
        "reason": reason,
        "details": {"notice_id": sent["notice_id"], "township": sent["township"]},
    }


def list_notices(ws: Workspace, *, state: str | None = None) -> list[dict[str, Any]]:
    """The county: every notice with its state. A township: its inbox (only its own notices reach it)."""
    township = ws.config.node_id if ws.role == "township" else None
    return ws.read(lambda conn: supervision.notices(conn, township=township, state=state))


def acknowledge(ws: Workspace, notice_id: str, note: str | None, person: str | None = None) -> dict[str, Any]:
    """The township: 签收 a notice, with the clerk's name and a note; it goes up with the next sync."""
    (cmd,) = ws.write(
        lambda conn, actor: supervision.acknowledge(conn, actor, notice_id, note, now_ms=now_ms()), person=person
    )
    return cmd.result
