"""The village agent's pages with Flask's test client, against a real enrolled village.

The module builds one small county in this process: the county and the
township apps served by waitress on 127.0.0.1, the township and the village
enrolled with the real `init` commands (so the village's keys are encrypted
under the agent's passphrase and its personal data sealed), the demo catalog
synced down, and a few cases the township has answered (补正, 办结, 不予受理).
Each test gets its own copy of the village's data directory and a locked app,
exactly as `village-agent serve` starts it without the passphrase variable.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from county_server.app import create_app as county_app
from county_server.cli import main as county_main
from sanji_domain.demo import DemoPeople
from sanji_node.actions import cases as case_actions
from sanji_node.child import ChildNode
from sanji_node.workspace import Workspace
from township_node.app import create_app as township_app
from township_node.cli import main as township_main
from village_agent.app import Village, create_app
from village_agent.cli import main as village_main

from .browser.helpers import serve_wsgi
from .e2e.cluster import DEMO_CATALOG, DEMO_ITEMS

PASSPHRASE = "梅花村代办员的口令"
PASS_ENV = "SANJI_PAGES_TEST_PASSPHRASE"
AGENT = "李建国"
ELDER = next(i for i in DEMO_ITEMS if i["name"] == "高龄津贴申请")  # 村受理乡办结, 容缺 allowed
PENSION = next(i for i in DEMO_ITEMS if i["name"] == "城乡居民养老保险参保登记")  # 村受理村办结
CARD = next(i for i in DEMO_ITEMS if i["name"] == "老年优待证办理")  # 村代办, no 容缺
HOST = {"base_url": "http://127.0.0.1:8420"}


@dataclass
class World:
    village_dir: Path
    people: dict[str, dict[str, Any]]  # story name → {applicant, case_id, local_no, query_code}


def run(main: Any, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def request_for(spec: dict[str, Any], people: DemoPeople, **kw: Any) -> dict[str, Any]:
    return {**people.case_request(spec, **kw), "item": spec["task_code"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("village-pages")
    county, township, village = root / "county", root / "t1", root / "v11"
    env = {PASS_ENV: PASSPHRASE}
    run(county_main, "init", "--data", str(county), "--county", "430321", "--name", "示范县")
    run(county_main, "catalog", "import", str(DEMO_CATALOG), "--data", str(county))
    people = DemoPeople()
    story: dict[str, dict[str, Any]] = {}
    with serve_wsgi(county_app(county)) as county_url:

        def token(*args: str) -> str:
            out = run(county_main, "enroll", "--data", str(county), "--json", *args)
            return str(json.loads(out)["token"])

        t = token("--role", "township", "--division", "430321101000", "--node-id", "t1", "--name", "城关镇便民服务中心")
        run(township_main, "init", "--data", str(township), "--parent", county_url, "--token", t)
        town = ChildNode.load(township)
        with serve_wsgi(township_app(town)) as township_url:
            v = token("--role", "village", "--division", "430321101201", "--parent", "t1", "--node-id", "v11",
                      "--name", "梅花村")  # fmt: skip
            run(village_main, "init", "--data", str(village), "--parent", township_url, "--token", v,
                "--passphrase-env", PASS_ENV, env=env)  # fmt: skip
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv(PASS_ENV, PASSPHRASE)
                agent_node = ChildNode.load(village)
            with Workspace(agent_node) as ws:
                for name, spec in (
                    ("补正", ELDER),
                    ("办结", CARD),
                    ("不予受理", ELDER),
                    ("送达", CARD),
                    ("在办", CARD),
                ):
                    req = request_for(spec, people)
                    made = case_actions.file_case(ws, req, person=AGENT)
                    story[name] = {**made, "applicant": req["applicant"], "item": spec["name"]}
                village_handled = request_for(PENSION, people)
                made = case_actions.file_case(ws, village_handled, person=AGENT)
                story["村办结"] = {**made, "applicant": village_handled["applicant"], "item": PENSION["name"]}
            agent_node.sync()
            with Workspace(town) as tws:

                def act(who: str, *actions: str, **data: Any) -> None:
                    for action in actions:
                        case_actions.transition(tws, story[who]["case_id"], action, data, person="窗口A岗")

                act("补正", "request_supplement", reason="请补交《高龄津贴申请审批表》，须村委会盖章")
                act("办结", "accept", "start")
                act("办结", "complete", result="准予办理，优待证已制好")
                act("送达", "accept", "start")
                act("送达", "complete", result="准予办理")
                act("不予受理", "reject", reason="申请人未满80周岁，不符合高龄津贴条件")
                act("在办", "accept")
            agent_node.sync()
            with Workspace(agent_node) as ws:
                case_actions.transition(ws, story["送达"]["case_id"], "deliver", {}, person=AGENT)
    yield World(village, story)


@pytest.fixture
def village_dir(world: World, tmp_path: Path) -> Path:
    copy = tmp_path / "v11"
    shutil.copytree(world.village_dir, copy)
    return copy


@pytest.fixture
def village(village_dir: Path) -> Iterator[Village]:
    v = Village.open(village_dir, idle_minutes=15)
    yield v
    v.stop()


@pytest.fixture
def app(village: Village) -> Flask:
    a = create_app(village)
    a.config["TESTING"] = True
    return a


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)


def get(client: FlaskClient, url: str, status: int = 200) -> str:
    r = client.get(url, headers={"Accept": "text/html"}, **HOST)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:2000])
    return r.get_data(as_text=True)


def post(client: FlaskClient, url: str, data: dict[str, Any], *, token_from: str | None = None, **kw: Any) -> Any:
    page = get(client, token_from or url)
    return client.post(url, data={"csrf_token": csrf(page), **data}, headers={"Accept": "text/html"}, **HOST, **kw)


def login(client: FlaskClient, passphrase: str = PASSPHRASE, name: str = AGENT) -> Any:
    return post(client, "/login", {"name": name, "passphrase": passphrase})


@pytest.fixture
def agent(client: FlaskClient) -> FlaskClient:
    r = login(client)
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


# -- 登录 ------------------------------------------------------------------------------------------


def test_the_app_starts_locked_and_the_login_unlocks_it(client: FlaskClient, village: Village) -> None:
    assert village.locked
    r = client.get("/", headers={"Accept": "text/html"}, **HOST)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert client.get("/api/v1/status", **HOST).status_code == 503
    page = get(client, "/login")
    assert "代办员姓名" in page and "口令" in page
    r = login(client)
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert not village.locked
    home = get(client, "/")
    assert AGENT in home and "今天的工作" in home
    assert client.get("/api/v1/status", **HOST).get_json()["node"] == "v11"


def test_a_wrong_passphrase_says_so_and_nothing_else(client: FlaskClient, village: Village) -> None:
    r = login(client, "不是这个口令啊啊")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "口令不对" in page
    assert "decrypt" not in page and "pii.key" not in page and "Traceback" not in page
    assert village.locked
    assert client.get("/", **HOST).status_code == 302


def test_an_idle_session_locks_and_asks_for_the_passphrase_again(
    agent: FlaskClient, village: Village, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "今天的工作" in get(agent, "/")
    later = time.time() + 16 * 60
    monkeypatch.setattr(time, "time", lambda: later)  # the clock is the only thing mocked
    r = agent.get("/cases", headers={"Accept": "text/html"}, **HOST)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    page = get(agent, "/login")
    assert "已自动锁定" in page
    assert 'name="passphrase"' in page
    assert agent.get("/", **HOST).status_code == 302
    r = login(agent)
    assert r.status_code == 302
    assert "今天的工作" in get(agent, "/")


def test_a_form_without_its_csrf_token_is_refused(agent: FlaskClient, world: World) -> None:
    r = agent.post(
        "/cases/new",
        data={"item": CARD["task_code"], "applicant_name": "王秀英"},
        headers={"Accept": "text/html"},
        **HOST,
    )
    assert r.status_code == 400
    assert "表单已过期或来源不对" in r.get_data(as_text=True)
    r = agent.post("/logout", **HOST)
    assert r.status_code == 400


def test_other_hosts_and_cross_origin_sync_requests_are_refused(agent: FlaskClient) -> None:
    assert agent.get("/", base_url="http://evil.example").status_code == 403
    r = agent.post("/api/v1/sync-now", headers={"Origin": "http://evil.example"}, **HOST)
    assert r.status_code == 403
    r = agent.post("/api/v1/sync-now", headers={"Sec-Fetch-Site": "cross-site"}, **HOST)
    assert r.status_code == 403
    old_browser_form = agent.post(
        "/api/v1/sync-now", data="a=1", content_type="application/x-www-form-urlencoded", **HOST
    )
    assert old_browser_form.status_code == 403  # no Origin, no Sec-Fetch-Site: was served, and started a sync
    # no sync job in this test process: a same-origin request is answered, and says so
    assert agent.post("/api/v1/sync-now", json={}, **HOST).status_code == 503
    assert agent.get("/nope", **HOST).get_json()["code"] == "not_found"
    assert "没有这个页面" in get(agent, "/nope", 404)


# -- every page renders, with names, not ids ------------------------------------------------------------


PAGES = ["/", "/guide", "/guide?q=gljt", "/cases/new", "/cases", "/cases?state=", "/ledger", "/roster", "/sync"]


@pytest.mark.parametrize("url", PAGES)
def test_each_page_renders_with_names_not_ids(agent: FlaskClient, url: str) -> None:
    page = get(agent, url)
    assert "梅花村便民服务站" in page and "示范县" in page
    for nav in ("首页", "办事指南", "新建代办", "我的办件", "代办台账", "值班表", "同步"):
        assert f">{nav}</a>" in page
    text = re.sub(r"<[^>]+>", " ", page)
    assert not re.search(r"\bv11\b|\bt1\b", text), f"a node id on {url}"
    assert "Traceback" not in page and "None" not in text


def test_the_item_and_case_pages_render(agent: FlaskClient, world: World) -> None:
    page = get(agent, f"/guide/{ELDER['task_code']}")
    assert "高龄津贴申请" in page and "不收费" in page and "必需" in page and "原件" in page
    assert f"/print/item/{ELDER['task_code']}" in page and f"/cases/new?item={ELDER['task_code']}" in page
    for who, c in world.people.items():
        page = get(agent, f"/cases/{c['case_id']}")
        assert c["applicant"]["name"] in page, who
        assert c["query_code"] in page
        text = re.sub(r"<[^>]+>", " ", page)
        assert not re.search(r"\bv11\b|\bt1\b", text), f"a node id on the case page of {who}"
        assert "城关镇便民服务中心" in page or who == "村办结"


# -- 新建代办 --------------------------------------------------------------------------------------------


def valid_id(seed: int = 7) -> str:
    return DemoPeople(seed=seed).id_number(min_age=81)


def wrong_check_digit(number: str) -> str:
    last = "0123456789X"
    return number[:17] + last[(last.index(number[17]) + 1) % len(last)]


def case_form(spec: dict[str, Any], **over: Any) -> dict[str, Any]:
    materials = [m["name"] for m in spec["materials"] if m.get("required", True)]
    return {
        "item": spec["task_code"],
        "applicant_name": "王秀英",
        "id_number": valid_id(),
        "phone": "13807345678",
        "address": "梅花村3组12号",
        "materials": materials,
        "home_visit": "否",
        "proxy_no": "WT-2026-0008",
        "notes": "",
        **over,
    }


def count_cases(client: FlaskClient) -> int:
    page = get(client, "/cases?state=")
    m = re.search(r"共 (\d+) 件", page)
    return int(m.group(1)) if m else 0


def field_error(page: str, name: str) -> str:
    """The error text shown beside the field `name` (inside its .field box)."""
    start = page.index(f'name="{name}"')
    box_start = page.rindex('<div class="field', 0, start)
    box_end = page.index("</fieldset>", start)
    errors = re.findall(r'<div class="error"[^>]*>([^<]+)</div>', page[box_start:box_end])
    return " ".join(errors)


def test_filing_a_case_shows_the_receipt_button_and_the_query_code(agent: FlaskClient, village: Village) -> None:
    before = count_cases(agent)
    form = case_form(CARD, home_visit="是", notes="行动不便")
    r = post(agent, "/cases/new", form, token_from=f"/cases/new?item={CARD['task_code']}")
    assert r.status_code == 302, r.get_data(as_text=True)
    location = r.headers["Location"]
    case_id = location.rsplit("/", 1)[1]
    assert re.fullmatch(r"/cases/[0-9a-f-]{36}", location)
    page = get(agent, location)
    assert "收件成功" in page and "打印收件凭证" in page
    assert f"/print/case/{case_id}/receipt" in page
    code = re.search(r'<span class="querycode">(\d{6})</span>', page)
    assert code is not None
    assert "王秀英" in page and "【上门代办】行动不便" in page and "WT-2026-0008" in page
    assert count_cases(agent) == before + 1
    detail = case_actions.show_case(village.workspace, case_id)  # type: ignore[arg-type]
    assert detail["agent_name"] == AGENT and detail["query_code"] == code.group(1)
    assert detail["events"] == []
    # the success card shows once; the page itself keeps the print button
    again = get(agent, location)
    assert "收件成功" not in again and "打印收件凭证" in again


def test_a_wrong_check_digit_is_shown_beside_the_field_and_nothing_is_saved(agent: FlaskClient) -> None:
    before = count_cases(agent)
    bad = wrong_check_digit(valid_id())
    form = case_form(CARD, id_number=bad, applicant_name="赵桂英", notes="请核对")
    r = post(agent, "/cases/new", form, token_from=f"/cases/new?item={CARD['task_code']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "校验位错误" in field_error(page, "id_number")
    assert "(GB 11643" not in page  # the Chinese words, not the English gloss
    assert f'value="{bad}"' in page and 'value="赵桂英"' in page and "请核对" in page  # what was typed stays
    assert count_cases(agent) == before


def test_a_missing_required_material_is_shown_beside_the_checklist(agent: FlaskClient) -> None:
    before = count_cases(agent)
    required = [m["name"] for m in CARD["materials"] if m.get("required", True)]
    form = case_form(CARD, materials=required[:1])
    r = post(agent, "/cases/new", form, token_from=f"/cases/new?item={CARD['task_code']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    error = field_error(page, "materials")
    assert "缺少必要材料" in error and required[1] in error
    assert re.search(rf'value="{re.escape(required[0])}"\s+checked', page)  # the ticks stay
    assert count_cases(agent) == before


def test_a_pledge_files_an_item_that_allows_it_with_a_material_missing(agent: FlaskClient) -> None:
    required = [m["name"] for m in ELDER["materials"] if m.get("required", True)]
    form = case_form(ELDER, materials=required[:-1], id_number=valid_id(11))
    r = post(agent, "/cases/new", form, token_from=f"/cases/new?item={ELDER['task_code']}")
    assert r.status_code == 200 and "可勾选下方的容缺承诺" in field_error(r.get_data(as_text=True), "materials")
    r = post(agent, "/cases/new", {**form, "pledge": "y"}, token_from=f"/cases/new?item={ELDER['task_code']}")
    assert r.status_code == 302
    assert "申请人已承诺补齐" in get(agent, r.headers["Location"])


def test_the_same_applicant_with_an_open_case_of_the_item_is_warned_and_must_confirm(
    agent: FlaskClient, world: World
) -> None:
    open_case = world.people["在办"]
    before = count_cases(agent)
    form = case_form(CARD, id_number=open_case["applicant"]["id_number"], applicant_name=open_case["applicant"]["name"])
    r = post(agent, "/cases/new", form, token_from=f"/cases/new?item={CARD['task_code']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "已有「老年优待证办理」的办件还没有办结" in page
    assert open_case["local_no"] in page and f"/cases/{open_case['case_id']}" in page
    assert count_cases(agent) == before
    r = post(agent, "/cases/new", {**form, "confirm_duplicate": "y"}, token_from=f"/cases/new?item={CARD['task_code']}")
    assert r.status_code == 302
    assert count_cases(agent) == before + 1


def test_the_item_is_chosen_first_and_the_checklist_comes_from_it(agent: FlaskClient) -> None:
    page = get(agent, "/cases/new")
    assert "第一步：选择村民要办的事项" in page and "高龄津贴申请" in page
    page = get(agent, f"/cases/new?item={ELDER['task_code']}")
    for m in ELDER["materials"]:
        assert m["name"] in page
    assert "容缺受理" in page and "必需" in page and "复印件" in page
    assert "case_form.js" in page
    page = get(agent, f"/cases/new?item={CARD['task_code']}")
    assert 'name="pledge"' not in page  # this item does not allow 容缺


# -- 村受理村办结, 补正, 送达, 好差评 -------------------------------------------------------------------------


def act(client: FlaskClient, case_id: str, url: str, data: dict[str, Any]) -> Any:
    return post(client, f"/cases/{case_id}/{url}", data, token_from=f"/cases/{case_id}")


def test_a_village_handled_item_is_accepted_and_completed_at_the_village(agent: FlaskClient, world: World) -> None:
    case_id = world.people["村办结"]["case_id"]
    page = get(agent, f"/cases/{case_id}")
    assert "本站受理、本站办结" in page and ">受理</button>" in page
    assert act(agent, case_id, "act", {"action": "accept"}).status_code == 302
    page = get(agent, f"/cases/{case_id}")
    assert "已受理" in page and ">办结</button>" in page
    assert act(agent, case_id, "act", {"action": "complete", "result": "已参保，第一档"}).status_code == 302
    page = get(agent, f"/cases/{case_id}")
    assert "已办结" in page and "已参保，第一档" in page and "登记送达" in page
    r = act(agent, case_id, "act", {"action": "deliver"})
    assert r.status_code == 400 and "请确认办理结果已交给村民" in r.get_data(as_text=True)
    assert act(agent, case_id, "act", {"action": "deliver", "confirm": "y"}).status_code == 302
    page = get(agent, f"/cases/{case_id}")
    assert "已送达" in page
    assert page.count(f'（梅花村 代办员 <span class="by">{AGENT}</span>）') == 3  # who did each step


def test_a_township_item_offers_the_agent_no_acceptance(agent: FlaskClient, world: World) -> None:
    page = get(agent, f"/cases/{world.people['在办']['case_id']}")
    assert ">受理</button>" not in page and ">办结</button>" not in page
    r = act(agent, world.people["在办"]["case_id"], "act", {"action": "complete"})
    assert r.status_code == 400 and "代办员无权" in r.get_data(as_text=True)


def test_the_supplement_asked_for_is_shown_and_answered(agent: FlaskClient, world: World) -> None:
    case_id = world.people["补正"]["case_id"]
    page = get(agent, f"/cases/{case_id}")
    assert "乡镇要求补齐补正" in page and "须村委会盖章" in page and "窗口A岗" in page
    r = act(agent, case_id, "supplement", {})
    assert r.status_code == 400 and "请勾选村民这次补来的材料" in r.get_data(as_text=True)
    r = act(agent, case_id, "supplement", {"materials": ["《高龄津贴申请审批表》"]})
    assert r.status_code == 302
    page = get(agent, f"/cases/{case_id}")
    assert "补正完成" in page and "乡镇要求补齐补正" not in page


def test_a_rejection_shows_its_reason(agent: FlaskClient, world: World) -> None:
    page = get(agent, f"/cases/{world.people['不予受理']['case_id']}")
    assert "乡镇不予受理" in page and "申请人未满80周岁" in page and "打印不予受理通知书" in page


def test_an_evaluation_is_recorded_in_words(agent: FlaskClient, world: World) -> None:
    case_id = world.people["送达"]["case_id"]
    page = get(agent, f"/cases/{case_id}")
    for word in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert f"> {word}</label>" in page
    assert "待录入好差评" in get(agent, "/")
    r = act(agent, case_id, "evaluate", {"comment": "很方便"})
    assert r.status_code == 400 and "请选择村民的评价" in r.get_data(as_text=True)
    assert act(agent, case_id, "evaluate", {"level": "2", "stage": "办结", "comment": "等太久"}).status_code == 302
    page = get(agent, f"/cases/{case_id}")
    assert "不满意" in page and "等太久" in page
    home = get(agent, "/")
    assert world.people["送达"]["local_no"] not in home.split("已送达，请村民评价")[-1]


# -- 我的办件: search ------------------------------------------------------------------------------------


def search(client: FlaskClient, text: str, **filters: str) -> str:
    r = post(client, "/cases", {"text": text, **filters}, token_from="/cases")
    assert r.status_code == 302
    location = r.headers["Location"]
    assert text not in location
    return get(client, location)


@pytest.mark.parametrize("how", ["name", "id_number", "query_code", "local_no"])
def test_search_by_name_id_number_query_code_or_number(agent: FlaskClient, world: World, how: str) -> None:
    target = world.people["不予受理"]
    text = {
        "name": target["applicant"]["name"],
        "id_number": target["applicant"]["id_number"],
        "query_code": target["query_code"],
        "local_no": target["local_no"],
    }[how]
    page = search(agent, text, state="")
    assert "共 1 件" in page, page
    assert f"/cases/{target['case_id']}" in page
    for other in world.people.values():
        if other["case_id"] != target["case_id"]:
            assert f'/cases/{other["case_id"]}"' not in page


def test_the_search_is_kept_for_the_session_and_cleared(agent: FlaskClient, world: World) -> None:
    target = world.people["补正"]
    search(agent, target["applicant"]["name"], state="")
    page = get(agent, "/cases?state=")
    assert "共 1 件" in page and f'value="{target["applicant"]["name"]}"' in page
    r = post(agent, "/cases", {"text": "", "clear": "1", "state": ""}, token_from="/cases")
    assert r.status_code == 302
    assert f"共 {len(world.people)} 件" in get(agent, "/cases?state=")


def test_the_list_filters_by_state(agent: FlaskClient, world: World) -> None:
    page = get(agent, "/cases?state=NEED_SUPPLEMENT")
    assert "共 1 件" in page and world.people["补正"]["local_no"] in page
    page = get(agent, "/cases")  # open cases by default
    assert world.people["不予受理"]["local_no"] not in page and world.people["在办"]["local_no"] in page
    assert "已送达乡镇" in page


# -- no personal data in a URL or a <title> ---------------------------------------------------------------


def test_no_personal_data_in_any_url_or_title(agent: FlaskClient, world: World) -> None:
    secrets = set()
    for c in world.people.values():
        a = c["applicant"]
        secrets |= {a["name"], a["id_number"], a["phone"], a["id_number"][-8:]}
    pages = [*PAGES, f"/guide/{ELDER['task_code']}"] + [f"/cases/{c['case_id']}" for c in world.people.values()]
    search(agent, world.people["在办"]["applicant"]["name"], state="")
    pages.append("/cases")
    for url in pages:
        page = get(agent, url)
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        assert title is not None
        urls = re.findall(r'(?:href|action|src)="([^"]*)"', page)
        for s in secrets:
            assert s not in title.group(1), (url, s)
            assert not any(s in u for u in urls), (url, s)


# -- 代办台账, 值班表 ---------------------------------------------------------------------------------------


def test_the_ledger_by_month_with_print_and_excel(agent: FlaskClient, world: World) -> None:
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
    page = get(agent, f"/ledger?month={month}")
    assert world.people["补正"]["applicant"]["name"] in page
    assert world.people["补正"]["applicant"]["id_number"] not in page  # on screen: not the ID number
    assert f"/print/ledger?month={month}" in page and f"/ledger/export?month={month}" in page
    r = agent.get(f"/ledger/export?month={month}", **HOST)
    assert r.status_code == 200 and r.data[:2] == b"PK"
    disposition = r.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in disposition and "%E6%A2%85%E8%8A%B1%E6%9D%91" in disposition  # 梅花村
    assert "Traceback" not in get(agent, "/ledger?month=1999-01") and "没有代办记录" in get(
        agent, "/ledger?month=1999-01"
    )


def test_the_roster_is_set_shown_and_exported(agent: FlaskClient) -> None:
    r = post(agent, "/roster?month=2026-06", {"day": "2026-06-15", "agent": "张三", "substitute": "李四"})
    assert r.status_code == 302 and r.headers["Location"].endswith("month=2026-06")
    page = get(agent, "/roster?month=2026-06")
    assert "2026-06-15" in page and "张三" in page and "李四" in page and "星期一" in page
    r = post(agent, "/roster", {"day": "", "agent": ""})
    assert r.status_code == 400 and "请选择日期" in r.get_data(as_text=True)
    r = agent.get("/roster/export?month=2026-06", **HOST)
    assert r.status_code == 200 and r.data[:2] == b"PK"
    assert "%E5%80%BC%E7%8F%AD%E8%A1%A8" in r.headers["Content-Disposition"]  # 值班表


# -- 同步 -------------------------------------------------------------------------------------------------


def test_the_sync_page_without_a_job_and_a_bundle_round_trip(agent: FlaskClient, village: Village) -> None:
    page = get(agent, "/sync")
    assert "上次成功同步" in page and "待上传" in page and "本机没有运行自动同步" in page
    r = post(agent, "/sync/now", {}, token_from="/sync")
    assert r.status_code == 302 and "无法立即同步" in get(agent, "/sync")
    r = post(agent, "/sync/export", {}, token_from="/sync")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
    assert ".sjb" in r.headers["Content-Disposition"]
    bundle = r.data
    r = post(agent, "/sync/import", {}, token_from="/sync")
    assert r.status_code == 302 and "请选择要导入的数据包文件" in get(agent, "/sync")
    from io import BytesIO

    r = post(agent, "/sync/import", {"bundle": (BytesIO(bundle), "梅花村-上报.sjb")}, token_from="/sync",
             content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 302
    page = get(agent, "/sync")
    assert "已导入 梅花村-上报.sjb" in page and "新增 0 条" in page
    r = post(agent, "/sync/import", {"bundle": (BytesIO(b"not a bundle"), "坏的.sjb")}, token_from="/sync",
             content_type="multipart/form-data")  # fmt: skip
    page = get(agent, "/sync")
    assert "错误: " in page and "坏的.sjb" in page and "/tmp" not in page


# -- starting up ---------------------------------------------------------------------------------------------


def test_after_a_restart_a_signed_in_browser_is_asked_to_unlock_again(village_dir: Path) -> None:
    first = Village.open(village_dir)
    app = create_app(first)
    client = app.test_client()
    assert login(client).status_code == 302
    first.stop()
    again = Village.open(village_dir)  # the process restarted: keys locked, the session cookie still signed
    try:
        client2 = create_app(again).test_client()
        cookie = client.get_cookie("sanji_session", domain="127.0.0.1")
        assert cookie is not None
        client2.set_cookie("sanji_session", cookie.value, domain="127.0.0.1")
        r = client2.get("/cases", headers={"Accept": "text/html"}, **HOST)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login")
        assert 'name="passphrase"' in get(client2, "/login")
        assert login(client2).status_code == 302 and not again.locked
    finally:
        again.stop()


def test_the_passphrase_variable_unlocks_at_start(village_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = Village.open(village_dir)
    assert v.unlock_from_env() is None and v.locked  # not set: stays locked, says nothing
    monkeypatch.setenv(PASS_ENV, "不是这个口令啊啊")
    problem = v.unlock_from_env()
    assert problem is not None and "口令不对" in problem and v.locked
    monkeypatch.setenv(PASS_ENV, PASSPHRASE)
    assert v.unlock_from_env() is None and not v.locked
    client = create_app(v).test_client()
    assert client.get("/api/v1/status", **HOST).get_json()["node"] == "v11"  # scripts see the status at once
    assert client.get("/", **HOST).status_code == 302  # the pages still ask the agent to log in
    v.stop()


def test_opening_the_browser_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import webbrowser

    from village_agent.cli import open_browser

    called = threading.Event()

    def no_browser(url: str) -> bool:
        called.set()
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    open_browser("http://127.0.0.1:8420/")
    assert called.wait(10)


def test_the_guide_finds_items_by_part_of_the_name_initials_or_code(agent: FlaskClient) -> None:
    for text in ("高龄", "gljt", ELDER["task_code"]):
        page = get(agent, f"/guide?q={text}")
        assert f"/guide/{ELDER['task_code']}" in page, text
    page = get(agent, "/guide?q=高龄")
    assert "老年优待证办理" not in page
    assert "没有" not in get(agent, "/guide") and "找到 0 个事项" in get(agent, "/guide?q=火星移民")


def test_the_case_form_serves_a_window_clerk_too(app: Flask) -> None:
    """The township's 窗口收件 reuses the form: no 上门代办, the 委托书 is for someone applying for another."""
    from flask import render_template_string

    from sanji_domain import guide
    from sanji_node.web.case_form import case_form as make_form

    item = {**ELDER, "material_rows": guide.material_rows(ELDER), "fee_text": guide.fee_text(ELDER)}
    data = {**case_form(ELDER), "home_visit": "是", "notes": "窗口收件"}
    with app.test_request_context("/", method="POST", data=data, base_url=HOST["base_url"]):
        form = make_form(item, role="clerk", meta={"csrf": False})
        assert form.validate(), form.errors
        request = form.request("张窗口")
        assert request["notes"] == "窗口收件" and request["agent"] == {"proxy_no": "WT-2026-0008", "name": "张窗口"}
        html = render_template_string(
            '{% from "sanji/case_form.html" import case_form with context %}{{ case_form(form, item, role="clerk") }}',
            form=form,
            item=item,
        )
    assert 'name="home_visit"' not in html and "他人代为申请时填写" in html and "收件信息" in html
    assert all(m["name"] in html for m in ELDER["materials"])
