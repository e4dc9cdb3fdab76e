"""电子监察: the 即办件 rule against the calendar, the card scan's idempotency (also racing another
process's scan), the scheduled scan, and the county-wide overdue/carded overview.

The store is the one of tests/test_views_stats.py (t1 with villages 梅花村 v1 and v2, the 2026
calendar with 国庆 and the 调休 Sunday 09-20). Every expected figure is worked out by hand below.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from county_server import card_scan
from sanji_domain import commands, monitoring, views
from sanji_domain.fold import DomainFold
from sanji_domain.schema import domain_migrations
from sanji_domain.workdays import instant_grace
from sanji_node.actions.county import scan_cards
from sanji_node.config import DataDir, NodeConfig
from sanji_node.scheduler import PeriodicJob
from sanji_node.workspace import Workspace
from sync_protocol.entries import Record
from sync_protocol.sqlite_store import Store
from tests.test_views_stats import ACTORS, COUNTY, ELDER, KEYS, VILLAGERS, World, at, item, open_store
from tests.test_views_stats import world as world  # the fixture: the November story

QUICK = "11430321MB0000000009"  # 即办件: promised_days 0
FIVE_PM_30 = 17 * 60 + 30


def minute(hour: int, m: int = 0) -> int:
    return hour * 60 + m


def at_min(day: str, hour: int, m: int = 0) -> int:
    return at(day, 0) + (hour * 60 + m) * 60_000


class QuickWorld(World):
    """The views test's world, for stories with more villagers than its own."""

    def file(self, name: str, node: str, task_code: str, when: int, **extra: Any) -> str:
        VILLAGERS.setdefault(name, "刘" + "一二三四五六七八九十"[len(name) % 10] + "妹")
        return World.file(self, name, node, task_code, when, **extra)


@dataclass
class CountyNode:
    """What a `Workspace` needs of the county: its data directory, configuration, key and store."""

    data: DataDir
    config: NodeConfig
    key: Any
    path: Path

    def open_store(self) -> Store:
        store = Store(self.path, fold=DomainFold())
        domain_migrations.apply(store.db)
        return store


@pytest.fixture
def quick_world(tmp_path: Path) -> Iterator[tuple[World, CountyNode]]:
    store = open_store(tmp_path / "county.sqlite", DomainFold())
    quick = {**item(QUICK, "老年优待证办理", "乡"), "case_type": "即办件", "promised_days": 0}
    store.append(KEYS["county"], "county/*", [Record("catalog.item", QUICK, quick, at("2026-09-01") * 1000 + 50)])
    config = NodeConfig("county", "county", COUNTY, "county", KEYS["county"].public.hex, COUNTY + "000000")
    node = CountyNode(DataDir(tmp_path), config, KEYS["county"], tmp_path / "county.sqlite")
    yield QuickWorld(store), node
    store.close()


def accept_quick(w: World, name: str, when: int, node: str = "v1") -> str:
    w.file(name, node, QUICK, when - 3_600_000)
    w.act("t1", name, "accept", when)
    return str(w.cases[name]["case_id"])


def due(w: World, day: str, hour: int, m: int = 0) -> dict[str, str]:
    from datetime import date

    return {c: lv for c, lv, _ in views.cards_due(w.conn, today=date.fromisoformat(day), minute=minute(hour, m))}


# --- the 即办件 rule ---------------------------------------------------------------------------------------


def test_instant_grace_is_the_acceptance_day_before_the_working_day_ends() -> None:
    from datetime import date

    fri, sat = date(2026, 11, 6), date(2026, 11, 7)
    assert instant_grace(fri, minute(16), 0, fri, minute(17, 29), FIVE_PM_30)
    assert not instant_grace(fri, minute(16), 0, fri, minute(17, 30), FIVE_PM_30)
    assert instant_grace(fri, minute(18), 0, fri, minute(23, 59), FIVE_PM_30)  # accepted after hours
    assert not instant_grace(fri, minute(16), 0, sat, minute(9), FIVE_PM_30)  # another day: the date rule
    assert not instant_grace(fri, minute(16), 5, fri, minute(9), FIVE_PM_30)  # not a 即办件


def test_an_instant_case_accepted_friday_afternoon(quick_world: tuple[World, CountyNode]) -> None:
    """Accepted Friday 2026-11-06 16:00: no card at 17:29, 黄牌 at 17:30 if still open, 红牌 on Saturday and Monday."""
    w, _ = quick_world
    q = accept_quick(w, "Q", at_min("2026-11-06", 16))
    assert q not in due(w, "2026-11-06", 16, 30)
    assert q not in due(w, "2026-11-06", 17, 29)
    assert due(w, "2026-11-06", 17, 30)[q] == "黄牌"
    assert due(w, "2026-11-07", 9)[q] == "红牌"  # Saturday: after the promise date (Friday)
    assert due(w, "2026-11-09", 9)[q] == "红牌"  # Monday
    # the clock a page shows with the time of day agrees; without it, the date alone (黄牌 all day)
    row = dict(zip(*_case_row(w, q), strict=True))
    cal, cs = views.calendar(w.conn), views.clock_settings(w.conn)
    from datetime import date

    assert views.clock_of(row, cal, cs, date(2026, 11, 6), minute=minute(16, 30)).warning == "正常"
    assert views.clock_of(row, cal, cs, date(2026, 11, 6), minute=minute(17, 30)).warning == "黄牌"
    assert views.clock_of(row, cal, cs, date(2026, 11, 6)).warning == "黄牌"


