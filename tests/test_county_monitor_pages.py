"""电子监察 at the county through the Flask test client, on a county data directory made by the real
`county-server` commands, with the townships' and villages' entries signed by their own keys.

城关镇 (t1) has 梅花村 (v11) and 桃源村 (v12); 西渡镇 (t2) has no case. 梅花村's 高龄津贴申请 (10 working
days) A was accepted by 李明 on 2026-11-02 (overdue on the 20th: 红牌), B on 2026-11-06 (due on the 20th:
黄牌), C was filed and not accepted. 桃源村's 就业登记 (即办件) D was accepted by 王芳 on 2026-11-20 at 10:00:
no card before the working day ends, a 黄牌 after. The county's clock is injected (`CLOCK`).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from county_server import audit, card_scan, monitor_tables
from county_server.app import create_app
from county_server.node import load_county, open_county_store
from sanji_domain import catalog as catalog_domain
from sanji_domain import commands, kinds, monitoring, views
from sanji_domain.commands import Actor
from sanji_domain.demo import DemoPeople
from sanji_node import state
from sanji_node.config import DataDir
from sanji_node.scheduler import PeriodicJob
from sanji_node.web.site import fmt_ms
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store
from tests.test_county_pages import PASSWORDS, cli, login, token
from tests.test_views_stats import at

DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
PLACES = {  # node: (role, parent, division, name)
    "t1": ("township", "county", "430321101000", "城关镇便民服务中心"),
    "t2": ("township", "county", "430321102000", "西渡镇便民服务中心"),
    "v11": ("village", "t1", "430321101201", "梅花村"),
    "v12": ("village", "t1", "430321101202", "桃源村"),
}
KEYS = {n: SigningKey.from_seed(hashlib.sha256(f"county-monitor:{n}".encode()).digest()) for n in PLACES}
CLOCK = [at("2026-11-20", 11)]


def actor(node: str, person: str | None = None) -> Actor:
    role, parent, division, _ = PLACES[node]
    return Actor(node, role, division, parent, "county", person)


def append(store: Store, cmd: commands.Command) -> commands.Command:
    store.append(KEYS[cmd.feed.split("/")[0]], cmd.feed, cmd.records)
    return cmd


def build_county(path: Path) -> dict[str, Any]:
    """The county with its places, cases and accounts; returns the case ids by letter."""
    assert cli("init", "--data", str(path), "--county", "430321", "--name", "示范县").exit_code == 0
    assert cli("catalog", "import", "--data", str(path), str(DEMO_CATALOG)).exit_code == 0
    for login_, role, name in (("admin1", "admin", "周县长"), ("jiancha", "inspector", "钱监察")):
        done = cli("account", "add", "--data", str(path), "--name", name, "--login", login_, "--role", role,
                   "--password-env", "PW", env={"PW": PASSWORDS[login_]})  # fmt: skip
        assert done.exit_code == 0, done.output
    data = DataDir(path)
    config = data.load()
    key = data.load_key(config)
    specs = {i["name"]: i for i in catalog_domain.read_catalog(DEMO_CATALOG)}
    people = DemoPeople(seed=13)
    ids: dict[str, Any] = {}
    with open_county_store(data) as store:
        feed = f"{config.root_node}/*"
        members = [
            {"division": div, "name": name, "node": n, "parent": parent, "pubkey": KEYS[n].public.hex, "role": role}
            for n, (role, parent, div, name) in PLACES.items()
        ]
        hlcs = commands.stamps(store.conn, feed, at("2026-11-01", 8), len(members))
        store.append(key, feed, [Record(KIND_MEMBER, m["node"], m, h) for m, h in zip(members, hlcs, strict=True)])

        def file(village: str, item: str, n: int, when: int) -> list[str]:
            requests = [{**people.case_request(specs[item]), "item": item} for _ in range(n)]
            made = append(store, commands.new_cases(store.conn, actor(village), requests, now_ms=when))
            return [c["case_id"] for c in made.result["cases"]]

        def accept(case_id: str, person: str, when: int) -> None:
            append(store, commands.transition(store.conn, actor("t1", person), case_id, "accept", now_ms=when))

        ids["A"], ids["B"], ids["C"] = file("v11", "高龄津贴申请", 3, at("2026-11-02", 9))
        (ids["D"],) = file("v12", "就业登记", 1, at("2026-11-20", 9))
        accept(ids["A"], "李明", at("2026-11-02", 10))
        accept(ids["B"], "李明", at("2026-11-06", 10))
        accept(ids["D"], "王芳", at("2026-11-20", 10))
        ids["local_no"] = {k: views.show_case(store.conn, ids[k], at_day("2026-11-20"))["local_no"] for k in "ABCD"}
    return ids


def at_day(day: str) -> Any:
    from datetime import date

    return date.fromisoformat(day)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("monitor") / "county"
    return path, build_county(path)


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


def signed_in(app: Flask, name: str = "admin1") -> FlaskClient:
    client = app.test_client()
    login(client, name)
    return client


def post(client: FlaskClient, page: str, path: str, data: dict[str, str]) -> Any:
    html = client.get(page).get_data(as_text=True)
    return client.post(path, data={**data, "csrf_token": token(html)})


def audit_rows(app: Flask) -> list[dict[str, Any]]:
    """The audit log, newest first, without the catalog's release made when the county was built."""
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        return [r for r in audit.rows(store.db) if r["action"] != "catalog.publish"]


