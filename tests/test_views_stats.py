"""Read-side views, statistics and exports over tables folded from real, signed entries.

One county (t1 with villages v1, v2) and the 2026 calendar with 国庆 (10-01…10-07
off, 09-20 and 10-10 worked). Every number below is counted by hand from the
story in `world`:

September (the ledger across 国庆), item 高龄津贴申请 (承诺件, 5 working days), all at v1:
  L1 filed 09-29, accepted 10-09              → due 10-09, sent on time, 办理中
  L2 filed 09-29, pre-accepted 10-10 (调休 Sat) → sent after the due date: 逾期, 报送
  L3 filed 09-29, not handled                 → 委托; 逾期 once today > 10-09
November (today 2026-11-20, a Friday):
  A v1 accepted 11-02, completed 11-06 (promise 11-09): on time, 4 days; delivered 11-09; 评价 5
  B v1 accepted 11-02, completed 11-11 (promise 11-09): late, 7 days; 评价 2 → 整改, 回访 11-20 (deadline 11-19)
  C v1 accepted 11-02, 补正 11-04 → 11-06, completed 11-11: the pause moves the promise to 11-11: on time, 5 days; 评价 4
  D v1 accepted 11-02, still open: promise 11-09, 红牌 (9 working days over); a 红牌 card
  E v1 accepted 11-18, promise 11-25: 3 days left, 预警
  H v1 withdrawn by the agent 11-03 09:00; the clerk's accept at 11:00 arrives later: a conflict
  G v2 (item 残疾人证申领, level 县) accepted 11-03, 转报 11-04, the county accepts 11-05 and completes
    11-10 (promise 11-10): on time, 5 days; counted once, as the origin case; 评价 3
  P v2 accepted 11-16, 挂起 11-18 and still suspended: 暂停计时, promise 11-26; 评价 1 on 11-19 → 整改
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from sanji_domain import commands, exports, places, stats, views
from sanji_domain.commands import Actor
from sanji_domain.errors import ValidationError
from sanji_domain.fold import DomainFold, case_pii_aad
from sanji_domain.schema import domain_migrations
from sanji_domain.states import CONFLICT_RULE
from sanji_domain.workdays import ClockSettings, calendar_from_rows
from sync_protocol.entries import Record
from sync_protocol.errors import SyncError
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER, KIND_NAME
from sync_protocol.sqlite_store import Store, Trust

COUNTY = "430321"
ELDER = "11430321MB0000000001"  # 高龄津贴申请: village agent, township handles
DISABLED = "11430321MB0000000002"  # 残疾人证申领: county level, forwarded
NOV = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 11, 20)
# the villagers, by story name
VILLAGERS = {
    "L1": "王秀英",
    "L2": "李桂兰",
    "L3": "张伟",
    "A": "刘芳",
    "B": "陈强",
    "C": "杨丽",
    "D": "黄敏",
    "E": "赵军",
    "G": "吴静",
    "H": "周涛",
    "P": "徐明",
    "S": "孙霞",
    "Q": "钱红梅",
}
_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

ACTORS = {
    "county": Actor("county", "county", COUNTY + "000000", None, "county", person="县监察员"),
    "t1": Actor("t1", "township", COUNTY + "105000", "county", "county", person="张窗口"),
    "v1": Actor("v1", "village", COUNTY + "105201", "t1", "county", person="李建国"),
    "v2": Actor("v2", "village", COUNTY + "105202", "t1", "county", person="王代办"),
}
KEYS = {n: SigningKey.from_seed(hashlib.sha256(f"views-test:{n}".encode()).digest()) for n in ACTORS}
NAMES = {"t1": "城关镇便民服务中心", "v1": "梅花村"}  # display names in the membership; county and v2 have none

CALENDAR_2026 = [
    ("2026-01-01", "holiday", "元旦"),
    ("2026-09-20", "workday", "国庆节调休"),
    ("2026-09-25", "holiday", "中秋节"),
    ("2026-10-01", "holiday", "国庆节"),
    ("2026-10-02", "holiday", "国庆节"),
    ("2026-10-05", "holiday", "国庆节"),
    ("2026-10-06", "holiday", "国庆节"),
    ("2026-10-07", "holiday", "国庆节"),
    ("2026-10-10", "workday", "国庆节调休"),
]


def id_number(rng: random.Random) -> str:
    """A GB 11643 身份证号 with a valid check digit."""
    body = f"430321{rng.randint(1940, 1990)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _W, strict=True)) % 11]


def at(day: str, hour: int = 10) -> int:
    return views.day_start_ms(date.fromisoformat(day)) + hour * 3_600_000


def item(task_code: str, name: str, level: str) -> dict[str, Any]:
    return {
        "allow_pledge": False,
        "case_type": "承诺件",
        "legal_days": 20,
        "level": level,
        "materials": [
            {"copies": 1, "form": "复印件", "name": "居民身份证", "required": True},
            {"copies": 1, "form": "原件", "name": "户口簿", "required": True},
            {"copies": 1, "form": "原件", "name": "申请书", "required": False},
        ],
        "name": name,
        "promised_days": 5,
        "state": "在用",
        "task_code": task_code,
        "version": 1,
        "village_mode": "村代办",
    }


class ToySealer:
    """Stands in for the village's sealer: binds the bytes to their aad, no secrecy needed here."""

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        return aad + b"|" + plain[::-1]

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if not sealed.startswith(aad + b"|"):
            raise SyncError("sealed for another place")
        return sealed[len(aad) + 1 :][::-1]


