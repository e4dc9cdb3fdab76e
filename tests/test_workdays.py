"""Working days and case clocks against the real 2025 and 2026 schedules (调休 included)."""

from __future__ import annotations

import functools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sanji_domain.errors import ValidationError
from sanji_domain.workdays import (
    HOLIDAY,
    NORMAL,
    WORKDAY,
    ClockSettings,
    WorkCalendar,
    calendar_from_rows,
    elapsed_workdays,
    promise_date,
    remaining_workdays,
    seed_days,
    warning_level,
)

D = date.fromisoformat


@functools.cache
def seeded_rows(*years: int) -> tuple[tuple[str, str, str], ...]:
    return tuple((d["date"], d["kind"], d["name"]) for y in years for d in seed_days(y))


@functools.cache
def cal() -> WorkCalendar:
    return calendar_from_rows(seeded_rows(2025, 2026))


# -- the seeded schedules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "make_up"),
    [
        (2025, ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"]),
        (2026, ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]),
    ],
)
def test_seed_has_the_real_make_up_days(year: int, make_up: list[str]) -> None:
    days = seed_days(year)
    assert [d["date"] for d in days if d["kind"] == WORKDAY] == make_up
    assert all(D(d).weekday() >= 5 for d in make_up)
    assert all(D(d["date"]).weekday() < 5 for d in days if d["kind"] == HOLIDAY)  # weekends need no override
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)


def test_seed_names_are_chinese() -> None:
    by_date = {d["date"]: d for d in seed_days(2025)}
    assert by_date["2025-10-01"] == {"date": "2025-10-01", "kind": HOLIDAY, "name": "国庆节"}
    assert by_date["2025-10-06"]["name"] == "中秋节"  # 2025: 中秋 falls inside the 国庆 break
    assert by_date["2025-09-28"] == {"date": "2025-09-28", "kind": WORKDAY, "name": "国庆节调休"}
    assert by_date["2025-01-26"]["name"] == "春节调休"
    names = {d["name"] for d in seed_days(2026) if d["kind"] == HOLIDAY}
    assert names == {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}


def test_seed_national_day_holidays() -> None:
    off_2025 = [d["date"] for d in seed_days(2025) if d["date"].startswith("2025-10") and d["kind"] == HOLIDAY]
    # Oct 1–8 off; the 4th and 5th are a weekend anyway
    assert off_2025 == ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08"]
    off_2026 = [d["date"] for d in seed_days(2026) if d["date"].startswith("2026-10") and d["kind"] == HOLIDAY]
    assert off_2026 == ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]
    c = cal()
    assert not any(c.is_workday(D("2025-10-01") + timedelta(days=i)) for i in range(8))
    assert c.is_workday(D("2025-10-09")) and c.is_workday(D("2025-10-11"))  # Thu; the 调休 Saturday


def test_a_year_without_data_says_what_to_do() -> None:
    with pytest.raises(ValidationError, match="2027") as e:
        seed_days(2027)
    assert "11 月" in (e.value.hint or "") and "calendar set" in (e.value.hint or "")


