"""对账 (reconciliation): what came up from each township and village, and who has gone quiet.

One function per view, called by the page (`county_server.pages.recon`), the
Excel export and the command line (`county-server nodes`, `county-server
reconcile`, `county-server completeness`):

- `node_rows(store)`: every enrolled node's last contact (直连, or 经乡镇: its
  township's newest `node.contact` report), backlog and oldest unsent entry,
  forks, quarantine and refused entries (the figures `county-server nodes`
  prints);
- `reconciliation(store, now_ms=…)`: those figures per township and per
  village, by name, with the cases received today / this week / this month,
  the entries waiting at the township and on the laptop, working days with no
  contact this month (缺报), and the 静默 flag;
- `completeness(store, period, now_ms=…)`: for a month or a week, which
  villages reported (contact and cases), which are late, which are silent, and
  the reporting rate per township;
- `export_xlsx(path, figures)`: the reconciliation table as an Excel file.

The figures by day are kept incrementally in `recon_daily` (node, day, cases,
entries, received_cases, received_entries, contact_ms), by SQLite triggers on
the tables the county writes anyway, so a page reads a summary and never all
cases:

- each entry stored (`entries`): +1 entry, +1 case if it is a `case.new`, on
  the day the author stamped it (China time): cases *filed* that day;
- each county receipt (`receipt_times`, the county's clock): the author's
  entries of that feed after the previous receipt were *received* that day;
- each direct contact (`peers.last_seen_ms`) and each township report of a
  village's contact (`node_contacts.last_seen_ms`): the day has a contact
  (the latest one that day is kept).

The definitions are written out in docs/domain.md ("Reconciliation (对账)").
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain import commands, exports, views
from sanji_domain import contacts as domain_contacts
from sanji_domain.errors import ValidationError
from sanji_domain.workdays import WorkCalendar
from sanji_node import contacts, state
from sync_protocol import routing
from sync_protocol.membership import COUNTY
from sync_protocol.sqlite_store import Store

recon_migrations = Migrations("sanji.county.recon")

_DAY_OF_HLC = "date(NEW.hlc / 1000000, 'unixepoch', '+8 hours')"  # an hlc is ms × 1000, China time
_AUTHOR = "substr(NEW.feed, 1, instr(NEW.feed, '/') - 1)"


def _contact_trigger(name: str, table: str, node: str, when: str) -> str:
    return (
        f"CREATE TRIGGER {name} AFTER {when} ON {table} BEGIN "
        "INSERT INTO recon_daily (node, day, contact_ms) VALUES "
        f"({node}, date(NEW.last_seen_ms / 1000, 'unixepoch', '+8 hours'), NEW.last_seen_ms) "
        "ON CONFLICT (node, day) DO UPDATE SET contact_ms = MAX(COALESCE(contact_ms, 0), excluded.contact_ms); END"
    )


_RECEIVED = (
    "SELECT substr(r.feed, 1, instr(r.feed, '/') - 1), date(r.at_ms / 1000, 'unixepoch', '+8 hours'), "
    "COALESCE(SUM(e.kind = 'case.new'), 0), COUNT(e.seq) FROM {receipts} JOIN entries e ON e.feed = r.feed "
    "AND e.seq <= r.seq AND e.seq > COALESCE((SELECT MAX(p.seq) FROM receipt_times p WHERE p.feed = r.feed "
    "AND p.seq < r.seq), 0) WHERE true GROUP BY 1, 2"
)
_ADD_RECEIVED = (
    "ON CONFLICT (node, day) DO UPDATE SET received_cases = received_cases + excluded.received_cases, "
    "received_entries = received_entries + excluded.received_entries"
)


@recon_migrations()
def m001_recon_daily(db: sqlite_utils.Database) -> None:
    """Per node and day: cases and entries filed (by their hlc), cases and entries received (by the county's
    receipt) and the latest contact, kept by triggers (and filled once from what is already here)."""
    db.execute(
        "CREATE TABLE recon_daily (node TEXT NOT NULL, day TEXT NOT NULL, cases INTEGER NOT NULL DEFAULT 0, "
        "entries INTEGER NOT NULL DEFAULT 0, received_cases INTEGER NOT NULL DEFAULT 0, "
        "received_entries INTEGER NOT NULL DEFAULT 0, contact_ms INTEGER, PRIMARY KEY (node, day)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX recon_daily_day ON recon_daily (day)")
    db.execute(
        "CREATE TRIGGER recon_entry_in AFTER INSERT ON entries BEGIN "
        f"INSERT INTO recon_daily (node, day, cases, entries) VALUES ({_AUTHOR}, {_DAY_OF_HLC}, "
        "NEW.kind = 'case.new', 1) ON CONFLICT (node, day) DO UPDATE "
        "SET cases = cases + excluded.cases, entries = entries + 1; END"
    )
    db.execute(
        "CREATE TRIGGER recon_entry_out AFTER DELETE ON entries BEGIN "
        "UPDATE recon_daily SET cases = cases - (OLD.kind = 'case.new'), entries = entries - 1 "
        "WHERE node = substr(OLD.feed, 1, instr(OLD.feed, '/') - 1) "
        "AND day = date(OLD.hlc / 1000000, 'unixepoch', '+8 hours'); END"
    )
    # a county receipt (folded into receipt_times with the county's clock) covers the author's entries after
    # the previous receipt of the feed: they were received that day
    received = _RECEIVED.format(receipts="(SELECT NEW.feed AS feed, NEW.seq AS seq, NEW.at_ms AS at_ms) r")
    db.execute(
        "CREATE TRIGGER recon_receipt AFTER INSERT ON receipt_times BEGIN "
        f"INSERT INTO recon_daily (node, day, received_cases, received_entries) {received} {_ADD_RECEIVED}; END"
    )
    db.execute(_contact_trigger("recon_peer_in", "peers", "NEW.node", "INSERT"))
    db.execute(_contact_trigger("recon_peer_seen", "peers", "NEW.node", "UPDATE OF last_seen_ms"))
    db.execute(_contact_trigger("recon_report_in", "node_contacts", "NEW.node", "INSERT"))
    db.execute(_contact_trigger("recon_report_seen", "node_contacts", "NEW.node", "UPDATE OF last_seen_ms"))
    author = "substr(feed, 1, instr(feed, '/') - 1)"
    db.execute(
        "INSERT INTO recon_daily (node, day, cases, entries) "
        f"SELECT {author}, date(hlc / 1000000, 'unixepoch', '+8 hours'), SUM(kind = 'case.new'), COUNT(*) "
        "FROM entries GROUP BY 1, 2"
    )
    db.execute(
        "INSERT INTO recon_daily (node, day, received_cases, received_entries) "
        f"{_RECEIVED.format(receipts='receipt_times r')} {_ADD_RECEIVED}"
    )
    for table in ("peers", "node_contacts"):
        db.execute(
            "INSERT INTO recon_daily (node, day, contact_ms) "
            f"SELECT node, date(last_seen_ms / 1000, 'unixepoch', '+8 hours'), last_seen_ms FROM {table} WHERE true "
            "ON CONFLICT (node, day) DO UPDATE SET contact_ms = MAX(COALESCE(contact_ms, 0), excluded.contact_ms)"
        )


# --- what `county-server nodes` prints ---------------------------------------------------------------------


def _holds(node: str, directory: Any, feed: str) -> bool:
    return routing.should_hold(node, feed, directory)


def node_rows(store: Store) -> list[dict[str, Any]]:
    """Every enrolled node: last contact (direct or relayed), newest entry, backlog and oldest unsent entry,
    waiting on it, forks, quarantine and refused entries (`rejects`, see `case conflicts`)."""
    directory = store.directory()
    conn = store.conn
    seen = {n: int(ms) for n, ms in conn.execute("SELECT node, last_seen_ms FROM peers").fetchall()}
    views_ = contacts.contact_views(store, domain_contacts.reported(conn), [m.node for m in directory])
    latest: dict[str, int] = {}
    for feed, hlc in conn.execute(
        "SELECT f.feed, e.hlc FROM feeds f JOIN entries e ON e.feed = f.feed AND e.seq = f.seq"
    ):
        author = str(feed).split("/")[0]
        latest[author] = max(latest.get(author, 0), int(hlc))
    # entries each node signed that the fold kept but refused (a claim it may not make): `case conflicts`
    refused = dict(
        conn.execute("SELECT substr(feed, 1, instr(feed, '/') - 1), COUNT(*) FROM fold_rejects GROUP BY 1").fetchall()
    )
    rows = []
    for m in directory:
        direct = m.node in seen
        back, oldest = (
            state.backlog(store, m.node, functools.partial(_holds, m.node, directory))
            if m.role != COUNTY and direct
            else (None, None)
        )
        row = {
            "node": m.node,
            "name": directory.name_of(m.node),
            "role": m.role,
            "parent": m.parent,
            "division": m.division,
            "revoked": m.revocation is not None,
            "last_seen_ms": seen.get(m.node),
            "latest_entry_ms": latest[m.node] // 1000 if latest.get(m.node) else None,
            "backlog": back,
            "oldest_unsent_hlc": oldest,
            **(views_[m.node] if m.role != COUNTY else {}),
            "rejects": refused.get(m.node, 0),
        }
        if "relayed_backlog" in row:  # its township's newer report: what the township holds for it
            row["backlog"] = row.pop("relayed_backlog")
            row["oldest_unsent_hlc"] = row.pop("relayed_oldest_unsent_hlc")
        rows.append(row)
    return rows


# --- the reconciliation table --------------------------------------------------------------------------------

SORTS = {
    "name": "区划顺序",
    "contact": "最后联系（最久的在前）",
    "today": "今日收件",
    "week": "本周收件",
    "month": "本月收件",
    "waiting": "待上传",
    "oldest": "最早未下发",
    "problems": "问题",
}


@dataclass(frozen=True)
class Filters:
    township: str | None = None  # a township's node id: only it and its villages
    problems: bool = False  # only nodes with a problem (静默, fork, quarantine, conflicts, revoked)
    silent: bool = False  # only 静默 nodes
    sort: str = "name"


def day_of(ms: int) -> date:
    return views.to_local_date(ms)


def _silence(last_ms: int | None, today: date, cal: WorkCalendar, threshold: int) -> tuple[bool, int | None]:
    """(静默, working days since the last contact): 静默 when `threshold` working days or more passed since the
    day of the last contact (never contacted: 静默). Weekends and holidays of the county's calendar do not
    count."""
    if last_ms is None:
        return True, None
    quiet = cal.workdays_between(day_of(last_ms), today)
    return quiet >= threshold, quiet


def _sums(conn: Any, first: date, last: date) -> dict[str, tuple[int, int, int, int]]:
    """{node: (cases filed, entries filed, days with a contact, cases received)} for days first…last."""
    return {
        node: (int(c), int(e), int(d), int(r))
        for node, c, e, d, r in conn.execute(
            "SELECT node, SUM(cases), SUM(entries), COUNT(contact_ms), SUM(received_cases) FROM recon_daily "
            "WHERE day BETWEEN ? AND ? GROUP BY node",
            (first.isoformat(), last.isoformat()),
        ).fetchall()
    }


def _contact_days(conn: Any, first: date, last: date) -> dict[str, set[date]]:
    out: dict[str, set[date]] = {}
    for node, day in conn.execute(
        "SELECT node, day FROM recon_daily WHERE contact_ms IS NOT NULL AND day BETWEEN ? AND ?",
        (first.isoformat(), last.isoformat()),
    ).fetchall():
        out.setdefault(node, set()).add(date.fromisoformat(day))
    return out


def _workdays(cal: WorkCalendar, first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1) if cal.is_workday(first + timedelta(i))]


def _open_conflicts(conn: Any) -> dict[str, int]:
    """{author: conflicts and refused entries (拒收) not acknowledged yet}, as the node's page counts them."""
    out: dict[str, int] = {}
    for (feed,) in conn.execute(
        "SELECT feed FROM (SELECT feed, seq FROM case_events WHERE conflict IS NOT NULL "
        "UNION ALL SELECT feed, seq FROM fold_rejects) c "
        "WHERE NOT EXISTS (SELECT 1 FROM conflict_acks a WHERE a.feed = c.feed AND a.seq = c.seq)"
    ).fetchall():
        author = str(feed).split("/")[0]
        out[author] = out.get(author, 0) + 1
    return out


