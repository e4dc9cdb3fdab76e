"""A/B 岗: a clerk away names a substitute, who then sees the cases the absent clerk last handled.

Like the accounts (`clerks`), absences belong to this township alone: a table
in its own database, never in a feed. An absence runs from one day to another
(both included, in China time). While it runs, the substitute's 待办 shows the
open cases whose latest event was recorded by the absent clerk (the `by` on
the event, the clerk's display name), under 「代岗：<name> 的办件」.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain.errors import NotFoundError, ValidationError

from . import clerks

absence_migrations = Migrations("sanji.township.absences")
MAX_DAYS = 92  # an absence longer than a quarter is a staffing change, not a substitution


@absence_migrations()
def m001_absences(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE clerk_absences (absence_id INTEGER PRIMARY KEY, clerk_id INTEGER NOT NULL, "
        "substitute_id INTEGER NOT NULL, from_day TEXT NOT NULL, to_day TEXT NOT NULL, "
        "created_ms INTEGER NOT NULL, cancelled_ms INTEGER)"
    )
    db.execute("CREATE INDEX clerk_absences_substitute ON clerk_absences (substitute_id, to_day)")


def migrate(db: sqlite_utils.Database) -> None:
    absence_migrations.apply(db)


def _day(value: Any, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or ""))
    except ValueError:
        raise ValidationError(f"{field}须为日期，如 2026-12-01 ({field}: a date)") from None


def mark_absent(
    db: sqlite_utils.Database,
    clerk_id: int,
    *,
    from_day: Any,
    to_day: Any,
    substitute_id: int,
    today: date,
    now_ms: int,
) -> dict[str, Any]:
    """Record that `clerk_id` is away from `from_day` to `to_day` and `substitute_id` covers."""
    first, last = _day(from_day, "开始日期"), _day(to_day, "结束日期")
    if last < first:
        raise ValidationError("结束日期早于开始日期 (the absence ends before it starts)")
    if last < today:
        raise ValidationError("结束日期已过 (the absence is over already)")
    if (last - first).days >= MAX_DAYS:
        raise ValidationError(f"一次请假最多 {MAX_DAYS} 天 (at most {MAX_DAYS} days)", hint="长期调岗请找中心负责人")
    if substitute_id == clerk_id:
        raise ValidationError("替岗人员不能是自己 (the substitute must be someone else)")
    me, sub = clerks.get(db, clerk_id), clerks.get(db, substitute_id)
    if me is None or not me["active"]:
        raise NotFoundError("没有这个在用的账号 (no such active account)")
    if sub is None or not sub["active"]:
        raise ValidationError("替岗人员须是在用的窗口人员 (the substitute must be an active clerk)")
    with db.atomic():
        clash = db.execute(
            "SELECT from_day, to_day FROM clerk_absences WHERE clerk_id = ? AND cancelled_ms IS NULL "
            "AND from_day <= ? AND to_day >= ?",
            (clerk_id, last.isoformat(), first.isoformat()),
        ).fetchone()
        if clash:
            raise ValidationError(
                f"与已登记的请假 {clash[0]} 至 {clash[1]} 重叠 (overlaps an absence already recorded)",
                hint="先取消那一次，再重新登记",
            )
        cur = db.execute(
            "INSERT INTO clerk_absences (clerk_id, substitute_id, from_day, to_day, created_ms) VALUES (?, ?, ?, ?, ?)",
            (clerk_id, substitute_id, first.isoformat(), last.isoformat(), now_ms),
        )
    return _one(db, int(cur.lastrowid or 0))


def cancel(db: sqlite_utils.Database, absence_id: int, clerk_id: int, *, now_ms: int) -> dict[str, Any]:
    """The clerk is back (or will not be away): the absence ends now."""
    row = db.execute(
        "SELECT 1 FROM clerk_absences WHERE absence_id = ? AND clerk_id = ? AND cancelled_ms IS NULL",
        (absence_id, clerk_id),
    ).fetchone()
    if row is None:
        raise NotFoundError("没有这条请假记录 (no such absence of yours)")
    with db.atomic():
        db.execute("UPDATE clerk_absences SET cancelled_ms = ? WHERE absence_id = ?", (now_ms, absence_id))
    return _one(db, absence_id)


_SELECT = (
    "SELECT a.absence_id, a.clerk_id, c.name, a.substitute_id, s.name, a.from_day, a.to_day, a.created_ms, "
    "a.cancelled_ms FROM clerk_absences a JOIN clerks c ON c.clerk_id = a.clerk_id "
    "JOIN clerks s ON s.clerk_id = a.substitute_id"
)
_KEYS = (
    "absence_id",
    "clerk_id",
    "clerk_name",
    "substitute_id",
    "substitute_name",
    "from_day",
    "to_day",
    "created_ms",
    "cancelled_ms",
)


def _rows(db: sqlite_utils.Database, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    rows = db.execute(f"{_SELECT} WHERE {where} ORDER BY a.from_day, a.absence_id", params).fetchall()
    return [dict(zip(_KEYS, r, strict=True)) for r in rows]


def _one(db: sqlite_utils.Database, absence_id: int) -> dict[str, Any]:
    return _rows(db, "a.absence_id = ?", (absence_id,))[0]


def absences_of(db: sqlite_utils.Database, clerk_id: int, *, today: date) -> list[dict[str, Any]]:
    """The clerk's absences that run now or later (not cancelled)."""
    return _rows(db, "a.clerk_id = ? AND a.cancelled_ms IS NULL AND a.to_day >= ?", (clerk_id, today.isoformat()))


def covering(db: sqlite_utils.Database, substitute_id: int, *, today: date) -> list[dict[str, Any]]:
    """The absences `substitute_id` covers today: whose cases to show in their 待办."""
    day = today.isoformat()
    return _rows(
        db,
        "a.substitute_id = ? AND a.cancelled_ms IS NULL AND a.from_day <= ? AND a.to_day >= ? AND s.active = 1",
        (substitute_id, day, day),
    )


def covered_by(db: sqlite_utils.Database, substitute_id: int, *, today: date) -> list[dict[str, Any]]:
    """The absences `substitute_id` covers now or later (for 我的岗位)."""
    return _rows(
        db, "a.substitute_id = ? AND a.cancelled_ms IS NULL AND a.to_day >= ?", (substitute_id, today.isoformat())
    )