@dataclass
class World:
    store: Store
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # story name -> {case_id, local_no}

    @property
    def conn(self) -> Any:
        return self.store.conn

    def run(self, cmd: commands.Command) -> commands.Command:
        self.store.append(KEYS[cmd.feed.split("/")[0]], cmd.feed, cmd.records)
        return cmd

    def file(self, name: str, node: str, task_code: str, when: int, **extra: Any) -> str:
        request = {
            "item": task_code,
            "applicant": {
                "name": VILLAGERS[name],
                "id_number": id_number(self.rng),
                "phone": f"139{self.rng.randint(10**7, 10**8 - 1)}",
                "address": "湖南省衡阳县西渡镇梅花村3组",
            },
            "agent": {"proxy_no": f"WT-{name}"},
            "materials": ["居民身份证", "户口簿"],
            **extra,
        }
        day = views.to_local_date(when).strftime("%Y%m%d")
        cmd = self.run(commands.new_cases(self.conn, ACTORS[node], [request], now_ms=when, tz_day=day))
        self.cases[name] = cmd.result["cases"][0]
        return self.cases[name]["local_no"]

    def act(self, node: str, name: str, action: str, when: int, **data: Any) -> commands.Command:
        return self.run(commands.transition(self.conn, ACTORS[node], self.no(name), action, data, now_ms=when))

    def no(self, name: str) -> str:
        return self.cases[name]["local_no"]

    def evaluate(self, node: str, name: str, level: int, when: int) -> str:
        cmd = self.run(commands.evaluate(self.conn, ACTORS[node], {"case": self.no(name), "level": level}, now_ms=when))
        return cmd.result["evaluation_id"]


def open_store(path: Path, fold: DomainFold) -> Store:
    store = Store(path, fold=fold)
    domain_migrations.apply(store.db)
    store.set_trust(Trust(COUNTY, "county", KEYS["county"].public.hex))
    members = [
        Record(
            KIND_MEMBER,
            a.node,
            {
                "division": a.division,
                "node": a.node,
                "parent": a.parent,
                "pubkey": KEYS[a.node].public.hex,
                "role": a.node_role,
                **({"name": NAMES[a.node]} if a.node in NAMES else {}),
            },
            1,
        )
        for a in ACTORS.values()
    ]
    store.append(KEYS["county"], "county/*", members)
    base = at("2026-09-01") * 1000
    store.append(
        KEYS["county"],
        "county/*",
        [
            Record("catalog.item", ELDER, item(ELDER, "高龄津贴申请", "乡"), base),
            Record("catalog.item", DISABLED, item(DISABLED, "残疾人证申领", "县"), base + 1),
            *(
                Record("calendar.day", d, {"date": d, "kind": kind, "name": name}, base + 2 + i)
                for i, (d, kind, name) in enumerate(CALENDAR_2026)
            ),
        ],
    )
    return store


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = open_store(tmp_path / "county.sqlite", DomainFold())
    w = World(store)
    # September: the ledger across 国庆
    for name in ("L1", "L2", "L3"):
        w.file(name, "v1", ELDER, at("2026-09-29", 9))
    w.act("t1", "L1", "accept", at("2026-10-09"))
    w.act("t1", "L2", "pre_accept", at("2026-10-10"))
    # November
    for name in ("A", "B", "C", "D"):
        w.file(name, "v1", ELDER, at("2026-11-02", 9))
    for name in ("A", "B", "C", "D"):
        w.act("t1", name, "accept", at("2026-11-02", 15))
    for cmd in commands.case_number(w.conn, ACTORS["county"], [w.cases["A"]["case_id"]], now_ms=at("2026-11-02", 16)):
        w.run(cmd)
    w.file("G", "v2", DISABLED, at("2026-11-02", 9))
    w.file("H", "v1", ELDER, at("2026-11-02", 11))
    late_accept = commands.transition(w.conn, ACTORS["t1"], w.no("H"), "accept", now_ms=at("2026-11-03", 11))
    w.act("v1", "H", "withdraw", at("2026-11-03", 9), reason="村民自行到乡镇办理")
    w.run(late_accept)  # decided on a stale state: kept as a conflict
    w.act("t1", "C", "start", at("2026-11-03"))
    w.act("t1", "G", "accept", at("2026-11-03"))
    w.act("t1", "C", "request_supplement", at("2026-11-04"), reason="户口簿复印件不清晰")
    w.act("t1", "G", "forward", at("2026-11-04"))
    w.act("county", "G", "accept", at("2026-11-05"))
    w.act("t1", "A", "complete", at("2026-11-06"))
    w.act("v1", "C", "supplement", at("2026-11-06"))
    w.act("v1", "A", "deliver", at("2026-11-09"))
    w.evaluate("v1", "A", 5, at("2026-11-09", 11))
    w.act("county", "G", "complete", at("2026-11-10"), result="准予发证")
    w.act("t1", "B", "complete", at("2026-11-11"))
    w.act("t1", "C", "complete", at("2026-11-11"))
    w.evaluate("v2", "G", 3, at("2026-11-11", 11))
    w.cases["B-eval"] = {"local_no": w.evaluate("v1", "B", 2, at("2026-11-12"))}
    w.evaluate("v1", "C", 4, at("2026-11-12", 11))
    w.run(
        commands.rectify(
            w.conn, ACTORS["t1"], w.cases["B-eval"]["local_no"], "assign", {"owner": "张窗口"}, now_ms=at("2026-11-13")
        )
    )
    w.file("P", "v2", ELDER, at("2026-11-16", 9))
    w.act("t1", "P", "accept", at("2026-11-16"))
    w.file("E", "v1", ELDER, at("2026-11-18", 9))
    w.act("t1", "E", "accept", at("2026-11-18"))
    w.act("t1", "P", "suspend", at("2026-11-18"), reason="等待鉴定结论", kind="特别程序")
    w.evaluate("v2", "P", 1, at("2026-11-19"))
    w.run(
        commands.rectify(
            w.conn,
            ACTORS["t1"],
            w.cases["B-eval"]["local_no"],
            "followup",
            {"note": "已电话回访"},
            now_ms=at("2026-11-20"),
        )
    )
    w.run(commands.issue_card(w.conn, ACTORS["county"], w.no("D"), "红牌", "超过承诺时限", now_ms=at("2026-11-20")))
    for day, agent, sub in (
        ("2026-11-02", "李建国", "王芳"),
        ("2026-11-03", "王芳", "李建国"),
        ("2026-10-30", "李建国", None),
    ):
        w.run(commands.duty(w.conn, ACTORS["v1"], day, agent, sub, now_ms=at("2026-11-20", 17)))
    yield w
    store.close()


