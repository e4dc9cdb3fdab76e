"""Names of places: the display name people see for a node (梅花村, 城关镇便民服务中心).

A node carries its name in its signed membership (`node.member`, renamed by a
later `node.name`, protocol.md §8), folded into `nodes.name`. Pages, lists,
statistics and printed tables show these names; node ids stay in the rows for
scripts. A node without a name (enrolled before names existed, or not yet
known here) is shown by its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def names(conn: Any) -> dict[str, str]:
    """Every known node id → its display name (the id when it has none), in one query."""
    return dict(conn.execute("SELECT node, COALESCE(NULLIF(name, ''), node) FROM nodes").fetchall())


def name_of(conn: Any, node_id: str) -> str:
    """The display name of one node; its id when it has none or is unknown here."""
    row = conn.execute("SELECT name FROM nodes WHERE node = ?", (node_id,)).fetchone()
    return row[0] if row is not None and row[0] else node_id


def label(known: Mapping[str, str], node_id: str | None) -> str | None:
    """`node_id`'s name from a `names()` mapping, the id itself if unknown, None for None."""
    return None if node_id is None else known.get(node_id, node_id)
