"""What the township's blueprints share: the workspace, the clock, the signed-in clerk, small helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import sqlite_utils
from flask import current_app, flash, request
from wtforms import SelectMultipleField, widgets
from wtforms.fields.choices import SelectChoice

from sanji_domain.commands import CST
from sanji_node.actions.sync_status import Schedule, SyncMonitor
from sanji_node.child import ChildNode
from sanji_node.web import workspace
from sanji_node.web.auth import current_user
from sanji_node.workspace import Workspace
from sync_protocol.errors import SyncError

from .. import clerks

T = TypeVar("T")
STAFF = (clerks.CLERK, clerks.HEAD)  # every view of the window: both roles
PAGE_SIZE = 20


@dataclass
class Township:
    ws: Workspace
    clock_ms: Callable[[], int]
    node: ChildNode | None = None  # the node behind the pages: its sync status and USB bundles
    schedule: Schedule | None = None  # the upstream sync job, when `serve` runs one
    monitor: SyncMonitor | None = None


def township() -> Township:
    found: Township = current_app.extensions["township"]
    return found


def now() -> int:
    return township().clock_ms()


def today() -> date:
    return datetime.fromtimestamp(now() / 1000, CST).date()


def local(fn: Callable[[sqlite_utils.Database], T]) -> T:
    """Run `fn` on the township's own tables (clerks, absences) under the workspace's lock."""
    ws = township().ws
    return ws.read(lambda _conn: fn(ws.store.db))


def me() -> dict[str, Any]:
    """The signed-in clerk (views are wrapped in `require`, so there is one)."""
    user = current_user()
    assert user is not None
    return user


def ws() -> Workspace:
    return workspace()


def page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def error_text(e: SyncError) -> str:
    return e.message + (f"（建议：{e.hint}）" if e.hint else "")


def flash_error(e: SyncError) -> None:
    flash(error_text(e), "error")


def options(pairs: Any) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices."""
    return [SelectChoice(str(value), label) for value, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (材料清单): large targets, no JavaScript."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()