def by_no(rows: list[dict[str, Any]], world: World) -> dict[str, dict[str, Any]]:
    names = {v["local_no"]: k for k, v in world.cases.items()}
    return {names[r["local_no"]]: r for r in rows if r["local_no"] in names}


# --- clocks and case views --------------------------------------------------------------------------------------


def test_to_local_date_is_china_time_whatever_the_machine_zone() -> None:
    assert views.to_local_date(at("2026-11-02", 0)) == date(2026, 11, 2)
    assert views.to_local_date(at("2026-11-02", 0) - 1) == date(2026, 11, 1)  # 23:59:59.999 the day before
    assert views.to_local_date(1_793_548_800_000) == date(2026, 11, 2)  # 2026-11-01T16:00Z
    assert views.parse_month("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    with pytest.raises(ValidationError, match="yyyy-mm"):
        views.parse_month("2026-13")


def test_case_list_clocks(world: World) -> None:
    rows = by_no(views.list_cases(world.conn, township="t1", today=TODAY), world)
    a, b, c, d, e, p, h = (rows[n] for n in "ABCDEPH")
    assert (a["promise_date"], a["on_time"], a["handling_days"], a["clock"]) == ("2026-11-09", True, 4, "按时办结")
    assert (b["promise_date"], b["on_time"], b["handling_days"], b["clock"]) == ("2026-11-09", False, 7, "超期办结")
    # the 补正 from 11-04 to 11-06 stops the clock for 11-04 and 11-05: promise 11-11, completed that day
    assert (c["promise_date"], c["on_time"], c["handling_days"], c["clock"]) == ("2026-11-11", True, 5, "按时办结")
    assert (d["promise_date"], d["remaining_days"], d["warning"], d["clock"]) == ("2026-11-09", -9, "红牌", "红牌")
    assert (e["promise_date"], e["remaining_days"], e["warning"]) == ("2026-11-25", 3, "预警")
    assert (p["promise_date"], p["paused"], p["clock"], p["state_label"]) == ("2026-11-26", True, "暂停计时", "挂起")
    assert (h["state"], h["clock"], h["promise_date"], h["conflicts"]) == ("WITHDRAWN", "未受理", None, 1)
    # 办件编号: county code + yyyymmdd + 6-digit serial; the day is not asserted, commands.case_number takes it in the machine's zone
    assert a["official_no"].startswith("430321") and len(a["official_no"]) == 20 and a["number"] == a["official_no"]
    assert a["item_name"] == "高龄津贴申请" and a["state_label"] == "已送达"
    # filters: village, state (code or label), item (code or name), limit
    assert {r["local_no"] for r in views.list_cases(world.conn, village="v2", today=TODAY)} == {
        world.no("G"),
        world.no("P"),
        world.no("G") + "-县",
    }
    assert len(views.list_cases(world.conn, state="已办结", today=TODAY)) == 4  # B, C, G and G's county case
    assert len(views.list_cases(world.conn, state="COMPLETED", village="v1", today=TODAY)) == 2
    assert len(views.list_cases(world.conn, item="残疾人证申领", today=TODAY)) == 2
    assert len(views.list_cases(world.conn, item=DISABLED, limit=1, today=TODAY)) == 1
    with pytest.raises(ValidationError, match="未知的办件状态"):
        views.list_cases(world.conn, state="办完了", today=TODAY)


def test_case_clock_before_acceptance_and_for_an_immediate_item() -> None:
    cal = calendar_from_rows(CALENDAR_2026)
    row = {"state": "SUBMITTED", "accepted_ms": None, "promised_days": 5, "pauses": "[]"}
    assert views.case_clock(row, cal, ClockSettings(), TODAY)["clock"] == "未受理"
    quick = {"state": "ACCEPTED", "accepted_ms": at("2026-09-30"), "promised_days": 0, "pauses": "[]"}
    clock = views.case_clock(quick, cal, ClockSettings(), date(2026, 9, 30))
    assert (clock["promise_date"], clock["warning"], clock["remaining_days"]) == ("2026-09-30", "黄牌", 0)
    # accepted the day before 国庆 with 3 days: 10-08, 10-09, 10-10 (调休 Saturday)
    row = {"state": "IN_PROCESS", "accepted_ms": at("2026-09-30"), "promised_days": 3, "pauses": "[]"}
    assert views.case_clock(row, cal, ClockSettings(), date(2026, 10, 8))["promise_date"] == "2026-10-10"


def test_show_case_events_conflicts_cards_and_linked_case(world: World) -> None:
    c = views.show_case(world.conn, world.no("C"), TODAY)
    assert [e["action_label"] for e in c["events"]] == ["受理", "办理", "补齐补正", "补正完成", "办结"]
    supplement = c["events"][2]
    assert (supplement["role_label"], supplement["author"], supplement["reason"]) == (
        "窗口工作人员",
        "t1",
        "户口簿复印件不清晰",
    )
    assert (supplement["before_label"], supplement["after_label"], supplement["at"]) == (
        "办理中",
        "补齐补正",
        "2026-11-04 10:00",
    )
    assert c["events"][3]["after"] == "IN_PROCESS" and c["conflict_list"] == []
    assert [m["name"] for m in c["materials"] if m["received"]] == ["居民身份证", "户口簿"]
    assert c["applicant"]["name"] == VILLAGERS["C"] and len(c["applicant"]["id_number"]) == 18
    assert [e["level_label"] for e in c["evaluations"]] == ["满意"]

    h = views.show_case(world.conn, world.no("H"), TODAY)
    (conflict,) = h["conflict_list"]
    assert conflict["action"] == "accept" and "已撤回" in conflict["conflict"] and h["conflict_rule"] == CONFLICT_RULE
    assert h["state_label"] == "已撤回" and h["result"] == "村民自行到乡镇办理"

    d = views.show_case(world.conn, world.no("D"), TODAY)
    assert [(k["level"], k["active"]) for k in d["cards"]] == [("红牌", True)]

    g = views.show_case(world.conn, world.no("G"), TODAY)
    linked = g["linked_case"]
    assert (g["state"], g["result"], linked["local_no"], linked["state"]) == (
        "COMPLETED",
        "准予发证",
        world.no("G") + "-县",
        "COMPLETED",
    )
    county_case = views.show_case(world.conn, linked["case_id"], TODAY)
    assert county_case["origin_case"]["case_id"] == world.cases["G"]["case_id"]
    assert county_case["applicant"] == g["applicant"]  # the county case shows its origin's applicant
    assert (g["promise_date"], g["on_time"], g["handling_days"]) == ("2026-11-10", True, 5)


def test_sealed_and_purged_applicant(tmp_path: Path) -> None:
    store = open_store(tmp_path / "village.sqlite", DomainFold(sealer=ToySealer()))
    w = World(store)
    no = w.file("S", "v1", ELDER, at("2026-11-02", 9))
    case_id = w.cases["S"]["case_id"]
    sealed, data = store.conn.execute("SELECT sealed, data FROM case_pii WHERE case_id = ?", (case_id,)).fetchone()
    assert sealed == 1 and VILLAGERS["S"].encode() not in data  # the name is not stored in the clear
    assert views.show_case(w.conn, no, TODAY)["applicant"] == "已加密"
    assert views.show_case(w.conn, no, TODAY, opener=ToySealer().open)["applicant"]["name"] == VILLAGERS["S"]

    def wrong(data: bytes, aad: bytes) -> bytes:
        return ToySealer().open(data, aad + b"x")

    assert views.show_case(w.conn, no, TODAY, opener=wrong)["applicant"] == "无法解密"
    assert case_pii_aad(case_id) == f"case_pii/{case_id}".encode()
    (row,) = views.ledger(w.conn, village="v1", today=TODAY, opener=ToySealer().open)
    assert row["村民姓名"] == VILLAGERS["S"]
    assert views.ledger(w.conn, village="v1", today=TODAY)[0]["身份证号"] == "已加密"
    store.conn.execute("UPDATE case_pii SET data = NULL, purged_ms = ? WHERE case_id = ?", (at("2026-11-30"), case_id))
    store.conn.commit()
    assert views.show_case(w.conn, no, TODAY, opener=ToySealer().open)["applicant"] == "已清除"
    store.close()


# --- 代办台账, 值班表, 整改 ----------------------------------------------------------------------------------------


def test_ledger_due_date_across_national_day(world: World) -> None:
    rows = views.ledger(world.conn, village="v1", month="2026-09", today=date(2026, 10, 12))
    assert list(rows[0]) == list(views.LEDGER_COLUMNS)
    assert [r["序号"] for r in rows] == [1, 2, 3]
    l1, l2, l3 = rows
    # filed 09-29 (Tue): 09-30, then 国庆 10-01…10-07 off, 10-08, 10-09
    assert {r["报送乡镇期限"] for r in rows} == {"2026-10-09"}
    assert (l1["报送日期"], l1["逾期"], l1["状态"]) == ("2026-10-09", False, "办理中")
    assert (l2["报送日期"], l2["逾期"], l2["状态"]) == ("2026-10-10", True, "报送")
    assert (l3["报送日期"], l3["逾期"], l3["状态"]) == ("", True, "委托")
    assert views.ledger(world.conn, village="v1", month="2026-09", today=date(2026, 10, 9))[2]["逾期"] is False
    assert l1["日期"] == "2026-09-29" and l1["收取材料"] == "居民身份证、户口簿" and l1["委托书编号"] == "WT-L1"
    assert l1["代办员"] == "李建国" and l1["事项"] == "高龄津贴申请" and l1["办件编号"] == world.no("L1")
    assert l1["村民姓名"] == VILLAGERS["L1"] and l1["联系电话"].startswith("139") and len(l1["身份证号"]) == 18


def test_ledger_november(world: World) -> None:
    rows = views.ledger(world.conn, township="t1", month="2026-11", today=TODAY)
    names = {v["local_no"]: k for k, v in world.cases.items()}
    got = {names.get(r["办件编号"], "A"): r for r in rows}  # A carries its official 办件编号
    assert sorted(got) == ["A", "B", "C", "D", "E", "G", "H", "P"]  # not G's county case
    a = got["A"]
    assert a["办件编号"].startswith("430321") and a["办件编号"] != world.no("A")
    assert (a["状态"], a["回交日期"], a["满意度"], a["办理结果"], a["逾期"]) == (
        "已回交",
        "2026-11-09",
        "非常满意",
        "准予办理",
        False,
    )
    assert (got["B"]["状态"], got["B"]["满意度"]) == ("办理中", "不满意")  # completed, not yet returned
    assert (got["H"]["状态"], got["H"]["报送日期"], got["H"]["逾期"], got["H"]["办理结果"]) == (
        "终止",
        "",
        False,
        "村民自行到乡镇办理",
    )
    assert (got["G"]["状态"], got["G"]["办理结果"]) == ("办理中", "准予发证")
    assert got["E"]["报送乡镇期限"] == "2026-11-23"
    with pytest.raises(ValidationError, match="月份"):
        views.ledger(world.conn, month="11/2026", today=TODAY)


def test_roster_and_rectifications(world: World) -> None:
    v1 = {"village": "v1", "village_name": "梅花村"}
    assert views.roster(world.conn, village="v1", month="2026-11") == [
        {"村": "梅花村", "日期": "2026-11-02", "星期": "星期一", "值班代办员": "李建国", "替岗人员": "王芳", **v1},
        {"村": "梅花村", "日期": "2026-11-03", "星期": "星期二", "值班代办员": "王芳", "替岗人员": "李建国", **v1},
    ]
    assert len(views.roster(world.conn)) == 3
    rows = views.rectifications(world.conn, today=TODAY)
    b, p = rows
    # B's 差评 on 11-12 (Thu): 5 working days → 11-19; 回访 on 11-20 is late
    assert (b["opened_date"], b["deadline_date"], b["state"], b["owner"], b["overdue"]) == (
        "2026-11-12",
        "2026-11-19",
        "已回访",
        "张窗口",
        True,
    )
    assert (b["level_label"], b["followup_date"], b["item_name"]) == ("不满意", "2026-11-20", "高龄津贴申请")
    assert (p["deadline_date"], p["state"], p["overdue"], p["village"]) == ("2026-11-26", "待整改", False, "v2")
    assert (b["village_name"], b["township_name"], p["village_name"]) == ("梅花村", "城关镇便民服务中心", "v2")
    assert views.rectifications(world.conn, today=date(2026, 11, 27), state="待整改")[0]["overdue"] is True
    assert views.rectifications(world.conn, village="v1", today=TODAY) == [b]


# --- names of places --------------------------------------------------------------------------------------------


def test_place_names_fold_from_membership_and_renames(world: World) -> None:
    """node.member carries a name (or none), node.name replaces it; `places` falls back to the node id."""
    conn = world.conn
    assert places.names(conn) == {"county": "county", "t1": "城关镇便民服务中心", "v1": "梅花村", "v2": "v2"}
    assert dict(conn.execute("SELECT node, name FROM nodes").fetchall())["v2"] is None
    assert (places.name_of(conn, "v1"), places.name_of(conn, "v2"), places.name_of(conn, "v9")) == (
        "梅花村",
        "v2",
        "v9",
    )
    world.store.append(
        KEYS["county"],
        "county/*",
        [
            Record(KIND_NAME, "v2", {"name": "新桥村", "node": "v2"}, at("2026-11-20", 18) * 1000),
            Record(KIND_NAME, "county", {"name": "示范县", "node": "county"}, at("2026-11-20", 18) * 1000 + 1),
        ],
    )
    assert places.names(conn) == {"county": "示范县", "t1": "城关镇便民服务中心", "v1": "梅花村", "v2": "新桥村"}
    assert places.name_of(conn, "v2") == world.store.directory().name_of("v2") == "新桥村"
    # the read side shows the names beside the ids
    rows = by_no(views.list_cases(world.conn, today=TODAY), world)
    assert (rows["A"]["village"], rows["A"]["village_name"], rows["A"]["township_name"]) == (
        "v1",
        "梅花村",
        "城关镇便民服务中心",
    )
    assert (rows["G"]["village_name"], rows["A"]["author_name"]) == ("新桥村", "梅花村")
    case = views.show_case(world.conn, world.no("G"), TODAY)
    assert case["village_name"] == "新桥村" and case["linked_case"]["village_name"] == "新桥村"
    assert {e["author_name"] for e in case["events"]} == {"城关镇便民服务中心"}
    linked = views.show_case(world.conn, case["linked_case_id"], TODAY)
    assert {e["author_name"] for e in linked["events"]} == {"示范县"}
    assert case["evaluations"][0]["village_name"] == "新桥村"
    (conflict,) = views.conflicts(world.conn)
    assert conflict["author_name"] == "城关镇便民服务中心"
    v1, v2 = stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)
    assert [(v1["group"], v1["label"]), (v2["group"], v2["label"])] == [("v1", "梅花村"), ("v2", "新桥村")]
    (t1,) = stats.statistics(world.conn, group_by="township", period=NOV, today=TODAY)
    assert (t1["group"], t1["label"]) == ("t1", "城关镇便民服务中心")


