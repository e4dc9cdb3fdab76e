"""Read-side queries over the folded tables: case lists, one case, clocks, 代办台账, 值班表, 整改.

Pure functions of (sqlite3 connection, parameters, `today`): no clock reads,
no writes. Times in the tables are milliseconds since the epoch; they become
dates in the county's time zone (`tz`, China Standard Time by default, a fixed
UTC+8 offset) through `to_local_date`, never through the machine's zone.

Dates in the returned rows are `yyyy-mm-dd` text (JSON-ready and what a
printed ledger shows); `clock_of` gives the same facts as `date`s for code that
computes with them (`stats`). A row that names a village, a township or an
author node keeps the id (for scripts) and carries the place's display name
beside it (`village_name`, `township_name`, `author_name`; see `places`).

Clocks (see `workdays` for the rules): a case's clock starts on the day after
acceptance (受理). The pauses folded for the case (补正, 挂起, 特别程序) stop it;
for a case forwarded (转报) to the county, the linked county case's pauses
stop the origin case's clock too, because the applicant waits for the county
then. A case not yet accepted has no promise date (未受理).

Personal data (申请人) lives in `case_pii`: plain JSON bytes (`sealed` 0), or
sealed on a village laptop (`sealed` 1) and opened only through the `opener`
the caller passes (`opener(data, fold.case_pii_aad(case_id)) -> bytes`);
without one it reads 已加密, and a purged row reads 已清除.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import orjson

from sync_protocol.errors import SyncError

from . import kinds, places
from .commands import CST, LEVEL_LABELS, load_case, settings
from .errors import ValidationError
from .fold import case_pii_aad
from .states import (
    ACTION_LABELS,
    CONFLICT_RULE,
    NOT_ACCEPTED,
    OPEN_STATES,
    PAUSED_STATES,
    ROLE_LABELS,
    STATE_LABELS,
    VOIDED,
    WITHDRAWN,
)
from .workdays import (
    DAY_END_MINUTE,
    EARLY_WARNING,
    NORMAL_WARNING,
    RED_CARD,
    YELLOW_CARD,
    ClockSettings,
    Pause,
    WorkCalendar,
    calendar_from_rows,
    elapsed_workdays,
    instant_grace,
    parse_day,
    promise_date,
    remaining_workdays,
    warning_level,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

Opener = Callable[[bytes, bytes], bytes]  # (sealed bytes, aad) -> plain bytes

NOT_ACCEPTED_YET = "未受理"
PAUSED = "暂停计时"
ON_TIME, LATE = "按时办结", "超期办结"
ENDED = "已终止"
SEALED_TEXT, PURGED_TEXT, UNREADABLE_TEXT = "已加密", "已清除", "无法解密"

LEDGER_COLUMNS = (
    "序号",
    "日期",
    "村民姓名",
    "身份证号",
    "联系电话",
    "事项",
    "收取材料",
    "委托书编号",
    "代办员",
    "报送乡镇期限",
    "报送日期",
    "办件编号",
    "办理结果",
    "回交日期",
    "满意度",
    "状态",
    "逾期",
)
# 代办台账 状态: 委托 → 报送 → 办理中 → 已回交, or 终止
ENTRUSTED, SENT, HANDLING, RETURNED, ENDED_LEDGER = "委托", "报送", "办理中", "已回交", "终止"
LEDGER_STATES = (ENTRUSTED, SENT, HANDLING, RETURNED, ENDED_LEDGER)
_ENDING_STATES = frozenset({WITHDRAWN, VOIDED, NOT_ACCEPTED})

ROSTER_COLUMNS = ("村", "日期", "星期", "值班代办员", "替岗人员")
_WEEKDAYS = "一二三四五六日"

# --- time -----------------------------------------------------------------------------------------------------


def to_local_datetime(ms: int, tz: tzinfo = CST) -> datetime:
    return (_EPOCH + ms * _MS).astimezone(tz)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


def to_local_date(ms: int, tz: tzinfo = CST) -> date:
    """The calendar day, in `tz`, of an instant given in ms since the epoch."""
    offset = tz.utcoffset(None)
    if offset is not None:  # a fixed offset (China time has no summer time): plain arithmetic, on hot paths
        return date.fromordinal(_EPOCH_ORDINAL + (ms + offset // _MS) // _DAY_MS)
    return to_local_datetime(ms, tz).date()


def day_start_ms(d: date, tz: tzinfo = CST) -> int:
    """The first millisecond of day `d` in `tz`."""
    return (datetime.combine(d, time(), tz) - _EPOCH) // _MS


def _iso(ms: int | None, tz: tzinfo) -> str | None:
    return None if ms is None else to_local_date(ms, tz).isoformat()


def _stamp(ms: int | None, tz: tzinfo) -> str | None:
    return None if ms is None else to_local_datetime(ms, tz).strftime("%Y-%m-%d %H:%M")


def parse_month(month: str) -> tuple[date, date]:
    """`2026-11` → (first day, last day) of that month, or a ValidationError."""
    text = month.strip() if isinstance(month, str) else ""
    try:
        first = parse_day(f"{text}-01") if len(text) == 7 else None
    except ValidationError:
        first = None
    if first is None:
        raise ValidationError(f"月份 {month!r} 格式不对 (not a month)", hint="请用 yyyy-mm 格式，例如 2026-11")
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _ms_range(first: date, last: date, tz: tzinfo) -> tuple[int, int]:
    """[start, end) in ms covering the days first…last."""
    return day_start_ms(first, tz), day_start_ms(last + timedelta(days=1), tz)


# --- calendar and settings ---------------------------------------------------------------------------------


def calendar(conn: Any) -> WorkCalendar:
    """The county's working-day calendar as folded into `calendar_days`."""
    return calendar_from_rows(
        (day, kind, name or "")
        for day, kind, name in conn.execute("SELECT day, kind, name FROM calendar_days ORDER BY seq")
    )