def _case_row(w: World, case_id: str) -> tuple[list[str], tuple[Any, ...]]:
    cur = w.conn.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,))
    return [c[0] for c in cur.description], cur.fetchone()


def test_an_instant_case_completed_on_its_day_is_never_carded(quick_world: tuple[World, CountyNode]) -> None:
    w, _ = quick_world
    q = accept_quick(w, "Q", at_min("2026-11-06", 16))
    w.act("t1", "Q", "complete", at_min("2026-11-06", 17))
    assert q not in due(w, "2026-11-06", 17, 30)
    assert q not in due(w, "2026-11-09", 9)


def test_an_instant_case_on_a_make_up_workday_and_after_hours(quick_world: tuple[World, CountyNode]) -> None:
    """Sunday 2026-09-20 is a 调休 working day: the same rule on it. One accepted Friday 18:00 (after the
    day's end) was never open at the end of that working day: no card that evening, 红牌 from Saturday."""
    w, _ = quick_world
    assert views.calendar(w.conn).is_workday(views.parse_day("2026-09-20"))
    s = accept_quick(w, "S", at_min("2026-09-20", 10))
    assert s not in due(w, "2026-09-20", 12)
    assert due(w, "2026-09-20", 17, 30)[s] == "黄牌"
    assert due(w, "2026-09-21", 9)[s] == "红牌"
    late = accept_quick(w, "L", at_min("2026-11-06", 18), node="v2")
    assert late not in due(w, "2026-11-06", 20)
    assert due(w, "2026-11-07", 9)[late] == "红牌"


def test_the_end_of_the_working_day_is_a_county_setting(quick_world: tuple[World, CountyNode]) -> None:
    w, _ = quick_world
    q = accept_quick(w, "Q", at_min("2026-11-06", 16))
    w.run(commands.setting(w.conn, ACTORS["county"], "day_end", 1800, now_ms=at("2026-11-06", 12)))
    assert q not in due(w, "2026-11-06", 17, 45)
    assert due(w, "2026-11-06", 18)[q] == "黄牌"
    with pytest.raises(commands.ValidationError, match="HHMM"):
        commands.setting(w.conn, ACTORS["county"], "day_end", 1775, now_ms=at("2026-11-06", 12))


# --- the scan: idempotent, also against another process's scan ------------------------------------------------


def card_entries(w: World) -> list[tuple[str, str]]:
    rows = w.conn.execute("SELECT key, body FROM entries WHERE kind = 'card.issue' ORDER BY feed, seq").fetchall()
    import orjson

    return [(orjson.loads(b)["case_id"], orjson.loads(b)["level"]) for _, b in rows]


def test_scan_issues_each_level_once_and_escalates(quick_world: tuple[World, CountyNode]) -> None:
    """A 5-day case accepted Monday 11-02 (promise 11-09): 预警 from Wednesday 11-04 (3 left), 黄牌 on
    Friday 11-06 (1 left), 红牌 on Tuesday 11-10; each once however often the scan runs."""
    w, node = quick_world
    w.file("E", "v1", ELDER, at("2026-11-02", 9))
    w.act("t1", "E", "accept", at("2026-11-02", 15))
    e = w.cases["E"]["case_id"]
    with Workspace(node) as ws:
        for when, level in (
            (at("2026-11-03", 10), None),
            (at("2026-11-04", 10), "预警"),
            (at("2026-11-05", 10), None),
            (at("2026-11-06", 10), "黄牌"),
            (at("2026-11-09", 10), None),
            (at("2026-11-10", 10), "红牌"),
        ):
            first = scan_cards(ws, at_ms=when)
            assert [(c["case_id"], c["level"]) for c in first] == ([(e, level)] if level else [])
            assert scan_cards(ws, at_ms=when) == []  # the same scan again: nothing
    assert card_entries(w) == [(e, "预警"), (e, "黄牌"), (e, "红牌")]


def test_a_stale_decision_writes_nothing(quick_world: tuple[World, CountyNode]) -> None:
    """Scan A read the due list; scan B (another connection, as another process) issued the card; A's
    write then decides again inside its write transaction and issues nothing."""
    w, node = quick_world
    q = accept_quick(w, "Q", at_min("2026-11-06", 10))
    when = at("2026-11-09", 9)
    with Workspace(node) as a, Workspace(node) as b:
        stale = a.read(lambda conn: views.cards_due(conn, today=views.to_local_date(when), minute=minute(9)))
        assert [c for c, _, _ in stale] == [q]
        assert len(scan_cards(b, at_ms=when)) == 1
        from sanji_node.actions.county import _cards_if_due

        assert a.write_if("county/v1", _cards_if_due([q], views.to_local_date(when), minute(9), when)) is None
    assert card_entries(w) == [(q, "红牌")]


