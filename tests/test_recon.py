"""对账, the county's home page: figures per township and village by name, 静默 after N working days (the
clock moved, a weekend not counted), filters, sorting, the Excel export, completeness by month and week.

A county data directory made by the real `county-server` commands; the townships' and villages' entries are
signed with their own keys and stored in the county's database as a sync would store them (the triggers
that keep `recon_daily` run as they do in production). The pages' clock is injected.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
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

from county_server import node_admin, receipts, reconcile
from county_server.app import create_app
from county_server.cli import main as county_cli
from county_server.node import load_county
from sanji_domain import commands, kinds
from sanji_domain.commands import CST, Actor
from sanji_domain.demo import DemoPeople
from sanji_node import state
from sync_protocol.entries import Record
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store

from .network import seeded_key
from .test_county_pages import PASSWORDS, login, token
from .test_township_pages import Clock

DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
ITEM = "城乡居民医保参保登记"
NAMES = {"t1": "城关镇", "t2": "花石镇", "v11": "梅花村", "v12": "新桥村", "v21": "白石村"}
DIVISIONS = {"t1": "430321101000", "t2": "430321102000", "v11": "430321101201", "v12": "430321101202",
             "v21": "430321102201"}  # fmt: skip
PARENTS = {"t1": "county", "t2": "county", "v11": "t1", "v12": "t1", "v21": "t2"}
KEYS = {n: seeded_key(n) for n in NAMES}


def at(text: str) -> int:
    """ms of a China-time moment, e.g. "2026-03-18 10:00"."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CST).timestamp() * 1000)


NOW = at("2026-03-18 10:00")  # a Wednesday; the week began on Monday 16 March
FILED = {  # village: filing moments of its cases (China time)
    "v11": ["2026-03-18 08:30", "2026-03-18 09:10", "2026-03-16 15:00", "2026-03-02 09:00", "2026-03-02 09:05",
            "2026-03-03 11:00", "2026-02-27 10:00"],
    "v21": ["2026-03-17 10:00"],
}  # fmt: skip


# when the county receipted them (after the case filed at the key): 梅花村's February and early March cases came
# up on 3 March, 白石村's case of Tuesday on Wednesday morning
RECEIVED = {
    "v11": {"2026-03-03 11:00": ["2026-03-03 12:00"], "2026-03-16 15:00": ["2026-03-16 16:00"],
            "2026-03-18 09:10": ["2026-03-18 09:30"]},
    "v21": {"2026-03-17 10:00": ["2026-03-18 08:00"]},
}  # fmt: skip


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(county_cli, list(args), env=env, catch_exceptions=False)


def actor(node: str) -> Actor:
    return Actor(node, "village", DIVISIONS[node], PARENTS[node], "county", None)


def contact(node: str, last_seen_ms: int, waiting: int = 0) -> dict[str, Any]:
    return {"node": node, "last_seen_ms": last_seen_ms, "waiting": waiting, "forks": 0, "quarantined": 0,
            "backlog": 0, "oldest_unsent_hlc": 0}  # fmt: skip