def clock_settings(conn: Any) -> ClockSettings:
    """预警 and 黄牌 thresholds from the county's settings (defaults: `commands.SETTINGS`).

    The two are set one at a time, so they may disagree for a while (黄牌 above
    预警): then 预警 starts where 黄牌 does, instead of every view failing.
    """
    s = settings(conn)
    warn, yellow = int(s["warn_days"]), int(s["yellow_days"])
    return ClockSettings(warn_days=max(warn, yellow), yellow_days=yellow, day_end=hhmm_minutes(s["day_end"]))


def hhmm_minutes(value: Any) -> int:
    """A `day_end` setting (HHMM, e.g. 1730) as minutes after midnight; the default for a value that is not."""
    hours, minutes = divmod(value, 100) if type(value) is int else (-1, -1)
    if 0 <= hours <= 24 and 0 <= minutes < 60 and 0 < hours * 60 + minutes <= 24 * 60:
        return hours * 60 + minutes
    return DAY_END_MINUTE


def minute_of_day(ms: int, tz: tzinfo = CST) -> int:
    """Minutes after midnight, in `tz`, of an instant in ms since the epoch."""
    t = to_local_datetime(ms, tz)
    return t.hour * 60 + t.minute


# --- clocks ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseClock:
    """The clock facts of one case on `today`, as dates."""

    label: str  # 未受理 | 正常/预警/黄牌/红牌 | 暂停计时 | 按时办结/超期办结 | 已终止
    accepted: date | None = None
    promise: date | None = None
    remaining: int | None = None  # open cases: working days left (negative: overdue)
    warning: str | None = None  # open cases: 正常 | 预警 | 黄牌 | 红牌
    paused: bool = False
    completed: date | None = None
    on_time: bool | None = None  # completed cases
    elapsed: int | None = None  # counted working days: through completion (办理工作日), closing, or today

    def as_dict(self) -> dict[str, Any]:
        return {
            "clock": self.label,
            "accepted_date": self.accepted.isoformat() if self.accepted else None,
            "promise_date": self.promise.isoformat() if self.promise else None,
            "remaining_days": self.remaining,
            "warning": self.warning,
            "paused": self.paused,
            "completed_date": self.completed.isoformat() if self.completed else None,
            "on_time": self.on_time,
            "handling_days": self.elapsed if self.completed else None,
            "elapsed_days": self.elapsed,
        }


def _pauses(raw: Any, tz: tzinfo) -> list[Pause]:
    if not raw:
        return []
    spans = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    out: list[Pause] = []
    for start_ms, end_ms in spans:
        start = to_local_date(start_ms, tz)
        # stamps from two nodes' clocks may disagree a little: an end never lies before its start
        out.append((start, None if end_ms is None else max(start, to_local_date(end_ms, tz))))
    return out


