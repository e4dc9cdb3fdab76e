"""What the county's blueprints share: the workspace, the clock, the signed-in person, the audit log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import sqlite_utils
from flask import current_app, flash, request

from sanji_domain.commands import CST
from sanji_node.web import workspace
from sanji_node.web.auth import current_user
from sanji_node.workspace import Workspace
from sync_protocol.errors import SyncError

from .. import audit
from ..accounts import EVERYONE, WRITERS
from ..node import CountyNode

T = TypeVar("T")
READ = EVERYONE  # `@require(*READ)`: every page that only reads
WRITE = WRITERS  # `@require(*WRITE)`: every view that changes data
PAGE_SIZE = 50


@dataclass
class County:
    ws: Workspace
    clock_ms: Callable[[], int]
    node: CountyNode


def county() -> County:
    found: County = current_app.extensions["county"]
    return found


def now() -> int:
    return county().clock_ms()


def today() -> date:
    return datetime.fromtimestamp(now() / 1000, CST).date()


def local(fn: Callable[[sqlite_utils.Database], T]) -> T:
    """Run `fn` on the county's database (its own tables and the folded ones) under the workspace's lock."""
    ws = county().ws
    return ws.read(lambda _conn: fn(ws.store.db))


def me() -> dict[str, Any]:
    """The signed-in person (views are wrapped in `require`, so there is one)."""
    user = current_user()
    assert user is not None
    return user


def ws() -> Workspace:
    return workspace()


def record(
    db: sqlite_utils.Database,
    action: str,
    *,
    target_kind: str = "",
    target: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """One audit row for the signed-in person's action (call it inside the action's own transaction)."""
    return audit.record(
        db,
        who=me(),
        action=action,
        at_ms=now(),
        target_kind=target_kind,
        target=target,
        reason=reason,
        details=details,
    )


def page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def error_text(e: SyncError) -> str:
    return e.message + (f"（建议：{e.hint}）" if e.hint else "")


def flash_error(e: SyncError) -> None:
    flash(error_text(e), "error")
