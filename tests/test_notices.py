"""The printed notices (收件凭证 … 送达回执), the 一次性告知单, the 代办台账 and the 值班表.

A real county (its sync API served on 127.0.0.1), a township (城关镇便民服务中心)
and a village (梅花村) enrolled through the real CLIs, in-process; cases in
every state made through `sanji_node.actions` on the nodes' SQLite stores and
synced up and down. The pages are read through Flask's test client on a small
app that mounts the shared page core, a test login and `register_notices`, as
the village and the township apps do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Blueprint, Flask, redirect, request

from county_server.app import create_app as county_app
from county_server.cli import main as county_main
from sanji_domain import places
from sanji_node.actions import cases, ledger
from sanji_node.child import ChildNode
from sanji_node.web import Site, init_pages
from sanji_node.web.auth import sign_in, sign_out
from sanji_node.web.notices import available, mask_id, register_notices
from sanji_node.workspace import Workspace, today
from township_node.app import create_app as township_app
from township_node.cli import main as township_main
from village_agent.cli import main as village_main

from .browser.helpers import serve_wsgi

DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
PASSPHRASE_ENV = "SANJI_NOTICES_TEST_PASSPHRASE"
COUNTY_NAME = "示范县"
TOWNSHIP_NAME = "城关镇便民服务中心"
VILLAGE_NAME = "梅花村"
ELDER = "高龄津贴申请"  # 乡 item, 村受理乡办结, 承诺件 10 days, 容缺 allowed
HOUSE = "农村宅基地建房申请"  # made to carry 8 materials with long names for the one-page checks
DISABLED = "残疾人证申领"  # 县 item, 村代办: the township forwards it (转报), the county decides
_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

LONG_REASON = (
    "经审查，您提交的《农村宅基地和建房（规划许可）申请表》未经村民小组会议讨论通过，缺少村民小组长及不少于三名村民代表的签字；"
    "《农村宅基地使用承诺书》未按要求由申请人本人签名并按手印；房屋设计图纸所示建筑层数、高度与申请表不一致，"
    "且四至界址未经相邻权利人签字确认。请在收到本通知书之日起十五个工作日内，将补正后的上述材料交梅花村便民服务站代办员，"
    "或于工作日上午8:30-12:00、下午14:30-17:30送城关镇便民服务中心综合窗口（自然资源和规划服务窗口）。"
    "逾期未补正且未说明理由的，视为撤回申请，材料予以退还。如对补正要求有疑问，请致电咨询。"
)
REJECT_REASON = (
    "申请人户籍不在本村，拟建房屋选址位于永久基本农田保护范围内，不符合《中华人民共和国土地管理法》第六十二条"
    "及本县村庄规划的规定，本申请不属于本机关受理范围；申请人可持户籍证明向户籍所在地乡镇人民政府提出申请。"
)


def id_number(serial: int) -> str:
    """A valid GB 11643 身份证号 (check digit computed), one per `serial`."""
    body = f"430321{1940 + serial % 50}{serial % 12 + 1:02d}{serial % 27 + 1:02d}{serial % 1000:03d}"
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, _W, strict=True)) % 11]


def make_catalog(path: Path) -> Path:
    """The demo catalog, with 农村宅基地建房申请 given 8 materials with long names (the fullest 一次性告知单)."""
    data = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))
    for item in data["items"]:
        if item["name"] == HOUSE:
            item["allow_pledge"] = True
            extra = {
                "name": "相邻权利人签字确认的宅基地四至界址示意图及现场踏勘照片",
                "form": "原件",
                "copies": 2,
                "required": True,
                "standard": "四至界址清楚，相邻权利人逐一签字并按手印；照片能反映选址现状及周边建筑、道路、农田情况",
                "notes": "由村民小组协助绘制",
            }
            item["materials"] = [*item["materials"], extra][:8]
            assert len(item["materials"]) == 8
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@dataclass
class World:
    """The county, one township and one village, with cases in every state (by story name)."""

    root: Path
    county_data: Path
    county_flask: Flask
    township: ChildNode
    village: ChildNode
    tws: Workspace
    vws: Workspace
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cli(self, program: Any, *args: str) -> str:
        result = CliRunner().invoke(program, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    def sync(self) -> None:
        """Village up, township up, the county numbers, then down again."""
        self.village.sync()
        self.township.sync()
        self.county_flask.extensions["sanji_numbering"].run_once()
        self.township.sync()
        self.village.sync()

    def file(self, name: str, ws: Workspace, item: str, materials: list[str], serial: int, **extra: Any) -> str:
        person = "李建国" if ws is self.vws else "张窗口"
        data = {
            "item": item,
            "applicant": {"name": name, "id_number": id_number(serial), "phone": f"1380734{serial:04d}"},
            "agent": {"name": person, "proxy_no": f"WT-2026-{serial:03d}"} if ws is self.vws else {},
            "materials": materials,
            **extra,
        }
        made = cases.file_case(ws, data, person=person)
        self.cases[name] = {**made, "id_number": data["applicant"]["id_number"]}  # type: ignore[index]
        return str(made["case_id"])

    def act(self, ws: Workspace, name: str, action: str, **data: Any) -> None:
        person = "李建国" if ws is self.vws else "张窗口"
        cases.transition(ws, self.cases[name]["case_id"], action, data, person=person)

    def id(self, name: str) -> str:
        return str(self.cases[name]["case_id"])


def materials_of(ws: Workspace, item: str) -> list[str]:
    from sanji_node.actions import catalog

    return [m["name"] for m in catalog.show_item(ws, item)["materials"]]


@contextlib.contextmanager
def build_world(root: Path) -> Iterator[World]:
    """Enrol the nodes through the real CLIs and make one case in each state the notices need."""
    runner = CliRunner()

    def cli(program: Any, *args: str) -> str:
        result = runner.invoke(program, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    old = os.environ.get(PASSPHRASE_ENV)
    os.environ[PASSPHRASE_ENV] = "梅花村代办员的口令-test"
    county = root / "county"
    cli(county_main, "init", "--data", str(county), "--county", "430321", "--name", COUNTY_NAME)
    cli(county_main, "catalog", "import", str(make_catalog(root / "catalog.json")), "--data", str(county))
    flask_county = county_app(county)
    try:
        with contextlib.ExitStack() as stack:
            county_url = stack.enter_context(serve_wsgi(flask_county))

            def enrol(role: str, division: str, node: str, name: str, parent: str) -> str:
                args = ["--role", role, "--division", division, "--node-id", node, "--name", name, "--parent", parent]
                answer = json.loads(cli(county_main, "enroll", "--data", str(county), *args, "--json"))
                return str(answer["token"])

            token = enrol("township", "430321101000", "chengguan", TOWNSHIP_NAME, "county")
            cli(township_main, "init", "--data", str(root / "t"), "--parent", county_url, "--token", token, "--no-sync")
            township = ChildNode.load(root / "t")
            township_url = stack.enter_context(serve_wsgi(township_app(township)))
            token = enrol("village", "430321101201", "meihua", VILLAGE_NAME, "chengguan")
            village_args = ["--parent", township_url, "--token", token, "--passphrase-env", PASSPHRASE_ENV, "--no-sync"]
            cli(village_main, "init", "--data", str(root / "v"), *village_args)
            village = ChildNode.load(root / "v")
            township.sync()
            village.sync()
            tws, vws = Workspace(township), Workspace(village)
            stack.callback(tws.close)
            stack.callback(vws.close)
            w = World(root, county, flask_county, township, village, tws, vws)
            _story(w, root)
            yield w
    finally:
        flask_county.extensions["sanji_numbering"].stop()
        if old is None:
            os.environ.pop(PASSPHRASE_ENV, None)
        else:
            os.environ[PASSPHRASE_ENV] = old


def _story(w: World, root: Path) -> None:
    v, t = w.vws, w.tws
    elder = materials_of(v, ELDER)
    house = materials_of(v, HOUSE)
    w.file("王秀英", v, ELDER, elder[:2], 1, pledge=True)  # 收件 with 容缺: the receipt only
    w.file("李桂兰", v, ELDER, elder[:4], 2)  # 受理
    w.file("张伟", v, ELDER, elder[:4], 3)  # 受理 → 补齐补正
    w.file("刘芳", v, ELDER, elder[:4], 4)  # 不予受理
    w.file("陈强", v, ELDER, elder[:4], 5)  # 受理 → 办结
    w.file("杨丽", v, ELDER, elder[:4], 6)  # 受理 → 办结 → 送达 (by the agent)
    w.file("黄敏", v, ELDER, elder[:1], 7, draft=True)  # 草稿: nothing to print
    w.file("赵军", v, HOUSE, house[:2], 8, pledge=True)  # 6 lacking: 补正 with a long reason, then 不予受理
    w.file("吴静", v, HOUSE, house, 9)  # all 8 materials: every notice up to 送达
    w.file("周涛", v, DISABLED, materials_of(v, DISABLED), 10)  # 转报; the county does not accept
    w.sync()
    for name in ("李桂兰", "张伟", "陈强", "杨丽", "吴静", "周涛"):
        w.act(t, name, "accept")
    w.act(t, "张伟", "request_supplement", reason="请补交本人社会保障卡复印件，于12月10日前交村代办员。")
    w.act(t, "刘芳", "reject", reason="申请人未满80周岁，不符合高龄津贴申领条件。")
    w.act(t, "陈强", "complete", result="准予发放高龄津贴，每月200元，自次月起按月发放至本人一卡通账户")
    w.act(t, "杨丽", "complete")
    w.act(t, "赵军", "request_supplement", reason=LONG_REASON)
    w.act(t, "吴静", "request_supplement", reason=LONG_REASON)
    w.act(t, "周涛", "forward")
    w.sync()
    w.act(v, "赵军", "supplement")
    w.act(v, "吴静", "supplement")
    w.act(v, "杨丽", "deliver")
    w.sync()
    w.act(t, "赵军", "reject", reason=REJECT_REASON)
    w.act(
        t, "吴静", "complete", result="准予建房，核发《乡村建设规划许可证》和《农村宅基地批准书》，请持本人身份证领取"
    )
    w.sync()
    w.act(v, "吴静", "deliver")
    # the county rejects the forwarded case (it acts on the linked county case)
    linked = cases.show_case(t, w.id("周涛"))["linked_case_id"]
    assert linked
    w.sync()
    reason = "经县残联审核，申请人残疾程度未达到办证标准。"
    w.cli(county_main, "case", "transition", linked, "reject", "--reason", reason, "--person", "县残联审核员",
          "--data", str(w.county_data))  # fmt: skip
    w.sync()
    # a window case at the township: filed, accepted, completed and handed over at the window
    w.file("孙霞", t, ELDER, elder[:4], 11)
    w.act(t, "孙霞", "accept")
    w.act(t, "孙霞", "complete")
    w.act(t, "孙霞", "deliver")
    first = today().replace(day=1)
    for n in range(31):  # every day of the month on the roster: the fullest 值班表 still fits one sheet
        day = first + timedelta(days=n)
        if day.month == first.month:
            agent, sub = ("李建国", "王代办") if n % 2 == 0 else ("王代办", None if n % 3 else "李建国")
            ledger.set_duty(v, day.isoformat(), agent, sub)
    w.sync()


def _month() -> str:
    return today().strftime("%Y-%m")


# --- the app --------------------------------------------------------------------------------------------------


def make_app(ws: Workspace, centre: str) -> Flask:
    """What a node's page app does for the notices: the shared core, a login, the notices."""
    app = Flask(f"notices-test-{ws.config.node_id}")
    init_pages(
        app,
        Site(
            title="测试",
            data_path=ws.node.data.path,  # type: ignore[attr-defined]
            county_name=lambda: ws.config.county_name,
            centre_name=lambda: centre,
            place_names=lambda: ws.read(places.names),
            workspace=lambda: ws,
        ),
    )
    auth = Blueprint("auth", __name__)

    @auth.get("/login")
    def login() -> Any:  # a test login: who signs in is in the query (never like this in a real app)
        if request.args.get("as"):
            role = "agent" if ws.role == "village" else "clerk"
            sign_in({"id": "u1", "name": request.args["as"], "role": role, "role_label": "测试"})
            return redirect(request.args.get("next") or "/")
        return "请登录", 200

    @auth.post("/logout")
    def logout() -> Any:
        sign_out()
        return redirect("/login")

    app.register_blueprint(auth)
    register_notices(app)
    return app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("notices")) as w:
        yield w