def clock_of(
    row: dict[str, Any],
    cal: WorkCalendar,
    cs: ClockSettings,
    today: date,
    *,
    tz: tzinfo = CST,
    minute: int | None = None,
) -> CaseClock:
    """The clock of a case row (`cases` columns; `linked_pauses`/`linked_state` if the query joined them).

    `minute` (minutes after midnight of now, China time), when given, applies the 即办件 rule: on its
    acceptance day, before the working day ends, a 即办件 reads 正常 (`workdays.instant_grace`). Without
    it the clock is judged by the date alone (a 即办件 reads 黄牌 all its acceptance day)."""
    if row.get("accepted_ms") is None:
        return CaseClock(NOT_ACCEPTED_YET)
    accepted = to_local_date(row["accepted_ms"], tz)
    pauses = _pauses(row.get("pauses"), tz) + _pauses(row.get("linked_pauses"), tz)
    promise = promise_date(accepted, int(row.get("promised_days") or 0), pauses, cal, today)
    if row.get("completed_ms") is not None:
        completed = to_local_date(row["completed_ms"], tz)
        on_time = completed <= promise
        elapsed = elapsed_workdays(accepted, completed, pauses, cal)
        return CaseClock(
            ON_TIME if on_time else LATE, accepted, promise, completed=completed, on_time=on_time, elapsed=elapsed
        )
    if row["state"] not in OPEN_STATES:
        closed = to_local_date(row["closed_ms"], tz) if row.get("closed_ms") is not None else today
        return CaseClock(ENDED, accepted, promise, elapsed=elapsed_workdays(accepted, closed, pauses, cal))
    paused = row["state"] in PAUSED_STATES or row.get("linked_state") in PAUSED_STATES
    warning = warning_level(today, promise, cal, cs)
    if minute is not None and instant_grace(
        accepted, minute_of_day(row["accepted_ms"], tz), int(row.get("promised_days") or 0), today, minute, cs.day_end
    ):
        warning = NORMAL_WARNING
    return CaseClock(
        PAUSED if paused else warning,
        accepted,
        promise,
        remaining=remaining_workdays(today, promise, cal),
        warning=warning,
        paused=paused,
        elapsed=elapsed_workdays(accepted, today, pauses, cal),
    )


def case_clock(
    case_row: dict[str, Any], cal: WorkCalendar, settings: ClockSettings, today: date, *, tz: tzinfo = CST
) -> dict[str, Any]:
    """`clock_of` as JSON-ready fields: clock, accepted_date, promise_date, remaining_days, warning, paused,
    completed_date, on_time, handling_days (completed: accepted → completed), elapsed_days."""
    return clock_of(case_row, cal, settings, today, tz=tz).as_dict()


# --- cases -------------------------------------------------------------------------------------------------

_CASE_SELECT = (
    "SELECT c.*, COALESCE(c.item_name, i.name) AS item_label, l.pauses AS linked_pauses, l.state AS linked_state, "
    "COALESCE(nv.name, c.village) AS village_name, COALESCE(nt.name, c.township) AS township_name, "
    "COALESCE(na.name, c.author) AS author_name "
    "FROM cases c LEFT JOIN catalog_items i ON i.task_code = c.item_code "
    "LEFT JOIN cases l ON l.case_id = c.linked_case_id "
    "LEFT JOIN nodes nv ON nv.node = c.village LEFT JOIN nodes nt ON nt.node = c.township "
    "LEFT JOIN nodes na ON na.node = c.author"  # display names (places): the id when a node has none
)


class _Where:
    """AND-ed conditions and their parameters; `eq` skips a filter that was not given."""

    def __init__(self, *fixed: str) -> None:
        self.terms, self.params = list(fixed), list[Any]()

    def eq(self, column: str, value: Any) -> None:
        if value:
            self.add(f"{column} = ?", value)

    def add(self, term: str, *params: Any) -> None:
        self.terms.append(term)
        self.params += params

    @property
    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.terms) if self.terms else ""


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    cols = [c[0] for c in cursor.description]
    return [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]


def _state_code(state: str) -> str:
    if state in STATE_LABELS:
        return state
    for code, label in STATE_LABELS.items():
        if label == state:
            return code
    raise ValidationError(
        f"未知的办件状态 {state!r} (unknown state)",
        hint="可用: " + "、".join(f"{label} ({code})" for code, label in STATE_LABELS.items()),
    )


def _case_summary(row: dict[str, Any], clock: CaseClock, tz: tzinfo) -> dict[str, Any]:
    return {
        "case_id": row["case_id"],
        "local_no": row["local_no"],
        "official_no": row["official_no"],
        "number": row["official_no"] or row["local_no"],
        "item_code": row["item_code"],
        "item_version": row["item_version"],
        "item_name": row.get("item_label") or row.get("item_name"),
        "case_type": row["case_type"],
        "promised_days": row["promised_days"],
        "state": row["state"],
        "state_label": STATE_LABELS.get(row["state"], row["state"]),
        "level": row["level"],
        "village": row["village"],
        "village_name": row.get("village_name", row["village"]),
        "township": row["township"],
        "township_name": row.get("township_name", row["township"]),
        "author": row["author"],
        "author_name": row.get("author_name", row["author"]),
        "channel": row["channel"],
        "agent_name": row["agent_name"],
        "proxy_no": row["proxy_no"],
        "pledge": bool(row["pledge"]),
        "origin_case_id": row["origin_case_id"],
        "linked_case_id": row["linked_case_id"],
        "filed_date": _iso(row["filed_ms"], tz),
        "first_handled_date": _iso(row["first_handled_ms"], tz),
        "delivered_date": _iso(row["delivered_ms"], tz),
        "result": row["result"],
        "conflicts": row["conflicts"],
        **clock.as_dict(),
    }