def build(path: Path) -> None:
    assert cli("init", "--data", str(path), "--county", "430321", "--name", "示范县").exit_code == 0
    assert cli("catalog", "import", "--data", str(path), str(DEMO_CATALOG), "--yes").exit_code == 0
    county = load_county(str(path))
    people = DemoPeople(seed=13)
    spec = next(i for i in json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))["items"] if i["name"] == ITEM)
    with county.open_store() as store:
        members = [
            {"division": DIVISIONS[n], "node": n, "parent": PARENTS[n], "name": NAMES[n],
             "role": "township" if n[0] == "t" else "village", "pubkey": KEYS[n].public.hex}
            for n in NAMES
        ]  # fmt: skip
        hlc = at("2026-02-01 09:00") * 1000
        store.append(
            county.key, "county/*", [Record(KIND_MEMBER, m["node"], m, hlc + i) for i, m in enumerate(members)]
        )
        for village, moments in FILED.items():
            for moment in sorted(moments):  # an hlc never goes back in its feed
                cmd = commands.new_cases(store.conn, actor(village), [people.case_request(spec)], now_ms=at(moment))
                store.append(KEYS[village], cmd.feed, cmd.records)
                for received in RECEIVED.get(village, {}).get(moment, []):  # the county's receipt, at its clock
                    receipts.write_receipts(store, county.key, {village}, at(received) * 1000)
        # the townships' reports on their villages (梅花村 this morning, 白石村 last Friday), and 城关镇 reporting
        # on 花石镇's village: refused by the fold (a 拒收 at 城关镇)
        for township, body, moment in (
            ("t1", contact("v11", at("2026-03-18 09:00"), waiting=4), "2026-03-18 09:20"),
            ("t2", contact("v21", at("2026-03-13 16:00")), "2026-03-13 16:30"),
            ("t1", contact("v21", at("2026-03-18 09:00")), "2026-03-18 09:21"),
        ):
            hlc = at(moment) * 1000
            store.append(KEYS[township], f"{township}/up", [Record(kinds.NODE_CONTACT, body["node"], body, hlc)])
        state.record_peer(store, "t1", "pull", at("2026-03-18 09:20"))
        state.record_peer(store, "t2", "pull", at("2026-03-13 16:30"))
    env = {"PW": PASSWORDS["admin1"]}
    assert cli("account", "add", "--data", str(path), "--name", "周县长", "--login", "admin1", "--role", "admin",
               "--password-env", "PW", env=env).exit_code == 0  # fmt: skip
    env = {"PW": PASSWORDS["jiancha"]}
    assert cli("account", "add", "--data", str(path), "--name", "钱监察", "--login", "jiancha", "--role", "inspector",
               "--password-env", "PW", env=env).exit_code == 0  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recon") / "county"
    build(path)
    return path


@pytest.fixture
def clock() -> Clock:
    moved = Clock()
    moved.ms = NOW
    return moved


@pytest.fixture
def path(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "county")
    return tmp_path / "county"


@pytest.fixture
def app(path: Path, clock: Clock) -> Iterator[Flask]:
    flask_app = create_app(path, clock_ms=clock)
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["county"].ws.close()


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "admin1")
    return client


def figures(client: FlaskClient, query: str = "") -> dict[str, Any]:
    resp = client.get("/recon.json" + query)
    assert resp.status_code == 200
    data: dict[str, Any] = resp.get_json()
    return data


def by_node(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["node"]: r
        for r in [*(g["township"] for g in data["groups"]), *(v for g in data["groups"] for v in g["villages"])]
    }


def test_each_township_and_village_by_name_with_its_cases_contact_and_problems(admin: FlaskClient) -> None:
    data = figures(admin)
    assert [g["township"]["name"] for g in data["groups"]] == ["城关镇", "花石镇"]  # by name, villages grouped
    # in the order of their division codes (区划代码), villages under their township
    assert [[v["name"] for v in g["villages"]] for g in data["groups"]] == [["梅花村", "新桥村"], ["白石村"]]
    rows = by_node(data)
    # cases received at the county (the day of its receipt): today 2, this week (from Monday) 3, this month 7
    # (February's case came up on 3 March); by the day filed: 2, 3, 6
    assert [rows["v11"][k] for k in ("cases_today", "cases_week", "cases_month")] == [2, 3, 7]
    assert [rows["v11"][k] for k in ("filed_today", "filed_week", "filed_month")] == [2, 3, 6]
    assert [rows["v21"][k] for k in ("cases_today", "cases_week", "cases_month")] == [1, 1, 1]  # filed Tuesday
    assert [rows["v21"][k] for k in ("filed_today", "filed_week", "filed_month")] == [0, 1, 1]
    assert [rows["v12"][k] for k in ("cases_today", "cases_week", "cases_month")] == [0, 0, 0]
    assert data["groups"][0]["total"] == {"cases_today": 2, "cases_week": 3, "cases_month": 7}
    assert data["summary"]["cases_month"] == 8 and data["summary"]["villages"] == 3
    # last contact: the township's report for its villages, direct for the townships
    assert (rows["v11"]["contact_via"], rows["v11"]["last_contact_ms"]) == ("township", at("2026-03-18 09:00"))
    assert rows["v11"]["waiting_laptop"] == 4  # on the laptop, as last reported
    assert (rows["t1"]["contact_via"], rows["t1"]["last_contact_ms"]) == ("direct", at("2026-03-18 09:20"))
    assert rows["v12"]["last_contact_ms"] is None
    # 静默 (3 working days): 花石镇 and 白石村 last seen on Friday, 新桥村 never
    assert {n for n, r in rows.items() if r["silent"]} == {"t2", "v21", "v12"}
    assert rows["t2"]["quiet_workdays"] == 3 and rows["v11"]["quiet_workdays"] == 0
    assert rows["t1"]["rejects"] == rows["t1"]["conflicts"] == 1  # its report on 白石村 was refused
    assert rows["t1"]["problems"] == ["冲突"]
    assert data["silent_workdays"] == 3
    # 本月缺报: working days of March through today with no contact known (梅花村: only today)
    assert rows["v11"]["gaps"] == 12 and rows["v12"]["gaps"] == 13  # 13 working days: 2–6, 9–13, 16–18