def _waiting_at_townships(conn: Any) -> dict[str, int]:
    """{author: entries of its feeds a township held, as the township last said, that the county lacks}."""
    out: dict[str, int] = {}
    for feed, missing in conn.execute(
        "SELECT v.feed, v.seq - COALESCE(f.seq, 0) FROM peer_vectors v JOIN nodes n ON n.node = v.node "
        "AND n.role = 'township' LEFT JOIN feeds f ON f.feed = v.feed WHERE v.seq > COALESCE(f.seq, 0)"
    ).fetchall():
        author = str(feed).split("/")[0]
        out[author] = out.get(author, 0) + int(missing)
    return out


def reconciliation(store: Store, *, now_ms: int, filters: Filters | None = None) -> dict[str, Any]:
    """The 对账 table: townships, each followed by its villages, with the figures of the module doc."""
    f = filters or Filters()
    conn = store.conn
    today = day_of(now_ms)
    cal = views.calendar(conn)
    threshold = int(commands.settings(conn)["silent_workdays"])
    week0, month0 = today - timedelta(days=today.weekday()), today.replace(day=1)
    periods = {
        "today": _sums(conn, today, today),
        "week": _sums(conn, week0, today),
        "month": _sums(conn, month0, today),
    }
    contact_days = _contact_days(conn, month0, today)
    month_workdays = _workdays(cal, month0, today)
    at_township = _waiting_at_townships(conn)
    conflicts = _open_conflicts(conn)
    rows = [r for r in node_rows(store) if r["role"] in ("township", "village")]
    for r in rows:
        node = r["node"]
        for p, sums in periods.items():
            cases, _entries, _days, received = sums.get(node, (0, 0, 0, 0))
            r[f"cases_{p}"], r[f"filed_{p}"] = received, cases
        r["silent"], r["quiet_workdays"] = _silence(r.get("last_contact_ms"), today, cal, threshold)
        r["waiting_township"] = at_township.get(node, 0)
        r["waiting_laptop"] = r.get("waiting_up") if r["role"] == "village" else None
        r["forks"] = r.get("forks_count") or 0
        r["quarantined"] = r.get("quarantined_entries") or 0
        r["conflicts"] = conflicts.get(node, 0)
        days = contact_days.get(node, set())
        r["gaps"] = sum(1 for d in month_workdays if d not in days)
        r["problems"] = [
            name
            for name, bad in (
                ("静默", r["silent"]),
                ("分叉", r["forks"]),
                ("隔离", r["quarantined"]),
                ("冲突", r["conflicts"]),
                ("已吊销", r["revoked"]),
            )
            if bad
        ]
    townships = sorted((r for r in rows if r["role"] == "township"), key=_sort_key("name"))
    villages: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        if r["role"] == "village":
            villages.setdefault(r["parent"], []).append(r)
    names = {t["node"]: t["name"] for t in townships}
    groups = []
    for t in townships:
        mine = villages.get(t["node"], [])
        total = {k: t[k] + sum(v[k] for v in mine) for k in ("cases_today", "cases_week", "cases_month")}
        visible = [v for v in mine if _keep(v, f)]
        if f.township and f.township != t["node"]:
            continue
        if not visible and not _keep(t, f):
            continue
        groups.append(
            {
                "township": t,
                "villages": sorted(visible, key=_sort_key(f.sort)),
                "total": total,
                "village_count": len(mine),
                "silent_villages": sum(1 for v in mine if v["silent"]),
            }
        )
    orphans = [v for p, vs in villages.items() if p not in names for v in vs if _keep(v, f) and not f.township]
    if f.sort != "name":
        groups.sort(key=lambda g: _sort_key(f.sort)(g["township"]))
    summary = {
        "townships": len(townships),
        "villages": sum(len(v) for v in villages.values()),
        "silent": sum(1 for r in rows if r["silent"]),
        "with_problems": sum(1 for r in rows if r["problems"]),
        "cases_today": sum(r["cases_today"] for r in rows),
        "cases_week": sum(r["cases_week"] for r in rows),
        "cases_month": sum(r["cases_month"] for r in rows),
    }
    return {
        "today": today.isoformat(),
        "week_start": week0.isoformat(),
        "month_start": month0.isoformat(),
        "silent_workdays": threshold,
        "filters": {"township": f.township, "problems": f.problems, "silent": f.silent, "sort": f.sort},
        "township_choices": [(t["node"], t["name"]) for t in townships],
        "summary": summary,
        "groups": groups,
        "unattached": sorted(orphans, key=_sort_key(f.sort)),
    }


