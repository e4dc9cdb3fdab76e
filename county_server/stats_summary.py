"""The county's statistics kept up to date as cases and evaluations arrive, so a page sums a few
thousand rows instead of recomputing 100,000 cases (`sanji_domain.stats` is the from-scratch
definition; a test checks that the two agree after random case events).

Two summary tables of counts, one row per (month, township, village) and per (month, item):

    filed        收件 (by the filing month)
    completions, on_time, instant, handling_days
                 办结, 按时办结, 即时办结 (办结 on the acceptance day), 办理工作日
                 (by the 办结 month; voided and linked county cases left out)
    evaluations, satisfied
                 评价, 满意 (level 5/4/3; by the evaluation's month)
    warn_cards, yellow_cards, red_cards
                 预警, 黄牌, 红牌 cards issued and not revoked (by the issuing month)

How they stay right, old contribution out and new one in:

* evaluations: SQLite triggers on `evaluations` (insert, update, delete) add and
  subtract the row's counts directly.
* cases: whether a completion was on time needs the working-day calendar
  (`views.clock_of`), which SQL cannot compute. Triggers on `cases` and `cards`
  only note the case as changed (`stats_dirty`); before the figures are read,
  `refresh` computes each noted case's contribution (`stats_case_facts`, one
  row per case and month) and replaces the old one; triggers on
  `stats_case_facts` subtract the deleted rows and add the inserted ones. A
  change to the calendar notes every case (`*`).

The notes are written in the same transaction as the change, by whichever
connection makes it (the sync API, a command, a page), so nothing is missed;
the refresh runs under `BEGIN IMMEDIATE`, so no note arrives between reading
the notes and clearing them. Months are China time (UTC+8, no summer time).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain import places, stats
from sanji_domain.commands import CST
from sanji_domain.errors import ValidationError
from sanji_domain.states import VOIDED
from sanji_domain.views import to_local_date
from sanji_domain.workdays import EARLY_WARNING, RED_CARD, YELLOW_CARD

summary_migrations = Migrations("sanji.county.stats")

CASE_COUNTS = ("filed", "completions", "on_time", "instant", "handling_days", "warn_cards", "yellow_cards", "red_cards")
EVALUATION_COUNTS = ("evaluations", "satisfied")
COUNTS = CASE_COUNTS + EVALUATION_COUNTS
CARD_COUNTS = {EARLY_WARNING: "warn_cards", YELLOW_CARD: "yellow_cards", RED_CARD: "red_cards"}
ALL = "*"  # the note that every case must be computed again (the calendar changed)
_CHUNK = 2000
# the month of an instant in ms, China time (UTC+8), in SQL
_MONTH_SQL = "strftime('%Y-%m', ({} + 28800000) / 1000, 'unixepoch')"
# the two summaries: their key columns
_SUMMARIES = {"stats_place_month": ("month", "township", "village"), "stats_item_month": ("month", "item_code")}


def _upsert(table: str, keys: dict[str, str], values: dict[str, str], sign: str) -> str:
    """SQL adding (sign '+') or subtracting ('-') `values` (column → expression) to the row of `keys`."""
    cols = [*keys, *values]
    exprs = [*keys.values(), *(f"{sign}({e})" for e in values.values())]
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in values)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} WHERE 1 "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates};"
    )


def _both(row: str, month: str, values: dict[str, str], sign: str) -> str:
    """The upserts into both summaries for the row `row` (NEW or OLD) counted in `month`."""
    place = {"month": month, "township": f"COALESCE({row}.township, '')", "village": f"COALESCE({row}.village, '')"}
    item = {"month": month, "item_code": f"COALESCE({row}.item_code, '')"}
    return _upsert("stats_place_month", place, values, sign) + _upsert("stats_item_month", item, values, sign)


def _trigger(name: str, when: str, body: str) -> str:
    return f"CREATE TRIGGER {name} {when} BEGIN {body} END"


@summary_migrations()
def m001_summaries(db: sqlite_utils.Database) -> None:
    counts = ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COUNTS)
    case_counts = ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in CASE_COUNTS)
    statements = [
        f"CREATE TABLE stats_place_month (month TEXT NOT NULL, township TEXT NOT NULL, village TEXT NOT NULL, "
        f"{counts}, PRIMARY KEY (month, township, village)) WITHOUT ROWID",
        f"CREATE TABLE stats_item_month (month TEXT NOT NULL, item_code TEXT NOT NULL, {counts}, "
        "PRIMARY KEY (month, item_code)) WITHOUT ROWID",
        f"CREATE TABLE stats_case_facts (case_id TEXT NOT NULL, month TEXT NOT NULL, township TEXT NOT NULL, "
        f"village TEXT NOT NULL, item_code TEXT NOT NULL, {case_counts}, PRIMARY KEY (case_id, month)) WITHOUT ROWID",
        "CREATE TABLE stats_dirty (case_id TEXT PRIMARY KEY) WITHOUT ROWID",
    ]
    facts = {c: f"{{row}}.{c}" for c in CASE_COUNTS}
    for sign, row, event in (("+", "NEW", "INSERT"), ("-", "OLD", "DELETE")):
        values = {c: e.format(row=row) for c, e in facts.items()}
        statements.append(
            _trigger(f"stats_facts_{event.lower()}", f"AFTER {event} ON stats_case_facts", _both(row, f"{row}.month", values, sign))
        )  # fmt: skip

    def evaluation(row: str, sign: str) -> str:
        values = {"evaluations": "1", "satisfied": f"{row}.level >= {stats.SATISFIED_MIN}"}
        return _both(row, _MONTH_SQL.format(f"{row}.at_ms"), values, sign)

    statements += [
        _trigger("stats_evaluations_insert", "AFTER INSERT ON evaluations", evaluation("NEW", "+")),
        _trigger("stats_evaluations_delete", "AFTER DELETE ON evaluations", evaluation("OLD", "-")),
        _trigger(
            "stats_evaluations_update",
            "AFTER UPDATE OF level, at_ms, village, township, item_code ON evaluations",
            evaluation("OLD", "-") + evaluation("NEW", "+"),
        ),
    ]
    # ON CONFLICT DO NOTHING, not OR IGNORE: an outer upsert that takes its DO UPDATE path (the fold writes
    # calendar_days so) overrides a trigger statement's OR IGNORE, and the insert would then fail
    note = "INSERT INTO stats_dirty (case_id) SELECT {} WHERE {} IS NOT NULL ON CONFLICT DO NOTHING;"
    clock_columns = (
        "state, accepted_ms, completed_ms, closed_ms, promised_days, pauses, village, township, item_code, "
        "filed_ms, origin_case_id, linked_case_id"
    )
    for event, rows, of in (
        ("INSERT", ("NEW",), ""),
        ("UPDATE", ("NEW", "OLD"), f" OF {clock_columns}"),
        ("DELETE", ("OLD",), ""),
    ):
        # a linked county case's pauses stop its origin's clock too: note the origin as well
        body = "".join(note.format(f"{r}.{c}", f"{r}.{c}") for r in rows for c in ("case_id", "origin_case_id"))
        statements.append(_trigger(f"stats_cases_{event.lower()}", f"AFTER {event}{of} ON cases", body))
        body = "".join(note.format(f"{r}.case_id", f"{r}.case_id") for r in rows)
        statements.append(_trigger(f"stats_cards_{event.lower()}", f"AFTER {event} ON cards", body))
        statements.append(
            _trigger(f"stats_calendar_{event.lower()}", f"AFTER {event} ON calendar_days", note.format(f"'{ALL}'", "1"))
        )
    for sql in statements:
        db.execute(sql)
    # what is already here: every case noted, every evaluation counted
    db.execute(f"INSERT OR IGNORE INTO stats_dirty (case_id) VALUES ('{ALL}')")
    _count_existing_evaluations(db)


def _count_existing_evaluations(db: sqlite_utils.Database) -> None:
    for table, keys in _SUMMARIES.items():
        key_exprs = {
            "month": _MONTH_SQL.format("at_ms"),
            "township": "COALESCE(township, '')",
            "village": "COALESCE(village, '')",
            "item_code": "COALESCE(item_code, '')",
        }
        cols = ", ".join(keys)
        db.execute(
            f"INSERT INTO {table} ({cols}, evaluations, satisfied) "
            f"SELECT {', '.join(key_exprs[k] for k in keys)}, COUNT(*), SUM(level >= {stats.SATISFIED_MIN}) "
            f"FROM evaluations WHERE 1 GROUP BY 1{''.join(f', {i}' for i in range(2, len(keys) + 1))} "
            "ON CONFLICT DO UPDATE SET evaluations = evaluations + excluded.evaluations, "
            "satisfied = satisfied + excluded.satisfied"
        )


def migrate(db: sqlite_utils.Database) -> None:
    summary_migrations.apply(db)


# --- keeping the case facts up to date ---------------------------------------------------------------------


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (inside the caller's, if one is open)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def refresh(db: sqlite_utils.Database, *, today: date) -> int:
    """Bring the case facts up to date with every noted case; returns how many cases were computed."""
    conn = db.conn
    if conn.execute("SELECT 1 FROM stats_dirty LIMIT 1").fetchone() is None:
        return 0
    with _write(conn):
        noted = [r[0] for r in conn.execute("SELECT case_id FROM stats_dirty")]
        if ALL in noted:
            noted = [r[0] for r in conn.execute("SELECT case_id FROM cases UNION SELECT case_id FROM stats_case_facts")]
        clocks: dict[tuple[Any, ...], Any] = {}  # cases with the same clock facts share one computation
        for i in range(0, len(noted), _CHUNK):
            _refresh_cases(conn, noted[i : i + _CHUNK], today, clocks)
        conn.execute("DELETE FROM stats_dirty")
    return len(noted)


FactRow = tuple[Any, ...]  # (case_id, month, township, village, item_code, *CASE_COUNTS)


def _facts(
    conn: sqlite3.Connection, ids: Sequence[str], today: date, clocks: dict[tuple[Any, ...], Any]
) -> dict[str, set[FactRow]]:
    """What each case contributes now, per month."""
    marks = ", ".join("?" * len(ids))
    by_case: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * len(CASE_COUNTS)))
    where: dict[str, tuple[str, str, str]] = {}
    at = {c: i for i, c in enumerate(CASE_COUNTS)}

    def month(d: date) -> str:
        return f"{d.year:04d}-{d.month:02d}"

    for row, clock in stats.clocked_facts(
        conn, f" AND c.case_id IN ({marks})", ids, today=today, tz=CST, clocks=clocks
    ):
        cid = row["case_id"]
        where[cid] = (row["township"] or "", row["village"] or "", row["item_code"] or "")
        by_case[cid][month(to_local_date(row["filed_ms"], CST))][at["filed"]] += 1
        if clock.completed is not None and row["state"] != VOIDED:
            counts = by_case[cid][month(clock.completed)]
            counts[at["completions"]] += 1
            counts[at["on_time"]] += bool(clock.on_time)
            counts[at["instant"]] += clock.completed == clock.accepted
            counts[at["handling_days"]] += clock.elapsed or 0
    cards = conn.execute(
        "SELECT k.case_id, k.level, k.issued_ms, c.township, c.village, c.item_code FROM cards k "
        f"JOIN cases c ON c.case_id = k.case_id WHERE k.case_id IN ({marks}) AND k.revoked_ms IS NULL",
        list(ids),
    )
    for cid, level, issued_ms, township, village, item_code in cards:
        column = CARD_COUNTS.get(level)
        if column is None:
            continue
        where.setdefault(cid, (township or "", village or "", item_code or ""))
        by_case[cid][month(to_local_date(issued_ms, CST))][at[column]] += 1
    return {cid: {(cid, m, *where[cid], *counts) for m, counts in months.items()} for cid, months in by_case.items()}


def _refresh_cases(
    conn: sqlite3.Connection, ids: Sequence[str], today: date, clocks: dict[tuple[Any, ...], Any]
) -> None:
    marks = ", ".join("?" * len(ids))
    old: dict[str, set[FactRow]] = defaultdict(set)
    for row in conn.execute(f"SELECT * FROM stats_case_facts WHERE case_id IN ({marks})", list(ids)):
        old[row[0]].add(tuple(row))
    new = _facts(conn, ids, today, clocks)
    changed = [cid for cid in ids if old.get(cid, set()) != new.get(cid, set())]
    if not changed:
        return
    conn.executemany("DELETE FROM stats_case_facts WHERE case_id = ?", [(cid,) for cid in changed])
    columns = ("case_id", "month", "township", "village", "item_code", *CASE_COUNTS)
    conn.executemany(
        f"INSERT INTO stats_case_facts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [row for cid in changed for row in sorted(new.get(cid, ()))],
    )


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A month (2026-11), a quarter (2026-Q4) or a year (2026), as the months it spans."""

    kind: str  # month | quarter | year
    text: str
    first: str  # yyyy-mm
    last: str
    label: str  # 2026年11月, 2026年第四季度, 2026年

    @property
    def months(self) -> list[str]:
        return month_range(self.first, self.last)