def test_the_scan_cards_overdue_cases_and_the_page_counts_them_by_township_village_item_and_clerk(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app)
    page = client.get("/monitor").get_data(as_text=True)
    assert "全县没有亮牌的在办件" in page and "还没有扫描过" in page
    assert "定时扫描未开启" in page  # the test app is not under `serve`
    resp = post(client, "/monitor", "/monitor/scan", {})
    assert resp.status_code == 302
    page = client.get("/monitor").get_data(as_text=True)
    assert "扫描完成：新发出 2 张牌" in page
    assert "立即扫描（页面），周县长，新发 2 张牌" in page
    no = ids["local_no"]
    assert no["A"] in page and no["B"] in page and no["C"] not in page and no["D"] not in page
    assert page.index(no["A"]) < page.index(no["B"])  # most overdue first
    assert "城关镇便民服务中心" in page and "梅花村" in page and "李明" in page and "高龄津贴申请" in page
    by_clerk = client.get("/monitor?group=clerk").get_data(as_text=True)
    assert "按受理人统计" in by_clerk
    only_red = client.get("/monitor?level=红牌").get_data(as_text=True)
    assert no["A"] in only_red and no["B"] not in only_red
    soonest = client.get("/monitor?order=soonest").get_data(as_text=True)
    assert soonest.index(no["B"]) < soonest.index(no["A"])
    by_village = client.get("/monitor?village=v12").get_data(as_text=True)
    assert "没有符合条件的亮牌办件" in by_village
    assert "没有符合条件的亮牌办件" in client.get("/monitor?village=~").get_data(as_text=True)  # the windows'
    every = client.get("/monitor?township=&village=&item=&clerk=&level=&order=overdue").get_data(as_text=True)
    assert no["A"] in every and no["B"] in every  # the filter form's 全部 filters nothing
    chosen = client.get("/monitor?village=v11").get_data(as_text=True)
    assert '<option value="v11" selected>梅花村</option>' in chosen
    (row,) = [r for r in audit_rows(app) if r["action"] == "card.scan"]
    assert (row["who_name"], row["details"]) == ("周县长", {"issued": 2})


def test_the_scheduled_scan_is_shown_with_the_next_one(county: tuple[Flask, dict[str, Any]]) -> None:
    app, _ids = county
    path = app.config["SANJI_PATH"]
    # what `serve` runs every interval, by the machine's clock: every accepted case is overdue after 2026-11-20
    assert card_scan.scan_once(lambda: load_county(path)) == 3
    job = PeriodicJob("test-card-scan", lambda: None, interval_s=3600)
    job.start(first_delay_s=3600)
    app.extensions["sanji_card_scan"] = job  # as `serve` sets it
    try:
        page = signed_in(app, "jiancha").get("/monitor").get_data(as_text=True)
        next_ms = job.next_run_ms()
    finally:
        job.stop()
    assert next_ms is not None
    assert "（定时扫描，新发 3 张牌）" in page and f"下次定时扫描：<strong>{fmt_ms(next_ms)}</strong>" in page


def test_the_counts_come_from_the_summary_tables_and_agree_with_a_count_of_every_case(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app)
    post(client, "/monitor", "/monitor/scan", {})
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        conn = store.conn
        full = monitoring.overdue_and_carded(conn, today=at_day("2026-11-20"), minute=11 * 60)
        summary = monitor_tables.totals(conn)
        assert (summary["cases"], summary["红牌"], summary["黄牌"]) == (2, 1, 1)
        assert summary["cases"] == full["all"]["carded"]
        for dim in monitor_tables.DIMS:
            mine = {g["name"]: (g["cases"], g["红牌"], g["黄牌"]) for g in monitor_tables.groups(conn, dim)}
            theirs = {g["name"]: (g["carded"], g["红牌"], g["黄牌"]) for g in full["totals"][dim] if g["carded"]}
            assert mine == theirs, dim
        # the case is completed: it leaves the list, and the counts, with no scan
        append(store, commands.transition(conn, actor("t1", "李明"), ids["A"], "complete", now_ms=at("2026-11-20", 12)))
        assert monitor_tables.totals(conn)["cases"] == 1
        assert {g["name"] for g in monitor_tables.groups(conn, "clerk")} == {"李明"}
    page = client.get("/monitor").get_data(as_text=True)
    assert ids["local_no"]["A"] not in page and ids["local_no"]["B"] in page