def test_recon_daily_is_kept_by_the_triggers_and_equals_a_count_of_the_entries(path: Path) -> None:
    with Store(path / "node.sqlite") as store:
        kept = store.conn.execute(
            "SELECT node, day, cases, entries FROM recon_daily WHERE entries > 0 ORDER BY 1, 2"
        ).fetchall()
        counted = store.conn.execute(
            "SELECT substr(feed, 1, instr(feed, '/') - 1), date(hlc / 1000000, 'unixepoch', '+8 hours'), "
            "SUM(kind = 'case.new'), COUNT(*) FROM entries GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        received = store.conn.execute(
            "SELECT node, day, received_cases FROM recon_daily WHERE received_entries > 0 ORDER BY 1, 2"
        ).fetchall()
    assert kept == counted and ("v11", "2026-03-02", 2, 2) in kept
    # received: the entries each county receipt covers, on the receipt's day (the county's clock)
    assert received == [("v11", "2026-03-03", 4), ("v11", "2026-03-16", 1), ("v11", "2026-03-18", 2),
                        ("v21", "2026-03-18", 1)]  # fmt: skip


def test_a_county_upgraded_to_the_summary_gets_it_filled_from_what_it_holds(path: Path) -> None:
    def daily() -> list[tuple[Any, ...]]:
        with Store(path / "node.sqlite") as store:
            return store.conn.execute("SELECT * FROM recon_daily ORDER BY node, day").fetchall()

    before = daily()
    conn = sqlite3.connect(path / "node.sqlite")
    with conn:  # the county as it was before the migration
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'recon_%'"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE recon_daily")
        conn.execute("DELETE FROM _sqlite_migrations WHERE migration_set = 'sanji.county.recon'")
    conn.close()
    with load_county(str(path)).open_store():
        pass
    assert daily() == before and len(before) > 5


def test_silent_after_n_working_days_and_a_weekend_does_not_count(admin: FlaskClient, clock: Clock) -> None:
    clock.ms = at("2026-03-16 10:00")  # Monday: 花石镇 last seen on Friday, one working day ago
    rows = by_node(figures(admin))
    assert rows["t2"]["quiet_workdays"] == 1 and not rows["t2"]["silent"]
    clock.ms = at("2026-03-17 18:00")  # Tuesday: two
    assert not by_node(figures(admin))["t2"]["silent"]
    clock.ms = at("2026-03-18 08:00")  # Wednesday: three
    assert by_node(figures(admin))["t2"]["silent"]


