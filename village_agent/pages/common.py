"""What the village's views share: the process, who is signed in, names of places, months."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import current_app

from sanji_node.web.auth import current_user
from sanji_node.workspace import today

if TYPE_CHECKING:
    from ..app import Village

MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def village() -> Village:
    v: Village = current_app.extensions["sanji_village"]
    return v


def person() -> str | None:
    """The signed-in agent's name: recorded on every event they make."""
    user = current_user()
    return str(user["name"]) if user else None


def place_names(v: Village) -> dict[str, str]:
    """Node id → display name (梅花村); empty while the laptop is locked."""
    ws = v.workspace
    if ws is None:
        return {}
    try:
        from sanji_domain import places
    except ImportError:  # pragma: no cover - before display names landed
        return {}
    return ws.read(places.names)


def village_name(v: Village) -> str:
    """This village's display name (its id until the county's names have arrived)."""
    return place_names(v).get(v.config.node_id, v.config.node_id)


def centre_name(v: Village) -> str:
    if v.workspace is None:
        return ""
    name = village_name(v)
    return name if name.endswith("站") else f"{name}便民服务站"


def month_arg(value: Any) -> str:
    """A yyyy-mm month from a query string; this month when absent or malformed."""
    text = str(value or "")
    return text if MONTH.fullmatch(text) else today().strftime("%Y-%m")


def parse_day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