# --- statistics -------------------------------------------------------------------------------------------------


def test_statistics_by_village_in_november(world: World) -> None:
    v1, v2 = stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)
    assert (v1["group"], v1["completions"], v1["on_time"], v1["late"]) == ("v1", 3, 2, 1)
    assert (v1["on_time_rate"], v1["on_time_bp"], v1["on_time_pct"]) == ("66.7%", 6667, 66.7)
    assert v1["handling_days"] == 16 and v1["avg_handling_days"] == 5.3
    assert (v1["evaluations"], v1["satisfied"], v1["satisfaction_rate"], v1["satisfaction_bp"]) == (3, 2, "66.7%", 6667)
    assert v1["by_state"] == {"已受理": 2, "已办结": 2, "已送达": 1, "已撤回": 1} and v1["filed"] == 6
    assert (v1["overdue_open"], v1["warnings"]) == (1, {"预警": 1, "黄牌": 0, "红牌": 1})
    assert (v2["completions"], v2["on_time_rate"], v2["on_time_bp"]) == (1, "100.0%", 10000)
    assert (v2["evaluations"], v2["satisfaction_rate"]) == (2, "50.0%")
    assert v2["by_state"] == {"挂起": 1, "已办结": 1} and v2["filed"] == 2  # G once: not its county case


