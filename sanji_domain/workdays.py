"""Working days and case clocks (办件时限): 法定节假日 off, 调休 make-up days on.

Pure: dates come in (`today` included), dates and counts go out. No file, clock
or database access; the county's calendar arrives as rows (`calendar_from_rows`).

The calendar
    A day is a working day when the county says so (`WORKDAY`: a 调休 Saturday),
    is not when the county says so (`HOLIDAY`: 法定节假日 on a weekday), and
    otherwise follows the weekday rule: Monday–Friday work, Saturday and Sunday
    off. `NORMAL` in a row takes a day back to the weekday rule. The State
    Council publishes next year's schedule each November; `seed_days` turns the
    `chinesecalendar` package's copy of it into rows, and the county can enter
    or correct any day by hand.

The clock of a case accepted (受理) on day A with a limit of N working days
    * Counting starts the day after acceptance: the working days d > A count.
    * A pause (补正, 挂起, 特别程序) is `(s, e)`: started on day s, ended (the
      clock resumed) on day e. The working days s <= d < e do not count: the day
      the pause starts is already stopped, the day it ends counts again. A
      pause that starts and ends on the same day therefore removes nothing.
    * An open pause `(s, None)` is still running: it covers s <= d <= today
      (`until` for `elapsed_workdays`). So while a case is paused its promise
      date moves one working day later with every working day that passes; the
      day it is closed on counts again, as for any pause.
    * Pauses may overlap (a day is paused if any pause covers it); days at or
      before A are never counted anyway.
    * The promise date (承诺办结日) is the day on which the counted working days
      reach N. N == 0 (即办件) gives A itself.
    * Days left (`remaining_workdays`) are the working days after today up to and
      including the promise date: 0 on the promise date, negative once past it
      (minus the working days since). A weekend right after the promise date
      still reads 0, but the case is overdue all the same: `warning_level`
      judges overdue by date (today > promise), not by count.
    * Warnings: 红牌 overdue; 黄牌 at most `yellow_days` left; 预警 at most
      `warn_days` left; otherwise 正常.
    * A 即办件 (N == 0) is due on its acceptance day, and during that day's
      working hours it is not late yet: it reads 正常 and is not carded until
      the working day ends (`day_end`, 17:30 unless the county sets another
      time), and only if it was accepted before that end (`instant_grace`).
      Still open once the day is over, it is carded 黄牌 (0 days left); from
      the next calendar day on it is 红牌, by the date rule above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from .errors import ValidationError

HOLIDAY, WORKDAY, NORMAL = "holiday", "workday", "normal"
KINDS = (HOLIDAY, WORKDAY, NORMAL)
KIND_LABELS = {HOLIDAY: "法定节假日", WORKDAY: "调休上班", NORMAL: "恢复常规"}
WEEKDAY_NAMES = "一二三四五六日"  # 星期一 … 星期日, indexed by date.weekday()
KIND_DAY = "calendar.day"  # the county feed's entry kind for one day of the calendar

NORMAL_WARNING, EARLY_WARNING, YELLOW_CARD, RED_CARD = "正常", "预警", "黄牌", "红牌"

# chinese_calendar.Holiday values -> the names people use
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_ONE_DAY = timedelta(days=1)


def parse_day(text: str, what: str = "日期") -> date:
    """A `yyyy-mm-dd` date, or a ValidationError naming the bad value."""
    if isinstance(text, str) and _DATE_TEXT.fullmatch(text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            pass
    raise ValidationError(
        f"{what} {text!r} 不是有效日期 (not a valid date)",
        hint="请用 yyyy-mm-dd 格式，例如 2026-10-01 (use yyyy-mm-dd, e.g. 2026-10-01)",
    )


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValidationError(
            f"类型 {kind!r} 无效 (unknown day kind)",
            hint="类型须为 holiday（法定节假日）、workday（调休上班）或 normal（恢复常规）",
        )
    return kind


def _weekdays_through(d: date) -> int:
    """Mondays–Fridays from 0001-01-01 (a Monday) through d."""
    weeks, rest = divmod(d.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class WorkCalendar:
    """The county's working days: overrides on top of the Monday–Friday rule."""

    overrides: Mapping[date, str] = field(default_factory=dict)  # date -> HOLIDAY or WORKDAY
    names: Mapping[date, str] = field(default_factory=dict)  # e.g. 国庆节, 国庆节调休
    known_years: frozenset[int] = frozenset()  # years the county has a published schedule for

    def __post_init__(self) -> None:
        for d, kind in self.overrides.items():
            if kind not in (HOLIDAY, WORKDAY):
                raise ValidationError(f"{d.isoformat()}: override must be {HOLIDAY!r} or {WORKDAY!r}, not {kind!r}")

    def is_workday(self, d: date) -> bool:
        kind = self.overrides.get(d)
        if kind is None:
            return d.weekday() < 5
        return kind == WORKDAY

    def add_workdays(self, start: date, n: int) -> date:
        """The n-th working day strictly after `start`; `start` itself for n == 0."""
        if n < 0:
            raise ValidationError(f"working days to add must be 0 or more, not {n}")
        d = start
        while n:
            d += _ONE_DAY
            if self.is_workday(d):
                n -= 1
        return d

    def workdays_between(self, a: date, b: date) -> int:
        """How many working days d have a < d <= b (0 when b <= a)."""
        if b <= a:
            return 0
        count = _weekdays_through(b) - _weekdays_through(a)
        for d, kind in self.overrides.items():
            if a < d <= b and (kind == WORKDAY) != (d.weekday() < 5):
                count += 1 if kind == WORKDAY else -1
        return count

    def covers(self, d: date) -> bool:
        """Whether the county has a schedule for d's year (else only the weekday rule applies)."""
        return d.year in self.known_years


