"""电子监察 at the county, kept up to date as entries are folded: the carded open cases and their counts by
township, village, item and clerk, the card scans, and where each 督办 stands.

The 电子监察 page must answer in well under a second with 100,000 cases in the county, so it never scans
the cases. Two summary tables are kept by SQLite triggers on the folded tables (`cases` updates, `cards`,
`case_events`, `calendar_days`), whoever writes them (a sync, a bundle, the card scan, a refold):

- `monitor_cases`: one row per open, accepted case that holds a card not revoked (预警, 黄牌, 红牌), with
  its township, village ('' for a window case), item, clerk (who accepted it: the newest 受理 event that
  names someone, else （未记录）) and its highest card (`top_rank` 1 预警, 2 黄牌, 3 红牌). Any change to the
  case, its cards or its 受理 events deletes and rebuilds that one row.
- `monitor_counts`: (dim, name) → cases, 预警, 黄牌, 红牌 by the highest card, for dim `all` (name ''),
  `township`, `village`, `item` and `clerk`; updated by triggers on `monitor_cases`.

An overdue case is carded 红牌 by the scan (every `card_scan_interval_s` in `serve`, or 立即扫描), so the
carded cases are the overdue ones too, as of the last scan. The promise date of each listed case (to
sort by days overdue) is a working-day computation SQL cannot do: a rebuilt row has none, and
`refresh_promises` computes it for those rows only (and once a day for a paused case, whose promise date
moves while it waits).

`card_scans` records each scan (when, by the schedule, the page or a person, how many cards it issued).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain import places, supervision, views
from sanji_domain.monitoring import NO_CLERK, WINDOW
from sanji_domain.states import OPEN_STATES, STATE_LABELS
from sanji_domain.workdays import EARLY_WARNING, RED_CARD, YELLOW_CARD

monitor_migrations = Migrations("sanji.county.monitor")

LEVELS = (EARLY_WARNING, YELLOW_CARD, RED_CARD)  # top_rank 1, 2, 3
DIMS = ("township", "village", "item", "clerk")
DIM_LABELS = {"township": "乡镇", "village": "村", "item": "事项", "clerk": "受理人"}
ORDERS = {"overdue": "超期最久在前", "soonest": "超期最短在前"}
SCAN_SOURCES = {"schedule": "定时扫描", "page": "立即扫描（页面）", "cli": "命令行"}
# 督办 as the county sees it: sent; held by the township (as it last said at a sync); read by its clerk
SENT, DELIVERED, READ = "已发出", "已送达乡镇", "已阅"
WINDOWS = "~"  # the village filter's value for the townships' own windows (no node id looks like it)
NOTICE_STATES = (SENT, DELIVERED, READ)

_OPEN = ",".join(f"'{s}'" for s in sorted(OPEN_STATES))
_RANK = f"CASE k.level WHEN '{EARLY_WARNING}' THEN 1 WHEN '{YELLOW_CARD}' THEN 2 WHEN '{RED_CARD}' THEN 3 ELSE 0 END"
_CLERK = (
    "(SELECT json_extract(CAST(e.body AS TEXT), '$.by') FROM case_events e WHERE e.case_id = c.case_id "
    "AND e.action = 'accept' AND e.conflict IS NULL AND COALESCE(json_extract(CAST(e.body AS TEXT), '$.by'), '') <> '' "
    "ORDER BY e.hlc DESC, e.author DESC, e.feed DESC, e.seq DESC LIMIT 1)"
)


def _rebuild(ref: str) -> str:
    """The statements that rebuild the summary row of case `ref` (NEW.case_id / OLD.case_id in a trigger)."""
    return (
        f"DELETE FROM monitor_cases WHERE case_id = {ref}; "
        "INSERT INTO monitor_cases (case_id, township, village, item, clerk, top_rank) "
        f"SELECT c.case_id, COALESCE(c.township, ''), COALESCE(c.village, ''), COALESCE(c.item_name, c.item_code), "
        f"COALESCE({_CLERK}, '{NO_CLERK}'), MAX({_RANK}) FROM cases c "
        "JOIN cards k ON k.case_id = c.case_id AND k.revoked_ms IS NULL "
        f"WHERE c.case_id = {ref} AND c.origin_case_id IS NULL AND c.accepted_ms IS NOT NULL AND c.state IN ({_OPEN}) "
        "GROUP BY c.case_id;"
    )


def _count(sign: str, row: str) -> str:
    """Add (+) or take away (-) summary row `row` (NEW / OLD) from the counts of its groups."""
    groups = [("'all'", "''"), *((f"'{d}'", f"{row}.{d}") for d in DIMS)]
    if sign == "+":
        values = ", ".join(
            f"({d}, {n}, 1, {row}.top_rank = 1, {row}.top_rank = 2, {row}.top_rank = 3)" for d, n in groups
        )
        return (
            f"INSERT INTO monitor_counts (dim, name, cases, warn, yellow, red) VALUES {values} "
            "ON CONFLICT (dim, name) DO UPDATE SET cases = cases + excluded.cases, warn = warn + excluded.warn, "
            "yellow = yellow + excluded.yellow, red = red + excluded.red;"
        )
    keys = ", ".join(f"({d}, {n})" for d, n in groups)
    return (
        f"UPDATE monitor_counts SET cases = cases - 1, warn = warn - ({row}.top_rank = 1), "
        f"yellow = yellow - ({row}.top_rank = 2), red = red - ({row}.top_rank = 3) WHERE (dim, name) IN ({keys}); "
        "DELETE FROM monitor_counts WHERE cases <= 0;"
    )


_HAS_CARD = "EXISTS (SELECT 1 FROM cards WHERE case_id = {0}.case_id)"
TRIGGERS = {
    "monitor_cards_in": f"AFTER INSERT ON cards BEGIN {_rebuild('NEW.case_id')} END",
    "monitor_cards_up": f"AFTER UPDATE ON cards BEGIN {_rebuild('OLD.case_id')} {_rebuild('NEW.case_id')} END",
    "monitor_cards_del": f"AFTER DELETE ON cards BEGIN {_rebuild('OLD.case_id')} END",
    # no trigger on inserting a case (it costs every case filed): a case row deleted and filed again (a claim
    # that ranks first, a fork resolved) is folded on at once, and that UPDATE rebuilds its summary row
    "monitor_case_up": f"AFTER UPDATE OF state, accepted_ms, pauses ON cases WHEN {_HAS_CARD.format('NEW')} "
    f"BEGIN {_rebuild('NEW.case_id')} END",
    # a county case's pauses stop its origin case's clock (views.clock_of): that promise date moves
    "monitor_linked_up": "AFTER UPDATE OF state, pauses ON cases WHEN NEW.origin_case_id IS NOT NULL BEGIN "
    "UPDATE monitor_cases SET promise = NULL WHERE case_id = NEW.origin_case_id; END",
    "monitor_case_del": "AFTER DELETE ON cases BEGIN DELETE FROM monitor_cases WHERE case_id = OLD.case_id; END",
    "monitor_accept_in": f"AFTER INSERT ON case_events WHEN NEW.action = 'accept' AND {_HAS_CARD.format('NEW')} "
    f"BEGIN {_rebuild('NEW.case_id')} END",
    "monitor_accept_up": f"AFTER UPDATE ON case_events WHEN NEW.action = 'accept' AND {_HAS_CARD.format('NEW')} "
    f"BEGIN {_rebuild('NEW.case_id')} END",
    "monitor_counts_in": f"AFTER INSERT ON monitor_cases BEGIN {_count('+', 'NEW')} END",
    "monitor_counts_del": f"AFTER DELETE ON monitor_cases BEGIN {_count('-', 'OLD')} END",
    **{
        f"monitor_calendar_{op.lower()}": f"AFTER {op} ON calendar_days BEGIN UPDATE monitor_cases SET promise = NULL; END"
        for op in ("INSERT", "UPDATE", "DELETE")
    },
}


@monitor_migrations()
def m001_monitor(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE monitor_cases (case_id TEXT PRIMARY KEY, township TEXT NOT NULL, village TEXT NOT NULL, "
        "item TEXT NOT NULL, clerk TEXT NOT NULL, top_rank INTEGER NOT NULL, promise TEXT, promise_day TEXT, "
        "moving INTEGER NOT NULL DEFAULT 0)"
    )
    for dim in ("", *DIMS, "top_rank"):
        cols = f"{dim}, promise" if dim else "promise"
        db.execute(f"CREATE INDEX monitor_cases_{dim or 'promise'} ON monitor_cases ({cols})")
    db.execute(
        "CREATE TABLE monitor_counts (dim TEXT NOT NULL, name TEXT NOT NULL, cases INTEGER NOT NULL, "
        "warn INTEGER NOT NULL, yellow INTEGER NOT NULL, red INTEGER NOT NULL, PRIMARY KEY (dim, name)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE card_scans (scan_id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, source TEXT NOT NULL, "
        "issued INTEGER NOT NULL, who TEXT NOT NULL DEFAULT '')"
    )
    for name, body in TRIGGERS.items():
        db.execute(f"CREATE TRIGGER {name} {body}")
    # the cases carded before this table existed: rebuild each once (the triggers keep them from now on)
    for (case_id,) in db.execute("SELECT DISTINCT case_id FROM cards WHERE revoked_ms IS NULL").fetchall():
        for statement in _rebuild("?").split(";"):
            if statement.strip():
                db.execute(statement, [case_id] * statement.count("?"))


def migrate(db: sqlite_utils.Database) -> None:
    monitor_migrations.apply(db)


# --- reading ---------------------------------------------------------------------------------------------


def refresh_promises(db: sqlite_utils.Database, today: date) -> int:
    """Compute the promise date of the listed cases that have none (rebuilt since), and of the paused ones
    again once a day; returns how many. Call it inside a write transaction."""
    conn = db.conn
    rows = views._dicts(
        conn.execute(
            "SELECT c.*, l.pauses AS linked_pauses, l.state AS linked_state FROM monitor_cases m "
            "JOIN cases c ON c.case_id = m.case_id LEFT JOIN cases l ON l.case_id = c.linked_case_id "
            "WHERE m.promise IS NULL OR (m.moving = 1 AND m.promise_day < ?)",
            (today.isoformat(),),
        )
    )
    if not rows:
        return 0
    cal, cs = views.calendar(conn), views.clock_settings(conn)
    updates = []
    for row in rows:
        clock = views.clock_of(row, cal, cs, today)
        promise = clock.promise.isoformat() if clock.promise else "9999-12-31"
        updates.append((promise, today.isoformat(), int(clock.paused), row["case_id"]))
    conn.executemany("UPDATE monitor_cases SET promise = ?, promise_day = ?, moving = ? WHERE case_id = ?", updates)
    return len(updates)


def _count_row(r: Any, known: dict[str, str], dim: str) -> dict[str, Any]:
    _dim, name, cases, warn, yellow, red = r
    label = name
    key = name
    if dim in ("township", "village"):
        label = places.label(known, name) if name else WINDOW
        key = name or WINDOWS
    return {"key": key, "name": label, "cases": cases, EARLY_WARNING: warn, YELLOW_CARD: yellow, RED_CARD: red}


def totals(conn: Any) -> dict[str, Any]:
    """{cases, 预警, 黄牌, 红牌} of the whole county, from the counts table."""
    row = conn.execute("SELECT dim, name, cases, warn, yellow, red FROM monitor_counts WHERE dim = 'all'").fetchone()
    return _count_row(row or ("all", "", 0, 0, 0, 0), {}, "all")


def groups(conn: Any, dim: str) -> list[dict[str, Any]]:
    """The counts by `dim` (township, village, item, clerk), by name, from the counts table."""
    if dim not in DIMS:
        raise ValueError(dim)
    known = places.names(conn)
    rows = [
        _count_row(r, known, dim)
        for r in conn.execute("SELECT dim, name, cases, warn, yellow, red FROM monitor_counts WHERE dim = ?", (dim,))
    ]
    return sorted(rows, key=lambda r: (-r[RED_CARD], -r["cases"], r["name"]))


def townships(conn: Any) -> list[tuple[str, str]]:
    """(node id, name) of every township in service, by name: the choices of the 督办 and filter forms."""
    return conn.execute(
        "SELECT node, COALESCE(NULLIF(name, ''), node) FROM nodes WHERE role = 'township' AND revoked = 0 ORDER BY 2"
    ).fetchall()


def overdue_count(conn: Any, today: date) -> int:
    """Listed cases whose promise date has passed (after `refresh_promises`)."""
    return int(conn.execute("SELECT COUNT(*) FROM monitor_cases WHERE promise < ?", (today.isoformat(),)).fetchone()[0])


def listing(
    conn: Any,
    *,
    today: date,
    filters: dict[str, str],
    order: str = "overdue",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of the listed cases, most overdue first (or `soonest`), filtered by township, village, item,
    clerk (their keys as in `groups`) and level (预警/黄牌/红牌: the highest card)."""
    where, params = [], []
    for dim in DIMS:
        if filters.get(dim) is not None:
            where.append(f"m.{dim} = ?")
            params.append(filters[dim])
    if filters.get("level") in LEVELS:
        where.append("m.top_rank = ?")
        params.append(LEVELS.index(filters["level"]) + 1)
    sql_where = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute("SELECT COUNT(*) FROM monitor_cases m" + sql_where, params).fetchone()[0]
    direction = "DESC" if order == "soonest" else "ASC"
    rows = views._dicts(
        conn.execute(
            "SELECT m.*, c.local_no, c.official_no, c.state, c.accepted_ms, c.case_type, c.promised_days "
            f"FROM monitor_cases m JOIN cases c ON c.case_id = m.case_id{sql_where} "
            f"ORDER BY m.promise {direction}, m.case_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    )
    cal, known = views.calendar(conn), places.names(conn)
    for r in rows:
        promise = date.fromisoformat(r["promise"]) if r["promise"] and r["promise"] < "9999" else None
        r["case_no"] = r["official_no"] or r["local_no"]
        r["township_name"] = places.label(known, r["township"]) if r["township"] else ""
        r["village_name"] = places.label(known, r["village"]) if r["village"] else WINDOW
        r["state_label"] = STATE_LABELS.get(r["state"], r["state"])
        r["card"] = LEVELS[r["top_rank"] - 1]
        r["remaining"] = views.remaining_workdays(today, promise, cal) if promise else None
        r["overdue_days"] = -r["remaining"] if r["remaining"] is not None and r["remaining"] < 0 else 0
        r["accepted_at"] = views._stamp(r["accepted_ms"], views.CST)
    return {"total": total, "offset": offset, "limit": limit, "rows": rows}


# --- scans -----------------------------------------------------------------------------------------------


def record_scan(db: sqlite_utils.Database, *, at_ms: int, source: str, issued: int, who: str = "") -> None:
    db.execute("INSERT INTO card_scans (at_ms, source, issued, who) VALUES (?, ?, ?, ?)", (at_ms, source, issued, who))


def last_scan(conn: Any) -> dict[str, Any] | None:
    row = conn.execute("SELECT at_ms, source, issued, who FROM card_scans ORDER BY at_ms DESC, scan_id DESC LIMIT 1")
    found = row.fetchone()
    if found is None:
        return None
    at_ms, source, issued, who = found
    return {"at_ms": at_ms, "source": SCAN_SOURCES.get(source, source), "issued": issued, "who": who}


# --- 督办 --------------------------------------------------------------------------------------------------


def notices(
    conn: Any, *, case_id: str | None = None, township: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    """Every 督办, newest first (`supervision.notices`), with its state as the county sees it: 已发出, 已送达乡镇
    (the township said at a sync that it holds the notice's entry) or 已阅 (its clerk acknowledged it)."""
    delivered = {
        (node, feed): seq
        for node, feed, seq in conn.execute(
            "SELECT node, feed, seq FROM peer_vectors WHERE node IN (SELECT DISTINCT township FROM supervision_notices)"
        )
    }
    out = []
    for n in supervision.notices(conn, township=township):
        if case_id is not None and n["case_id"] != case_id:
            continue
        if n["state"] == supervision.ACKNOWLEDGED:
            n["county_state"] = READ
        elif delivered.get((n["township"], n["feed"]), 0) >= n["seq"]:
            n["county_state"] = DELIVERED
        else:
            n["county_state"] = SENT
        if state is None or n["county_state"] == state:
            out.append(n)
    return out