def list_cases(
    conn: Any,
    *,
    village: str | None = None,
    township: str | None = None,
    state: str | None = None,
    item: str | None = None,
    limit: int | None = None,
    today: date,
    minute: int | None = None,
    tz: tzinfo = CST,
) -> list[dict[str, Any]]:
    """Cases, newest filed first, with state label and clock (`minute`: now, for the 即办件 rule, `clock_of`). `state` is a code or its label;
    `item` an item's 实施编码 or name. The county case a 转报 opened is listed too (origin_case_id set)."""
    w = _Where()
    w.eq("c.village", village)
    w.eq("c.township", township)
    w.eq("c.state", state and _state_code(state))
    if item:
        w.add("(c.item_code = ? OR COALESCE(c.item_name, i.name) = ?)", item, item)
    sql = _CASE_SELECT + w.sql + " ORDER BY c.filed_ms DESC, c.case_id"
    if limit is not None:
        if type(limit) is not int or limit < 1:
            raise ValidationError(f"limit 须为正整数 (got {limit!r})")
        sql += " LIMIT ?"
        w.params.append(limit)
    cal, cs = calendar(conn), clock_settings(conn)
    return [
        _case_summary(r, clock_of(r, cal, cs, today, tz=tz, minute=minute), tz)
        for r in _dicts(conn.execute(sql, w.params))
    ]


def _case_row(conn: Any, case_id: str) -> dict[str, Any] | None:
    rows = _dicts(conn.execute(_CASE_SELECT + " WHERE c.case_id = ?", (case_id,)))
    return rows[0] if rows else None


def applicant_of(conn: Any, case_id: str, opener: Opener | None = None) -> dict[str, Any] | str | None:
    """The applicant of a case (the origin's, for a linked county case): a dict, or 已加密 / 已清除 / 无法解密;
    None when the case has no personal data on this node."""
    return _applicants(conn, [case_id], opener).get(case_id)


def _applicants(conn: Any, case_ids: Sequence[str], opener: Opener | None) -> dict[str, dict[str, Any] | str]:
    out: dict[str, dict[str, Any] | str] = {}
    for i in range(0, len(case_ids), 500):
        chunk = list(case_ids[i : i + 500])
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT c.case_id, p.case_id, p.data, p.sealed, p.purged_ms FROM cases c "
            f"JOIN case_pii p ON p.case_id = COALESCE(c.origin_case_id, c.case_id) WHERE c.case_id IN ({marks})",
            chunk,
        ).fetchall()
        for case_id, pii_id, data, sealed, purged_ms in rows:
            out[case_id] = _open_pii(pii_id, data, sealed, purged_ms, opener)
    return out


def _open_pii(pii_id: str, data: bytes | None, sealed: int, purged_ms: int | None, opener: Opener | None) -> Any:
    if purged_ms is not None or data is None:
        return PURGED_TEXT
    if sealed:
        if opener is None:
            return SEALED_TEXT
        try:
            data = opener(bytes(data), case_pii_aad(pii_id))
        except (SyncError, ValueError):
            return UNREADABLE_TEXT
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return UNREADABLE_TEXT


