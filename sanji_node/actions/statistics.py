"""Statistics: 按时办结率, 满意率, cases by state, by county, township, village, item or month."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sanji_domain import exports, stats
from sanji_domain.errors import ValidationError

from ..workspace import Workspace, today

GROUPS = ("county", "township", "village", "item", "month")


def period_of(month: str | None) -> tuple[date, date] | None:
    """YYYY-MM → (first day, last day); None for no month."""
    if not month:
        return None
    try:
        start = date.fromisoformat(month + "-01")
    except ValueError:
        raise ValidationError(f"月份 {month!r} 格式不对，应为 YYYY-MM (e.g. 2026-11)") from None
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, end - timedelta(days=1)


def statistics(ws: Workspace, *, group_by: str = "township", month: str | None = None) -> list[dict[str, Any]]:
    return ws.read(lambda conn: stats.statistics(conn, group_by=group_by, period=period_of(month), today=today()))


def statistics_by(
    ws: Workspace, group_bys: tuple[str, ...], *, month: str | None = None, whole: tuple[str, ...] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Several groupings at once (one pass over the cases): {group_by: rows}; those in `whole` count all months."""
    return ws.read(
        lambda conn: stats.statistics_by(conn, group_bys, period=period_of(month), today=today(), whole=whole)
    )


def export_statistics(
    ws: Workspace, path: Path, fmt: str, *, group_by: str = "township", month: str | None = None
) -> int:
    return ws.read(
        lambda conn: exports.export_statistics(
            conn, path, fmt, group_by=group_by, period=period_of(month), today=today()
        )
    )