# -- promise dates (承诺办结日) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accepted", "days", "promise"),
    [
        # 2025 国庆: accepted Fri 09-26. Sat 09-27 off; Sun 09-28 调休 = 1; Mon 09-29 = 2; Tue 09-30 = 3;
        # Oct 1–8 off (10-06 中秋); Thu 10-09 = 4; Fri 10-10 = 5; Sat 10-11 调休 = 6; Sun off; Mon 10-13 = 7.
        ("2025-09-26", 5, "2025-10-10"),
        ("2025-09-26", 6, "2025-10-11"),
        ("2025-09-26", 7, "2025-10-13"),
        # 2026 国庆: accepted Mon 09-28. Tue 09-29 = 1; Wed 09-30 = 2; Oct 1–7 off; Thu 10-08 = 3;
        # Fri 10-09 = 4; Sat 10-10 调休 = 5.
        ("2026-09-28", 5, "2026-10-10"),
        ("2026-09-28", 6, "2026-10-12"),
        # 2026 中秋 + its 调休: accepted Fri 09-18. Sun 09-20 调休 = 1; Mon–Thu 09-21..24 = 2..5;
        # Fri 09-25 中秋 off; weekend off; Mon 09-28 = 6.
        ("2026-09-18", 5, "2026-09-24"),
        ("2026-09-18", 6, "2026-09-28"),
        # 2026 春节: accepted Thu 02-12. Fri 02-13 = 1; Sat 02-14 调休 = 2; 02-15..02-23 off; Tue 02-24 = 3.
        ("2026-02-12", 3, "2026-02-24"),
        # 2025 春节: accepted Fri 01-24. Sun 01-26 调休 = 1; Mon 01-27 = 2; 01-28..02-04 off; Wed 02-05 = 3;
        # Thu 02-06 = 4; Fri 02-07 = 5; Sat 02-08 调休 = 6.
        ("2025-01-24", 4, "2025-02-06"),
        ("2025-01-24", 6, "2025-02-08"),
        # 即办件: the day of acceptance, even on a holiday
        ("2025-10-01", 0, "2025-10-01"),
    ],
)
def test_promise_date_across_holidays(accepted: str, days: int, promise: str) -> None:
    assert promise_date(D(accepted), days, [], cal(), today=D(accepted)) == D(promise)
    assert elapsed_workdays(D(accepted), D(promise), [], cal()) == days


def test_a_pause_moves_the_promise_by_the_paused_working_days() -> None:
    c = cal()
    accepted = D("2025-06-09")  # Monday; 10 days: 06-10..13 (4), 06-16..20 (9), Mon 06-23 (10)
    assert promise_date(accepted, 10, [], c, today=accepted) == D("2025-06-23")
    # 补正 from Wed 06-11 to Fri 06-13: the 11th and 12th do not count, the 13th (resumed) does
    pause = [(D("2025-06-11"), D("2025-06-13"))]
    assert promise_date(accepted, 10, pause, c, today=D("2025-06-20")) == D("2025-06-25")
    assert elapsed_workdays(accepted, D("2025-06-13"), pause, c) == 2  # 06-10 and 06-13
    assert elapsed_workdays(accepted, D("2025-06-25"), pause, c) == 10
    # a pause started and ended the same day removes nothing
    same_day = [(D("2025-06-11"), D("2025-06-11"))]
    assert promise_date(accepted, 10, same_day, c, today=D("2025-06-20")) == D("2025-06-23")
    # overlapping pauses count each day once: 06-11, 12, 13 stopped (then a weekend; Mon 06-16 resumes)
    both = [(D("2025-06-11"), D("2025-06-13")), (D("2025-06-12"), D("2025-06-16"))]
    assert promise_date(accepted, 10, both, c, today=D("2025-06-20")) == D("2025-06-26")
    # a pause before acceptance changes nothing
    assert promise_date(accepted, 10, [(D("2025-06-02"), D("2025-06-09"))], c, today=accepted) == D("2025-06-23")


def test_a_pause_across_national_day() -> None:
    # accepted Fri 2025-09-26, 5 days (promise 10-10 unpaused). 补正 Mon 09-29 .. Thu 10-09: only 09-29 and
    # 09-30 are working days in it. Counted: Sun 09-28 = 1, Thu 10-09 (resumed) = 2, Fri 10-10 = 3,
    # Sat 10-11 调休 = 4, Mon 10-13 = 5.
    pause = [(D("2025-09-29"), D("2025-10-09"))]
    assert promise_date(D("2025-09-26"), 5, pause, cal(), today=D("2025-10-20")) == D("2025-10-13")