_QUARTERS = "一二三四"


def parse_period(text: str) -> Period:
    """`2026-11`, `2026-Q4` or `2026` → a Period; a ValidationError in Chinese otherwise."""
    t = (text or "").strip().upper()
    year_s, _, rest = t.partition("-")
    if year_s.isdigit() and len(year_s) == 4 and 2000 <= int(year_s) <= 2100:
        year = int(year_s)
        if not rest:
            return Period("year", t, f"{year}-01", f"{year}-12", f"{year}年")
        if rest.startswith("Q") and rest[1:] in ("1", "2", "3", "4"):
            q = int(rest[1:])
            return Period(
                "quarter", t, f"{year}-{3 * q - 2:02d}", f"{year}-{3 * q:02d}", f"{year}年第{_QUARTERS[q - 1]}季度"
            )
        if rest.isdigit() and len(rest) == 2 and 1 <= int(rest) <= 12:
            return Period("month", t, t, t, f"{year}年{int(rest)}月")
    raise ValidationError(
        f"统计期间 {text!r} 看不懂 (not a period)", hint="月份写 2026-11，季度写 2026-Q4，全年写 2026"
    )


def month_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every yyyy-mm from first to last."""
    y, m = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_label(month: str) -> str:
    return f"{month[:4]}年{int(month[5:])}月"


def _sums(rows: Iterable[Sequence[Any]], width: int) -> dict[tuple[Any, ...], dict[str, int]]:
    """Rows of (*key of `width` columns, *COUNTS) → {key: {count: n}}."""
    return {tuple(r[:width]): dict(zip(COUNTS, (int(v or 0) for v in r[width:]), strict=True)) for r in rows}


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for c, n in counts.items():
        into[c] = into.get(c, 0) + n


def _row(group_by: str, key: str, label: str, counts: dict[str, int] | None) -> dict[str, Any]:
    counts = counts or {}
    row = stats.row_of(group_by, key, label, counts)
    row.update({c: counts.get(c, 0) for c in ("warn_cards", "yellow_cards", "red_cards")})
    row["empty"] = not any(counts.values())
    return row


def places_of(conn: Any) -> tuple[list[tuple[str, str, bool]], dict[str, list[tuple[str, str, bool]]]]:
    """Every township (node, name, revoked) in division order, and each township's villages."""
    townships: list[tuple[str, str, bool]] = []
    villages: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for node, role, parent, name, revoked in conn.execute(
        "SELECT node, role, parent, COALESCE(NULLIF(name, ''), node), revoked FROM nodes "
        "WHERE role IN ('township', 'village') ORDER BY division, node"
    ):
        if role == "township":
            townships.append((node, name, bool(revoked)))
        else:
            villages[parent or ""].append((node, name, bool(revoked)))
    return townships, villages