def calendar_from_rows(rows: Iterable[tuple[str, str, str]]) -> WorkCalendar:
    """Fold `(yyyy-mm-dd, kind, name)` rows, oldest first: a later row for a day wins,
    NORMAL removes the day's override. Every year that appears counts as known."""
    overrides: dict[date, str] = {}
    names: dict[date, str] = {}
    years: set[int] = set()
    for n, (text, kind, name) in enumerate(rows, start=1):
        d = parse_day(text, what=f"第 {n} 条日历记录的日期 (calendar row {n})")
        check_kind(kind)
        years.add(d.year)
        if kind == NORMAL:
            overrides.pop(d, None)
            names.pop(d, None)
        else:
            overrides[d] = kind
            names[d] = name
    return WorkCalendar(overrides, names, frozenset(years))


def seed_days(year: int) -> list[dict[str, str]]:
    """The State Council's schedule for `year`, from `chinesecalendar`: every 法定节假日
    on a weekday (kind HOLIDAY) and every 调休 weekend working day (kind WORKDAY)."""
    import chinese_calendar  # data only; imported here so the clock itself needs no package

    if not 1900 <= year <= 9998:
        raise ValidationError(f"年份 {year} 无效 (not a valid year)", hint="例如 --year 2026")
    days: list[dict[str, str]] = []
    d = date(year, 1, 1)
    while d.year == year:
        try:
            off, english = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError as e:
            raise ValidationError(
                f"chinesecalendar 尚无 {year} 年的节假日安排 (no holiday data for {year})",
                hint=(
                    "国务院办公厅每年 11 月前后公布次年安排；更新 chinesecalendar 后再运行 calendar seed，"
                    "或用 `calendar set 日期 holiday|workday --name 名称` 逐日录入 "
                    "(the State Council publishes the schedule each November; upgrade chinesecalendar "
                    "or enter the days by hand with `calendar set`)"
                ),
            ) from e
        weekday = d.weekday() < 5
        name = HOLIDAY_NAMES.get(english or "", english or "")
        if off and weekday:
            days.append({"date": d.isoformat(), "kind": HOLIDAY, "name": name or "法定节假日"})
        elif not off and not weekday:
            days.append({"date": d.isoformat(), "kind": WORKDAY, "name": f"{name}调休" if name else "调休"})
        d += _ONE_DAY
    return days


# -- case clocks ------------------------------------------------------------------------------

Pause = tuple[date, date | None]  # (started, ended); ended None: still paused


DAY_END_MINUTE = 17 * 60 + 30  # the end of a working day (17:30), unless the county sets `day_end`