def test_an_open_pause_moves_the_promise_with_today() -> None:
    c = cal()
    accepted, open_pause = D("2025-06-09"), [(D("2025-06-11"), None)]
    promises = {
        today: promise_date(accepted, 10, open_pause, c, today=D(today))
        for today in ("2025-06-11", "2025-06-13", "2025-06-14", "2025-06-15", "2025-06-16")
    }
    assert promises == {
        "2025-06-11": D("2025-06-24"),  # paused: 06-11
        "2025-06-13": D("2025-06-26"),  # paused: 06-11, 12, 13
        "2025-06-14": D("2025-06-26"),  # a weekend moves nothing
        "2025-06-15": D("2025-06-26"),
        "2025-06-16": D("2025-06-27"),
    }
    # closed on Mon 06-16: that day counts again
    assert promise_date(accepted, 10, [(D("2025-06-11"), D("2025-06-16"))], c, today=D("2025-06-30")) == D("2025-06-26")
    assert elapsed_workdays(accepted, D("2025-06-16"), open_pause, c) == 1  # only 06-10


def test_bad_clock_input_is_refused() -> None:
    with pytest.raises(ValidationError, match="结束早于开始"):
        promise_date(D("2025-06-09"), 3, [(D("2025-06-11"), D("2025-06-10"))], cal(), today=D("2025-06-09"))
    with pytest.raises(ValidationError):
        promise_date(D("2025-06-09"), -1, [], cal(), today=D("2025-06-09"))
    with pytest.raises(ValidationError):
        ClockSettings(warn_days=1, yellow_days=3)


# -- warnings (预警, 黄牌, 红牌) ---------------------------------------------------------------


def test_warning_levels_around_a_monday_promise() -> None:
    c, settings, promise = cal(), ClockSettings(), D("2025-06-23")  # Mon; 06-21/22 is a weekend
    expected = {
        "2025-06-17": (4, "正常"),  # 18, 19, 20, 23 left
        "2025-06-18": (3, "预警"),
        "2025-06-19": (2, "预警"),
        "2025-06-20": (1, "黄牌"),  # Friday: only Monday left
        "2025-06-21": (1, "黄牌"),
        "2025-06-22": (1, "黄牌"),
        "2025-06-23": (0, "黄牌"),  # the last day
        "2025-06-24": (-1, "红牌"),
        "2025-06-30": (-5, "红牌"),
    }
    got = {
        today: (remaining_workdays(D(today), promise, c), warning_level(D(today), promise, c, settings))
        for today in expected
    }
    assert got == expected


def test_overdue_on_the_weekend_after_a_friday_promise_is_red() -> None:
    c, promise = cal(), D("2025-06-20")
    assert remaining_workdays(D("2025-06-21"), promise, c) == 0
    assert warning_level(D("2025-06-21"), promise, c, ClockSettings()) == "红牌"


def test_warning_thresholds_are_settings_and_count_working_days() -> None:
    c, settings = cal(), ClockSettings(warn_days=5, yellow_days=2)
    promise = D("2025-10-10")  # 国庆 2025 lies before it
    assert remaining_workdays(D("2025-09-25"), promise, c) == 6  # 26, 28 (调休 Sunday), 29, 30, 9, 10
    assert warning_level(D("2025-09-25"), promise, c, settings) == "正常"
    assert remaining_workdays(D("2025-09-26"), promise, c) == 5
    assert warning_level(D("2025-09-26"), promise, c, settings) == "预警"
    assert remaining_workdays(D("2025-09-29"), promise, c) == 3  # 30, 9, 10
    assert warning_level(D("2025-09-29"), promise, c, settings) == "预警"
    assert warning_level(D("2025-10-01"), promise, c, settings) == "黄牌"  # only 9 and 10 left across the break


# -- county overrides and years without a schedule ------------------------------------------------