def test_statistics_for_the_county_items_and_months(world: World) -> None:
    (county,) = stats.statistics(world.conn, group_by="county", period=NOV, today=TODAY)
    assert (county["completions"], county["on_time"], county["on_time_rate"], county["on_time_bp"]) == (
        4,
        3,
        "75.0%",
        7500,
    )
    assert (county["handling_days"], county["avg_handling_days"]) == (21, 5.3)  # 5.25 rounds half up
    assert (county["evaluations"], county["satisfied"], county["satisfaction_rate"]) == (5, 3, "60.0%")
    assert county["filed"] == 8 and county["late"] == 1 and county["overdue_open"] == 1
    elder, disabled = stats.statistics(world.conn, group_by="item", period=NOV, today=TODAY)
    assert (elder["group"], elder["label"], elder["completions"], elder["filed"]) == (ELDER, "高龄津贴申请", 3, 7)
    assert (disabled["label"], disabled["completions"], disabled["satisfaction_rate"]) == ("残疾人证申领", 1, "100.0%")
    (t1,) = stats.statistics(world.conn, group_by="township", period=NOV, today=TODAY)
    assert t1["group"] == "t1" and t1["completions"] == 4
    sep, nov = stats.statistics(world.conn, group_by="month", period=None, today=TODAY)
    assert (sep["group"], sep["filed"], sep["completions"], sep["overdue_open"]) == ("2026-09", 3, 0, 1)  # L1 is 红牌
    assert sep["on_time_rate"] == "—" and sep["on_time_bp"] is None and sep["avg_handling_days"] is None
    assert (nov["group"], nov["filed"], nov["completions"], nov["evaluations"]) == ("2026-11", 8, 4, 5)
    assert stats.statistics(world.conn, group_by="county", period=("2026-12-01", "2026-12-31"), today=TODAY) == []
    with pytest.raises(ValidationError, match="分组"):
        stats.statistics(world.conn, group_by="week", today=TODAY)
    with pytest.raises(ValidationError, match="晚于"):
        stats.statistics(world.conn, period=(date(2026, 12, 1), date(2026, 11, 1)), today=TODAY)
    assert stats.rate(2, 3) == {"text": "66.7%", "bp": 6667, "pct": 66.7}
    assert stats.rate(1, 8)["text"] == "12.5%" and stats.rate(1, 16)["text"] == "6.3%"


