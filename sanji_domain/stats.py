"""Statistics the county publishes (按时办结率, 满意率), per county, township, village, item or month.

A pure function of the folded tables, the period and `today`. Which date puts
a fact into the period (and, for `group_by="month"`, into a month):

| metric                                              | date                     |
|-----------------------------------------------------|--------------------------|
| completions, 按时/即时办结率, 超期, average 办理工作日 | the completion (办结) date |
| 满意率                                              | the evaluation date      |
| cases by state, open cases overdue (红牌) / warned   | the filing (收件) date     |

* 按时办结率 = completions on or before the (pause-adjusted) promise date ÷
  completions, voided cases excluded. The clock is `views.clock_of`'s.
* 即时办结率 = completions on the day of acceptance (当场办结, 0 working days) ÷ completions,
  voided cases excluded.
* 满意率 = evaluations of level 5, 4 or 3 ÷ all evaluations.
* Open cases overdue: accepted, not completed, still open, and `today` is
  after the promise date (红牌); 预警 and 黄牌 are counted alongside.
* A 转报 opens a linked county case (`origin_case_id` set): only the origin
  case is counted, and its clock also stops for the linked case's pauses.
* `group_by="village"` leaves out cases filed at a township window (and
  evaluations without a village).
* A row's `group` is its key (a node id for townships and villages) and its
  `label` what people read: the place's name (梅花村, see `places`), the
  item's name, the month.

Rates are reported three ways: text rounded to one decimal ("95.0%"), an
integer in basis points (9500) for machines, and a float percentage rounded to
one decimal for JSON; None / "—" when there is nothing to divide by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from typing import Any

from . import places
from .commands import CST
from .errors import ValidationError
from .states import OPEN_STATES, STATE_LABELS, STATES, VOIDED
from .views import CaseClock, calendar, clock_of, clock_settings, day_start_ms, to_local_date
from .workdays import EARLY_WARNING, RED_CARD, YELLOW_CARD, parse_day

GROUPS = ("county", "township", "village", "item", "month")
GROUP_LABELS = {"county": "全县", "township": "乡镇", "village": "村(社区)", "item": "事项", "month": "月份"}
COUNTY_KEY = "全县"
SATISFIED_MIN = 3  # 基本满意 and better
NO_RATE = "—"

Period = tuple[date, date]


@dataclass
class _Tally:
    completions: int = 0
    on_time: int = 0
    instant: int = 0
    handling_days: int = 0
    evaluations: int = 0
    satisfied: int = 0
    filed: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)


def _half_up(n: int, d: int) -> int:
    """round(n / d) with halves rounded up, in integers (n, d ≥ 0, d > 0)."""
    return (2 * n + d) // (2 * d)


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    """{"text": "95.0%", "bp": 9500, "pct": 95.0}; text "—" and None when the denominator is 0."""
    if denominator == 0:
        return {"text": NO_RATE, "bp": None, "pct": None}
    permille = _half_up(numerator * 1000, denominator)
    return {
        "text": f"{permille // 10}.{permille % 10}%",
        "bp": _half_up(numerator * 10000, denominator),
        "pct": permille / 10,
    }


def check_period(period: Any) -> Period | None:
    """None, or (from, to) as dates (inclusive both; `date`s or yyyy-mm-dd text)."""
    if period is None:
        return None
    if not isinstance(period, tuple | list) or len(period) != 2:
        raise ValidationError("统计期间须为 (起始日期, 截止日期) (period is a pair of dates)")
    first, last = (d if isinstance(d, date) else parse_day(d, "统计期间") for d in period)
    if first > last:
        raise ValidationError(f"统计期间的起始日期 {first} 晚于截止日期 {last} (period starts after it ends)")
    return first, last


def statistics(
    conn: Any,
    *,
    group_by: str = "county",
    period: Any = None,
    today: date,
    tz: tzinfo = CST,
) -> list[dict[str, Any]]:
    """One row per group (sorted by key) with every metric above; groups without any fact are left out."""
    return statistics_by(conn, (group_by,), period=period, today=today, tz=tz)[group_by]


# what the statistics need of a case: no body, no personal data (a township holds tens of thousands)
_FACTS_SELECT = (
    "SELECT c.case_id, c.village, c.township, c.item_code, COALESCE(c.item_name, i.name), c.filed_ms, c.state, c.accepted_ms, "
    "c.completed_ms, c.closed_ms, c.promised_days, c.pauses, l.pauses, l.state "
    "FROM cases c LEFT JOIN catalog_items i ON i.task_code = c.item_code "
    "LEFT JOIN cases l ON l.case_id = c.linked_case_id WHERE c.origin_case_id IS NULL"
)
_FACT_COLUMNS = (
    "case_id", "village", "township", "item_code", "item_name", "filed_ms", "state", "accepted_ms",
    "completed_ms", "closed_ms", "promised_days", "pauses", "linked_pauses", "linked_state",
)  # fmt: skip


def clocked_facts(
    conn: Any,
    where: str = "",
    params: Any = (),
    *,
    today: date,
    tz: tzinfo = CST,
    clocks: dict[tuple[Any, ...], CaseClock] | None = None,
) -> Iterator[tuple[dict[str, Any], CaseClock]]:
    """Every counted case (not a linked county case) as (its facts, its clock); `where` narrows the query
    with more conditions on `c` (" AND c.case_id IN (?, ?)").

    The clock (`views.clock_of`) is the costly part: it depends on the acceptance, completion and closing
    days, the time limit, the pauses and the state, and cases that share these (most cases of a busy week
    do) share it. A caller asking in several parts passes one `clocks` dict to share them across the parts."""
    cal, cs = calendar(conn), clock_settings(conn)
    clocks = {} if clocks is None else clocks
    for values in conn.execute(_FACTS_SELECT + where, list(params)):
        row = dict(zip(_FACT_COLUMNS, values, strict=True))
        memo = (
            _day(row["accepted_ms"], tz), _day(row["completed_ms"], tz), _day(row["closed_ms"], tz),
            row["promised_days"], row["pauses"], row["linked_pauses"], row["state"], row["linked_state"],
        )  # fmt: skip
        clock = clocks.get(memo)
        if clock is None:
            clock = clocks[memo] = clock_of(row, cal, cs, today, tz=tz)
        yield row, clock


def statistics_by(
    conn: Any,
    group_bys: tuple[str, ...],
    *,
    period: Any = None,
    today: date,
    tz: tzinfo = CST,
    whole: tuple[str, ...] = (),
) -> dict[str, list[dict[str, Any]]]:
    """`statistics` for several groupings at once, in one pass over the cases and evaluations; the groupings
    named in `whole` count every date, not only the period's (a month's table beside the all-months chart).

    A page that shows a township by village and in total asks for both and pays for one pass.
    """
    for g in group_bys:
        if g not in GROUPS:
            raise ValidationError(f"无法按 {g!r} 分组 (unknown grouping)", hint="可用: " + " / ".join(GROUPS))
    span = check_period(period)
    spans = {g: None if g in whole else span for g in group_bys}

    def within(d: date, g: str) -> bool:
        s = spans[g]
        return s is None or s[0] <= d <= s[1]

    item_names = dict(conn.execute("SELECT task_code, name FROM catalog_items").fetchall())
    # a township or village row is labelled with the place's name (梅花村), its `group` stays the node id
    names = places.names(conn) if {"township", "village"} & set(group_bys) else {}
    labels: dict[str, dict[str, str]] = {g: {} for g in group_bys}
    tallies: dict[str, dict[str, _Tally]] = {g: {} for g in group_bys}

    def tallies_of(fact: dict[str, Any], when: date) -> list[_Tally]:
        out = []
        for g in group_bys:
            if not within(when, g):
                continue
            key = _group_key(g, fact, when)
            if key is None:
                continue
            found = tallies[g].get(key)
            if found is None:
                found = tallies[g][key] = _Tally()
                if g == "item":
                    labels[g][key] = fact.get("item_name") or item_names.get(key) or key
                elif g in ("township", "village"):
                    labels[g][key] = names.get(key, key)
            out.append(found)
        return out

    sql, params = "", list[int]()
    if span is not None and all(spans.values()):
        start, end = day_start_ms(span[0], tz), day_start_ms(span[1] + timedelta(days=1), tz)
        sql = " AND ((c.filed_ms >= ? AND c.filed_ms < ?) OR (c.completed_ms >= ? AND c.completed_ms < ?))"
        params = [start, end, start, end]
    for row, clock in clocked_facts(conn, sql, params, today=today, tz=tz):
        filed = to_local_date(row["filed_ms"], tz)
        for t in tallies_of(row, filed):
            t.filed += 1
            t.by_state[row["state"]] += 1
            if clock.warning in (EARLY_WARNING, YELLOW_CARD, RED_CARD):
                t.warnings[clock.warning] += 1
        if clock.completed is not None and row["state"] != VOIDED:
            for t in tallies_of(row, clock.completed):
                t.completions += 1
                t.on_time += bool(clock.on_time)
                t.instant += clock.completed == clock.accepted
                t.handling_days += clock.elapsed or 0

    cur = conn.execute("SELECT level, at_ms, village, township, item_code FROM evaluations")
    for level, at_ms, village, township, item_code in cur:
        when = to_local_date(at_ms, tz)
        for t in tallies_of({"village": village, "township": township, "item_code": item_code}, when):
            t.evaluations += 1
            t.satisfied += level >= SATISFIED_MIN

    return {
        g: [_row(g, key, labels[g].get(key, key), tallies[g][key]) for key in sorted(tallies[g])] for g in group_bys
    }


def _day(ms: int | None, tz: tzinfo) -> date | None:
    return None if ms is None else to_local_date(ms, tz)


def _group_key(group_by: str, fact: dict[str, Any], when: date) -> str | None:
    if group_by == "county":
        return COUNTY_KEY
    if group_by == "month":
        return f"{when.year:04d}-{when.month:02d}"
    return fact.get({"township": "township", "village": "village", "item": "item_code"}[group_by])


def _row(group_by: str, key: str, label: str, t: _Tally) -> dict[str, Any]:
    on_time, satisfied = rate(t.on_time, t.completions), rate(t.satisfied, t.evaluations)
    instant = rate(t.instant, t.completions)
    return {
        "group_by": group_by,
        "group": key,
        "label": label,
        "completions": t.completions,
        "on_time": t.on_time,
        "late": t.completions - t.on_time,
        "on_time_rate": on_time["text"],
        "on_time_bp": on_time["bp"],
        "on_time_pct": on_time["pct"],
        "instant": t.instant,
        "instant_rate": instant["text"],
        "instant_bp": instant["bp"],
        "instant_pct": instant["pct"],
        "handling_days": t.handling_days,
        "avg_handling_days": _half_up(t.handling_days * 10, t.completions) / 10 if t.completions else None,
        "evaluations": t.evaluations,
        "satisfied": t.satisfied,
        "satisfaction_rate": satisfied["text"],
        "satisfaction_bp": satisfied["bp"],
        "satisfaction_pct": satisfied["pct"],
        "filed": t.filed,
        "by_state": {STATE_LABELS[s]: t.by_state[s] for s in STATES if t.by_state[s]},
        "open": sum(n for s, n in t.by_state.items() if s in OPEN_STATES),
        "overdue_open": t.warnings[RED_CARD],
        "warnings": {w: t.warnings[w] for w in (EARLY_WARNING, YELLOW_CARD, RED_CARD)},
    }


def row_of(group_by: str, key: str, label: str, counts: dict[str, int]) -> dict[str, Any]:
    """A row from counts kept elsewhere (a summary table): completions, on_time, instant, handling_days,
    evaluations, satisfied, filed; the figures that need each case (by state, open, warnings) are left out."""

    def n(name: str) -> int:
        return int(counts.get(name) or 0)

    tally = _Tally(
        completions=n("completions"), on_time=n("on_time"), instant=n("instant"), handling_days=n("handling_days"),
        evaluations=n("evaluations"), satisfied=n("satisfied"), filed=n("filed"),
    )  # fmt: skip
    row = _row(group_by, key, label, tally)
    for k in ("by_state", "open", "overdue_open", "warnings"):
        del row[k]
    return row


def empty_row(group_by: str, key: str, label: str) -> dict[str, Any]:
    """A row for a group with no fact (a village with no case): zeros, — for the rates, and `empty` True."""
    return {**_row(group_by, key, label, _Tally()), "empty": True}


# columns for a printed or exported statistics table: (key in the row, header)
STAT_COLUMNS = (
    ("label", "分组"),
    ("completions", "办结数"),
    ("on_time", "按时办结数"),
    ("late", "超期办结数"),
    ("on_time_rate", "按时办结率"),
    ("avg_handling_days", "平均办理工作日"),
    ("evaluations", "评价数"),
    ("satisfied", "满意数(5/4/3)"),
    ("satisfaction_rate", "满意率"),
    ("filed", "收件数"),
    ("open", "在办数"),
    ("overdue_open", "在办超期(红牌)"),
)


def flat_rows(rows: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Columns and rows for a table: `STAT_COLUMNS`, then one column per state that occurs (收件 by state)."""
    states = [STATE_LABELS[s] for s in STATES if any(STATE_LABELS[s] in r["by_state"] for r in rows)]
    columns = [*STAT_COLUMNS, *((f"state:{label}", label) for label in states)]
    out = []
    for r in rows:
        flat = {k: r[k] for k, _ in STAT_COLUMNS}
        flat.update({f"state:{label}": r["by_state"].get(label, 0) for label in states})
        out.append(flat)
    return columns, out
