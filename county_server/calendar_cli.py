"""`county-server calendar`: the county's working-day calendar (工作日历) in its public feed.

Each day the county sets is one `calendar.day` entry of `<root>/*` (key: the date,
body: `{"date", "kind", "name"}`); a later entry for a day replaces an earlier
one and kind `normal` takes the day back to the Monday–Friday rule. The clock
rules themselves live in `sanji_domain.workdays`.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from typing import Any

import click

from sanji_domain import workdays
from sanji_node.cli import data_option, emit, handle_errors, json_option, now_ms
from sanji_node.config import DataDir
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from .app import open_county_store


def calendar_rows(store: Store) -> list[tuple[str, str, str]]:
    """Every `calendar.day` entry of the county feed as `(date, kind, name)`, oldest first."""
    rows = store.conn.execute(
        "SELECT key, body FROM entries WHERE feed = ? AND kind = ? ORDER BY seq",
        (f"{store.trust.root_node}/*", workdays.KIND_DAY),
    ).fetchall()
    out = []
    for key, body in rows:
        value = json.loads(body)
        out.append((value.get("date", key), value["kind"], value.get("name", "")))
    return out


def current_days(store: Store) -> dict[str, dict[str, str]]:
    """The latest entry for each date the county has set: date -> {"date", "kind", "name"}."""
    return {d: {"date": d, "kind": kind, "name": name} for d, kind, name in calendar_rows(store)}


def _signing_key(data_dir: str) -> tuple[DataDir, SigningKey]:
    from .cli import county  # imported late: cli.py registers this group, so a top-level import would be circular

    data, _, key = county(data_dir)
    return data, key


def _state(day: dict[str, str]) -> tuple[str, str]:
    return day["kind"], day["name"]


def _write(data_dir: str, days: list[dict[str, str]]) -> list[dict[str, str]]:
    """Append the days that differ from what the county feed holds, in one commit; return them."""
    data, key = _signing_key(data_dir)
    with open_county_store(data) as store:
        held = current_days(store)
        blank = {"kind": workdays.NORMAL, "name": ""}  # a day never set follows the weekday rule
        changed = [d for d in days if _state(d) != _state(held.get(d["date"], blank))]
        if changed:
            hlc = now_ms() * 1000
            store.append(
                key, f"{store.trust.root_node}/*", [Record(workdays.KIND_DAY, d["date"], d, hlc) for d in changed]
            )
    return changed


def _describe(day: dict[str, str]) -> str:
    d = date.fromisoformat(day["date"])
    return (
        f"{day['date']}（星期{workdays.WEEKDAY_NAMES[d.weekday()]}）{workdays.KIND_LABELS[day['kind']]} {day['name']}"
    )


def _pad(text: str, width: int) -> str:
    """Left-align in `width` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 1)


@click.group(name="calendar", help="工作日历：法定节假日与调休上班日，用于办件时限计算 (the working-day calendar).")
def calendar() -> None:
    pass


@calendar.command(help="按国务院公布的节假日安排写入一年的日历；重复运行只写入有变化的日子。")
@data_option
@click.option("--year", type=int, required=True, help="年份，例如 2026")
@json_option
@handle_errors
def seed(data_dir: str, year: int, as_json: bool) -> None:
    days = workdays.seed_days(year)
    changed = _write(data_dir, days)
    holidays = sum(d["kind"] == workdays.HOLIDAY for d in changed)
    if changed:
        text = f"已写入 {year} 年工作日历 {len(changed)} 天（法定节假日 {holidays} 天，调休上班 {len(changed) - holidays} 天）。"
    else:
        text = f"{year} 年工作日历无变化（{len(days)} 天均已是国务院公布的安排）。"
    emit(as_json, {"year": year, "days": len(days), "written": changed}, text)


@calendar.command(name="set", help="设定某一天：holiday 放假，workday 调休上班，normal 恢复周一至周五上班的常规。")
@data_option
@click.argument("day", metavar="DATE")
@click.argument("kind", type=click.Choice(list(workdays.KINDS)))
@click.option("--name", default="", help="名称，例如 国庆节、国庆节调休、县庆")
@json_option
@handle_errors
def set_day(data_dir: str, day: str, kind: str, name: str, as_json: bool) -> None:
    entry = {"date": workdays.parse_day(day).isoformat(), "kind": kind, "name": name.strip()}
    changed = _write(data_dir, [entry])
    text = f"已设定 {_describe(entry)}。" if changed else f"无变化：{_describe(entry)} 已是如此。"
    emit(as_json, {"day": entry, "changed": bool(changed)}, text)


@calendar.command(name="list", help="列出一年中与常规不同的日子（默认今年）。")
@data_option
@click.option("--year", type=int, default=None, help="年份（默认今年）")
@json_option
@handle_errors
def list_days(data_dir: str, year: int | None, as_json: bool) -> None:
    year = year or date.today().year
    with open_county_store(DataDir(data_dir)) as store:
        held = current_days(store)
    days = sorted((d for d in held.values() if d["date"].startswith(f"{year:04d}-")), key=lambda d: d["date"])
    rows: list[dict[str, Any]] = [
        {**d, "weekday": workdays.WEEKDAY_NAMES[date.fromisoformat(d["date"]).weekday()]} for d in days
    ]

    def text() -> str:
        if not rows:
            return (
                f"{year} 年尚无工作日历，办件时限按周一至周五上班计算。"
                f"请运行 calendar seed --year {year}，或用 calendar set 逐日录入。"
            )
        lines = [f"{_pad('日期', 12)}{_pad('星期', 6)}{_pad('类型', 12)}名称"]
        lines += [
            f"{_pad(r['date'], 12)}{_pad(r['weekday'], 6)}{_pad(workdays.KIND_LABELS[r['kind']], 12)}{r['name']}"
            for r in rows
        ]
        return "\n".join(lines)

    emit(as_json, {"year": year, "days": rows}, text)