# --- exports ----------------------------------------------------------------------------------------------------


def test_ledger_to_xlsx(world: World, tmp_path: Path) -> None:
    path = tmp_path / "台账.xlsx"
    n = exports.export_ledger(
        world.conn, path, village="v1", month="2026-11", today=TODAY, title="梅花村代办台账 2026年11月"
    )
    assert n == 6
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws["A1"].value == "梅花村代办台账 2026年11月"
    assert [str(r) for r in ws.merged_cells.ranges] == ["A1:Q1"]
    assert [c.value for c in ws[2]] == list(views.LEDGER_COLUMNS) and ws["A2"].font.bold
    assert ws["A2"].border.bottom.style == "thin"
    first = [c.value for c in ws[3]]
    assert first[:2] == [1, "2026-11-02"] and first[views.LEDGER_COLUMNS.index("逾期")] in ("是", "否")
    assert isinstance(first[views.LEDGER_COLUMNS.index("身份证号")], str) and ws.cell(3, 4).number_format == "@"
    assert ws.max_row == 2 + 6
    assert ws.freeze_panes == "A3" and ws.page_setup.orientation == "landscape"
    assert ws.print_title_rows == "$2:$2"
    assert ws.column_dimensions["D"].width >= 18  # the 身份证号 fits
    wb.close()
    # the default title names the village (梅花村), never its node id
    exports.export_ledger(world.conn, tmp_path / "default.xlsx", village="v1", month="2026-11", today=TODAY)
    wb = openpyxl.load_workbook(tmp_path / "default.xlsx")
    assert wb.active["A1"].value == "梅花村代办台账 2026年11月"
    wb.close()
    exports.export_ledger(world.conn, tmp_path / "town.xlsx", township="t1", month="2026-11", today=TODAY)
    wb = openpyxl.load_workbook(tmp_path / "town.xlsx")
    assert wb.active["A1"].value == "城关镇便民服务中心代办台账 2026年11月"
    wb.close()
    exports.export_ledger(world.conn, tmp_path / "v2.xlsx", village="v2", month="2026-11", today=TODAY)
    wb = openpyxl.load_workbook(tmp_path / "v2.xlsx")
    assert wb.active["A1"].value == "v2代办台账 2026年11月"  # a village enrolled without a name
    wb.close()


