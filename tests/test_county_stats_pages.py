"""The county's 统计 pages through the Flask test client: every township and village by name (those
with no case too), the rates equal the from-scratch computation (`sanji_domain.stats`), the Excel
export holds the same numbers, the monthly 通报 renders.

The county is made by the real `county-server init`; townships, villages, the catalog, cases,
evaluations and cards are signed entries (each node's own key) folded by the real store.

    城关镇 (t1): 梅花村 (v11) 4 cases in November 2026 — two done on the day of acceptance, one late,
                 one still open with a 黄牌; evaluations 5 and 2 — and 桃源村 (v12) one on time;
    白沙镇 (t2): 新桥村 (v21) one late in November, one on time in October; 石门村 (v22) none;
    清水乡 (t3): no village, no case.
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from county_server.app import create_app
from county_server.cli import main as county_cli
from county_server.node import open_county_store
from sanji_domain import catalog as catalog_domain
from sanji_domain import commands, stats
from sanji_domain.commands import CST, Actor
from sanji_domain.demo import DemoPeople
from sanji_node.config import DataDir
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store

COUNTY = "430321"
DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
ELDER = "高龄津贴申请"  # 乡, 村受理乡办结, 10 working days
PASSWORD = "admin1-pass-2026"
TODAY = date(2026, 12, 3)

Places = dict[str, tuple[str, list[tuple[str, str]]]]  # township → (name, [(village, name)])
SMALL: Places = {
    "t1": ("城关镇", [("v11", "梅花村"), ("v12", "桃源村")]),
    "t2": ("白沙镇", [("v21", "新桥村"), ("v22", "石门村")]),
    "t3": ("清水乡", []),
}


def at(day: str, hour: int = 10) -> int:
    return int(datetime.combine(date.fromisoformat(day), time(hour), CST).timestamp() * 1000)


def key_of(node: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"county-stats:{node}".encode()).digest())


class County:
    """Signed writes into the county's store, as each node would make them."""

    def __init__(self, store: Store, county_key: SigningKey, places: Places, *, seed: int = 13) -> None:
        self.store, self.county_key, self.places = store, county_key, places
        self.divisions: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        for i, (t, (_, villages)) in enumerate(places.items()):
            self.divisions[t] = f"{COUNTY}{100 + i:03d}000"
            for j, (v, _) in enumerate(villages):
                self.divisions[v], self.parent[v] = f"{COUNTY}{100 + i:03d}{200 + j:03d}", t
        self.items = {i["name"]: i for i in catalog_domain.read_catalog(DEMO_CATALOG)}
        self.people = DemoPeople(seed=seed)

    def enrol_and_publish(self) -> None:
        """The townships and villages (signed members with their names) and the demo catalog, released."""
        members = []
        for t, (tname, villages) in self.places.items():
            members.append(
                {"node": t, "role": "township", "parent": "county", "name": tname, "division": self.divisions[t]}
            )
            members += [
                {"node": v, "role": "village", "parent": t, "name": vname, "division": self.divisions[v]}
                for v, vname in villages
            ]
        self.store.append(
            self.county_key, "county/*",
            [Record(KIND_MEMBER, m["node"], {**m, "pubkey": key_of(m["node"]).public.hex}, 1) for m in members],
        )  # fmt: skip
        released = at("2026-01-05")
        plan = catalog_domain.plan_release({}, list(self.items.values()), 1, released_ms=released, source="demo")
        self.store.append(self.county_key, "county/*", plan.records(released * 1000))

    def actor(self, node: str, person: str | None = None) -> Actor:
        if node == "county":
            return Actor("county", "county", f"{COUNTY}000000", None, "county", person)
        if node in self.parent:
            return Actor(node, "village", self.divisions[node], self.parent[node], "county", person)
        return Actor(node, "township", self.divisions[node], "county", "county", person)

    def run(self, cmd: commands.Command) -> commands.Command:
        author = cmd.feed.split("/")[0]
        self.store.append(self.county_key if author == "county" else key_of(author), cmd.feed, cmd.records)
        return cmd

    def case(
        self, place: str, day: str, *, accept: str | None = None, complete: str | None = None, item: str = ELDER
    ) -> str:
        """A case filed at `place` (a village, or a township's window) on `day`, accepted and completed by the
        township's clerk on those days."""
        request = self.people.case_request(self.items[item])
        made = self.run(commands.new_cases(self.store.conn, self.actor(place), [request], now_ms=at(day, 9)))
        cid: str = made.result["cases"][0]["case_id"]
        clerk = self.actor(self.parent.get(place, place), "李明")
        if accept:
            self.run(commands.transition(self.store.conn, clerk, cid, "accept", now_ms=at(accept, 10)))
        if complete:
            self.run(commands.transition(self.store.conn, clerk, cid, "complete", now_ms=at(complete, 15)))
        return cid

    def evaluate(self, village: str, cid: str, level: int, day: str) -> None:
        self.run(
            commands.evaluate(self.store.conn, self.actor(village), {"case": cid, "level": level}, now_ms=at(day, 16))
        )

    def card(self, cid: str, level: str, day: str) -> None:
        self.run(
            commands.issue_cards(self.store.conn, self.actor("county"), [(cid, level, "临近时限")], now_ms=at(day, 12))
        )