def test_a_quick_case_accepted_today_has_no_card_before_the_day_ends_and_one_after(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app)
    post(client, "/monitor", "/monitor/scan", {})
    no = ids["local_no"]["D"]
    assert no not in client.get("/monitor").get_data(as_text=True)
    view = client.get(f"/monitor/case/{ids['D']}").get_data(as_text=True)
    assert "正常" in view and "这个办件没有亮牌" in view
    CLOCK[0] = at("2026-11-20", 18)  # after the working day ends (17:30)
    view = client.get(f"/monitor/case/{ids['D']}").get_data(as_text=True)
    assert "黄牌" in view
    post(client, "/monitor", "/monitor/scan", {})
    page = client.get("/monitor").get_data(as_text=True)
    assert "扫描完成：新发出 1 张牌" in page and no in page and "王芳" in page


def test_the_case_view_shows_facts_history_and_cards_with_the_applicant_masked(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app, "jiancha")
    assert client.get("/monitor/case/no-such-case").status_code == 404
    view = client.get(f"/monitor/case/{ids['A']}").get_data(as_text=True)
    assert "高龄津贴申请" in view and "梅花村" in view and "城关镇便民服务中心" in view and "受理（李明）" in view
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        applicant = views.show_case(store.conn, ids["A"], at_day("2026-11-20"))["applicant"]
    assert applicant["name"] in view
    assert applicant["id_number"] not in view and applicant["id_number"][:6] in view
    assert applicant["phone"] not in view
    assert "撤销" not in view and "发出督办" not in view  # an inspector has no forms