def test_csv_with_bom_roster_and_statistics(world: World, tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    assert exports.export_ledger(world.conn, path, "csv", village="v1", month="2026-09", today=date(2026, 10, 12)) == 3
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == list(views.LEDGER_COLUMNS) and len(rows) == 4
    assert rows[2][views.LEDGER_COLUMNS.index("报送乡镇期限")] == "2026-10-09" and rows[2][-1] == "是"
    assert exports.export_roster(world.conn, tmp_path / "roster.csv", village="v1") == 3
    assert (tmp_path / "roster.csv").read_text(encoding="utf-8-sig").splitlines()[
        0
    ] == "村,日期,星期,值班代办员,替岗人员"
    assert (tmp_path / "roster.csv").read_text(encoding="utf-8-sig").splitlines()[1].startswith("梅花村,")
    assert exports.export_roster(world.conn, tmp_path / "roster.xlsx", village="v1", month="2026-11") == 2
    ws = openpyxl.load_workbook(tmp_path / "roster.xlsx").active
    assert (ws["A1"].value, ws["A3"].value) == ("梅花村代办点值班表 2026年11月", "梅花村")
    n = exports.export_statistics(world.conn, tmp_path / "stats.xlsx", group_by="village", period=NOV, today=TODAY)
    assert n == 2
    ws = openpyxl.load_workbook(tmp_path / "stats.xlsx").active
    header = [c.value for c in ws[2]]
    assert header[0] == "村(社区)" and "按时办结率" in header and "已撤回" in header
    assert [c.value for c in ws[3]][header.index("按时办结率")] == "66.7%"
    assert ws["A1"].value == "政务服务办件统计（按村(社区)） 2026-11-01 至 2026-11-30"


def test_export_refuses_bad_paths_and_formats(world: World, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="不存在"):
        exports.export_ledger(world.conn, tmp_path / "missing" / "a.xlsx", today=TODAY)
    with pytest.raises(ValidationError, match="不支持"):
        exports.export_ledger(world.conn, tmp_path / "a.pdf", "pdf", today=TODAY)
    with pytest.raises(ValidationError, match="判断导出格式"):
        exports.export_ledger(world.conn, tmp_path / "a.txt", today=TODAY)
    with pytest.raises(ValidationError, match="不符"):
        exports.export_ledger(world.conn, tmp_path / "a.csv", "xlsx", today=TODAY)
    with pytest.raises(ValidationError, match="文件夹"):
        exports.write_csv(tmp_path, ["a"], [])
    assert exports.write_csv(tmp_path / "plain.csv", [("k", "键")], [{"k": date(2026, 1, 2)}, {"k": None}]) == 2
    lines = (tmp_path / "plain.csv").read_text(encoding="utf-8-sig").splitlines()
    assert list(csv.reader(lines)) == [["键"], ["2026-01-02"], [""]]
    assert not list(tmp_path.glob(".*.tmp"))


def test_cards_due_issue_once_and_skip_paused_cases(world: World) -> None:
    """电子监察: a 红牌 for each overdue running case without one; none for a paused case; revoked cards free it."""
    today = date(2026, 11, 30)
    due = {(case_id, level) for case_id, level, _ in views.cards_due(world.conn, today=today)}
    e = world.cases["E"]["case_id"]  # accepted 11-18, 5 working days: promised 11-25, still open
    d = world.cases["D"]["case_id"]  # already holds a 红牌
    p = world.cases["P"]["case_id"]  # 特别程序: its clock stands still
    assert (e, "红牌") in due
    assert all(case_id not in (d, p) for case_id, _ in due)
    for case_id, level, reason in views.cards_due(world.conn, today=today):
        world.run(commands.issue_card(world.conn, ACTORS["county"], case_id, level, reason, now_ms=at("2026-11-30")))
    assert views.cards_due(world.conn, today=today) == []
    (card,) = [r[0] for r in world.conn.execute("SELECT card_id FROM cards WHERE case_id = ?", (e,))]
    world.run(commands.revoke_card(world.conn, ACTORS["county"], card, "系特别程序，不计时", now_ms=at("2026-12-01")))
    assert (e, "红牌") in {(c, lv) for c, lv, _ in views.cards_due(world.conn, today=today)}
    with pytest.raises(commands.TransitionError):
        commands.revoke_card(world.conn, ACTORS["county"], card, "again", now_ms=at("2026-12-01"))


def test_a_village_handles_its_own_village_items(tmp_path: Path) -> None:
    """村受理村办结: the agent accepts and completes at the village; for other items only the window may."""
    store = open_store(tmp_path / "v.sqlite", DomainFold())
    local = {**item("LOCAL1", "法律咨询", "村"), "village_mode": "村受理村办结"}
    store.append(KEYS["county"], "county/*", [Record("catalog.item", "LOCAL1", local, at("2026-09-02") * 1000)])
    w = World(store)
    w.file("A", "v1", "LOCAL1", at("2026-11-02", 9))
    w.act("v1", "A", "accept", at("2026-11-02", 10))
    w.act("v1", "A", "complete", at("2026-11-02", 11))
    row = views.list_cases(w.conn, today=date(2026, 11, 2))[0]
    assert row["state"] == "COMPLETED" and row["on_time"] is True
    w.file("B", "v1", ELDER, at("2026-11-02", 9))
    with pytest.raises(commands.TransitionError, match="无权"):
        commands.transition(w.conn, ACTORS["v1"], w.no("B"), "accept", now_ms=at("2026-11-02", 10))
    with pytest.raises(commands.TransitionError):  # another village's agent may not touch it
        commands.transition(w.conn, ACTORS["v2"], w.no("A"), "deliver", now_ms=at("2026-11-02", 12))
    store.close()


def test_conflicts_are_listed_node_wide(world: World) -> None:
    rows = views.conflicts(world.conn)
    (late,) = [r for r in rows if r["local_no"] == world.no("H")]
    assert late["action"] == "accept" and late["before"] == "WITHDRAWN" and "已撤回" in late["conflict"]


def test_a_draft_is_submitted_once_its_materials_are_complete(world: World) -> None:
    """草稿: filed with a material missing; a later submit adds what arrived and keeps what was held."""
    world.file("Q", "v1", ELDER, at("2026-11-20", 9), materials=["居民身份证"], draft=True)
    assert views.show_case(world.conn, world.no("Q"), today=date(2026, 11, 20))["state"] == "DRAFT"
    with pytest.raises(ValidationError, match="户口簿"):
        commands.transition(world.conn, ACTORS["v1"], world.no("Q"), "submit", {}, now_ms=at("2026-11-20", 10))
    world.act("v1", "Q", "submit", at("2026-11-20", 11), materials=["户口簿"])
    detail = views.show_case(world.conn, world.no("Q"), today=date(2026, 11, 20))
    assert detail["state"] == "SUBMITTED"
    assert {m["name"] for m in detail["materials"] if m["received"]} == {"居民身份证", "户口簿"}


def test_a_walk_in_case_at_the_township_window(world: World) -> None:
    """窗口收件: a township files, handles and completes a case itself; it counts for the township, not a village."""
    before = {
        r["group"]: r["filed"] for r in stats.statistics(world.conn, group_by="township", period=NOV, today=TODAY)
    }
    villages = stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)
    world.file("S", "t1", ELDER, at("2026-11-23", 9))
    case = views.show_case(world.conn, world.no("S"), today=TODAY)
    assert (case["channel"], case["village"], case["township"]) == ("窗口", None, "t1")
    assert world.no("S").startswith(ACTORS["t1"].division + "-20261123-")
    for action in ("accept", "start", "complete"):
        cmd = world.act("t1", "S", action, at("2026-11-23", 10))
        assert cmd.feed == "t1/up"  # the window's own case: its events go up with it
    eid = world.evaluate("t1", "S", 5, at("2026-11-23", 11))
    row = world.conn.execute("SELECT township, village, target_type FROM evaluations WHERE evaluation_id = ?", (eid,))
    assert row.fetchone() == ("t1", None, "窗口")
    after = {r["group"]: r["filed"] for r in stats.statistics(world.conn, group_by="township", period=NOV, today=TODAY)}
    assert after["t1"] == before["t1"] + 1
    assert stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY) == villages
    with pytest.raises(commands.TransitionError):  # a village agent cannot act on a window's case
        commands.transition(world.conn, ACTORS["v1"], world.no("S"), "deliver", now_ms=at("2026-11-23", 12))