def _materials(conn: Any, rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The materials checklist of each case: filed with the case, replaced by the latest applied
    收件/补正 event that carried one."""
    out = {r["case_id"]: list(orjson.loads(r["body"]).get("materials") or []) for r in rows}
    ids = [r["origin_case_id"] or r["case_id"] for r in rows]
    back = {r["origin_case_id"] or r["case_id"]: r["case_id"] for r in rows}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for case_id, materials in conn.execute(
            f"SELECT case_id, json_extract(body, '$.materials') FROM case_events WHERE case_id IN ({marks}) "
            "AND conflict IS NULL AND json_extract(body, '$.materials') IS NOT NULL ORDER BY hlc, author, feed, seq",
            chunk,
        ):
            out[back[case_id]] = orjson.loads(materials)
    return out


def _events(conn: Any, case_id: str, tz: tzinfo, known: dict[str, str]) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT feed, seq, author, role, action, at_ms, before, after, conflict, body FROM case_events "
        "WHERE case_id = ? ORDER BY hlc, author, feed, seq",
        (case_id,),
    ).fetchall()
    out = []
    for feed, seq, author, role, action, at_ms, before, after, conflict, body in rows:
        v = orjson.loads(body)
        out.append(
            {
                "feed": feed,
                "seq": seq,
                "action": action,
                "action_label": ACTION_LABELS.get(action, action),
                "role": role,
                "role_label": ROLE_LABELS.get(role, role),
                "author": author,
                "author_name": places.label(known, author),
                "by": v.get("by"),
                "at": _stamp(at_ms, tz),
                "at_ms": at_ms,
                "before": before,
                "before_label": STATE_LABELS.get(before, before) if before else None,
                "after": after,
                "after_label": STATE_LABELS.get(after, after) if after else None,
                "conflict": conflict,
                "reason": v.get("reason"),
                "result": v.get("result"),
                "kind": v.get("kind"),
                "materials": v.get("materials"),  # the checklist this event recorded, if it carried one
                "requested": v.get("requested"),  # 补齐补正: the materials the window asked for
            }
        )
    return out


def _cards(conn: Any, case_ids: Iterable[str], tz: tzinfo) -> list[dict[str, Any]]:
    ids = list(case_ids)
    marks = ",".join("?" * len(ids))
    rows = _dicts(conn.execute(f"SELECT * FROM cards WHERE case_id IN ({marks}) ORDER BY issued_ms, card_id", ids))
    for r in rows:
        r["issued_at"] = _stamp(r["issued_ms"], tz)
        r["revoked_at"] = _stamp(r["revoked_ms"], tz)
        r["active"] = r["revoked_ms"] is None
    return rows


def _evaluations(conn: Any, case_ids: Iterable[str], tz: tzinfo, known: dict[str, str]) -> list[dict[str, Any]]:
    ids = list(case_ids)
    marks = ",".join("?" * len(ids))
    rows = _dicts(
        conn.execute(
            "SELECT e.*, r.state AS rectification_state FROM evaluations e "
            f"LEFT JOIN rectifications r ON r.evaluation_id = e.evaluation_id WHERE e.case_id IN ({marks}) "
            "ORDER BY e.at_ms, e.evaluation_id",
            ids,
        )
    )
    for r in rows:
        r["level_label"] = LEVEL_LABELS.get(r["level"], str(r["level"]))
        r["at"] = _stamp(r["at_ms"], tz)
        for field in ("village", "township", "author"):
            r[f"{field}_name"] = places.label(known, r[field])
    return rows


def show_case(
    conn: Any, ref: str, today: date, opener: Opener | None = None, *, minute: int | None = None, tz: tzinfo = CST
) -> dict[str, Any]:
    """One case by id, local number or 办件编号: its summary and clock, applicant, materials, events
    (with conflicts and the rule that decides them), cards, evaluations, and the linked or origin case.
    `minute` (now, minutes after midnight) applies the 即办件 rule to the clocks (`clock_of`)."""
    row = _case_row(conn, load_case(conn, ref)["case_id"])
    assert row is not None  # load_case found it
    cal, cs, known = calendar(conn), clock_settings(conn), places.names(conn)
    out = _case_summary(row, clock_of(row, cal, cs, today, tz=tz, minute=minute), tz)
    body = orjson.loads(row["body"])
    events = _events(conn, row["case_id"], tz, known)
    related = [row["case_id"], *(x for x in (row["linked_case_id"], row["origin_case_id"]) if x)]
    out.update(
        applicant=applicant_of(conn, row["case_id"], opener),
        materials=_materials(conn, [row])[row["case_id"]],
        missing=body.get("missing") or [],
        notes=body.get("notes"),
        # re-issued after a fork was resolved (sanji_node.resolve): the number it had on the other branch
        original_local_no=body.get("original_local_no"),
        reissue_of=body.get("reissue_of"),
        events=events,
        conflict_list=[e for e in events if e["conflict"]],
        conflict_rule=CONFLICT_RULE,
        cards=_cards(conn, related, tz),
        evaluations=_evaluations(conn, related, tz, known),
        linked_case=None,
        origin_case=None,
    )
    for key, other_id in (("linked_case", row["linked_case_id"]), ("origin_case", row["origin_case_id"])):
        other = _case_row(conn, other_id) if other_id else None
        if other is not None:
            out[key] = _case_summary(other, clock_of(other, cal, cs, today, tz=tz, minute=minute), tz)
    return out


# --- 代办台账 -------------------------------------------------------------------------------------------------


def ledger_state(row: dict[str, Any]) -> str:
    """委托 (not yet handled by the township) → 报送 (handled, not accepted) → 办理中 (accepted … until
    returned) → 已回交 (delivered); 终止 when withdrawn, voided or not accepted."""
    if row["state"] in _ENDING_STATES:
        return ENDED_LEDGER
    if row["delivered_ms"] is not None:
        return RETURNED
    if row["accepted_ms"] is not None:
        return HANDLING
    if row["first_handled_ms"] is not None:
        return SENT
    return ENTRUSTED


def _pii_field(applicant: Any, key: str) -> str:
    if isinstance(applicant, dict):
        return str(applicant.get(key) or "")
    return applicant or ""


def ledger(
    conn: Any,
    *,
    village: str | None = None,
    township: str | None = None,
    month: str | None = None,
    today: date,
    opener: Opener | None = None,
    tz: tzinfo = CST,
) -> list[dict[str, Any]]:
    """代办台账: one row per case a village agent filed (not the county case a 转报 opened), oldest first,
    with exactly the `LEDGER_COLUMNS`. `month` (yyyy-mm) selects by filing date.

    报送乡镇期限 is the filing date + `kinds.LEDGER_DUE_DAYS` working days; 报送日期 the day of the first
    township or county action; 逾期 is true when the case was sent after that date, or is still not
    sent (and not ended) today after it."""
    w = _Where("c.village IS NOT NULL", "c.origin_case_id IS NULL")
    w.eq("c.village", village)
    w.eq("c.township", township)
    if month:
        w.add("c.filed_ms >= ? AND c.filed_ms < ?", *_ms_range(*parse_month(month), tz))
    rows = _dicts(
        conn.execute(
            "SELECT c.*, COALESCE(c.item_name, i.name) AS item_label, "
            "(SELECT level FROM evaluations e WHERE e.case_id = c.case_id ORDER BY e.at_ms DESC, e.evaluation_id DESC "
            "LIMIT 1) AS satisfaction FROM cases c LEFT JOIN catalog_items i ON i.task_code = c.item_code "
            f"{w.sql} ORDER BY c.filed_ms, c.local_no, c.case_id",
            w.params,
        )
    )
    cal = calendar(conn)
    applicants = _applicants(conn, [r["case_id"] for r in rows], opener)
    materials = _materials(conn, rows)
    out = []
    for n, r in enumerate(rows, start=1):
        filed = to_local_date(r["filed_ms"], tz)
        due = cal.add_workdays(filed, kinds.LEDGER_DUE_DAYS)
        sent = to_local_date(r["first_handled_ms"], tz) if r["first_handled_ms"] is not None else None
        status = ledger_state(r)
        overdue = sent > due if sent is not None else (status != ENDED_LEDGER and today > due)
        applicant = applicants.get(r["case_id"])
        received = [m["name"] for m in materials[r["case_id"]] if m.get("received")]
        out.append(
            {
                "序号": n,
                "日期": filed.isoformat(),
                "村民姓名": _pii_field(applicant, "name"),
                "身份证号": _pii_field(applicant, "id_number"),
                "联系电话": _pii_field(applicant, "phone"),
                "事项": r["item_label"] or r["item_code"],
                "收取材料": "、".join(received),
                "委托书编号": r["proxy_no"] or "",
                "代办员": r["agent_name"] or "",
                "报送乡镇期限": due.isoformat(),
                "报送日期": sent.isoformat() if sent else "",
                "办件编号": r["official_no"] or r["local_no"] or "",
                "办理结果": r["result"] or STATE_LABELS.get(r["state"], r["state"]),
                "回交日期": _iso(r["delivered_ms"], tz) or "",
                "满意度": LEVEL_LABELS.get(r["satisfaction"], "") if r["satisfaction"] is not None else "",
                "状态": status,
                "逾期": overdue,
            }
        )
    return out


# --- 值班表 ---------------------------------------------------------------------------------------------------


def roster(conn: Any, *, village: str | None = None, month: str | None = None) -> list[dict[str, Any]]:
    """值班表 rows (`ROSTER_COLUMNS`: 村 (the village's name), 日期, 星期, 值班代办员, 替岗人员; and `village`,
    `village_name` for scripts), by village then day."""
    w = _Where()
    w.eq("village", village)
    if month:
        first, last = parse_month(month)
        w.add("day >= ? AND day <= ?", first.isoformat(), last.isoformat())
    rows = conn.execute(
        f"SELECT village, day, agent, substitute FROM roster{w.sql} ORDER BY village, day", w.params
    ).fetchall()
    known = places.names(conn)
    return [
        {
            "村": places.label(known, v),
            "日期": day,
            "星期": "星期" + _WEEKDAYS[date.fromisoformat(day).weekday()],
            "值班代办员": agent,
            "替岗人员": substitute or "",
            "village": v,
            "village_name": places.label(known, v),
        }
        for v, day, agent, substitute in rows
    ]


# --- 整改 -----------------------------------------------------------------------------------------------------


def rectifications(
    conn: Any,
    *,
    village: str | None = None,
    township: str | None = None,
    state: str | None = None,
    today: date,
    tz: tzinfo = CST,
) -> list[dict[str, Any]]:
    """整改 of every 差评, oldest first: the evaluation, owner, deadline date (opened + deadline_days working
    days), 回访 and the applicant's rating of the fix. Overdue: no 回访 (nor rating) by the deadline —
    done after it, or still not done today after it."""
    w = _Where()
    w.eq("e.village", village)
    w.eq("e.township", township)
    w.eq("r.state", state)
    rows = _dicts(
        conn.execute(
            "SELECT r.*, e.case_id, e.level, e.channel, e.stage, e.target_type, e.target_name, e.comment, e.at_ms, "
            "e.village, e.township, e.item_code, c.local_no, c.official_no, COALESCE(c.item_name, i.name) AS item_name "
            "FROM rectifications r JOIN evaluations e ON e.evaluation_id = r.evaluation_id "
            "LEFT JOIN cases c ON c.case_id = e.case_id LEFT JOIN catalog_items i ON i.task_code = e.item_code"
            + w.sql
            + " ORDER BY r.opened_ms, r.evaluation_id",
            w.params,
        )
    )
    cal, known = calendar(conn), places.names(conn)
    steps = rectification_steps(conn, [r["evaluation_id"] for r in rows], tz=tz)
    out = []
    for r in rows:
        taken = steps.get(r["evaluation_id"], [])
        closing = [s for s in taken if s["step"] == "close"]
        opened = to_local_date(r["opened_ms"], tz)
        deadline = cal.add_workdays(opened, int(r["deadline_days"]))
        done_ms = r["followup_ms"] if r["followup_ms"] is not None else r["fix_rated_ms"]
        done = to_local_date(done_ms, tz) if done_ms is not None else None
        out.append(
            {
                "evaluation_id": r["evaluation_id"],
                "case_id": r["case_id"],
                "number": r["official_no"] or r["local_no"],
                "item_code": r["item_code"],
                "item_name": r["item_name"],
                "village": r["village"],
                "village_name": places.label(known, r["village"]),
                "township": r["township"],
                "township_name": places.label(known, r["township"]),
                "level": r["level"],
                "level_label": LEVEL_LABELS.get(r["level"], str(r["level"])),
                "channel": r["channel"],
                "stage": r["stage"],
                "target_type": r["target_type"],
                "target_name": r["target_name"],
                "comment": r["comment"],
                "evaluated_at": _stamp(r["at_ms"], tz),
                "opened_date": opened.isoformat(),
                "owner": r["owner"],
                "deadline_days": r["deadline_days"],
                "deadline_date": deadline.isoformat(),
                "followup_date": _iso(r["followup_ms"], tz),
                "followup_note": r["followup_note"],
                "fix_level": r["fix_level"],
                "fix_level_label": LEVEL_LABELS.get(r["fix_level"]) if r["fix_level"] is not None else None,
                "state": r["state"],
                "overdue": done > deadline if done is not None else today > deadline,
                "result": closing[-1]["result"] if closing else None,
                "steps": taken,
            }
        )
    return out


STEP_LABELS = {"assign": "指派", "followup": "跟进（回访）", "close": "办结", "rate": "整改评价"}


def rectification_steps(
    conn: Any, evaluation_ids: Sequence[str], *, tz: tzinfo = CST
) -> dict[str, list[dict[str, Any]]]:
    """evaluation_id → the steps taken on its rectification, in the fold's order: step, label, who (`by`, else
    the node's name), when, owner, deadline days, note, result, level."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not evaluation_ids:
        return out
    known = places.names(conn)
    for eid, step, body, author in conn.execute(
        "SELECT evaluation_id, step, body, author FROM rectification_steps "
        "WHERE evaluation_id IN (SELECT value FROM json_each(?)) AND NOT EXISTS "
        "(SELECT 1 FROM fold_rejects j WHERE j.feed = rectification_steps.feed AND j.seq = rectification_steps.seq) "
        "ORDER BY hlc, author, feed, seq",
        (orjson.dumps(list(evaluation_ids)).decode(),),
    ):
        v = orjson.loads(body)
        out.setdefault(eid, []).append(
            {
                "step": step,
                "label": STEP_LABELS.get(step, step),
                "by": v.get("by") or places.label(known, author),
                "at": _stamp(v.get("at_ms"), tz) if isinstance(v.get("at_ms"), int) else None,
                "owner": v.get("owner"),
                "deadline_days": v.get("deadline_days"),
                "note": v.get("note"),
                "result": v.get("result"),
                "level_label": LEVEL_LABELS.get(v["level"]) if v.get("level") is not None else None,
            }
        )
    return out


CARD_LEVELS = (EARLY_WARNING, YELLOW_CARD, RED_CARD)


def cards_due(
    conn: Any,
    *,
    today: date,
    minute: int | None = None,
    case_ids: Sequence[str] | None = None,
    tz: tzinfo = CST,
) -> list[tuple[str, str, str]]:
    """电子监察: (case_id, 预警/黄牌/红牌, reason) for each open, running case at a card threshold without that
    card yet (only those of `case_ids`, if given: at most a few hundred).

    A 红牌 is due once the promise date has passed; a 黄牌 when at most `yellow_days` working days are left;
    a 预警 when at most `warn_days` are. A paused case (补正, 挂起, 特别程序) is not carded while its clock
    stands still. With `minute` (now, minutes after midnight) a 即办件 is not carded on its acceptance day
    before the working day ends (`clock_of`); without it, by the date alone.
    """
    cal, cs = calendar(conn), clock_settings(conn)
    held = {
        (case_id, level)
        for case_id, level in conn.execute("SELECT case_id, level FROM cards WHERE revoked_ms IS NULL").fetchall()
    }
    rows = _dicts(
        conn.execute(
            "SELECT c.*, l.pauses AS linked_pauses, l.state AS linked_state FROM cases c "
            "LEFT JOIN cases l ON l.case_id = c.linked_case_id "
            "WHERE c.origin_case_id IS NULL AND c.accepted_ms IS NOT NULL AND c.completed_ms IS NULL"
            + ("" if case_ids is None else f" AND c.case_id IN ({','.join('?' * len(case_ids))})"),
            () if case_ids is None else list(case_ids),
        )
    )
    due = []
    for row in rows:
        if row["state"] not in OPEN_STATES:
            continue
        clock = clock_of(row, cal, cs, today, tz=tz, minute=minute)
        if clock.paused or clock.warning not in CARD_LEVELS or clock.promise is None:
            continue
        if (row["case_id"], clock.warning) in held:
            continue
        if clock.warning == RED_CARD:
            reason = f"超过承诺办结日期 {clock.promise.isoformat()} 仍未办结 (overdue)"
        elif clock.warning == EARLY_WARNING:
            reason = f"距承诺办结日期 {clock.promise.isoformat()} 剩 {clock.remaining} 个工作日 (early warning)"
        else:
            reason = f"距承诺办结日期 {clock.promise.isoformat()} 仅剩 {clock.remaining} 个工作日 (due soon)"
        due.append((row["case_id"], clock.warning, reason))
    return due


def conflicts(conn: Any, *, tz: tzinfo = CST) -> list[dict[str, Any]]:
    """Every event the fold kept as a conflict, oldest first: what was tried, by whom, on which case, and why not."""
    cur = conn.execute(
        "SELECT e.case_id, c.local_no, c.official_no, e.feed, e.seq, e.author, e.role, e.action, e.at_ms, e.before, "
        "e.conflict FROM case_events e LEFT JOIN cases c ON c.case_id = e.case_id "
        "WHERE e.conflict IS NOT NULL ORDER BY e.hlc, e.author, e.feed, e.seq"
    )
    known = places.names(conn)
    out = []
    for row in _dicts(cur):
        row["author_name"] = places.label(known, row["author"])
        row["at"] = _stamp(row.pop("at_ms"), tz)
        row["action_label"] = ACTION_LABELS.get(row["action"], row["action"])
        row["state_label"] = STATE_LABELS.get(row["before"], row["before"])
        out.append(row)
    return out


def catalog(conn: Any, *, show_all: bool = False, level: str | None = None) -> list[dict[str, Any]]:
    """The catalog as released: items in use (all of them with `show_all`), optionally of one handling level."""
    w = _Where() if show_all else _Where("state = '在用'")
    w.eq("level", level)
    return _dicts(
        conn.execute(
            "SELECT task_code, name, version, state, level, village_mode, case_type, promised_days FROM catalog_items"
            + w.sql
            + " ORDER BY task_code",
            w.params,
        )
    )


def cards(conn: Any, *, tz: tzinfo = CST) -> list[dict[str, Any]]:
    """Every card (预警/黄牌/红牌) issued, revoked or not, with its case's local number, oldest first."""
    rows = _dicts(
        conn.execute(
            "SELECT c.*, k.local_no FROM cards c LEFT JOIN cases k ON k.case_id = c.case_id "
            "ORDER BY c.issued_ms, c.card_id"
        )
    )
    for r in rows:
        r["issued_at"], r["revoked_at"] = _stamp(r["issued_ms"], tz), _stamp(r["revoked_ms"], tz)
    return rows
