"""The township window's pages through the Flask test client, on a real township data directory.

The township `t1` (城关镇便民服务中心) has three villages: 梅花村 (v11, 25 cases of
高龄津贴申请, a duty roster, a laptop that reported 2 entries it had not sent),
桃源村 (v12, a 残疾人证申领 and a 农村低保申请, one accepted and completed by the
clerk 李明 and rated 满意, one accepted by 李明 and still open; its laptop in step) and
石门村 (v13, no case, never seen). Entries are signed with each node's own key
and folded by the real store; accounts are made by the real `clerk` commands.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from sanji_domain import catalog as catalog_domain
from sanji_domain import commands
from sanji_domain.commands import CST, Actor
from sanji_domain.demo import DemoPeople
from sanji_domain.search import query_code
from sanji_node import state
from sanji_node.bundles import write_bundle
from sanji_node.child import ChildNode
from sanji_node.config import DataDir, NodeConfig
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store
from township_node import clerks
from township_node.app import create_app
from township_node.cli import main as township_cli

COUNTY = "430321"
DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
ELDER = "高龄津贴申请"  # 乡, 村受理乡办结
LOW_INCOME = "农村低保申请"
DISABLED = "残疾人证申领"  # 县, 村代办: the township forwards it
TOWNSHIP_NAME = "城关镇便民服务中心"
VILLAGES = {"v11": ("梅花村", "430321101201"), "v12": ("桃源村", "430321101202"), "v13": ("石门村", "430321101203")}
KEYS = {
    n: SigningKey.from_seed(hashlib.sha256(f"township-pages:{n}".encode()).digest())
    for n in ("county", "t1", *VILLAGES)
}
PASSWORDS = {"wangfang": "wangfang-2026", "liming": "liming-2026!", "zhaoli": "zhaoli-2026!"}
ACCOUNTS = (("王芳", "wangfang", "head"), ("李明", "liming", "clerk"), ("赵丽", "zhaoli", "clerk"))


def now_ms() -> int:
    return int(datetime.now(CST).timestamp() * 1000)


def actor(node: str, person: str | None = None) -> Actor:
    if node == "t1":
        return Actor("t1", "township", "430321101000", "county", "county", person)
    return Actor(node, "village", VILLAGES[node][1], "t1", "county", person)


def cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Any:
    return CliRunner().invoke(township_cli, list(args), env=env, input=input, catch_exceptions=False)


def build_township(path: Path) -> dict[str, Any]:
    """The township's data directory at `path`, with its villages' cases; returns what the tests need to know."""
    data = DataDir(path)
    data.create()
    data.save_key(KEYS["t1"], None)
    data.save(
        NodeConfig(
            "t1", "township", COUNTY, "county", KEYS["county"].public.hex, "430321101000",
            parent="county", parent_url="http://127.0.0.1:9", county_name="示范县",
        )
    )  # fmt: skip
    node = ChildNode.load(path)
    people = DemoPeople(seed=7)
    known: dict[str, Any] = {"cases": {}}
    with node.open_store() as store:
        members = [
            {"division": COUNTY + "000000", "node": "county", "parent": None, "role": "county", "name": "示范县"},
            {"division": "430321101000", "node": "t1", "parent": "county", "role": "township", "name": TOWNSHIP_NAME},
            *(
                {"division": division, "node": v, "parent": "t1", "role": "village", "name": name}
                for v, (name, division) in VILLAGES.items()
            ),
        ]
        store.append(
            KEYS["county"],
            "county/*",
            [Record(KIND_MEMBER, m["node"], {**m, "pubkey": KEYS[m["node"]].public.hex}, 1) for m in members],
        )
        items = catalog_domain.read_catalog(DEMO_CATALOG)
        plan = catalog_domain.plan_release({}, items, 1, released_ms=now_ms() - 86_400_000, source="demo")
        store.append(KEYS["county"], "county/*", plan.records((now_ms() - 86_400_000) * 1000))
        specs = {i["name"]: i for i in items}

        def run(cmd: commands.Command) -> commands.Command:
            store.append(KEYS[cmd.feed.split("/")[0]], cmd.feed, cmd.records)
            return cmd

        def file(village: str, item: str, n: int) -> list[dict[str, Any]]:
            requests = [people.case_request(specs[item]) for _ in range(n)]
            made = run(commands.new_cases(store.conn, actor(village), requests, now_ms=now_ms())).result["cases"]
            for m, r in zip(made, requests, strict=True):
                known["cases"][m["case_id"]] = {**m, "applicant": r["applicant"], "village": village, "item": item}
            return made

        known["v11"] = file("v11", ELDER, 25)
        low, disabled = file("v12", LOW_INCOME, 1)[0], file("v12", DISABLED, 1)[0]
        known["done"], known["open_by_liming"] = low, disabled
        for action in ("accept", "complete"):
            run(commands.transition(store.conn, actor("t1", "李明"), low["case_id"], action, now_ms=now_ms()))
        run(commands.transition(store.conn, actor("t1", "李明"), disabled["case_id"], "accept", now_ms=now_ms()))
        run(commands.evaluate(store.conn, actor("v12"), {"case": low["case_id"], "level": 4}, now_ms=now_ms()))
        today = datetime.now(CST).date().isoformat()
        run(commands.duty(store.conn, actor("v11"), today, "李建国", "王秀兰", now_ms=now_ms()))
        # the laptops' last pulls: 梅花村 holds two entries of its own the township has not received yet
        vector = store.vector()
        v11 = {f: v for f, v in vector.items() if f.startswith("v11/")}
        v11["v11/up"] = (v11["v11/up"][0] + 2, b"\x00" * 32)
        state.record_peer(store, "v11", "pull", now_ms() - 3_600_000)
        state.record_peer_vector(store, "v11", v11)
        state.record_peer(store, "v12", "pull", now_ms() - 60_000)
        state.record_peer_vector(store, "v12", {f: v for f, v in vector.items() if f.startswith("v12/")})
    for name, login, role in ACCOUNTS:
        done = cli("clerk", "add", "--data", str(path), "--name", name, "--login", login, "--role", role,
                   "--password-env", "PW", env={"PW": PASSWORDS[login]})  # fmt: skip
        assert done.exit_code == 0, done.output
    return known


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("township") / "t1"
    return path, build_township(path)


@pytest.fixture
def township(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A fresh copy of the township for each test."""
    path = tmp_path / "t1"
    shutil.copytree(template[0], path)
    return path, template[1]