def test_an_inspector_may_not_scan_revoke_or_supervise(county: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = county
    client = signed_in(app, "jiancha")
    page = client.get("/monitor").get_data(as_text=True)
    assert "立即扫描</button>" not in page and "发出督办</button>" not in page
    assert "发出督办</button>" not in client.get("/monitor/notices").get_data(as_text=True)
    for path, data in (
        ("/monitor/scan", {}),
        ("/monitor/card/x/revoke", {"reason": "误发"}),
        (f"/monitor/case/{ids['A']}/supervise", {"reason": "请加快"}),
        ("/monitor/window/supervise", {"township": "t1", "reason": "请加快"}),
    ):
        resp = post(client, "/monitor", path, data)
        assert resp.status_code == 403 and "没有这项权限" in resp.get_data(as_text=True), path
    assert audit_rows(app) == []


def test_revoking_a_card_needs_a_reason_and_is_audited(county: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = county
    client = signed_in(app)
    post(client, "/monitor", "/monitor/scan", {})
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        (card_id,) = [r[0] for r in store.conn.execute("SELECT card_id FROM cards WHERE case_id = ?", (ids["A"],))]
    page = f"/monitor/case/{ids['A']}"
    resp = post(client, page, f"/monitor/card/{card_id}/revoke", {"reason": " ", "case_id": ids["A"]})
    assert "请填写撤销亮牌的原因" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, page, f"/monitor/card/{card_id}/revoke", {"reason": "系统日历有误", "case_id": ids["A"]})
    view = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已撤销这张牌" in view and "已撤销（" in view and "系统日历有误" in view
    assert ids["local_no"]["A"] not in client.get("/monitor").get_data(as_text=True)
    resp = post(client, page, f"/monitor/card/{card_id}/revoke", {"reason": "再撤一次", "case_id": ids["A"]})
    assert "已撤销" in client.get(resp.headers["Location"]).get_data(as_text=True)  # a Chinese flash, no traceback
    rows = [r for r in audit_rows(app) if r["action"] == "card.revoke"]
    assert [(r["target"], r["reason"], r["who_name"]) for r in rows] == [(card_id, "系统日历有误", "周县长")]
    post(client, "/monitor", "/monitor/scan", {})  # still overdue: the next scan cards it again
    assert ids["local_no"]["A"] in client.get("/monitor").get_data(as_text=True)


def test_a_supervision_notice_for_a_case_goes_out_reaches_the_township_and_comes_back_read(
    county: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = county
    client = signed_in(app)
    page = f"/monitor/case/{ids['A']}"
    resp = post(client, page, f"/monitor/case/{ids['A']}/supervise", {"reason": "  "})
    assert "请填写督办事由" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, page, f"/monitor/case/{ids['A']}/supervise", {"reason": "已超期，请两日内办结"})
    view = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "督办已发出" in view and "已超期，请两日内办结" in view and "已发出</span>" in view
    (row,) = [r for r in audit_rows(app) if r["action"] == "supervision.notice"]
    assert (row["target_kind"], row["target"], row["reason"]) == ("case", ids["A"], "已超期，请两日内办结")
    notice_id = row["details"]["notice_id"]
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        feed, seq = store.conn.execute(
            "SELECT feed, seq FROM supervision_notices WHERE notice_id = ?", (notice_id,)
        ).fetchone()
        # the township's next sync says it holds the notice
        state.record_peer_vector(store, "t1", {feed: (seq, store.vector()[feed][1])})
    assert "已送达乡镇</span>" in client.get(page).get_data(as_text=True)
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        body = {"at_ms": at("2026-11-20", 15), "by": "张窗口", "note": "已电话催办", "notice_id": notice_id}
        (hlc,) = commands.stamps(store.conn, "t1/up", at("2026-11-20", 15), 1)
        store.append(KEYS["t1"], "t1/up", [Record(kinds.SUPERVISION_ACK, notice_id, body, hlc)])
    listing = client.get("/monitor/notices?state=已阅").get_data(as_text=True)
    assert "已阅</span>" in listing and "张窗口，2026-11-20 15:00：已电话催办" in listing
    assert "还没有督办" in client.get("/monitor/notices?state=已发出").get_data(as_text=True)


def test_a_supervision_notice_for_a_window(county: tuple[Flask, dict[str, Any]]) -> None:
    app, _ids = county
    client = signed_in(app)
    resp = post(client, "/monitor/notices", "/monitor/window/supervise", {"township": "", "reason": "请加快"})
    assert "请选择要督办的乡镇窗口" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, "/monitor/notices", "/monitor/window/supervise", {"township": "nowhere", "reason": "请加快"})
    assert "找不到乡镇 nowhere" in client.get(resp.headers["Location"]).get_data(as_text=True)
    resp = post(client, "/monitor/notices", "/monitor/window/supervise", {"township": "t2", "reason": "本周红牌偏多"})
    listing = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已向西渡镇便民服务中心窗口发出督办" in listing and "西渡镇便民服务中心窗口" in listing
    assert "本周红牌偏多" in client.get("/monitor").get_data(as_text=True)
    assert "本周红牌偏多" in client.get("/monitor/notices?township=t2").get_data(as_text=True)
    assert "还没有督办" in client.get("/monitor/notices?township=t1").get_data(as_text=True)
    (row,) = [r for r in audit_rows(app) if r["action"] == "supervision.notice"]
    assert (row["target_kind"], row["target"]) == ("node", "t2")


def test_every_case_view_applies_the_quick_case_rule_with_the_minute(county: tuple[Flask, dict[str, Any]]) -> None:
    """The window's and the village's lists and case pages (views.list_cases, search.find_cases, views.show_case,
    given the minute by sanji_node.actions.cases) read a 即办件 accepted today as the scan does."""
    from sanji_domain import search

    app, ids = county
    day = at_day("2026-11-20")
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        conn = store.conn
        for minute, expected in ((11 * 60, "正常"), (18 * 60, "黄牌"), (None, "黄牌")):  # None: by the date alone
            shown = views.show_case(conn, ids["D"], day, minute=minute)
            (listed,) = [r for r in views.list_cases(conn, today=day, minute=minute) if r["case_id"] == ids["D"]]
            page = search.find_cases(conn, search.CaseFilter(village="v12"), today=day, minute=minute)
            assert [shown["warning"], listed["warning"], page["rows"][0]["warning"]] == [expected] * 3, minute


def test_the_same_actions_by_command_are_audited_as_the_command_line(county: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = county
    path = app.config["SANJI_PATH"]
    done = cli("cards", "scan", "--data", path, "--json")
    assert done.exit_code == 0, done.output
    done = cli("supervise", ids["local_no"]["A"], "--reason", "请说明超期原因", "--person", "周县长", "--data", path)
    assert done.exit_code == 0, done.output
    rows = {r["action"]: r for r in audit_rows(app)}
    assert rows["card.scan"]["who_login"] == "cli" and rows["card.scan"]["who_name"] == "命令行"
    assert (rows["supervision.notice"]["target"], rows["supervision.notice"]["reason"]) == (ids["A"], "请说明超期原因")
    page = signed_in(app).get("/monitor").get_data(as_text=True)
    assert "（命令行，新发 3 张牌）" in page  # by the machine's clock, after 2026-11-20: all three overdue
    assert "请说明超期原因" in page