def test_the_threshold_is_a_county_setting_changed_from_the_page_with_an_audit_row(
    app: Flask, admin: FlaskClient
) -> None:
    page = admin.get("/").get_data(as_text=True)
    assert "连续 <strong>3</strong> 个工作日没有联系" in page
    done = admin.post("/recon/settings", data={"silent_workdays": "4", "reason": "山区村网络不稳定",
                                               "csrf_token": token(page)}, follow_redirects=True)  # fmt: skip
    assert "已设置：连续 4 个工作日没有联系即标为静默" in done.get_data(as_text=True)
    data = figures(admin)
    assert data["silent_workdays"] == 4 and not by_node(data)["t2"]["silent"] and by_node(data)["v12"]["silent"]
    audit = admin.get("/audit").get_data(as_text=True)
    assert "修改设置" in audit and "山区村网络不稳定" in audit
    bad = admin.post("/recon/settings", data={"silent_workdays": "0", "csrf_token": token(page)}, follow_redirects=True)
    assert "须为 1–60 的整数" in bad.get_data(as_text=True) and figures(admin)["silent_workdays"] == 4
    db = app.extensions["county"].ws.store.db
    settings = list(db.query("SELECT reason FROM audit_log WHERE action = 'settings'"))
    assert settings == [{"reason": "山区村网络不稳定"}]  # the refused value wrote none
    inspector = app.test_client()
    login(inspector, "jiancha")
    page = inspector.get("/").get_data(as_text=True)
    assert "连续几个工作日" not in page  # an inspector sees the threshold, not the form
    refused = inspector.post("/recon/settings", data={"silent_workdays": "2", "csrf_token": token(page)})
    assert refused.status_code == 403 and figures(admin)["silent_workdays"] == 4


def test_a_conflict_acknowledged_on_the_nodes_page_is_no_longer_a_problem(admin: FlaskClient, app: Flask) -> None:
    county = app.extensions["county"]
    feed, seq = county.ws.store.conn.execute("SELECT feed, seq FROM fold_rejects").fetchone()
    who = {"login": "admin1", "name": "周县长"}
    county.ws.read(lambda _c: node_admin.acknowledge(county.ws.store, feed, seq, "城关镇误报", who=who, now_ms=NOW))
    t1 = by_node(figures(admin))["t1"]
    assert (t1["conflicts"], t1["problems"], t1["rejects"]) == (0, [], 1)  # still listed by `county-server nodes`


def test_filters_and_sorting(admin: FlaskClient) -> None:
    only_t2 = figures(admin, "?township=t2")
    assert [g["township"]["node"] for g in only_t2["groups"]] == ["t2"]
    silent = figures(admin, "?silent=1")
    assert {r for r in by_node(silent)} == {"t2", "v21", "v12"} | {"t1"}  # 城关镇 kept as the heading of 新桥村
    assert [v["node"] for v in silent["groups"][0]["villages"]] == ["v12"]
    problems = figures(admin, "?problems=1&township=t1")
    assert [v["node"] for v in problems["groups"][0]["villages"]] == ["v12"]
    by_month = figures(admin, "?sort=month")  # most cases received this month first
    assert [v["node"] for v in by_month["groups"][0]["villages"]] == ["v11", "v12"]
    by_contact = figures(admin, "?sort=contact")
    assert [g["township"]["node"] for g in by_contact["groups"]] == ["t2", "t1"]  # the quietest first
    assert figures(admin, "?sort=nonsense")["filters"]["sort"] == "name"


def test_the_page_shows_names_the_silent_flag_and_links_each_problem_to_its_node(admin: FlaskClient) -> None:
    page = admin.get("/").get_data(as_text=True)
    for name in NAMES.values():
        assert name in page
    assert "静默 3 个工作日" in page and "从未联系" in page
    assert 'href="/nodes/v12"' in page and 'href="/nodes/t1"' in page  # 新桥村 静默, 城关镇 拒收
    assert 'href="/nodes/v11"' not in page  # 梅花村 has no problem
    assert 'href="/?sort=month"' in page and 'href="/?sort=contact"' in page  # sort by a column's heading
    assert "v21" not in page.replace('href="/nodes/v21"', "").replace('value="', "")  # ids only in links
    filtered = admin.get("/?township=t2&silent=1").get_data(as_text=True)
    assert "白石村" in filtered and "梅花村" not in filtered