WINDOW = "（乡镇窗口直接收件）"


def _summed(conn: Any, table: str, keys: str, first: str, last: str) -> list[tuple[Any, ...]]:
    """(*keys, *COUNTS) summed over the months first..last (yyyy-mm, inclusive)."""
    sums = ", ".join(f"SUM({c})" for c in COUNTS)
    return conn.execute(
        f"SELECT {keys}, {sums} FROM {table} WHERE month BETWEEN ? AND ? GROUP BY {keys}", (first, last)
    ).fetchall()


def place_counts(conn: Any, first: str, last: str) -> list[tuple[Any, ...]]:
    """(township, village, *COUNTS) for the months first..last."""
    return _summed(conn, "stats_place_month", "township, village", first, last)


def item_counts(conn: Any, first: str, last: str) -> list[tuple[Any, ...]]:
    """(item_code, *COUNTS) for the months first..last."""
    return _summed(conn, "stats_item_month", "item_code", first, last)


def month_counts(conn: Any, first: str, last: str) -> list[tuple[Any, ...]]:
    """(month, *COUNTS) for each month first..last that has a row."""
    return _summed(conn, "stats_place_month", "month", first, last)


def figures(conn: Any, period: Period, *, trend_months: int = 12) -> dict[str, Any]:
    """Everything the statistics page and the 通报 show for `period`, from the summaries (call `refresh`
    first): the county's total, every township and every village by name (none left out for having no
    case), every item, each month of the period, the trend of the last `trend_months` months, the ranking."""
    place = _sums(place_counts(conn, period.first, period.last), 2)
    names = places.names(conn)
    townships, villages = places_of(conn)
    total: dict[str, int] = {}
    by_township: dict[str, dict[str, int]] = defaultdict(dict)
    by_village: dict[str, dict[str, int]] = defaultdict(dict)
    window: dict[str, dict[str, int]] = defaultdict(dict)
    for (township, village), counts in place.items():
        _add(total, counts)
        if township:
            _add(by_township[township], counts)
        if village:
            _add(by_village[village], counts)
        elif township:
            _add(window[township], counts)

    def keep(node: str, revoked: bool, found: dict[str, dict[str, int]]) -> bool:
        return not revoked or any(found.get(node, {}).values())

    township_rows = [
        _row("township", t, name, by_township.get(t)) for t, name, r in townships if keep(t, r, by_township)
    ]
    listed = {r["group"] for r in township_rows}
    township_rows += [
        _row("township", t, names.get(t, t), c) for t, c in sorted(by_township.items()) if t not in listed
    ]
    village_groups = []
    seen_villages: set[str] = set()
    for t in township_rows:
        rows = [
            _row("village", v, name, by_village.get(v))
            for v, name, r in villages.get(t["group"], [])
            if keep(v, r, by_village)
        ]
        seen_villages.update(r["group"] for r in rows)
        if any(window.get(t["group"], {}).values()):
            rows.append({**_row("village", "", WINDOW, window[t["group"]]), "window": True})
        village_groups.append((t, rows))
    strays = [_row("village", v, names.get(v, v), c) for v, c in sorted(by_village.items()) if v not in seen_villages]
    if strays:
        village_groups.append((_row("township", "", "其他（不在名录中的村）", None), strays))

    item_names = dict(conn.execute("SELECT task_code, name FROM catalog_items").fetchall())
    items = _sums(item_counts(conn, period.first, period.last), 1)
    in_use = [r[0] for r in conn.execute("SELECT task_code FROM catalog_items WHERE state = '在用' ORDER BY name")]
    item_rows = [_row("item", code, item_names.get(code, code), items.get((code,))) for code in in_use]
    item_rows += [
        _row("item", code, item_names.get(code, code), c)
        for (code,), c in sorted(items.items())
        if code and code not in set(in_use) and any(c.values())
    ]
    # the items people used first (most cases filed, then most completed), then the unused ones
    item_rows.sort(key=lambda r: (r["empty"], -r["filed"], -r["completions"]))

    months = _sums(month_counts(conn, period.first, period.last), 1)
    month_rows = [_row("month", m, month_label(m), months.get((m,))) for m in period.months]
    last_y, last_m = int(period.last[:4]), int(period.last[5:])
    start_index = last_y * 12 + last_m - 1 - (trend_months - 1)
    first = f"{start_index // 12:04d}-{start_index % 12 + 1:02d}"
    trend_sums = _sums(month_counts(conn, first, period.last), 1)
    trend = [
        _row("month", m, month_label(m) if i == 0 or m.endswith("-01") else f"{int(m[5:])}月", trend_sums.get((m,)))
        for i, m in enumerate(month_range(first, period.last))
    ]
    return {
        "period": period,
        "total": _row("county", stats.COUNTY_KEY, "全县", total),
        "townships": township_rows,
        "village_groups": village_groups,
        "items": item_rows,
        "months": month_rows,
        "trend": trend,
        "ranking": ranking(township_rows),
    }


def ranking(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Townships ranked by 按时办结率 (basis points, so 95.0% and 95.04% differ as the counts do). Equal
    rates share a rank (1, 1, 3); among them the one with more completions is listed first, then by name.
    Townships with no completion have no rate and are not ranked."""
    ranked = sorted(
        (r for r in rows if r["completions"]), key=lambda r: (-r["on_time_bp"], -r["completions"], r["label"])
    )
    out = []
    for r in ranked:
        better = sum(1 for o in ranked if o["on_time_bp"] > r["on_time_bp"])
        tied = sum(1 for o in ranked if o["on_time_bp"] == r["on_time_bp"]) > 1
        out.append({**r, "rank": better + 1, "tied": tied})
    best = [r for r in out if r["rank"] == 1]
    lowest_rank = max((r["rank"] for r in out), default=0)
    lowest = [r for r in out if r["rank"] == lowest_rank] if lowest_rank > 1 else []
    return {
        "rows": out,
        "unranked": [r for r in rows if not r["completions"]],
        "best": best,
        "lowest": lowest,
        "ties": any(r["tied"] for r in out),
    }
