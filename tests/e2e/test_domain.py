"""Issue 5 acceptance with real processes: cases through the state machine across three tiers.

An agent files 20 cases for 5 items; the township accepts some, asks for 补正
on some, rejects one, and forwards two county items (转报), which the county
accepts and completes on the linked county cases. Every village then shows
the right state and deadline for every case, and the county's statistics
match a count made by hand here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import chinese_calendar
import openpyxl
import pytest

from .cluster import Cluster, wait_for

CST = timezone(timedelta(hours=8))
ITEMS = {
    "complete": "高龄津贴申请",  # 乡, 承诺件 10 days: accepted, handled and completed at the township
    "accept": "老年优待证办理",  # 乡, 5 days: accepted, still open
    "supplement": "农村低保申请",  # 补正 ×3, 不予受理 ×1
    "forward": "残疾人证申领",  # 县 item: 2 forwarded to the county and completed there, 2 not yet handled
    "pre": "临时救助申请",  # 预受理
}


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("domain"))
    c.county()
    for year in ("2025", "2026"):
        c.run("county", "calendar", "seed", "--year", year)
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    for v, division in (("v11", "430321101201"), ("v12", "430321101202")):
        c.enrol(v, "village", division, "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def workdays_after(start: date, n: int) -> date:
    """The oracle for deadlines: the State Council calendar as chinese_calendar has it."""
    d = start
    while n > 0:
        d += timedelta(days=1)
        n -= chinese_calendar.is_workday(d)
    return d


def cases_at(c: Cluster, node: str) -> dict[str, dict]:
    return {r["local_no"]: r for r in c.json(node, "case", "list") if not r.get("origin_case_id")}


def test_cases_move_through_three_tiers_and_statistics_match(tiers: Cluster) -> None:
    c = tiers
    today = datetime.now(CST).date()
    filed: dict[str, list[str]] = {}
    for role, item in ITEMS.items():
        filed[role] = [m["local_no"] for m in c.new_cases("v11", 4, item, "--offline")]
    other = [m["local_no"] for m in c.new_cases("v12", 2, "生育登记", "--offline")]
    assert sum(len(v) for v in filed.values()) == 20
    c.json("v11", "sync")
    c.json("v12", "sync")

    def clerk(no: str, action: str, *args: str) -> None:
        c.run("t1", "case", "transition", no, action, "--person", "王窗口", *args)

    for no in filed["complete"]:
        for action in ("accept", "start"):
            clerk(no, action)
        clerk(no, "complete", "--result", "准予发放高龄津贴")
    for no in filed["accept"]:
        clerk(no, "accept")
    for no in filed["supplement"][:3]:
        clerk(no, "request_supplement", "--reason", "缺村委会出具的家庭收入证明")
    clerk(filed["supplement"][3], "reject", "--reason", "家庭人均收入高于低保标准")
    for no in filed["forward"][:2]:
        clerk(no, "accept")
        clerk(no, "forward")
    for no in filed["pre"]:
        clerk(no, "pre_accept")
    # a clerk cannot skip a step: the CLI refuses with the state and what can be done
    refused = c.run("t1", "case", "transition", filed["pre"][0], "complete", check=False)
    assert refused.returncode == 2 and "预受理" in refused.stderr

    # the township forwards its events up on its own schedule; the county takes the 转报 cases
    def county_state(no: str) -> str:
        return cases_at(c, "county")[no]["state"]

    for no in filed["forward"][:2]:
        wait_for(lambda no=no: county_state(no) == "FORWARDED", f"{no} forwarded to the county")
        for action in ("accept", "start", "complete"):
            c.run("county", "case", "transition", no, action, "--person", "县残联窗口")  # acts on the linked case
    linked = [r for r in c.json("county", "case", "list") if r.get("origin_case_id")]
    assert len(linked) == 2 and {r["state"] for r in linked} == {"COMPLETED"}

    # the agent's evaluations (好差评) of three completed cases; the 差评 opens a rectification
    for no, level in zip(filed["complete"][:3], (5, 4, 2), strict=True):
        c.run("v11", "evaluate", no, "--level", str(level), "--comment", "评价")
    c.json("v11", "sync")

    expected = {
        **{no: "COMPLETED" for no in filed["complete"]},
        **{no: "ACCEPTED" for no in filed["accept"]},
        **{no: "NEED_SUPPLEMENT" for no in filed["supplement"][:3]},
        filed["supplement"][3]: "NOT_ACCEPTED",
        **{no: "COMPLETED" for no in filed["forward"][:2]},
        **{no: "SUBMITTED" for no in filed["forward"][2:]},
        **{no: "PRE_ACCEPTED" for no in filed["pre"]},
    }

    def village_caught_up() -> bool:
        c.json("v11", "sync")
        rows = cases_at(c, "v11")
        return all(rows[no]["state"] == s for no, s in expected.items()) and all(
            r["official_no"] for r in rows.values()
        )

    wait_for(village_caught_up, "the village to see every decision and the county's numbers", timeout=120)
    rows = cases_at(c, "v11")
    assert set(rows) == set(expected)  # the agent sees its own 20 cases, not v12's
    for no in filed["accept"]:  # 承诺件 of 5 working days, accepted today
        assert rows[no]["promise_date"] == workdays_after(today, 5).isoformat()
        assert rows[no]["remaining_days"] >= 0
    for no in filed["complete"]:
        assert rows[no]["promise_date"] == workdays_after(today, 10).isoformat()
        assert rows[no]["on_time"] is True
    for no in filed["forward"][:2]:
        assert rows[no]["promise_date"] == workdays_after(today, 15).isoformat()
    for no in filed["supplement"][:3] + filed["pre"] + filed["forward"][2:]:
        assert rows[no]["promise_date"] is None  # not accepted: no promise yet
    detail = c.json("v11", "case", "show", filed["forward"][0])
    assert detail["applicant"]["name"]  # the agent reads its own villager, unsealed with the passphrase
    assert [e["action"] for e in detail["events"]][:2] == ["accept", "forward"]
    assert set(cases_at(c, "v12")) == set(other)

    # the county's statistics against a count made by hand
    wait_for(lambda: len(c.json("county", "case", "list")) >= 24, "everything at the county")

    def county_stats() -> dict:
        return c.json("county", "stats", "show", "--by", "village")

    wait_for(
        lambda: {r["group"]: r["evaluations"] for r in county_stats()}.get("v11") == 3, "evaluations at the county"
    )
    stats = {r["group"]: r for r in county_stats()}
    v11 = stats["v11"]
    by_hand = Counter(expected.values())
    assert v11["filed"] == 20
    assert v11["by_state"] == {
        "已收件": by_hand["SUBMITTED"],
        "预受理": by_hand["PRE_ACCEPTED"],
        "补齐补正": by_hand["NEED_SUPPLEMENT"],
        "不予受理": by_hand["NOT_ACCEPTED"],
        "已受理": by_hand["ACCEPTED"],
        "已办结": by_hand["COMPLETED"],
    }
    assert (v11["completions"], v11["on_time"], v11["on_time_rate"]) == (6, 6, "100.0%")
    assert (v11["evaluations"], v11["satisfied"], v11["satisfaction_rate"]) == (3, 2, "66.7%")
    assert v11["overdue_open"] == 0
    assert stats["v12"]["filed"] == 2 and stats["v12"]["by_state"] == {"已收件": 2}
    whole = c.json("county", "stats", "show", "--by", "county")[0]
    assert whole["filed"] == 22 and whole["completions"] == 6  # the linked county cases are not counted twice

    # the 差评's rectification, handled at the township
    wait_for(lambda: c.json("t1", "rectifications"), "the rectification at the township")
    (rect,) = c.json("t1", "rectifications")
    c.run("t1", "rectify", rect["evaluation_id"], "assign", "--owner", "张主任", "--deadline-days", "5")
    c.run("t1", "rectify", rect["evaluation_id"], "followup", "--note", "已电话回访，重新解释发放标准")
    (rect,) = c.json("t1", "rectifications")
    assert rect["owner"] == "张主任" and rect["state"] == "已回访"

    # the ledger the township asks for, exported at the village
    path = c.root / "台账.xlsx"
    c.run("v11", "ledger", "export", str(path))
    sheet = openpyxl.load_workbook(path).active
    data_rows = [r for r in sheet.iter_rows(min_row=3, values_only=True) if any(r)]
    assert len(data_rows) == 20
    ledger = c.json("v11", "ledger", "show")
    assert not any(r["逾期"] for r in ledger)  # everything reached the township the day it was filed


def test_personal_data_is_sealed_on_the_laptop(tiers: Cluster) -> None:
    c = tiers
    (made,) = c.new_cases("v12", 1, "生育登记", "--offline")
    detail = c.json("v12", "case", "show", made["local_no"])
    name, id_number = detail["applicant"]["name"], detail["applicant"]["id_number"]
    raw = b"".join(p.read_bytes() for p in c.nodes["v12"].data.glob("node.sqlite*"))
    assert name.encode() not in raw and id_number.encode() not in raw
    # the township holds it in the clear for its clerks (the laptop is what gets lost)
    c.json("v12", "sync")
    assert c.json("t1", "case", "show", made["local_no"])["applicant"]["id_number"] == id_number
    # a wrong passphrase opens nothing
    env = {**c.env, "SANJI_TEST_PASSPHRASE": "not the agent's passphrase"}
    saved, c.env = c.env, env
    try:
        wrong = c.run("v12", "case", "list", check=False)
    finally:
        c.env = saved
    assert wrong.returncode == 2
    # once the county has receipted the case, the county's rule purges it from the laptop (here: at once)
    c.run("county", "settings", "set", "pii_purge_days", "0")

    def purged() -> bool:
        c.json("v12", "sync")
        return c.json("v12", "pii", "status")["purged"] >= 1

    wait_for(purged, "the receipted case's personal data to be purged from the laptop", timeout=120)
    after = c.json("v12", "case", "show", made["local_no"])
    assert "已清除" in str(after["applicant"]) and after["state"] == detail["state"]
    assert c.json("county", "case", "show", made["local_no"])["applicant"]["id_number"] == id_number
    c.json("v12", "sync")  # a purged laptop still syncs: the parent never asks for what the county receipted


def test_bad_case_input_is_refused_and_nothing_is_filed(tiers: Cluster) -> None:
    c = tiers
    before = len(c.json("v11", "case", "list"))
    good, bad = c.cases(2, "生育登记")
    bad["applicant"]["id_number"] = bad["applicant"]["id_number"][:-1] + (
        "0" if bad["applicant"]["id_number"][-1] != "0" else "1"
    )
    out = c.run(
        "v11", "case", "new", "--offline", "--json", "-", input=json.dumps([good, bad], ensure_ascii=False), check=False
    )
    assert out.returncode == 2 and "第 2 件" in out.stderr and "身份证" in out.stderr
    missing = c.cases(1, "高龄津贴申请", complete=False)[0]
    out = c.run(
        "v11", "case", "new", "--offline", "--json", "-", input=json.dumps(missing, ensure_ascii=False), check=False
    )
    assert out.returncode == 2 and "缺少必要材料" in out.stderr
    assert len(c.json("v11", "case", "list")) == before
