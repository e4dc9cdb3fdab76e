"""The township's villages as its clerks see them: 村情况, and statistics with every village in them.

`overview` gives one row per village of this township (the directory's
children): its name, who is on duty today (值班表), when its laptop last
reached the township (the `peers` row the sync API keeps), what was still
waiting on the laptop as last reported (its own feeds' heads in its last hello
or pull, against what the township holds of them), and its open and overdue
cases.

`statistics` is `actions.statistics` by village or by month, with the
villages that have no case yet included (0 and —), so a quiet village shows up
instead of disappearing from the table the township hands in.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from sanji_domain import exports, places, stats, views
from sanji_node import state
from sanji_node.actions import statistics as statistics_actions
from sanji_node.workspace import Workspace
from sync_protocol.feeds import feed_of


def villages(ws: Workspace) -> list[tuple[str, str]]:
    """(node id, name) of this township's villages, by name; revoked ones last."""
    me = ws.config.node_id

    def query(conn: Any) -> list[tuple[str, str]]:
        rows = conn.execute(
            "SELECT node, COALESCE(NULLIF(name, ''), node), revoked FROM nodes WHERE parent = ? AND role = 'village' "
            "ORDER BY revoked, division, node",
            (me,),
        ).fetchall()
        return [(node, name) for node, name, _revoked in rows]

    return ws.read(query)


def overview(ws: Workspace, *, today: date) -> list[dict[str, Any]]:
    """One row per village: name, duty today, last contact, entries waiting on the laptop, open and overdue."""
    me = ws.config.node_id
    counts = {r["group"]: r for r in statistics_actions.statistics(ws, group_by="village")}

    def query(conn: Any) -> list[dict[str, Any]]:
        store = ws.store
        held = store.vector()
        peers = {
            r[0]: r[1:]
            for r in conn.execute("SELECT node, last_seen_ms, last_action, pushes, pulls FROM peers").fetchall()
        }
        duty = {
            r["village"]: r for r in views.roster(conn, month=today.strftime("%Y-%m")) if r["日期"] == today.isoformat()
        }
        rows = conn.execute(
            "SELECT node, COALESCE(NULLIF(name, ''), node), division, revoked FROM nodes "
            "WHERE parent = ? AND role = 'village' ORDER BY revoked, division, node",
            (me,),
        ).fetchall()
        out = []
        for node, name, division, revoked in rows:
            seen = peers.get(node)
            said = state.waiting_on(store, node)  # its own feeds as it last said (hello or pull)
            if said is None:  # it last spoke before hellos carried its heads: its last pull's vector
                reported = state.peer_vector(store, node)
                said = (
                    sum(
                        max(0, seq - held.get(feed, (0, b""))[0])
                        for feed, (seq, _h) in reported.items()
                        if feed_of(feed).author == node
                    ),
                    0,
                )
            c = counts.get(node, {})
            roster_row = duty.get(node)
            out.append(
                {
                    "village": node,
                    "name": name,
                    "division": division,
                    "revoked": bool(revoked),
                    "on_duty": roster_row["值班代办员"] if roster_row else None,
                    "substitute": (roster_row["替岗人员"] or None) if roster_row else None,
                    "last_seen_ms": seen[0] if seen else None,
                    "last_action": seen[1] if seen else None,
                    # it said what it holds here at least once: a hello with its heads, or a pull
                    "reported": bool(seen and (said[1] or seen[3])),
                    "waiting_on_laptop": said[0] if seen and (said[1] or seen[3]) else None,
                    "open": c.get("open", 0),
                    "overdue": c.get("overdue_open", 0),
                    "warned": sum((c.get("warnings") or {}).get(w, 0) for w in ("预警", "黄牌")),
                }
            )
        return out

    return ws.read(query)


def statistics(ws: Workspace, *, group_by: str = "village", month: str | None = None) -> list[dict[str, Any]]:
    """按时办结率, 满意率 … by village (every village of this township, in directory order) or by month."""
    rows = statistics_actions.statistics(ws, group_by=group_by, month=month)
    return _every_village(ws, rows) if group_by == "village" else rows


def _every_village(ws: Workspace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = {r["group"]: r for r in rows}
    out = [found.pop(node, None) or stats.empty_row("village", node, name) for node, name in villages(ws)]
    return out + [found[k] for k in sorted(found)]  # a village moved here from elsewhere keeps its row


def total(ws: Workspace, *, month: str | None = None) -> dict[str, Any]:
    """The whole township (every case it holds, window and villages) as one row."""
    return _total(ws, statistics_actions.statistics(ws, group_by="county", month=month))


def _total(ws: Workspace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    name = ws.read(lambda conn: places.name_of(conn, ws.config.node_id))
    row = rows[0] if rows else stats.empty_row("county", "全乡镇", name)
    return {**row, "label": name}


def stats_page(ws: Workspace, *, month: str | None = None) -> dict[str, Any]:
    """The statistics page: the township in total and by village (for `month`, or all time), and by month
    (all time), in one pass over the cases."""
    got = statistics_actions.statistics_by(ws, ("county", "village", "month"), month=month, whole=("month",))
    return {
        "total": _total(ws, got["county"]),
        "by_village": _every_village(ws, got["village"]),
        "by_month": got["month"],
    }


def export_statistics(ws: Workspace, path: Path, *, group_by: str = "village", month: str | None = None) -> int:
    """The statistics table as an Excel file (.xlsx), villages without cases included."""
    rows = statistics(ws, group_by=group_by, month=month)
    columns, flat = stats.flat_rows(rows)
    columns[0] = ("label", stats.GROUP_LABELS.get(group_by, "分组"))
    name = ws.read(lambda conn: places.name_of(conn, ws.config.node_id))
    span = f" {month}" if month else ""
    title = f"{name} 政务服务办件统计（按{stats.GROUP_LABELS.get(group_by, group_by)}）{span}"
    return exports.write_table(path, "xlsx", title, columns, flat)
