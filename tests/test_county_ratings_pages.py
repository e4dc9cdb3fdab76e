"""好差评整改 at the county through the Flask test client: every 差评's rectification listed with its case
number, village and item by name, the comment, the level, the deadline and the state; assign, follow up
and close from the page, each a signed `rectification.step` (the one `rectify` writes) that travels to
the evaluation's township, each audited; an inspector may read but not act.

Built on the county of tests/test_county_monitor_pages.py: 梅花村 (v11) rates case A 非常不满意 with a
comment, 城关镇's window rates case B 不满意, 梅花村 rates case C 满意 (no rectification)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from county_server.app import create_app
from county_server.node import open_county_store
from sanji_domain import commands, views
from sanji_node.config import DataDir
from tests.test_county_monitor_pages import CLOCK, actor, append, at_day, audit_rows, build_county, post, signed_in
from tests.test_county_pages import cli
from tests.test_views_stats import at


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("ratings") / "county"
    ids = build_county(path)
    with open_county_store(DataDir(path)) as store:

        def evaluate(node: str, case: str, level: int, comment: str, when: int) -> str:
            data = {"case": ids[case], "level": level, "comment": comment}
            cmd = append(store, commands.evaluate(store.conn, actor(node), data, now_ms=when))
            return str(cmd.result["evaluation_id"])

        ids["bad"] = evaluate("v11", "A", 1, "等了三个星期没人回话", at("2026-11-16", 9))
        ids["poor"] = evaluate("t1", "B", 2, "窗口说话不耐烦", at("2026-11-18", 9))
        evaluate("v11", "C", 4, "代办员很耐心", at("2026-11-18", 10))
    return path, ids


@pytest.fixture()
def county(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> Iterator[tuple[Flask, dict[str, Any]]]:
    path = tmp_path / "county"
    shutil.copytree(template[0], path)
    CLOCK[0] = at("2026-11-20", 11)
    app = create_app(path, clock_ms=lambda: CLOCK[0])
    app.config["TESTING"] = True
    app.config["SANJI_PATH"] = str(path)
    yield app, template[1]
    app.extensions["county"].ws.close()


def rectification(app: Flask, evaluation_id: str) -> dict[str, Any]:
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        (row,) = [r for r in views.rectifications(store.conn, today=at_day("2026-11-20"))
                  if r["evaluation_id"] == evaluation_id]  # fmt: skip
        row["feeds"] = [f for (f,) in store.conn.execute(
            "SELECT feed FROM rectification_steps WHERE evaluation_id = ? ORDER BY seq", (evaluation_id,))]  # fmt: skip
    return row


def test_the_rectifications_are_listed_with_case_village_item_comment_and_deadline(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app, "jiancha")
    page = client.get("/ratings").get_data(as_text=True)
    no = ids["local_no"]
    assert no["A"] in page and no["B"] in page and no["C"] not in page  # a 满意 opens none
    for text in ("梅花村", "城关镇便民服务中心", "高龄津贴申请", "等了三个星期没人回话", "非常不满意", "不满意",
                 "窗口说话不耐烦", "待整改"):  # fmt: skip
        assert text in page, text
    assert ids["bad"] not in page.replace(f"/ratings/{ids['bad']}/", "")  # people read numbers, not ids
    assert "现场·窗口 城关镇便民服务中心" in page  # the window evaluated, by name
    assert "2026-11-23" in page  # 2026-11-16 + 5 working days
    assert "1 条逾期" not in page  # nothing is overdue on 2026-11-20
    assert "指派</button>" not in page  # an inspector sees no forms
    for path in (f"/ratings/{ids['bad']}/assign", f"/ratings/{ids['bad']}/follow", f"/ratings/{ids['bad']}/close"):
        resp = post(client, "/ratings", path, {"owner": "刘", "note": "n", "result": "r"})
        assert resp.status_code == 403 and "没有这项权限" in resp.get_data(as_text=True)
    assert audit_rows(app) == []
    t2 = client.get("/ratings?township=t2").get_data(as_text=True)
    assert "没有符合条件的整改" in t2
    CLOCK[0] = at("2026-11-25", 11)  # after 梅花村's deadline (11-23), on 城关镇's (11-25)
    assert "1 条逾期" in client.get("/ratings").get_data(as_text=True)
    CLOCK[0] = at("2026-11-26", 11)
    assert "2 条逾期" in client.get("/ratings").get_data(as_text=True)


def test_assign_follow_up_and_close_from_the_page_as_signed_steps_to_the_township(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app)
    eid = ids["bad"]
    resp = post(client, "/ratings", f"/ratings/{eid}/assign", {"owner": " ", "deadline_days": "3"})
    assert "请填写整改责任人" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, "/ratings", f"/ratings/{eid}/assign", {"owner": "刘桂英", "deadline_days": "99"})
    assert "整改期限须为 1–60 个工作日" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, "/ratings", f"/ratings/{eid}/assign", {"owner": "刘桂英", "deadline_days": "3"})
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已指派 刘桂英 整改" in page and "整改中" in page and "周县长 指派：刘桂英（3 个工作日）" in page
    post(client, "/ratings", f"/ratings/{eid}/follow", {"note": "已电话回访，群众表示理解"})
    resp = post(client, "/ratings", f"/ratings/{eid}/close", {"result": "约谈窗口负责人，当场补办", "level": "4"})
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "整改已办结" in page and no_row(page, ids["local_no"]["A"])  # closed: not in 未办结
    done = client.get("/ratings?state=已办结").get_data(as_text=True)
    assert "约谈窗口负责人，当场补办" in done and "（整改评价 满意）" in done and "已电话回访，群众表示理解" in done
    row = rectification(app, eid)
    assert (row["state"], row["owner"], row["result"], row["fix_level"]) == (
        "已办结",
        "刘桂英",
        "约谈窗口负责人，当场补办",
        4,
    )
    assert row["feeds"] == ["county/t1"] * 3  # the county's feed to the evaluation's township
    assert [s["by"] for s in row["steps"]] == ["周县长"] * 3
    log = [(r["action"], r["target"], r["reason"]) for r in reversed(audit_rows(app))]  # newest first
    assert log == [
        ("rectification.assign", eid, "刘桂英"),
        ("rectification.follow", eid, "已电话回访，群众表示理解"),
        ("rectification.close", eid, "约谈窗口负责人，当场补办"),
    ]
    resp = post(client, "/ratings?state=all", f"/ratings/{eid}/follow", {"note": "再跟进"})
    assert "该整改已办结" in client.get(resp.headers["Location"]).get_data(as_text=True)  # Chinese, no traceback


def no_row(page: str, number: str) -> bool:
    return number not in page


def test_close_needs_a_result(county: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = county
    client = signed_in(app)
    resp = post(client, "/ratings", f"/ratings/{ids['poor']}/close", {"result": ""})
    assert "请填写整改结果" in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert rectification(app, ids["poor"])["state"] == "待整改"


def test_a_step_by_command_is_audited_as_the_command_line(county: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = county
    done = cli(
        "rectify", ids["poor"], "assign", "--owner", "刘桂英", "--person", "周县长", "--data", app.config["SANJI_PATH"]
    )
    assert done.exit_code == 0, done.output
    (row,) = audit_rows(app)
    assert (row["action"], row["who_name"], row["target"], row["reason"]) == (
        "rectification.assign",
        "命令行",
        ids["poor"],
        "刘桂英",
    )
    assert "周县长 指派：刘桂英" in signed_in(app, "jiancha").get("/ratings").get_data(as_text=True)