def test_supplement_request_names_the_materials_asked_for(world: World) -> None:
    """补齐补正 一次告知: the window's request records exactly which materials it asks for; any other is refused."""
    w = world
    w.file("S", "v1", ELDER, at("2026-11-19", 9))
    w.act("t1", "S", "accept", at("2026-11-19", 10))
    with pytest.raises(ValidationError, match="不在事项"):
        w.act("t1", "S", "request_supplement", at("2026-11-19", 11), reason="不清晰", requested=["结婚证"])
    w.act("t1", "S", "request_supplement", at("2026-11-19", 11), reason="复印件不清晰", requested=["户口簿", "申请书"])
    events = views.show_case(w.conn, w.no("S"), today=date(2026, 11, 20))["events"]
    asked = [e for e in events if e["action"] == "request_supplement"]
    assert [e["requested"] for e in asked] == [["户口簿", "申请书"]]
    assert asked[0]["reason"] == "复印件不清晰"


def test_several_groupings_in_one_pass_equal_each_alone(world: World) -> None:
    """`statistics_by` (what the township's statistics page uses) gives each grouping exactly what
    `statistics` gives alone; a grouping in `whole` ignores the period, as the all-months chart needs."""
    groups = ("county", "township", "village", "item", "month")
    for period in (None, NOV):
        together = stats.statistics_by(world.conn, groups, period=period, today=TODAY)
        for g in groups:
            assert together[g] == stats.statistics(world.conn, group_by=g, period=period, today=TODAY), (g, period)
    mixed = stats.statistics_by(world.conn, ("village", "month"), period=NOV, today=TODAY, whole=("month",))
    assert mixed["village"] == stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)
    assert mixed["month"] == stats.statistics(world.conn, group_by="month", today=TODAY)
    assert len(mixed["month"]) == 2  # September and November, though the period is November


def test_local_dates_by_arithmetic_equal_the_datetime_path() -> None:
    """`to_local_date` computes a fixed-offset zone's day by integer arithmetic (statistics convert tens of
    thousands of stamps a page); it must agree with `datetime.astimezone` everywhere, before 1970 too."""
    from datetime import UTC, timedelta, timezone

    rng = random.Random(2026)
    for tz in (views.CST, UTC, timezone(timedelta(hours=-5, minutes=-30))):
        stamps = [rng.randint(-(10**12), 4 * 10**12) for _ in range(100_000)]
        stamps += [views.day_start_ms(date(2026, 12, 3), tz) + d for d in (-1, 0, 1)]
        for ms in stamps:
            assert views.to_local_date(ms, tz) == views.to_local_datetime(ms, tz).date(), (ms, tz)