def _keep(r: dict[str, Any], f: Filters) -> bool:
    return (not f.problems or bool(r["problems"])) and (not f.silent or r["silent"])


def _sort_key(sort: str) -> Any:
    if sort not in SORTS:
        raise ValidationError(f"未知的排序 {sort!r}", hint="可用: " + "、".join(SORTS))
    never = -1  # never contacted: quietest of all
    keys = {
        "name": lambda r: (r["division"] or "", r["name"], r["node"]),
        "contact": lambda r: (r.get("last_contact_ms") or never, r["name"]),
        "today": lambda r: (-r["cases_today"], r["name"]),
        "week": lambda r: (-r["cases_week"], r["name"]),
        "month": lambda r: (-r["cases_month"], r["name"]),
        "waiting": lambda r: (-((r.get("waiting_laptop") or 0) + r["waiting_township"]), r["name"]),
        "oldest": lambda r: (r.get("oldest_unsent_hlc") or 1 << 62, r["name"]),
        "problems": lambda r: (-len(r["problems"]), r["name"]),
    }
    return keys[sort]


def flat_rows(figures: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """The table's rows in page order: each township, then its villages (then villages with no township)."""
    for g in figures["groups"]:
        yield g["township"]
        yield from g["villages"]
    yield from figures["unattached"]


# --- completeness (DHIS2's reporting rate) -----------------------------------------------------------------

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_WEEK = re.compile(r"([0-9]{4})-W(0[1-9]|[1-4][0-9]|5[0-3])")


def period_days(period: str) -> tuple[date, date, str]:
    """(first day, last day, label) of `YYYY-MM` or an ISO week `YYYY-Www`."""
    if m := _MONTH.fullmatch(period):
        first = date(int(m[1]), int(m[2]), 1)
        nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, nxt - timedelta(days=1), f"{first.year}年{first.month}月"
    if m := _WEEK.fullmatch(period):
        try:
            first = date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError as e:
            raise ValidationError(f"{period} 不是有效的周 (no such week)", hint="例如 2026-W14") from e
        return first, first + timedelta(days=6), f"{m[1]}年第{int(m[2])}周"
    raise ValidationError(
        f"期间 {period!r} 无法识别 (a period is YYYY-MM or YYYY-Www)", hint="例如 2026-04 或 2026-W14"
    )


def current_period(now_ms: int, kind: str = "month") -> str:
    today = day_of(now_ms)
    if kind == "week":
        year, week, _ = today.isocalendar()
        return f"{year}-W{week:02d}"
    return today.strftime("%Y-%m")


STATES = {"reported": "已上报", "late": "迟报", "silent": "静默"}


def completeness(store: Store, period: str, *, now_ms: int) -> dict[str, Any]:
    """Which villages reported in `period`, which are late, which are silent, and the rate per township.

    - 已上报: a contact in the period, cases filed in it, and a contact on or after the expected day;
    - 迟报: a contact in the period, but no case filed in it, or its last contact came before the expected day
      (it went quiet before the period ended: what it filed since has not come up);
    - 静默: no contact in the period.

    The expected day is the `silent_workdays`-th working day before the period's end (counting the last one),
    or before today while the period is running. Reporting rate = 已上报 ÷ villages.
    """
    first, last, label = period_days(period)
    conn = store.conn
    today = day_of(now_ms)
    if first > today:
        raise ValidationError(f"{label} 还没有开始 (the period is in the future)", hint="请选择已经开始的月或周")
    end = min(last, today)
    cal = views.calendar(conn)
    threshold = int(commands.settings(conn)["silent_workdays"])
    workdays = _workdays(cal, first, end)
    expected = workdays[-min(threshold, len(workdays))] if workdays else end
    sums = _sums(conn, first, end)
    latest = {
        node: date.fromisoformat(day)
        for node, day in conn.execute(
            "SELECT node, MAX(day) FROM recon_daily WHERE contact_ms IS NOT NULL AND day BETWEEN ? AND ? GROUP BY node",
            (first.isoformat(), end.isoformat()),
        ).fetchall()
    }
    directory = store.directory()
    members = [m for m in directory if m.role in ("township", "village")]
    townships = sorted((m for m in members if m.role == "township"), key=lambda m: (m.division or "", m.node))
    by_township: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for t in townships:
        counts = dict.fromkeys(STATES, 0)
        for v in sorted((m for m in members if m.parent == t.node), key=lambda m: (m.division or "", m.node)):
            cases, entries, days, _received = sums.get(v.node, (0, 0, 0, 0))
            last_contact = latest.get(v.node)
            if not days:
                st = "silent"
            elif cases and last_contact is not None and last_contact >= expected:
                st = "reported"
            else:
                st = "late"
            counts[st] += 1
            rows.append(
                {
                    "node": v.node,
                    "name": directory.name_of(v.node),
                    "township": t.node,
                    "township_name": directory.name_of(t.node),
                    "state": st,
                    "state_name": STATES[st],
                    "cases": cases,
                    "entries": entries,
                    "contact_days": days,
                    "last_contact_day": last_contact.isoformat() if last_contact else None,
                }
            )
        n = sum(counts.values())
        shares: dict[str, Any] = {}
        for st, k in counts.items():  # as the shared bar chart reads them: `<state>_pct` and `<state>_rate`
            pct = round(100 * k / n) if n else None
            shares[f"{st}_pct"], shares[f"{st}_rate"] = pct, f"{pct}%" if n else "—"
        by_township.append(
            {
                "node": t.node,
                "name": directory.name_of(t.node),
                "villages": n,
                **counts,
                **shares,
                "rate_pct": shares["reported_pct"],
            }
        )
    total = {s: sum(t[s] for t in by_township) for s in STATES}
    n = sum(total.values())
    return {
        "period": period,
        "label": label,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "through": end.isoformat(),
        "expected_day": expected.isoformat(),
        "workdays": len(workdays),
        "silent_workdays": threshold,
        "townships": by_township,
        "villages": rows,
        "total": {**total, "villages": n, "rate_pct": round(100 * total["reported"] / n) if n else None},
    }


# --- Excel ---------------------------------------------------------------------------------------------------

COLUMNS: list[tuple[str, str]] = [
    ("township_name", "乡镇"),
    ("name", "名称"),
    ("role_name", "类别"),
    ("contact_text", "最后联系"),
    ("via_text", "联系方式"),
    ("cases_today", "今日收件"),
    ("cases_week", "本周收件"),
    ("cases_month", "本月收件"),
    ("waiting_township", "乡镇待上传（条）"),
    ("waiting_laptop", "笔记本待上传（条）"),
    ("backlog", "待下发（条）"),
    ("oldest_text", "最早未下发"),
    ("forks", "分叉"),
    ("quarantined", "隔离（条）"),
    ("conflicts", "冲突/拒收（条）"),
    ("gaps", "本月缺报工作日"),
    ("silent_text", "静默"),
    ("problems_text", "问题"),
]


def fmt_time(ms: int | None) -> str:
    """A time as people read it (China time), "" for none."""
    return views.to_local_datetime(ms).strftime("%Y-%m-%d %H:%M") if ms else ""


def export_rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows as the Excel file shows them: names, Chinese words, times as text."""
    names = dict(figures["township_choices"])
    out = []
    for r in flat_rows(figures):
        township = r["node"] if r["role"] == "township" else r["parent"]
        out.append(
            {
                **r,
                "township_name": names.get(township or "", ""),
                "role_name": "乡镇" if r["role"] == "township" else "村",
                "contact_text": fmt_time(r.get("last_contact_ms")) or "从未联系",
                "via_text": {"direct": "直连", "township": "经乡镇"}.get(r.get("contact_via") or "", ""),
                "oldest_text": fmt_time((r.get("oldest_unsent_hlc") or 0) // 1000),
                "silent_text": "静默" if r["silent"] else "",
                "problems_text": "、".join(r["problems"]),
            }
        )
    return out


def export_xlsx(path: str | os.PathLike[str], figures: dict[str, Any]) -> int:
    """The reconciliation table in one sheet (Chinese headers, names); returns the row count."""
    return exports.write_xlsx(path, f"对账 {figures['today']}", COLUMNS, export_rows(figures))