@pytest.fixture(scope="module")
def village_client(world: World) -> Any:
    client = make_app(world.vws, "梅花村便民服务站").test_client()
    client.get("/login?as=李建国")
    return client


@pytest.fixture(scope="module")
def township_client(world: World) -> Any:
    client = make_app(world.tws, TOWNSHIP_NAME).test_client()
    client.get("/login?as=张窗口")
    return client


def text_of(html: str) -> str:
    """The visible text of a page, whitespace squeezed (tags dropped)."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def title_of(html: str) -> str:
    m = re.search(r"<title>(.*?)</title>", html, re.S)
    assert m is not None
    return m.group(1).strip()


def page(client: Any, url: str, status: int = 200) -> str:
    resp = client.get(url)
    assert resp.status_code == status, (url, resp.status_code, resp.get_data(as_text=True)[:2000])
    return str(resp.get_data(as_text=True))


# --- the tests ------------------------------------------------------------------------------------------------


def test_available_follows_the_case(world: World) -> None:
    def kinds(name: str) -> list[str]:
        return [k for k, _ in available(cases.show_case(world.vws, world.id(name)))]

    assert kinds("黄敏") == []
    assert kinds("王秀英") == ["receipt"]
    assert kinds("李桂兰") == ["receipt", "accept"]
    assert kinds("张伟") == ["receipt", "accept", "supplement"]
    assert kinds("刘芳") == ["receipt", "reject"]
    assert kinds("陈强") == ["receipt", "accept", "complete"]
    assert kinds("杨丽") == ["receipt", "accept", "complete", "deliver"]
    assert kinds("赵军") == ["receipt", "supplement", "reject"]
    assert kinds("吴静") == ["receipt", "accept", "supplement", "complete", "deliver"]
    assert kinds("周涛") == ["receipt", "accept", "reject"]
    labels = dict(available(cases.show_case(world.vws, world.id("杨丽"))))
    assert labels == {"receipt": "收件凭证", "accept": "受理通知书", "complete": "办结通知书", "deliver": "送达回执"}


def test_receipt_has_number_query_code_qr_masked_id_and_materials(world: World, village_client: Any) -> None:
    case = cases.show_case(world.vws, world.id("王秀英"))
    html = page(village_client, f"/print/case/{case['case_id']}/receipt")
    text = text_of(html)
    assert case["official_no"], "the county numbered the case"
    assert title_of(html) == f"收件凭证 {case['official_no']}"
    assert "王秀英" not in title_of(html)
    for expected in (
        COUNTY_NAME,
        "梅花村便民服务站",
        "收件凭证",
        f"办件编号：{case['official_no']}",
        case["query_code"],
        "王秀英",
        mask_id(world.cases["王秀英"]["id_number"]),
        ELDER,
        "代办员",
        "李建国",
        "承诺办结时限",
        "10 个工作日",
        "进度查询",
        "城关镇便民服务中心综合窗口",
        "0731-57822465",  # 咨询电话 of the item
        "容缺受理承诺",
        "《高龄津贴申请审批表》",  # lacking, pledged
    ):
        assert expected in text, expected
    assert world.cases["王秀英"]["id_number"] not in html  # the whole 身份证号 never prints
    assert "<svg" in html  # the QR code
    received = [m for m in case["materials"] if m["received"]]
    assert len(received) == 2
    for m in received:
        assert m["name"] in text
    assert "meihua" not in text and "chengguan" not in text  # names, never node ids


def test_accept_notice_gives_dates_and_department(world: World, township_client: Any) -> None:
    case = cases.show_case(world.tws, world.id("李桂兰"))
    html = page(township_client, f"/print/case/{case['case_id']}/accept")
    text = text_of(html)
    assert title_of(html) == f"受理通知书 {case['number']}"
    y, m, d = (int(x) for x in case["promise_date"].split("-"))
    for expected in (
        "受理通知书",
        "决定予以受理",
        "受理日期",
        "承诺办结日期",
        f"{y}年{m}月{d}日",
        "县民政局",
        TOWNSHIP_NAME,
    ):
        assert expected in text, expected


def test_supplement_notice_lists_materials_and_stops_the_clock(world: World, village_client: Any) -> None:
    case = cases.show_case(world.vws, world.id("赵军"))
    html = page(village_client, f"/print/case/{case['case_id']}/supplement")
    text = text_of(html)
    for expected in (
        "补齐补正通知书",
        "一次性告知",
        "办理时限暂停计算",
        "梅花村便民服务站代办员",
        "城关镇便民服务中心综合窗口",
    ):
        assert expected in text, expected
    assert LONG_REASON[:40] in text
    lacking = [m["name"] for m in case["materials"] if not m["received"] and m["required"]]
    assert len(lacking) == 5  # 8 materials, 2 received, 1 optional
    for name in lacking:
        assert name in text


def test_reject_notice_has_reason_and_appeal_rights(world: World, village_client: Any) -> None:
    html = page(village_client, f"/print/case/{world.id('刘芳')}/reject")
    text = text_of(html)
    assert "申请人未满80周岁，不符合高龄津贴申领条件。" in text
    assert (
        "如不服本决定，可在收到本通知书之日起六十日内依法申请行政复议，或者在六个月内依法向人民法院提起行政诉讼。"
        in text
    )
    assert "决定不予受理" in text


def test_reject_after_forwarding_prints_the_countys_reason(world: World, village_client: Any) -> None:
    from sanji_node.actions import catalog

    text = text_of(page(village_client, f"/print/case/{world.id('周涛')}/reject"))
    assert "经县残联审核，申请人残疾程度未达到办证标准。" in text
    assert "行政复议" in text
    department = catalog.show_item(world.vws, DISABLED)["department"]
    assert f"决定单位 {department}" in text and f"{department}（盖章）" in text  # the county's department decided
    assert "县残联审核员" in text


def test_complete_notice_gives_result_and_collection_not_punctuality(world: World, village_client: Any) -> None:
    case = cases.show_case(world.vws, world.id("陈强"))
    text = text_of(page(village_client, f"/print/case/{case['case_id']}/complete"))
    assert "准予发放高龄津贴，每月200元" in text
    assert "办结日期" in text and "领取方式" in text and "梅花村便民服务站代办员带回" in text
    for word in ("按时", "超期", "逾期", "on_time"):
        assert word not in text, word


def test_delivery_receipt_names_method_and_signatures(world: World, village_client: Any, township_client: Any) -> None:
    text = text_of(page(village_client, f"/print/case/{world.id('杨丽')}/deliver"))
    for expected in (
        "送达回执",
        "受送达人",
        "杨丽",
        "代办员送达",
        "李建国",
        "送达人 签名",
        "受送达人 签名",
        "准予办理",
    ):
        assert expected in text, expected
    window = text_of(page(township_client, f"/print/case/{world.id('孙霞')}/deliver"))
    assert "窗口领取" in window and "张窗口" in window and TOWNSHIP_NAME in window


def test_a_step_not_reached_is_a_clear_page_and_an_unknown_kind_is_404(world: World, village_client: Any) -> None:
    text = text_of(page(village_client, f"/print/case/{world.id('王秀英')}/reject", 409))
    assert "办件没有被不予受理，不能打印不予受理通知书" in text
    assert "收件凭证" in text  # what can be printed
    text = text_of(page(village_client, f"/print/case/{world.id('黄敏')}/receipt", 409))
    assert "草稿" in text
    text = text_of(page(village_client, f"/print/case/{world.id('王秀英')}/letter", 404))
    assert "没有这个页面" in text
    page(village_client, "/print/case/01a00000-0000-7000-8000-000000000000/receipt", 404)


def test_item_guide_lists_conditions_materials_limits_fees(world: World, village_client: Any) -> None:
    from sanji_node.actions import catalog

    item = catalog.show_item(world.vws, HOUSE)
    html = page(village_client, f"/print/item/{item['task_code']}")
    text = text_of(html)
    assert title_of(html) == f"一次性告知单 {HOUSE}"
    for expected in (
        "一次性告知单",
        HOUSE,
        "受理条件",
        "申请材料",
        "法定办结时限",
        "承诺办结时限",
        "不收费",
        item["phone"],
    ):
        assert expected in text, expected
    assert len(item["material_rows"]) == 8
    for m in item["material_rows"]:
        assert m["name"] in text
    fee = catalog.search_items(world.vws, "居民身份证换领")[0]
    fee_text = text_of(page(village_client, f"/print/item/{fee['task_code']}"))
    assert "居民身份证换领工本费 20.00 元" in fee_text
    page(village_client, "/print/item/NO-SUCH-ITEM", 404)


def test_ledger_and_roster_name_the_village(world: World, village_client: Any, township_client: Any) -> None:
    month = _month()
    html = page(village_client, f"/print/ledger?month={month}")
    assert 'class="sheet wide"' in html
    text = text_of(html)
    y, m = month.split("-")
    assert f"{VILLAGE_NAME}代办台账" in text and f"{y}年{int(m)}月" in text
    assert "王秀英" in text and "杨丽" in text and "孙霞" not in text  # a window case is not in the ledger
    roster = text_of(page(village_client, f"/print/roster?month={month}"))
    assert f"{VILLAGE_NAME}便民服务站值班表" in roster and "王代办" in roster
    tledger = text_of(page(township_client, f"/print/ledger?month={month}"))
    assert f"{VILLAGE_NAME}代办台账" in tledger and "杨丽" in tledger
    assert "meihua" not in tledger
    text = text_of(page(village_client, "/print/ledger?month=2026-13", 400))
    assert "月份格式不对" in text


def test_every_notice_needs_a_signed_in_user(world: World) -> None:
    client = make_app(world.vws, "梅花村便民服务站").test_client()
    for url in (f"/print/case/{world.id('杨丽')}/receipt", "/print/item/x", "/print/ledger", "/print/roster"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url


def test_titles_carry_the_notice_and_number_only(world: World, village_client: Any, township_client: Any) -> None:
    for name in ("吴静", "杨丽", "赵军", "周涛"):
        case = cases.show_case(world.vws, world.id(name))
        for kind, label in available(case):
            for client in (village_client, township_client):
                html = page(client, f"/print/case/{case['case_id']}/{kind}")
                assert title_of(html) == f"{label} {case['number']}", (name, kind)
                assert world.cases[name]["id_number"] not in html  # masked everywhere
                assert 'class="sheet"' in html  # a portrait sheet