class Clock:
    """The pages' clock (the lockout counts in it); starts at the real time."""

    def __init__(self) -> None:
        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(township: tuple[Path, dict[str, Any]], clock: Clock) -> Iterator[Flask]:
    flask_app = create_app(ChildNode.load(township[0]), clock_ms=clock)
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["township"].ws.close()


@pytest.fixture
def known(township: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return township[1]


_TOKEN = re.compile(r'name="([^"]*csrf_token)" type="hidden" value="([^"]+)"')


def token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(2)


def login(client: FlaskClient, name: str, password: str | None = None) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"login": name, "password": password or PASSWORDS[name], "csrf_token": token(page.text)},
        follow_redirects=True,
    )


def post(client: FlaskClient, url: str, data: dict[str, Any], page: str | None = None, **kw: Any) -> Any:
    """POST a page's form with the CSRF token taken from `page` (default: the URL itself)."""
    html = client.get(page or url).text
    return client.post(url, data={**data, "csrf_token": token(html)}, **kw)


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    assert "待办" in login(client, name).text
    return client


# -- accounts and login ---------------------------------------------------------------------------------------


def test_clerk_commands_take_the_password_from_a_prompt_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "t1"
    build_data = DataDir(path)
    build_data.create()
    build_data.save_key(KEYS["t1"], None)
    build_data.save(NodeConfig("t1", "township", COUNTY, "county", KEYS["county"].public.hex, "430321101000"))
    # no password option on the command line at all: only a hidden prompt or --password-env
    options = {o for p in township_cli.commands["clerk"].commands["add"].params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
    assert "--password" not in options and "--password-env" in options
    done = cli("clerk", "add", "--data", str(path), "--name", "王芳", "--login", "wangfang", "--role", "head",
               input="wangfang-2026\nwangfang-2026\n")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "wangfang-2026" not in done.output and "已添加中心负责人 王芳" in done.output
    assert cli("clerk", "add", "--data", str(path), "--name", "李明", "--login", "liming",
               "--password-env", "PW", env={"PW": "liming-2026!"}).exit_code == 0  # fmt: skip
    short = cli("clerk", "add", "--data", str(path), "--name", "赵丽", "--login", "zhaoli",
                "--password-env", "PW", env={"PW": "short"})  # fmt: skip
    assert short.exit_code == 2 and "密码至少 8 位" in short.output
    taken = cli("clerk", "add", "--data", str(path), "--name", "王芳", "--login", "wf2",
                "--password-env", "PW", env={"PW": "another-pass"})  # fmt: skip
    assert taken.exit_code == 2 and "已有名为「王芳」的账号" in taken.output
    listed = cli("clerk", "list", "--data", str(path), "--json")
    rows = json.loads(listed.output)
    assert [(r["login"], r["name"], r["role"], r["active"]) for r in rows] == [
        ("wangfang", "王芳", "head", True),
        ("liming", "李明", "clerk", True),
    ]
    assert all("password_hash" not in r for r in rows)
    text = cli("clerk", "list", "--data", str(path)).output
    assert "王芳" in text and "中心负责人" in text and "从未" in text
    assert cli("clerk", "passwd", "--data", str(path), "--login", "liming",
               "--password-env", "PW", env={"PW": "liming-new-pass"}).exit_code == 0  # fmt: skip
    assert cli("clerk", "disable", "--data", str(path), "--login", "liming").exit_code == 0
    last_head = cli("clerk", "disable", "--data", str(path), "--login", "wangfang")
    assert last_head.exit_code == 2 and "唯一在用的中心负责人" in last_head.output
    # the hash is a salted KDF, kept in the township's own table, and never in any feed entry
    with ChildNode.load(path).open_store() as store:
        (stored,) = store.conn.execute("SELECT password_hash FROM clerks WHERE login = 'liming'").fetchone()
        assert stored.startswith("scrypt:") and "liming-new-pass" not in stored
        assert not store.conn.execute("SELECT 1 FROM entries WHERE CAST(body AS TEXT) LIKE '%liming%'").fetchall()
        with pytest.raises(clerks.LoginError, match="已停用"):  # the right password, but a disabled account
            clerks.authenticate(store.db, "liming", "liming-new-pass", now_ms=now_ms())
    assert "已停用" in cli("clerk", "list", "--data", str(path)).output


def test_login_right_wrong_and_locked(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    assert client.get("/").status_code == 302 and "/login" in client.get("/").headers["Location"]
    wrong = login(client, "liming", "not-the-password")
    assert wrong.status_code == 401 and "登录名或密码不对" in wrong.text
    unknown = login(client, "nobody", "whatever-it-is")
    assert unknown.status_code == 401 and "登录名或密码不对" in unknown.text  # the same words: names are not revealed
    for _ in range(4):
        login(client, "liming", "still-wrong")
    locked = login(client, "liming")  # the right password, but the name is locked for a minute now
    assert locked.status_code == 401 and "已暂时锁定" in locked.text
    clock.ms += 61_000
    ok = login(client, "liming")
    assert ok.status_code == 200 and "李明" in ok.text and "待办" in ok.text
    page = client.get("/")
    assert "窗口人员：" in page.text and "人员管理" not in page.text  # a clerk's menu has no 人员管理


def test_roles_csrf_and_the_sync_api_stays_outside(app: Flask, known: dict[str, Any]) -> None:
    clerk = signed_in(app, "liming")
    assert clerk.get("/staff").status_code == 403
    assert "没有这项权限" in clerk.get("/staff").text
    refused = clerk.post("/staff/add", data={"name": "张三", "login": "zhangsan", "role": "head"})
    assert refused.status_code in (400, 403)
    case_id = known["v11"][0]["case_id"]
    no_token = clerk.post(f"/case/{case_id}/act/accept", data={})
    assert no_token.status_code == 400 and "表单已过期" in no_token.text
    foreign = post(clerk, f"/case/{case_id}/act/accept", {}, page=f"/case/{case_id}",
                   headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    with app.test_client() as anyone:  # the sync API: no login redirect, no CSRF, JSON answers
        health = anyone.get("/api/v1/health")
        assert health.status_code == 200 and health.is_json
        hello = anyone.post("/api/v1/sync/hello", data=b"\x00")
        assert hello.status_code in (400, 401, 403) and hello.is_json
        assert anyone.get("/api/v1/no-such").is_json
    head = signed_in(app, "wangfang")
    assert head.get("/staff").status_code == 200


def test_the_head_manages_accounts_in_the_page(app: Flask) -> None:
    head = signed_in(app, "wangfang")
    added = post(head, "/staff/add", {"name": "孙强", "login": "sunqiang", "role": "clerk",
                                      "password": "sunqiang-2026", "confirm": "sunqiang-2026"},
                 page="/staff", follow_redirects=True)  # fmt: skip
    assert added.status_code == 200 and "已添加窗口人员 孙强" in added.text
    mismatch = post(head, "/staff/add", {"name": "周五", "login": "zhouwu", "role": "clerk",
                                         "password": "zhouwu-2026", "confirm": "other"}, page="/staff")  # fmt: skip
    assert mismatch.status_code == 400 and "两次输入的密码不一样" in mismatch.text
    sun = app.test_client()
    assert "孙强" in login(sun, "sunqiang", "sunqiang-2026").text
    staff = app.extensions["township"].ws.read(lambda c: dict(c.execute("SELECT login, clerk_id FROM clerks")))
    reset = post(head, f"/staff/{staff['sunqiang']}/password", {f"r{staff['sunqiang']}-password": "sunqiang-new1"},
                 page="/staff", follow_redirects=True)  # fmt: skip
    assert "已重设 孙强 的密码" in reset.text
    off = post(head, f"/staff/{staff['sunqiang']}/disable", {}, page="/staff", follow_redirects=True)
    assert "已停用 孙强 的账号" in off.text
    kicked = sun.get("/", follow_redirects=True)  # the open session ends at its next request
    assert "账号已停用" in kicked.text and "登录" in kicked.text
    assert login(app.test_client(), "sunqiang", "sunqiang-new1").status_code == 401
    myself = post(head, f"/staff/{staff['wangfang']}/disable", {}, page="/staff", follow_redirects=True)
    assert "不能停用自己的账号" in myself.text


# -- 待办 and the case page ---------------------------------------------------------------------------------------


def test_inbox_lists_villages_by_name_and_pages(app: Flask, known: dict[str, Any]) -> None:
    client = signed_in(app, "liming")
    first = client.get("/")
    assert "共 27 件" in first.text  # 25 at 梅花村, 1 accepted at 桃源村, 1 completed (待送达) there
    assert "梅花村" in first.text and "桃源村" in first.text and ">v11<" not in first.text
    assert "第 1/2 页" in first.text and first.text.count('class="caselink"') == 20
    second = client.get("/?page=2")
    assert second.text.count('class="caselink"') == 7
    one = known["v11"][0]
    applicant = known["cases"][one["case_id"]]["applicant"]["name"]
    assert applicant in first.text + second.text
    only = client.get("/?village=v12")
    assert "共 2 件" in only.text and "梅花村" not in only.text.split("<tbody>")[1]
    accepted = client.get("/?state=ACCEPTED")
    assert "共 1 件" in accepted.text and DISABLED in accepted.text
    assert client.get("/?order=newest").status_code == 200
    assert client.get(f"/case/{one['case_id']}").status_code == 200


def test_each_transition_from_the_page_records_the_clerk(app: Flask, known: dict[str, Any]) -> None:
    client = signed_in(app, "zhaoli")
    a, b, c = (known["v11"][i]["case_id"] for i in (0, 1, 2))

    def act(case_id: str, action: str, data: dict[str, Any] | None = None) -> Any:
        return post(client, f"/case/{case_id}/act/{action}", {f"{action}-{k}": v for k, v in (data or {}).items()},
                    page=f"/case/{case_id}", follow_redirects=True)  # fmt: skip

    page = act(a, "pre_accept")
    assert "已预受理" in page.text
    page = act(a, "accept")
    assert "已受理" in page.text and f"/print/case/{a}/accept" in page.text and "打印受理通知书" in page.text
    assert "打印办结通知书" not in page.text
    for action in ("start",):
        assert f"已{'办理'}" in act(a, action).text
    page = act(a, "suspend", {"kind": "特别程序", "reason": "等待公示期满"})
    assert "已挂起" in page.text
    assert "已恢复办理" in act(a, "resume").text
    page = act(a, "complete", {"result": "准予发放高龄津贴"})
    assert "已办结" in page.text and f"/print/case/{a}/complete" in page.text
    page = act(a, "deliver")
    assert "已送达" in page.text and f"/print/case/{a}/deliver" in page.text
    missing_reason = act(b, "reject", {"reason": ""})
    assert missing_reason.status_code == 400 and "请写明原因" in missing_reason.text
    page = act(b, "reject", {"reason": "不符合高龄津贴年龄条件"})
    assert "已不予受理" in page.text and f"/print/case/{b}/reject" in page.text
    materials = ["居民身份证", "居民户口簿"]
    page = post(client, f"/case/{c}/act/request_supplement",
                {"request_supplement-materials": materials, "request_supplement-reason": "复印件不清晰"},
                page=f"/case/{c}", follow_redirects=True)  # fmt: skip
    assert "已补齐补正" in page.text and f"/print/case/{c}/supplement" in page.text
    page = act(c, "supplement", {"materials": "居民身份证"})
    assert "已补正完成" in page.text
    wrong_now = act(c, "complete", {"result": "x"})
    assert "不能办结" in wrong_now.text  # 已收件: not a transition the township may make now
    detail = app.extensions["township"].ws.read(
        lambda conn: conn.execute(
            "SELECT case_id, action, json_extract(body, '$.by'), json_extract(body, '$.reason') FROM case_events "
            "WHERE case_id IN (?, ?, ?) ORDER BY hlc",
            (a, b, c),
        ).fetchall()
    )
    assert {row[2] for row in detail} == {"赵丽"}
    assert [row[1] for row in detail if row[0] == a] == [
        "pre_accept", "accept", "start", "suspend", "resume", "complete", "deliver"
    ]  # fmt: skip
    reasons = {row[1]: row[3] for row in detail if row[0] == c}
    assert reasons["request_supplement"] == "复印件不清晰"
    asked = app.extensions["township"].ws.read(
        lambda conn: conn.execute(
            "SELECT json_extract(body, '$.requested') FROM case_events WHERE case_id = ? AND action = ?",
            (c, "request_supplement"),
        ).fetchone()[0]
    )
    assert json.loads(asked) == ["居民身份证", "居民户口簿"]  # recorded on the event, for the notice
    shown = client.get(f"/case/{c}").text
    assert "赵丽" in shown and "需补齐补正的材料：居民身份证、居民户口簿" in shown and "复印件不清晰" in shown


def test_forwarding_and_the_county_copy_has_no_buttons(app: Flask, known: dict[str, Any]) -> None:
    client = signed_in(app, "liming")
    case_id = known["open_by_liming"]["case_id"]
    page = post(client, f"/case/{case_id}/act/forward", {}, page=f"/case/{case_id}", follow_redirects=True)
    assert "已转报" in page.text
    linked, by = app.extensions["township"].ws.read(
        lambda conn: conn.execute(
            "SELECT c.linked_case_id, json_extract(e.body, '$.by') FROM cases c JOIN case_events e "
            "ON e.case_id = c.case_id AND e.action = 'forward' WHERE c.case_id = ?",
            (case_id,),
        ).fetchone()
    )
    assert by == "李明"
    county_copy = client.get(f"/case/{linked}").text
    assert "由县级办理" in county_copy and "/act/" not in county_copy
    assert "共 26 件" in client.get("/").text  # 已转报 leaves 待办 (the county's copy is never listed)


def test_ab_substitution_shows_the_absent_clerks_cases(app: Flask, known: dict[str, Any]) -> None:
    today = datetime.now(CST).date().isoformat()
    liming = signed_in(app, "liming")
    ids = dict(app.extensions["township"].ws.read(lambda c: c.execute("SELECT login, clerk_id FROM clerks")))
    itself = post(liming, "/my-post/absence",
                  {"from_day": today, "to_day": today, "substitute": ids["liming"]}, page="/my-post")  # fmt: skip
    assert itself.status_code == 400
    made = post(liming, "/my-post/absence", {"from_day": today, "to_day": today, "substitute": ids["wangfang"]},
                page="/my-post", follow_redirects=True)  # fmt: skip
    assert "由 王芳 替岗" in made.text
    head = signed_in(app, "wangfang")
    inbox = head.get("/").text
    assert "代岗：李明 的办件" in inbox
    cover = inbox.split("代岗：李明 的办件")[1].split("</section>")[0]
    assert DISABLED in cover and LOW_INCOME not in cover  # his open case; the one he completed is not open
    assert "代岗" not in signed_in(app, "zhaoli").get("/").text
    assert "李明：" in head.get("/my-post").text
    absence_id = app.extensions["township"].ws.read(lambda c: c.execute("SELECT absence_id FROM clerk_absences")).fetchone()[0]  # fmt: skip
    post(liming, f"/my-post/absence/{absence_id}/cancel", {}, page="/my-post")
    assert "代岗" not in head.get("/").text


# -- 进度查询, 村情况, 统计, 办件查询 ---------------------------------------------------------------------------------


def test_progress_query_needs_the_number_and_the_query_code(app: Flask, known: dict[str, Any]) -> None:
    client = signed_in(app, "liming")
    case = known["done"]
    name = known["cases"][case["case_id"]]["applicant"]["name"]
    right = post(client, "/progress", {"number": case["local_no"], "code": query_code(case["case_id"])})
    assert right.status_code == 200
    assert LOW_INCOME in right.text and "已办结" in right.text and "受理" in right.text
    masked = name[0] + "*" * (len(name) - 1)
    assert masked in right.text and name not in right.text
    id_number = known["cases"][case["case_id"]]["applicant"]["id_number"]
    assert id_number not in right.text and known["cases"][case["case_id"]]["applicant"]["phone"] not in right.text
    wrong_code = post(client, "/progress", {"number": case["local_no"], "code": "000000"})
    no_case = post(client, "/progress", {"number": "430321101299-20200101-1", "code": query_code(case["case_id"])})
    for answer in (wrong_code, no_case):
        assert "未找到" in answer.text and LOW_INCOME not in answer.text
    assert wrong_code.text.count("未找到") == no_case.text.count("未找到")
    empty = post(client, "/progress", {"number": case["local_no"], "code": ""})
    assert "请输入查询码" in empty.text


def test_villages_page_shows_duty_contact_backlog_and_cases(app: Flask) -> None:
    client = signed_in(app, "liming")
    page = client.get("/villages").text
    rows = {name: page.split(f"<strong>{name}</strong>")[1].split("</tr>")[0] for name, _ in VILLAGES.values()}
    assert "李建国" in rows["梅花村"] and "替岗 王秀兰" in rows["梅花村"]
    assert "2 条" in rows["梅花村"]  # reported by the laptop, not yet at the township
    assert "未排班" in rows["桃源村"] and "2 条" not in rows["桃源村"]
    assert "从未联系" in rows["石门村"] and "未报告" in rows["石门村"]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r'<td class="num">(.*?)</td>', rows["梅花村"], re.S)]
    assert cells[1] == "25"  # 在办
    ledger = re.search(r'href="(/print/ledger\?village=[^"]+)">打印代办台账', rows["梅花村"])
    assert ledger, rows["梅花村"]  # the village's 代办台账 prints from here
    printed = client.get(ledger.group(1).replace("&amp;", "&"))
    assert printed.status_code == 200 and "梅花村" in printed.text


def test_statistics_include_every_village_and_export(app: Flask) -> None:
    client = signed_in(app, "liming")
    page = client.get("/stats").text
    for name, _ in VILLAGES.values():
        assert name in page
    table = page.split('<table class="list stats">')[1].split("</table>")[0]
    stone = table.split("<td>石门村</td>")[1].split("</tr>")[0]
    assert "—" in stone and ">0<" in stone
    peach = table.split("<td>桃源村</td>")[1].split("</tr>")[0]
    assert "100.0%" in peach  # one completion, on time; one evaluation 满意
    assert "<svg" in page and 'class="bar-ontime"' in page
    month = datetime.now(CST).strftime("%Y-%m")
    assert client.get(f"/stats?month={month}").status_code == 200
    xlsx = client.get(f"/stats/export?by=village&month={month}")
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(BytesIO(xlsx.data)).active
    labels = [sheet.cell(row=r, column=1).value for r in range(3, sheet.max_row + 1)]
    assert labels == ["梅花村", "桃源村", "石门村"]
    assert client.get("/stats/export?by=month").status_code == 200


def test_case_search_keeps_the_text_out_of_the_url(app: Flask, known: dict[str, Any]) -> None:
    client = signed_in(app, "liming")
    case_id = known["v11"][3]["case_id"]
    name = known["cases"][case_id]["applicant"]["name"]
    sent = post(client, "/cases", {"text": name, "submit": "1"})
    assert sent.status_code == 302 and name not in sent.headers["Location"]
    found = client.get(sent.headers["Location"])
    assert f"/case/{case_id}" in found.text
    by_id = post(client, "/cases", {"text": known["cases"][case_id]["applicant"]["id_number"], "submit": "1"},
                 follow_redirects=True)  # fmt: skip
    assert f"/case/{case_id}" in by_id.text and "找到 1 件" in by_id.text
    cleared = post(client, "/cases", {"clear": "1"}, follow_redirects=True)
    assert "共 27 件" in cleared.text or "共 28 件" in cleared.text


def test_walk_in_files_into_the_townships_own_feed(app: Flask) -> None:
    client = signed_in(app, "zhaoli")
    assert "请先选定" in client.get("/walkin").text
    form_page = client.get(f"/walkin?item={LOW_INCOME}")
    assert form_page.status_code == 200 and "确认收件" in form_page.text
    people = DemoPeople(seed=99)
    spec = next(i for i in catalog_domain.read_catalog(DEMO_CATALOG) if i["name"] == LOW_INCOME)
    request = people.case_request(spec)
    code = spec["task_code"]
    filed = post(client, f"/walkin?item={code}", {
        "item": code, "applicant_name": request["applicant"]["name"], "id_number": request["applicant"]["id_number"],
        "phone": request["applicant"]["phone"], "address": request["applicant"]["address"],
        "materials": request["materials"], "proxy_no": "", "notes": "",
    }, page=f"/walkin?item={code}", follow_redirects=True)  # fmt: skip
    assert "已收件" in filed.text and "打印收件凭证" in filed.text and "本中心窗口" in filed.text
    row = (
        app.extensions["township"]
        .ws.read(
            lambda c: c.execute("SELECT feed, channel, village, agent_name FROM cases ORDER BY filed_ms DESC LIMIT 1")
        )
        .fetchone()
    )
    assert tuple(row) == ("t1/up", "窗口", None, "赵丽")
    incomplete = post(client, f"/walkin?item={code}", {"item": code, "applicant_name": "张三"},
                      page=f"/walkin?item={code}")  # fmt: skip
    assert incomplete.status_code == 400 and "身份证号" in incomplete.text


def test_sync_page_imports_a_village_bundle_and_exports_one(
    app: Flask, township: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A village agent with no network brings a USB bundle: the clerk imports it from the 同步 page (verified
    like a sync; twice changes nothing); a bundle for a village or the county downloads; a broken file is refused
    with the CLI's Chinese words, and no traceback."""
    client = signed_in(app, "liming")
    page = client.get("/sync")
    assert page.status_code == 200 and "用 U 盘交换数据" in page.text and "梅花村" in page.text
    # 梅花村's laptop: the township's copy of its feeds plus one more case filed offline, signed with its key
    laptop = tmp_path / "laptop.sqlite"
    shutil.copy(township[0] / "node.sqlite", laptop)
    with Store(laptop) as store:
        held = store.vector()
        request = DemoPeople(seed=5).case_request(next(i for i in catalog_domain.read_catalog(DEMO_CATALOG)
                                                        if i["name"] == ELDER))  # fmt: skip
        cmd = commands.new_cases(store.conn, actor("v11", "李建国"), [request], now_ms=now_ms())
        store.append(KEYS["v11"], cmd.feed, cmd.records)
        bundle = tmp_path / "梅花村.sjb"
        write_bundle(store, bundle, key=KEYS["v11"], source="v11", target="t1", theirs=held)
    count = lambda: app.extensions["township"].ws.read(  # noqa: E731
        lambda conn: conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    )
    before = count()
    for new in ("新增 1 条", "新增 0 条"):
        done = post(client, "/sync/import", {"bundle": (BytesIO(bundle.read_bytes()), "梅花村.sjb")},
                    page="/sync", follow_redirects=True, content_type="multipart/form-data")  # fmt: skip
        assert "已导入 梅花村.sjb" in done.text and new in done.text, done.text
    assert count() == before + 1
    broken = post(client, "/sync/import", {"bundle": (BytesIO(b"not a bundle"), "坏.sjb")}, page="/sync",
                  follow_redirects=True, content_type="multipart/form-data")  # fmt: skip
    assert "错误" in broken.text and "坏.sjb" in broken.text and "Traceback" not in broken.text
    for target in ("v11", "county"):
        got = post(client, "/sync/export", {"for": target}, page="/sync")
        assert got.status_code == 200 and got.headers["Content-Disposition"].startswith("attachment")
        assert got.data[:8] == bundle.read_bytes()[:8]  # the bundle format's magic