def test_a_county_override_and_its_undoing() -> None:
    rows = list(seeded_rows(2025))
    accepted = D("2025-06-09")
    assert promise_date(accepted, 10, [], calendar_from_rows(rows), today=accepted) == D("2025-06-23")
    rows.append(("2025-06-16", HOLIDAY, "县庆"))
    local = calendar_from_rows(rows)
    assert not local.is_workday(D("2025-06-16")) and local.names[D("2025-06-16")] == "县庆"
    assert promise_date(accepted, 10, [], local, today=accepted) == D("2025-06-24")
    rows.append(("2025-06-14", WORKDAY, "补班"))  # a Saturday made a working day
    assert promise_date(accepted, 10, [], calendar_from_rows(rows), today=accepted) == D("2025-06-23")
    rows += [("2025-06-16", NORMAL, ""), ("2025-06-14", NORMAL, "")]
    back = calendar_from_rows(rows)
    assert back.is_workday(D("2025-06-16")) and not back.is_workday(D("2025-06-14"))
    assert D("2025-06-16") not in back.names
    assert promise_date(accepted, 10, [], back, today=accepted) == D("2025-06-23")
    # the seeded 国庆 can be corrected too: 10-08 made a working day
    fixed = calendar_from_rows([*seeded_rows(2025), ("2025-10-08", NORMAL, "")])
    assert promise_date(D("2025-09-26"), 5, [], fixed, today=D("2025-09-26")) == D("2025-10-09")


def test_outside_the_known_years_the_weekday_rule_applies() -> None:
    c = cal()
    assert c.covers(D("2025-03-01")) and c.covers(D("2026-12-31"))
    assert not c.covers(D("2027-10-01")) and not c.covers(D("2024-10-01"))
    assert c.is_workday(D("2027-10-01"))  # a Friday: no schedule for 2027, so a working day
    assert not c.is_workday(D("2027-10-02"))
    assert promise_date(D("2027-09-30"), 3, [], c, today=D("2027-09-30")) == D("2027-10-05")
    assert WorkCalendar().is_workday(D("2025-10-01"))  # an empty calendar knows no holidays


def test_bad_rows_are_refused_with_their_row_number() -> None:
    with pytest.raises(ValidationError, match="第 2 条"):
        calendar_from_rows([("2025-10-01", HOLIDAY, ""), ("2025-02-30", HOLIDAY, "")])
    with pytest.raises(ValidationError, match="类型"):
        calendar_from_rows([("2025-10-01", "vacation", "")])


# -- properties -------------------------------------------------------------------------------

DAYS_2025_2026 = st.dates(min_value=D("2025-01-01"), max_value=D("2026-12-31"))


@given(start=DAYS_2025_2026, n=st.integers(min_value=0, max_value=300))
def test_add_then_count_gives_back_n(start: date, n: int) -> None:
    end = cal().add_workdays(start, n)
    assert cal().workdays_between(start, end) == n
    assert n == 0 or cal().is_workday(end)


@given(a=DAYS_2025_2026, span=st.integers(min_value=-5, max_value=60))
def test_counting_matches_walking_day_by_day(a: date, span: int) -> None:
    b = a + timedelta(days=span)
    walked = sum(cal().is_workday(a + timedelta(days=i)) for i in range(1, span + 1))
    assert cal().workdays_between(a, b) == walked


@given(
    accepted=DAYS_2025_2026,
    n=st.integers(min_value=0, max_value=40),
    pauses=st.lists(
        st.tuples(st.integers(min_value=-5, max_value=60), st.integers(min_value=0, max_value=20)), max_size=3
    ),
)
def test_elapsed_reaches_n_exactly_on_the_promise_date(accepted: date, n: int, pauses: list[tuple[int, int]]) -> None:
    spans = [(accepted + timedelta(days=s), accepted + timedelta(days=s + length)) for s, length in pauses]
    promise = promise_date(accepted, n, spans, cal(), today=accepted)
    assert elapsed_workdays(accepted, promise, spans, cal()) == n
    if n:
        assert elapsed_workdays(accepted, promise - timedelta(days=1), spans, cal()) == n - 1