@dataclass(frozen=True)
class ClockSettings:
    warn_days: int = 3  # 预警 at this many working days left or fewer
    yellow_days: int = 1  # 黄牌 at this many working days left or fewer
    day_end: int = DAY_END_MINUTE  # minutes after midnight (China time) when a working day ends

    def __post_init__(self) -> None:
        if not 0 < self.day_end <= 24 * 60:
            raise ValidationError(f"下班时间 {self.day_end} 分钟无效 (bad end of the working day)")
        if not 0 <= self.yellow_days <= self.warn_days:
            raise ValidationError(
                f"预警阈值 {self.warn_days} 天、黄牌阈值 {self.yellow_days} 天不合理 (bad warning thresholds)",
                hint="须满足 0 ≤ 黄牌天数 ≤ 预警天数 (need 0 <= yellow_days <= warn_days)",
            )


def _stopped(pauses: Sequence[Pause], today: date) -> list[tuple[date, date]]:
    """The pauses as merged, sorted half-open intervals [s, e) of stopped days."""
    spans = []
    for start, end in pauses:
        stop = today + _ONE_DAY if end is None else end
        if end is not None and end < start:
            raise ValidationError(
                f"暂停区间 {start.isoformat()} 至 {end.isoformat()} 的结束早于开始 (a pause ends before it starts)",
                hint="检查补正/挂起的起止日期 (check the pause's start and end dates)",
            )
        if start < stop:
            spans.append((start, stop))
    merged: list[tuple[date, date]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def promise_date(accepted: date, promised_days: int, pauses: Sequence[Pause], cal: WorkCalendar, today: date) -> date:
    """承诺办结日: the day the counted working days after `accepted` reach `promised_days`."""
    if promised_days < 0:
        raise ValidationError(f"承诺时限 {promised_days} 天无效 (promised days must be 0 or more)")
    left, d = promised_days, accepted  # d: counted through d; `left` working days still to count
    for start, stop in _stopped(pauses, today):
        if left == 0:
            break
        if start > d:
            before = cal.workdays_between(d, start - _ONE_DAY)
            if before >= left:
                break
            left -= before
        d = max(d, stop - _ONE_DAY)
    return cal.add_workdays(d, left)


def elapsed_workdays(accepted: date, until: date, pauses: Sequence[Pause], cal: WorkCalendar) -> int:
    """Working days counted from the day after `accepted` through `until` (open pauses run through `until`)."""
    count = cal.workdays_between(accepted, until)
    for start, stop in _stopped(pauses, until):
        low, high = max(start, accepted + _ONE_DAY), min(stop - _ONE_DAY, until)
        if low <= high:
            count -= cal.workdays_between(low - _ONE_DAY, high)
    return count


def remaining_workdays(today: date, promise: date, cal: WorkCalendar) -> int:
    """Working days left after today through the promise date; negative once past it."""
    if today <= promise:
        return cal.workdays_between(today, promise)
    return -cal.workdays_between(promise, today)


def warning_level(today: date, promise: date, cal: WorkCalendar, settings: ClockSettings) -> str:
    """正常, 预警 (≤ warn_days left), 黄牌 (≤ yellow_days left) or 红牌 (today is after the promise date)."""
    if today > promise:
        return RED_CARD
    left = remaining_workdays(today, promise, cal)
    if left <= settings.yellow_days:
        return YELLOW_CARD
    if left <= settings.warn_days:
        return EARLY_WARNING
    return NORMAL_WARNING


def instant_grace(
    accepted: date, accepted_minute: int, promised_days: int, today: date, minute: int, day_end: int
) -> bool:
    """True while a 即办件 (`promised_days` 0) is still within its acceptance day: it is not warned or carded.

    `accepted_minute` and `minute` are minutes after midnight (China time) of the acceptance and of now;
    `day_end` those of the end of the working day. On the acceptance day a 即办件 is carded only once the
    working day is over and only if it was accepted before that end: one accepted after hours was never
    open at the end of that working day. Other days, and other cases, follow `warning_level`."""
    if promised_days != 0 or today != accepted:
        return False
    return minute < day_end or accepted_minute >= day_end