def test_two_scans_racing_issue_no_card_twice(quick_world: tuple[World, CountyNode]) -> None:
    w, node = quick_world
    for i in range(12):
        accept_quick(w, f"Q{i}", at_min("2026-11-06", 10), node="v1" if i % 2 else "v2")
    when = at("2026-11-09", 9)
    results: list[int] = []
    start = threading.Barrier(3)

    def scan() -> None:
        with Workspace(node) as ws:  # its own connection, as a second process would have
            start.wait()
            results.append(len(scan_cards(ws, at_ms=when)))

    threads = [threading.Thread(target=scan) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 12
    issued = card_entries(w)
    assert len(issued) == len(set(issued)) == 12


def test_the_scheduled_scan_runs_the_same_scan(quick_world: tuple[World, CountyNode]) -> None:
    w, node = quick_world
    accept_quick(w, "Q", at_min("2026-11-06", 10))  # overdue by now (today is after 2026-11-06)
    done = threading.Event()
    counts: list[int] = []

    def once() -> None:
        counts.append(card_scan.scan_once(lambda: node))
        done.set()

    job = PeriodicJob("test-card-scan", once, interval_s=3600)
    job.start(first_delay_s=0)
    try:
        assert done.wait(30)
    finally:
        job.stop()
    assert counts == [1] and job.runs == 1 and job.last_error is None
    assert card_scan.scan_once(lambda: node) == 0
    with pytest.raises(ValueError):
        PeriodicJob("never", once, interval_s=0)


# --- the county-wide overview -----------------------------------------------------------------------------


def test_overdue_and_carded_by_township_village_item_and_clerk(world: World) -> None:
    """On 2026-11-20: L1 (accepted 10-09, 5 days: promise 10-16) and D (promise 11-09, holds a 红牌) are
    overdue; X (v2, accepted 11-02 by 刘窗口) is overdue; E (3 days left) holds a 黄牌 given here, so it is
    carded but not overdue. P is paused, G and the others closed. Counted by hand:"""
    from datetime import date

    clerk = commands.Actor("t1", "township", COUNTY + "105000", "county", "county", person="刘窗口")
    QuickWorld.file(world, "X", "v2", ELDER, at("2026-11-02", 9))
    world.run(commands.transition(world.conn, clerk, world.no("X"), "accept", {}, now_ms=at("2026-11-02", 16)))
    world.run(commands.issue_card(world.conn, ACTORS["county"], world.no("E"), "黄牌", "测试", now_ms=at("2026-11-20")))
    out = monitoring.overdue_and_carded(world.conn, today=date(2026, 11, 20))
    by_name = {r["case_id"]: r for r in out["rows"]}
    names = {world.cases[n]["case_id"]: n for n in ("L1", "D", "X", "E")}
    assert set(by_name) == set(names)
    assert {names[c]: (r["overdue"], r["card"]) for c, r in by_name.items()} == {
        "L1": (True, None),
        "D": (True, "红牌"),
        "X": (True, None),
        "E": (False, "黄牌"),
    }
    assert by_name[world.cases["X"]["case_id"]]["clerk"] == "刘窗口"
    assert by_name[world.cases["D"]["case_id"]]["village_name"] == "梅花村"
    assert names[out["rows"][0]["case_id"]] == "L1"  # the most overdue first
    zero = {"预警": 0, "黄牌": 0, "红牌": 0}
    assert out["all"] == {"cases": 4, "overdue": 3, "carded": 2, **zero, "黄牌": 1, "红牌": 1}
    assert out["totals"]["township"] == [
        {"name": "城关镇便民服务中心", "cases": 4, "overdue": 3, "carded": 2, **zero, "黄牌": 1, "红牌": 1}
    ]
    assert out["totals"]["village"] == [
        {"name": "v2", "cases": 1, "overdue": 1, "carded": 0, **zero},  # v2 has no display name: its id
        {"name": "梅花村", "cases": 3, "overdue": 2, "carded": 2, **zero, "黄牌": 1, "红牌": 1},
    ]
    assert out["totals"]["item"] == [
        {"name": "高龄津贴申请", "cases": 4, "overdue": 3, "carded": 2, **zero, "黄牌": 1, "红牌": 1}
    ]
    assert out["totals"]["clerk"] == [
        {"name": "刘窗口", "cases": 1, "overdue": 1, "carded": 0, **zero},
        {"name": "张窗口", "cases": 3, "overdue": 2, "carded": 2, **zero, "黄牌": 1, "红牌": 1},
    ]
    # and independently of the function: the case list's own clocks and the card table
    listed = views.list_cases(world.conn, today=date(2026, 11, 20), limit=1000)
    overdue = {r["case_id"] for r in listed if r["clock"] == "红牌" and r["origin_case_id"] is None}
    carded = {r[0] for r in world.conn.execute("SELECT case_id FROM cards WHERE revoked_ms IS NULL")}
    assert overdue | carded == set(by_name)