def build_county(path: Path, places: Places, script: Callable[[County], None]) -> Path:
    """A county data directory at `path` with `places`, the cases `script` makes, and the admin account."""
    done = CliRunner().invoke(county_cli, ["init", "--data", str(path), "--county", COUNTY, "--name", "示范县"])
    assert done.exit_code == 0, done.output
    data = DataDir(path)
    config = data.load()
    with open_county_store(data) as store:
        county = County(store, data.load_key(config), places)
        county.enrol_and_publish()
        script(county)
    done = CliRunner().invoke(
        county_cli,
        ["account", "add", "--data", str(path), "--name", "周县长", "--login", "admin1", "--role", "admin", "--password-env", "PW"],
        env={"PW": PASSWORD},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return path


def small_script(c: County) -> None:
    c.case("v11", "2026-11-02", accept="2026-11-02", complete="2026-11-02")
    instant = c.case("v11", "2026-11-03", accept="2026-11-03", complete="2026-11-03")
    c.case("v11", "2026-11-02", accept="2026-11-02", complete="2026-11-30")  # 10 working days: late
    open_case = c.case("v11", "2026-11-16", accept="2026-11-16")
    c.evaluate("v11", instant, 5, "2026-11-04")
    c.evaluate("v11", open_case, 2, "2026-11-20")
    c.card(open_case, "黄牌", "2026-11-27")
    c.case("v12", "2026-11-09", accept="2026-11-09", complete="2026-11-10")
    c.case("v21", "2026-10-12", accept="2026-10-12", complete="2026-10-14")
    c.case("v21", "2026-11-02", accept="2026-11-02", complete="2026-12-01")  # late, completed in December
    c.case("v21", "2026-10-20", accept="2026-10-20", complete="2026-11-25")  # late, completed in November
    c.case("t2", "2026-11-06", accept="2026-11-06")  # a walk-in at 白沙镇's window, still open


@pytest.fixture(scope="module")
def county_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_county(tmp_path_factory.mktemp("county-stats") / "c", SMALL, small_script)


class Clock:
    def __init__(self) -> None:
        self.ms = int(datetime.combine(TODAY, time(9), CST).timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms


@pytest.fixture()
def app(county_dir: Path, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    flask_app = create_app(path, clock_ms=Clock())
    flask_app.config["TESTING"] = True
    flask_app.config["SANJI_PATH"] = str(path)
    yield flask_app
    flask_app.extensions["county"].ws.close()


def login(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    resp = client.post("/login", data={"login": "admin1", "password": PASSWORD, "csrf_token": token.group(1)})
    assert resp.status_code == 302


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    c = app.test_client()
    login(c)
    return c


def section(page: str, anchor: str) -> str:
    """The HTML from the heading with id `anchor` to the next h2."""
    start = page.index(f'id="{anchor}"')
    end = page.find("<h2", start + 1)
    return page[start : end if end > 0 else None]


def row_of(html: str, label: str) -> list[str]:
    """The cells' text of the table row whose first (or second) cell is `label`."""
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        texts = [" ".join(c) for c in cells]
        if label in texts[:2]:
            return texts
    raise AssertionError(f"no row for {label!r}")


def domain(app: Flask, group_by: str, first: date, last: date) -> dict[str, dict[str, Any]]:
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        rows = stats.statistics(store.conn, group_by=group_by, period=(first, last), today=TODAY)
    return {r["label"]: r for r in rows}


NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


def test_every_township_and_village_by_name_with_the_domain_s_rates(app: Flask, client: FlaskClient) -> None:
    page = client.get("/stats?period=2026-11").get_data(as_text=True)
    assert "2026年11月" in page
    for name in ("城关镇", "白沙镇", "清水乡", "梅花村", "桃源村", "新桥村", "石门村"):
        assert name in page, name
    for node_id in ("t1", "t2", "t3", "v11", "v12", "v21", "v22"):
        assert f">{node_id}<" not in page and f"{node_id} " not in re.sub(r"<[^>]+>", "", page)
    villages = section(page, "villages")
    by_domain = domain(app, "village", *NOVEMBER)
    for name in ("梅花村", "桃源村", "新桥村"):
        cells = row_of(villages, name)
        d = by_domain[name]
        assert cells[1:3] == [str(d["filed"]), str(d["completions"])], name
        assert cells[3].startswith(d["on_time_rate"]) and f"{d['on_time']}/{d['completions']}" in cells[3]
        assert cells[4].startswith(d["instant_rate"]) and cells[6].startswith(d["satisfaction_rate"])
    # 梅花村 in November: 3 completions, 2 on time and on the day of acceptance, evaluations 5 and 2
    assert row_of(villages, "梅花村")[1:7] == ["4", "3", "66.7% 2/3", "66.7% 2/3", "6.7", "50.0% 1/2"]
    assert row_of(villages, "石门村")[1:] == ["0", "0", "—", "—", "—", "—", "0", "0"]  # no case, not dropped
    ranking = section(page, "ranking")
    by_township = domain(app, "township", *NOVEMBER)
    for name in ("城关镇", "白沙镇"):
        assert row_of(ranking, name)[4].startswith(by_township[name]["on_time_rate"])
    assert row_of(ranking, "城关镇")[0] == "1" and row_of(ranking, "白沙镇")[0] == "2"
    assert row_of(ranking, "清水乡")[0] == "—" and "不参与排名" in page  # no completion: not ranked
    assert row_of(ranking, "城关镇")[-2:] == ["1", "0"]  # the 黄牌
    items = section(page, "items")
    d = domain(app, "item", *NOVEMBER)[ELDER]
    assert row_of(items, ELDER)[1:4] == ["7", "5", f"{d['on_time_rate']} {d['on_time']}/5"] and d["filed"] == 7
    assert row_of(items, "生育登记")[1:] == ["0", "0", "—", "—", "—", "—", "0", "0"]  # an item in use, no case
    assert items.index(ELDER) < items.index("生育登记")  # the items people used come first
    assert page.count("<svg") >= 2 and 'class="bar-ontime"' in page and "<polyline" in page


def test_a_quarter_and_a_year_sum_their_months(app: Flask, client: FlaskClient) -> None:
    for period, first, last in (
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
    ):
        page = client.get(f"/stats?period={period}").get_data(as_text=True)
        d = domain(app, "township", first, last)["白沙镇"]
        assert d["completions"] == 3
        assert row_of(section(page, "ranking"), "白沙镇")[4] == f"{d['on_time_rate']} {d['on_time']}/{d['completions']}"
    assert "2026年第四季度" in client.get("/stats?period=2026-Q4").get_data(as_text=True)
    page = client.get("/stats?period=2026-13").get_data(as_text=True)
    assert "统计期间" in page and "看不懂" in page  # a bad period is said in Chinese, the month shown instead


def test_the_excel_export_has_the_page_s_numbers_and_names(app: Flask, client: FlaskClient) -> None:
    resp = client.get("/stats/export?by=village&period=2026-11")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert "%E6%8C%89%E6%9D%91" in resp.headers["Content-Disposition"]  # 按村 in the file name
    sheet = openpyxl.load_workbook(BytesIO(resp.data)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert "示范县" in str(values[0][0]) and "2026年11月" in str(values[0][0])
    header = values[1]
    assert header[:6] == ["乡镇", "村(社区)", "收件数", "办结数", "按时办结数", "按时办结率"]
    rows = {r[1]: dict(zip(header, r, strict=True)) for r in values[2:]}
    assert set(rows) >= {"梅花村", "桃源村", "新桥村", "石门村"}
    d = domain(app, "village", *NOVEMBER)["梅花村"]
    got = rows["梅花村"]
    assert got["乡镇"] == "城关镇"
    assert [str(got[h]) for h in ("收件数", "办结数", "按时办结数", "按时办结率", "即时办结率", "满意率")] == [
        str(d["filed"]), str(d["completions"]), str(d["on_time"]), d["on_time_rate"], d["instant_rate"], d["satisfaction_rate"]
    ]  # fmt: skip
    assert str(rows["石门村"]["按时办结率"]) == "—" and str(rows["石门村"]["收件数"]) == "0"
    townships = openpyxl.load_workbook(BytesIO(client.get("/stats/export?by=township&period=2026-11").data)).active
    names = [r[0].value for r in townships.iter_rows(min_row=3)]
    assert names == ["城关镇", "白沙镇", "清水乡"]
    assert client.get("/stats/export?by=nothing").status_code == 404


def test_defaults_the_township_filter_and_the_window_row(client: FlaskClient) -> None:
    page = client.get("/stats").get_data(as_text=True)  # the clock says 2026-12-03: this month
    assert '<span class="period-label">2026年12月</span>' in page
    assert '<option value="2026-12" selected>' in page and '<option value="2026-Q4">' in page
    page = client.get("/stats?period=2026-11").get_data(as_text=True)
    assert re.search(r'<tr class="best">\s*<td class="num">1</td><td>城关镇</td>', page)
    assert re.search(r'<tr class=" lowest">\s*<td class="num">2</td><td>白沙镇</td>', page)
    villages = section(page, "villages")
    # 白沙镇's window case is in its own row, so the villages add up to the township
    assert row_of(villages, "（乡镇窗口直接收件）")[1:3] == ["1", "0"]
    assert row_of(section(page, "ranking"), "白沙镇")[2] == "2"  # 收件 in November: 新桥村 1 and the window 1
    only = section(client.get("/stats?period=2026-11&township=t2").get_data(as_text=True), "villages")
    assert "新桥村" in only and "石门村" in only and "梅花村" not in only


def test_the_monthly_bulletin(client: FlaskClient) -> None:
    page = client.get("/stats/bulletin").get_data(as_text=True)  # last month by default
    assert "示范县政务服务月度通报（2026年11月）" in page
    assert page == client.get("/stats/bulletin?month=2026-11").get_data(as_text=True)
    assert "按时办结率 60.0%（上月 100.0%）" in page  # 3 of 5 completions on time; October: 1 of 1
    assert "按时办结率最高：</b>城关镇" in page and "按时办结率最低：</b>白沙镇" in page
    assert "本月无办结：清水乡" in page
    assert "黄牌 1 张、红牌 0 张" in page
    assert "<svg" in page and "@page" not in page  # the A4 rules live in the style sheets
    css = client.get("/static/bulletin.css")
    assert css.status_code == 200 and b".sheet.bulletin" in css.data
    css.close()


def test_the_summary_follows_new_entries_without_recomputing_everything(app: Flask, client: FlaskClient) -> None:
    client.get("/stats?period=2026-11")
    data = DataDir(app.config["SANJI_PATH"])
    with open_county_store(data) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM stats_dirty").fetchone()[0] == 0
        c = County(store, data.load_key(data.load()), SMALL, seed=5)
        c.case("v22", "2026-11-05", accept="2026-11-05", complete="2026-11-05")
        # only the new case waits to be counted
        assert store.conn.execute("SELECT COUNT(*) FROM stats_dirty").fetchone()[0] == 1
    page = client.get("/stats?period=2026-11").get_data(as_text=True)
    assert row_of(section(page, "villages"), "石门村")[1:4] == ["1", "1", "100.0% 1/1"]


def test_a_busy_database_shows_the_last_figures_with_a_notice(
    county_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another writer (a township's upload) holds the database past the busy timeout, the page shows
    the figures of the last update and says so, instead of an error."""
    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    monkeypatch.setenv("SANJI_BUSY_TIMEOUT_MS", "50")
    flask_app = create_app(path, clock_ms=Clock())
    flask_app.config["TESTING"] = True
    try:
        client = flask_app.test_client()
        login(client)
        with open_county_store(DataDir(path)) as store:
            store.conn.execute("BEGIN IMMEDIATE")
            store.conn.execute("INSERT OR IGNORE INTO stats_dirty (case_id) VALUES ('*')")
            page = client.get("/stats?period=2026-11").get_data(as_text=True)
            store.conn.rollback()
        assert "统计数字正在更新" in page and "城关镇" in page
    finally:
        flask_app.extensions["county"].ws.close()


def test_the_summary_equals_the_domain_after_random_signed_case_events(tmp_path: Path) -> None:
    """Cases filed, accepted, paused (补正, 挂起), resumed, completed, delivered, voided and withdrawn as real
    signed entries folded by the county's store, evaluations and cards among them, the summary brought up to
    date at random moments: it equals `sanji_domain.stats` computed from scratch."""
    from county_server import stats_summary
    from sanji_domain.states import ACTIONS
    from sync_protocol.errors import SyncError

    rng = random.Random(7)
    weights = {"accept": 4, "start": 1, "suspend": 2, "resume": 3, "request_supplement": 2, "supplement": 3,
               "complete": 5, "deliver": 1, "void": 1, "withdraw": 1}  # fmt: skip

    def move_for(state: str) -> str | None:
        allowed = [a for a in weights if state in ACTIONS[a].sources and "clerk" in ACTIONS[a].sources[state]]
        return rng.choices(allowed, [weights[a] for a in allowed])[0] if allowed else None

    def script(c: County) -> None:
        day = date(2026, 9, 28)
        cases: list[tuple[str, str]] = []
        for _ in range(220):
            day += timedelta(days=rng.choice([0, 0, 0, 1, 1, 2]))
            when = day.isoformat()
            roll = rng.random()
            if roll < 0.15 or not cases:
                village = rng.choice(["v11", "v12", "v21"])
                cases.append((c.case(village, when, item=rng.choice([ELDER, "老年优待证办理", "生育登记"])), village))
                continue
            cid, village = rng.choice(cases)
            try:
                state = c.store.conn.execute("SELECT state FROM cases WHERE case_id = ?", (cid,)).fetchone()[0]
                move = move_for(state)
                if roll < 0.85 and move is not None:
                    who = c.actor(c.parent[village], "李明")
                    data = (
                        {"reason": "材料不全"} if move in ("suspend", "request_supplement", "void", "withdraw") else {}
                    )
                    c.run(
                        commands.transition(c.store.conn, who, cid, move, data, now_ms=at(when, rng.randrange(9, 17)))
                    )
                elif roll < 0.93:
                    c.evaluate(village, cid, rng.randint(1, 5), when)
                else:
                    c.card(cid, rng.choice(["预警", "黄牌", "红牌"]), when)
            except SyncError:
                pass  # not allowed here (a card on a case already carded the same way): nothing written
            if rng.random() < 0.1:
                stats_summary.refresh(c.store.db, today=TODAY)

    path = build_county(tmp_path / "c", SMALL, script)
    with open_county_store(DataDir(path)) as store:
        stats_summary.refresh(store.db, today=TODAY)
        completions = store.conn.execute("SELECT COUNT(*) FROM cases WHERE completed_ms IS NOT NULL").fetchone()[0]
        paused = store.conn.execute("SELECT COUNT(*) FROM cases WHERE pauses != '[]'").fetchone()[0]
        assert completions >= 10 and paused >= 3  # the script made what it should test
        for text in ("2026-10", "2026-11", "2026-Q4", "2026"):
            period = stats_summary.parse_period(text)
            first = date.fromisoformat(period.first + "-01")
            last = date.fromisoformat(period.last + "-01").replace(day=28) + timedelta(days=4)
            last -= timedelta(days=last.day)
            got = stats_summary.figures(store.conn, period)
            for group_by, rows in (("township", got["townships"]), ("item", got["items"]), ("month", got["months"])):
                want = {
                    r["group"]: r
                    for r in stats.statistics(store.conn, group_by=group_by, period=(first, last), today=TODAY)
                }
                for r in rows:
                    w = want.get(r["group"], stats.empty_row(group_by, r["group"], ""))
                    for key in (
                        "filed",
                        "completions",
                        "on_time",
                        "instant",
                        "handling_days",
                        "evaluations",
                        "satisfied",
                    ):
                        assert r[key] == w[key], (text, group_by, r["label"], key)
            village_rows = {r["group"]: r for _, rows in got["village_groups"] for r in rows if r["group"]}
            for w in stats.statistics(store.conn, group_by="village", period=(first, last), today=TODAY):
                assert village_rows[w["group"]]["on_time_rate"] == w["on_time_rate"]
                assert village_rows[w["group"]]["satisfaction_rate"] == w["satisfaction_rate"]


def test_the_servers_background_refresh_leaves_nothing_for_the_page(app: Flask) -> None:
    """`county-server serve` runs `figures_job.refresh_once` at start and every minute: after it, nothing is
    left noted for the statistics, and the 电子监察 promise dates are computed."""
    from county_server.figures_job import refresh_once
    from county_server.node import load_county

    data = DataDir(app.config["SANJI_PATH"])
    with open_county_store(data) as store:
        c = County(store, data.load_key(data.load()), SMALL, seed=6)
        c.case("v22", "2026-11-06", accept="2026-11-06", complete="2026-11-06")
        assert store.conn.execute("SELECT COUNT(*) FROM stats_dirty").fetchone()[0] >= 1
    cases, _promises = refresh_once(lambda: load_county(str(data.path)), clock_ms=Clock())
    assert cases >= 1
    with open_county_store(data) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM stats_dirty").fetchone()[0] == 0
        assert store.conn.execute("SELECT COUNT(*) FROM monitor_cases WHERE promise IS NULL").fetchone()[0] == 0
    assert refresh_once(lambda: load_county(str(data.path)), clock_ms=Clock()) == (0, 0)  # nothing left
