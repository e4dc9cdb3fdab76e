"""The catalog as the nodes read it: list, search (办事指南), show one item."""

from __future__ import annotations

from typing import Any

from sanji_domain import commands, guide, views

from ..workspace import Workspace


def list_items(ws: Workspace, *, show_all: bool = False, level: str | None = None) -> list[dict[str, Any]]:
    return ws.read(lambda conn: views.catalog(conn, show_all=show_all, level=level))


def search_items(ws: Workspace, text: str | None) -> list[dict[str, Any]]:
    """Items in use by any part of the name, pinyin initials or code; a village sees what it may take."""
    return ws.read(lambda conn: guide.search_items(conn, text, village_only=ws.role == "village"))


def show_item(ws: Workspace, ref: str, *, version: int | None = None) -> dict[str, Any]:
    """One item in full by 实施编码 or exact name (as of `version` if given), with its fee text and materials."""
    item: dict[str, Any] = ws.read(
        lambda conn: commands.find_item(conn, ref) if version is None else commands.catalog_item(conn, ref, version)
    )
    item["fee_text"] = guide.fee_text(item)
    item["material_rows"] = guide.material_rows(item)
    return item