def test_export_to_excel_with_chinese_headers_and_names(admin: FlaskClient) -> None:
    resp = admin.get("/recon/export")
    assert resp.status_code == 200 and "xlsx" in resp.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(BytesIO(resp.data)).active
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    assert rows[0][:4] == ["乡镇", "名称", "类别", "最后联系"]
    assert [r[1] for r in rows[1:]] == ["城关镇", "梅花村", "新桥村", "花石镇", "白石村"]
    meihua = rows[2]
    assert meihua[0] == "城关镇" and meihua[5:8] == [2, 3, 7] and meihua[3] == "2026-03-18 09:00"
    assert rows[3][16] == "静默" and rows[3][3] == "从未联系"


def test_completeness_by_month_and_week_with_the_rate_per_township(admin: FlaskClient) -> None:
    page = admin.get("/completeness?period=2026-03").get_data(as_text=True)
    assert "2026年3月" in page and "<svg" in page and "各乡镇上报率" in page and "bar-reported" in page
    with admin.application.app_context():
        pass
    county = admin.application.extensions["county"]
    c = county.ws.read(lambda _c: reconcile.completeness(county.ws.store, "2026-03", now_ms=NOW))
    assert c["expected_day"] == "2026-03-16"  # the 3rd working day back from today (Wed)
    states = {v["name"]: v["state_name"] for v in c["villages"]}
    assert states == {"梅花村": "已上报", "新桥村": "静默", "白石村": "迟报"}  # 白石村: quiet since Friday
    assert [(t["name"], t["rate_pct"]) for t in c["townships"]] == [("城关镇", 50), ("花石镇", 0)]
    feb = county.ws.read(lambda _c: reconcile.completeness(county.ws.store, "2026-02", now_ms=NOW))
    assert {v["name"]: v["state"] for v in feb["villages"]} == dict.fromkeys(["梅花村", "新桥村", "白石村"], "silent")
    week = county.ws.read(lambda _c: reconcile.completeness(county.ws.store, "2026-W11", now_ms=NOW))
    assert week["first"] == "2026-03-09" and {v["name"]: v["state"] for v in week["villages"]}["白石村"] == "late"
    bad = admin.get("/completeness?period=2026-13", follow_redirects=True).get_data(as_text=True)
    assert "期间" in bad and "无法识别" in bad


def test_cli_nodes_still_lists_every_node(path: Path) -> None:
    out = json.loads(cli("nodes", "--data", str(path), "--json").output)["nodes"]
    rows = {r["node"]: r for r in out}
    assert rows["v11"]["contact_via"] == "township" and rows["t1"]["rejects"] == 1
    assert rows["v11"]["latest_entry_ms"] == at("2026-03-18 09:10")


def test_the_command_line_shows_the_same_figures_as_json_text_and_excel(path: Path, tmp_path: Path) -> None:
    data = json.loads(cli("reconcile", "--data", str(path), "--json").output)
    assert [g["township"]["name"] for g in data["groups"]] == ["城关镇", "花石镇"]
    assert by_node(data)["v11"]["contact_via"] == "township" and by_node(data)["v12"]["silent"]
    out = cli("reconcile", "--data", str(path), "--silent", "--export", str(tmp_path / "对账.xlsx")).output
    assert "  新桥村：最后联系 从未联系" in out and "[静默]" in out  # by the real clock, every one is silent now
    sheet = openpyxl.load_workbook(tmp_path / "对账.xlsx").active
    assert "新桥村" in [c.value for c in sheet["B"]]
    assert cli("settings", "set", "silent_workdays", "5", "--data", str(path)).exit_code == 0
    assert json.loads(cli("reconcile", "--data", str(path), "--json").output)["silent_workdays"] == 5
    month = cli("completeness", "--data", str(path), "--period", "2026-03").output
    assert "2026年3月：已上报 0，迟报 2，静默 1" in month and "  新桥村：静默" in month
    bad = cli("completeness", "--data", str(path), "--period", "March")
    assert bad.exit_code != 0 and "无法识别" in bad.output
