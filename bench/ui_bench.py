"""UI benchmark: server time of the township clerk's and the village agent's pages over a full township.

    python bench/ui_bench.py [--cases 10000] [--villages 25] [--days 60] [--requests 50]
                             [--cache DIR] [--json FILE] [--mode routes|actions] [--only PAGE,…] [--profile [all]]
    python bench/ui_bench.py --county [--townships 20] [--villages 25] [--cases 100000] [--silent 15] [--forked 2]
                             [--apply-cases 1000] [--page NAME=PATH …] [--no-apply] [--cache DIR] [--json FILE]
    python bench/ui_bench.py --county-data DIR [--requests N] [--page NAME=PATH …]   # a county as it is, no fill

`--county` builds the whole county instead (20 townships × 25 villages, 100,000 cases, some villages
quiet and some forked) and times the county administrator's pages (对账, 统计, 电子监察; goal p95
< 0.5 s) and the cost of applying 1,000 cases at the county: see bench/ui_county.py. The rest of
this docstring is the township mode.

What it builds (once; with --cache DIR a second run finds it there and skips the fill):

* a county, one township (t1, 花石镇便民服务中心) and V villages (v01 …, 梅花村 …), each with
  its own data directory, made by the real CLIs exactly as an IT officer makes them
  (`county-server init`, `catalog import` of the demo catalog, `enroll --name`,
  `township-node init --token`, `village-agent init --token --passphrase-env`). The CLIs
  run in this process (click's runner) and the county and the township serve their sync
  API in threads of this process (waitress on 127.0.0.1:0), so enrolment goes over real
  HTTP with real keys; the villages' personal data is sealed under the agent's passphrase
  ($SANJI_BENCH_PASSPHRASE, as sync_bench sets it).
* N valid cases filed by the villages (N / V each; `DemoPeople.case_request` villagers with
  valid 身份证号, every required material, demo items a village may file), spread over the
  working days of the last D days, and their lives: accepted (some 预受理 first), 补齐补正 and
  supplied, 不予受理, 撤回, 办理, 挂起 and resumed, completed on time or late, county items
  转报 and completed at the county, 送达, 好差评 (a few 差评). Every step is a real domain
  command (`sanji_domain.commands`: the one the pages and the CLI call) by the node whose
  role takes it, with the clock set to the step's day, appended and signed at that node.
  Day by day, the villages' feeds go up to the township, the township's to the county (which
  receipts them and gives 办件编号 as its numbering job does), and everything comes back down,
  store to store through the real plan → read_batch → verify-and-apply path (`Store.plan`,
  `read_batch`, `receive_page`: what a sync session does, minus HTTP). So the township's and
  the villages' folded tables are exactly what production folds.

What it measures (SERVER time: the WSGI call, no network, no browser), --requests N each
(default 50, after one untimed warm-up request), each on another case or another person:

* the township's clerk pages through its Flask app (`township_node.app.create_app`, Flask
  test client, signed in with a clerk account made by `township-node clerk add`):
  待办 `/` (first page, most urgent first, and page 50), 办件详情 `/case/<case_id>`,
  办件查询 `/cases` by applicant name, by 身份证号 and by 查询码 (the text is POSTed and the
  list follows by redirect: both requests are timed), 统计 `/stats` (按村 and 按月 tables)
  and `/stats?month=` (last month, by village);
* one village with its N / V cases, through the village agent's app signed in with the
  agent's passphrase: 首页 `/`, 我的办件 `/cases`, and a search by name (POST, then the list),
  where every applicant's personal data is sealed and opened row by row.

`--mode actions` times only the `sanji_node.actions` calls those views make (no Flask, no
templates). Before the timings, the most-urgent order is checked page by page against its
plain definition over every case (`urgent_order_checked`). It prints p50 / p95 / max per
page (goal: p95 < 0.3 s) and writes everything to --json; `--only` picks pages; with
`--profile` it runs cProfile over the pages that miss the goal and prints the top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from click.testing import CliRunner  # noqa: E402
from sync_bench import (  # noqa: E402
    COUNTY,
    DEMO_CATALOG,
    PASSPHRASE,
    PASSPHRASE_ENV,
    demo_items,
    log,
    percentile,
    township_division,
    village_division,
)

from county_server import cli as county_cli  # noqa: E402
from county_server import receipts  # noqa: E402
from county_server.app import create_app as county_app  # noqa: E402
from county_server.app import open_county_store  # noqa: E402
from county_server.numbering import number_new_cases  # noqa: E402
from sanji_domain import commands  # noqa: E402
from sanji_domain.commands import CST, Actor  # noqa: E402
from sanji_domain.demo import DemoPeople  # noqa: E402
from sanji_node.child import ChildNode  # noqa: E402
from sync_protocol import routing  # noqa: E402
from sync_protocol.batches import encode_page  # noqa: E402
from sync_protocol.errors import SyncError  # noqa: E402
from sync_protocol.keys import SigningKey  # noqa: E402
from sync_protocol.sqlite_store import Store  # noqa: E402
from sync_protocol.verify import Status  # noqa: E402
from township_node import cli as township_cli  # noqa: E402
from township_node.app import create_app as township_app  # noqa: E402
from village_agent import cli as village_cli  # noqa: E402

GOAL_S = 0.3
MANIFEST = "ui_bench.json"
FORMAT = 2  # bump when the fill changes, so an old cache is not measured as if it were new
TOWNSHIP = "t1"
TOWNSHIP_NAME = "花石镇便民服务中心"
TOWN = "花石镇"
VILLAGE_NAMES = (
    "梅花村 桃源村 石塘村 新华村 白云村 龙泉村 杨柳村 青山村 荷塘村 金星村 红旗村 东风村 长岭村 枫树村 高桥村 "
    "大坪村 双江村 松林村 花园村 水口村 竹山村 五星村 光明村 新塘村 和平村 白沙村 联合村 建设村 团结村 向阳村"
).split()
CLERKS = ("张晓红", "刘志刚")  # A/B 岗
COUNTY_OFFICER = "县审批局 王科员"


def village_ids(n: int) -> list[str]:
    return [f"v{i:02d}" for i in range(1, n + 1)]


def village_name(i: int) -> str:
    """The i-th village's display name (1-based): 梅花村, 桃源村 …, past the list 梅花2村 …"""
    base = VILLAGE_NAMES[(i - 1) % len(VILLAGE_NAMES)]
    return base if i <= len(VILLAGE_NAMES) else f"{base[:-1]}{i // len(VILLAGE_NAMES) + 1}村"


# -- building the nodes --------------------------------------------------------------------------
def run_cli(main: Any, *args: str) -> str:
    """One CLI command in this process, as its user would type it; its stdout."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"{main.name} {' '.join(args)} failed ({result.exit_code}):\n{result.output}")
    return result.stdout


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve a node's Flask app with waitress on 127.0.0.1:0 in a thread of this process; its URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4, ident="sanji")
    thread = threading.Thread(target=server.run, name="ui-bench-serve", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


@dataclass
class TownshipLayout:
    """A township to build: node id, display name, number in its division code, and its villages (id, name)."""

    node: str
    name: str
    number: int
    villages: list[tuple[str, str]]


def township_layout(villages: int) -> list[TownshipLayout]:
    """The township mode: t1 and its villages v01 … (梅花村 …)."""
    return [TownshipLayout(TOWNSHIP, TOWNSHIP_NAME, 101,
                           [(v, village_name(i)) for i, v in enumerate(village_ids(villages), start=1)])]  # fmt: skip


def build_nodes(root: Path, townships: list[TownshipLayout]) -> None:
    """County (demo catalog released), the townships and their villages, enrolled over HTTP."""
    county = root / "county"
    run_cli(county_cli.main, "init", "--data", str(county), "--county", COUNTY, "--name", "示范县")
    run_cli(county_cli.main, "catalog", "import", str(DEMO_CATALOG), "--data", str(county), "--json")

    def token(role: str, division: str, parent: str, node: str, name: str) -> str:
        out = run_cli(county_cli.main, "enroll", "--data", str(county), "--role", role, "--division", division,
                      "--parent", parent, "--node-id", node, "--name", name, "--json")  # fmt: skip
        return str(json.loads(out)["token"])

    capp = county_app(county)
    try:
        with served(capp) as county_url:
            for t in townships:
                tok = token("township", township_division(t.number), "county", t.node, t.name)
                run_cli(township_cli.main, "init", "--data", str(root / t.node), "--parent", county_url,
                        "--token", tok, "--no-sync")  # fmt: skip
                tapp = township_app(ChildNode.load(root / t.node))
                with served(tapp) as township_url:
                    for i, (v, name) in enumerate(t.villages, start=1):
                        tok = token("village", village_division(t.number, i), t.node, v, name)
                        run_cli(village_cli.main, "init", "--data", str(root / v), "--parent", township_url,
                                "--token", tok, "--passphrase-env", PASSPHRASE_ENV, "--no-sync")  # fmt: skip
    finally:
        capp.extensions["sanji_numbering"].stop()


# -- the fill: cases and their lives, day by day -------------------------------------------------
VILLAGE_HANDLED = "村受理村办结"
REASONS = {
    "request_supplement": ["申请书未签字，请补签后交回", "身份证复印件不清晰，请重新复印", "缺少户口簿复印件"],
    "reject": ["申请人不符合受理条件", "该事项已在县级办理，不重复受理"],
    "withdraw": ["申请人要求撤回", "申请人已自行到县政务中心办理"],
    "suspend": ["需现场核查，等待村委会出具证明", "等待相关部门会商"],
}


@dataclass(order=True)
class Step:
    """One action in a case's life: at `at_ms`, by `node` ('village', 'township' or 'county')."""

    at_ms: int
    order: int  # ties: the case's own order of steps
    case: int = field(compare=False)
    node: str = field(compare=False)
    action: str = field(compare=False)  # 'file', 'evaluate' or a transition
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def is_workday(d: date) -> bool:
    return d.weekday() < 5


def add_workdays(d: date, n: int) -> date:
    """The n-th working day after d (n = 0: d itself, or the next working day if d is not one)."""
    while not is_workday(d):
        d += timedelta(days=1)
    while n > 0:
        d += timedelta(days=1)
        if is_workday(d):
            n -= 1
    return d


def at(d: date, rng: random.Random, lo: float = 8.5, hi: float = 17.5) -> int:
    """A moment in working hours on day d, China time, in ms."""
    start = datetime(d.year, d.month, d.day, tzinfo=CST) + timedelta(hours=rng.uniform(lo, hi))
    return int(start.timestamp() * 1000)


@dataclass
class Plan:
    """Every case's life, drawn up front (a step after `now` never happens: the case is still open)."""

    steps: list[Step]
    items: dict[int, dict[str, Any]]
    villages: dict[int, int]  # case → village number (1-based)


def plan_cases(n: int, villages: int, days: int, today: date, now_ms: int, seed: int) -> Plan:
    rng = random.Random(seed)
    items = [i for i in demo_items() if i.get("village_mode")]
    first = today - timedelta(days=days)
    # filed on the working days before today (today's cases would be filed after the fill)
    filing_days = [first + timedelta(days=k) for k in range(days - 1) if is_workday(first + timedelta(days=k))]
    steps: list[Step] = []
    case_items: dict[int, dict[str, Any]] = {}
    case_villages: dict[int, int] = {}
    for c in range(n):
        item = rng.choice(items)
        case_items[c] = item
        case_villages[c] = c % villages + 1
        f_day = rng.choice(filing_days)
        life = _life(rng, item, f_day)
        for k, (when, node, action, data) in enumerate(life):
            if when <= now_ms:
                steps.append(Step(when, k, c, node, action, data))
    steps.sort(key=lambda s: (s.at_ms, s.case, s.order))
    return Plan(steps, case_items, case_villages)


def _life(rng: random.Random, item: dict[str, Any], f_day: date) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The steps of one case, each step by another node at least a day after the one before it that
    that node must have seen (the nodes sync once a day), so every step is legal where it is taken."""
    V, T, C = "village", "township", "county"
    promised = int(item.get("promised_days") or 0)
    filed = at(f_day, rng, 8.5, 16.5)
    out: list[tuple[int, str, str, dict[str, Any]]] = [(filed, V, "file", {})]

    def reason(action: str) -> dict[str, Any]:
        return {"reason": rng.choice(REASONS[action])}

    def days_taken() -> int:  # working days from acceptance to 办结: mostly in time, some late
        if promised == 0:
            return 0
        r = rng.random()
        if r < 0.82:
            return rng.randint(max(1, promised // 3), promised)
        return promised + rng.randint(1, 6)

    def finish(done_day: date, done_ms: int) -> None:  # 送达 by the agent, then the villager's 评价
        if rng.random() < 0.1:
            return  # the result waits at the township
        d = add_workdays(done_day, rng.randint(1, 4))
        when = max(at(d, rng), done_ms + 60_000)
        out.append((when, V, "deliver", {}))
        if rng.random() < 0.6:
            level = rng.choices([5, 4, 3, 2, 1], [60, 25, 9, 4, 2])[0]
            out.append((when + 120_000, V, "evaluate", {"level": level, "stage": "办结"}))

    if item.get("village_mode") == VILLAGE_HANDLED:  # the agent accepts and completes it at the station
        a = filed + 600_000
        out.append((a, V, "accept", {}))
        d = add_workdays(f_day, days_taken())
        done = a + 900_000 if promised == 0 else max(at(d, rng), a + 3_600_000)
        out.append((done, V, "complete", {"result": "准予办理"}))
        when = done + 1_800_000 if promised == 0 else at(add_workdays(d, rng.randint(1, 3)), rng)
        out.append((when, V, "deliver", {}))
        if rng.random() < 0.6:
            out.append((when + 60_000, V, "evaluate", {"level": rng.choices([5, 4, 3, 2], [70, 20, 8, 2])[0]}))
        return out
    r = rng.random()
    if r < 0.02:  # the villager changes their mind the same day
        out.append((filed + rng.randint(1, 4) * 600_000, V, "withdraw", reason("withdraw")))
        return out
    d1 = add_workdays(f_day, rng.choice([1, 1, 1, 2, 2, 3]))
    if r < 0.06:
        out.append((at(d1, rng), T, "reject", reason("reject")))
        return out
    if r < 0.16:  # 补齐补正 before acceptance: the agent brings the paper a few days later
        out.append((at(d1, rng, 8.5, 12), T, "request_supplement", reason("request_supplement")))
        s = add_workdays(d1, rng.choice([1, 2, 2, 3, 5, 8]))
        out.append((at(s, rng), V, "supplement", {}))
        d1 = add_workdays(s, rng.choice([1, 1, 2]))
    if rng.random() < 0.2:
        out.append((at(d1, rng, 8.5, 11), T, "pre_accept", {}))
        d1 = add_workdays(d1, 1)
    accepted = at(d1, rng, 8.5, 15)
    out.append((accepted, T, "accept", {}))
    if item.get("level") == "县":  # 转报: the county accepts the linked case and completes it
        out.append((accepted + 1_800_000, T, "forward", {}))
        ca = add_workdays(d1, rng.choice([1, 1, 2]))
        c_acc = at(ca, rng, 8.5, 12)
        out.append((c_acc, C, "accept", {}))
        d = add_workdays(ca, days_taken())
        done = max(at(d, rng, 13, 17.5), c_acc + 3_600_000)
        out.append((done, C, "complete", {"result": "准予办理"}))
        finish(d, done)
        return out
    if promised == 0:  # 即办件
        done = accepted + rng.randint(10, 90) * 60_000
        out.append((done, T, "complete", {"result": "准予办理"}))
        finish(d1, done)
        return out
    day, last = d1, accepted
    if rng.random() < 0.3:
        day = add_workdays(day, rng.choice([0, 1, 1, 2]))
        last = max(at(day, rng), last + 600_000)
        out.append((last, T, "start", {}))
    extra = 0
    p = rng.random()
    if p < 0.05:  # 补正 after acceptance: the clock stops until the agent brings it
        day = add_workdays(day, 1)
        last = max(at(day, rng, 8.5, 12), last + 600_000)
        out.append((last, T, "request_supplement", reason("request_supplement")))
        extra = rng.choice([1, 2, 3, 4])
        day = add_workdays(day, extra)
        last = at(day, rng)
        out.append((last, V, "supplement", {}))
    elif p < 0.08:  # 挂起 for a site check, resumed a few days later
        day = add_workdays(day, 1)
        last = max(at(day, rng, 8.5, 12), last + 600_000)
        out.append((last, T, "suspend", reason("suspend")))
        extra = rng.choice([2, 3, 5])
        day = add_workdays(day, extra)
        last = at(day, rng, 8.5, 12)
        out.append((last, T, "resume", {}))
    d = add_workdays(d1, days_taken() + extra + 1)
    d = max(d, add_workdays(day, 1))
    done = max(at(d, rng, 9, 17.5), last + 600_000)
    out.append((done, T, "complete", {"result": rng.choice(["准予办理", "准予办理", "准予办理", "已办理，待领证"])}))
    finish(d, done)
    return out


@dataclass
class Site:
    """A node of the filled township as the fill drives it: its store, key and who works there."""

    node: str
    role: str  # county | township | village
    store: Store
    key: SigningKey
    actor: Actor


def open_sites(root: Path, villages: int) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    county = county_cli.load_county(str(root / "county"))
    c = county.config
    sites["county"] = Site("county", "county", open_county_store(county.data), county.key,
                           Actor(c.node_id, "county", c.division, None, c.root_node, COUNTY_OFFICER))  # fmt: skip
    for name in [TOWNSHIP, *village_ids(villages)]:
        node = ChildNode.load(root / name)
        c = node.config
        sites[name] = Site(name, c.role, node.open_store(), node.key,
                           Actor(c.node_id, c.role, c.division, c.parent, c.root_node))  # fmt: skip
    return sites


def exchange(src: Site, dst: Site, max_page_bytes: int = 1 << 20) -> dict[str, int]:
    """What `dst` lacks and should hold, from `src`: planned, read and verified-and-applied in pages,
    as a sync session moves it (minus HTTP). Returns the entries accepted per author."""
    directory = src.store.directory()
    wanted = lambda feed: routing.may_push(src.node, dst.node, feed, directory)  # noqa: E731
    authors: dict[str, int] = {}
    for page in src.store.plan(dst.store.vector(), wanted, max_page_bytes=max_page_bytes):
        for v in dst.store.receive_page(encode_page([src.store.read_batch(r) for r in page])):
            for o in v.outcomes:
                if o.status is not Status.ACCEPTED:
                    raise RuntimeError(f"{src.node} → {dst.node}: {o.feed} {o.status.name}: {o.reason}")
                author = o.feed.split("/")[0]
                authors[author] = authors.get(author, 0) + o.last - o.first + 1
    return authors


class Filler:
    """Runs the plan day by day: the villages act, sync up; the township acts, syncs up; the county
    acts, receipts and numbers; everything syncs down (once a day, as a village laptop does)."""

    def __init__(self, root: Path, villages: int, seed: int) -> None:
        self.root = root
        self.sites = open_sites(root, villages)
        self.villages = village_ids(villages)
        self.county_config = county_cli.load_county(str(root / "county")).config
        self.people = DemoPeople(seed=seed)
        self.case_ids: dict[int, str] = {}
        self.agents: dict[int, str] = {}  # the agent who filed the case acts on it at the village
        self.pushed: set[str] = set()  # authors whose entries reached the county today (to receipt)
        self.done: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.failure_examples: list[str] = []
        self.moved = 0

    def close(self) -> None:
        for s in self.sites.values():
            s.store.close()

    def run(self, plan: Plan) -> None:
        self.sync_down()  # the membership and the catalog reach the villages (their first sync)
        by_day: dict[date, list[Step]] = {}
        for step in plan.steps:
            by_day.setdefault(datetime.fromtimestamp(step.at_ms / 1000, CST).date(), []).append(step)
        for n, (day, steps) in enumerate(sorted(by_day.items()), start=1):
            for node in ("village", "township", "county"):
                for step in (s for s in steps if s.node == node):
                    self.take(plan, step, day)
                if node == "village":
                    for v in self.villages:
                        self.moved += sum(exchange(self.sites[v], self.sites[TOWNSHIP]).values())
                elif node == "township":
                    self.sync_county()
            self.number_and_receipt(day)
            self.sync_down()
            if n % 10 == 0:
                log(f"fill: {day} done, {len(self.case_ids):,} cases filed")

    def sync_county(self) -> None:
        authors = exchange(self.sites[TOWNSHIP], self.sites["county"])
        self.moved += sum(authors.values())
        self.pushed |= set(authors)

    def number_and_receipt(self, day: date) -> None:
        """What the county server does after pushes: receipts for the authors, then 办件编号."""
        county = self.sites["county"]
        evening = int(datetime(day.year, day.month, day.day, 17, 55, tzinfo=CST).timestamp() * 1000)
        if self.pushed:
            receipts.write_receipts(county.store, county.key, self.pushed, evening * 1000)
        number_new_cases(county.store, county.key, self.county_config, evening + 300_000)
        self.pushed = set()

    def sync_down(self) -> None:
        self.moved += sum(exchange(self.sites["county"], self.sites[TOWNSHIP]).values())
        for v in self.villages:
            self.moved += sum(exchange(self.sites[TOWNSHIP], self.sites[v]).values())

    def where(self, plan: Plan, step: Step) -> tuple[Site, Any]:
        """The node that takes the step, and the database its command reads (the node's own)."""
        vi = plan.villages[step.case]
        site = self.sites[self.villages[vi - 1] if step.node == "village" else TOWNSHIP if step.node == "township"
                          else "county"]  # fmt: skip
        return site, site.store.conn

    def place(self, plan: Plan, case: int) -> tuple[str, str]:
        """The case's township and village, as the villager's address says them."""
        return TOWN, village_name(plan.villages[case])

    def take(self, plan: Plan, step: Step, day: date) -> Site | None:
        """Take one step (the node's domain command, appended and signed there); the site that took it."""
        site, conn = self.where(plan, step)
        if step.action != "file" and step.case not in self.case_ids:
            return None  # its filing failed (counted there)
        person = {"village": self.agents.get(step.case), "township": CLERKS[day.toordinal() % 2],
                  "county": COUNTY_OFFICER}[step.node]  # fmt: skip
        try:
            if step.action == "file":
                town, village = self.place(plan, step.case)
                req = self.people.case_request(plan.items[step.case], township=town, village=village)
                actor = _with_person(site.actor, req["agent"]["name"])
                cmd = commands.new_cases(conn, actor, [req], now_ms=step.at_ms)
                self.case_ids[step.case] = cmd.result["cases"][0]["case_id"]
                self.agents[step.case] = req["agent"]["name"]
            elif step.action == "evaluate":
                data = {"case": self.case_ids[step.case], **step.data}
                cmd = commands.evaluate(conn, _with_person(site.actor, person), data, now_ms=step.at_ms)
            else:
                cmd = commands.transition(conn, _with_person(site.actor, person), self.case_ids[step.case],
                                          step.action, step.data, now_ms=step.at_ms)  # fmt: skip
            site.store.append(site.key, cmd.feed, cmd.records)
            self.done[step.action] = self.done.get(step.action, 0) + 1
            return site
        except SyncError as e:
            key = f"{step.node} {step.action}"
            self.failures[key] = self.failures.get(key, 0) + 1
            if len(self.failure_examples) < 10:
                self.failure_examples.append(f"{key} on {day}: {e.message}")
            return None


def _with_person(actor: Actor, person: str | None) -> Actor:
    return Actor(actor.node, actor.node_role, actor.division, actor.parent, actor.root, person)


def fill(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build the nodes and run the plan into `root`; returns what was made (the cache's manifest)."""
    t0 = time.perf_counter()
    build_nodes(root, township_layout(args.villages))
    t_nodes = time.perf_counter() - t0
    now = int(time.time() * 1000)
    today = datetime.fromtimestamp(now / 1000, CST).date()
    plan = plan_cases(args.cases, args.villages, args.days, today, now, args.seed)
    log(f"fill: {args.cases:,} cases from {args.villages} villages over {args.days} days, {len(plan.steps):,} steps")
    filler = Filler(root, args.villages, args.seed)
    try:
        filler.run(plan)
    finally:
        filler.close()
    if filler.failures:
        raise RuntimeError(f"{sum(filler.failures.values())} steps failed: {filler.failure_examples}")
    return {
        "format": FORMAT,
        "cases": args.cases,
        "villages": args.villages,
        "days": args.days,
        "seed": args.seed,
        "filled_on": str(today),
        "filled_at_ms": now,
        "steps": filler.done,
        "entries_moved": filler.moved,
        "nodes_s": round(t_nodes, 1),
        "fill_s": round(time.perf_counter() - t0, 1),
    }


# -- measuring -----------------------------------------------------------------------------------
@dataclass
class Probe:
    name: str  # a key in the JSON
    label: str  # what the clerk or agent does, in their words
    call: Callable[[int], Any]  # the i-th request; returns the response (checked by `check`)
    check: Callable[[Any], bool] = lambda r: True


def timings(probe: Probe, n: int) -> dict[str, Any]:
    """One untimed request to warm up, then n timed ones (server time: perf_counter around the call)."""
    t = time.perf_counter()
    first = probe.call(0)
    warm = time.perf_counter() - t
    if not probe.check(first):
        raise RuntimeError(f"{probe.name}: unexpected answer: {str(first)[:300]}")
    times = []
    for i in range(1, n + 1):
        t = time.perf_counter()
        probe.call(i)
        times.append(time.perf_counter() - t)
    times.sort()
    return {
        "label": probe.label,
        "n": n,
        "first_s": round(warm, 4),
        "p50_s": round(percentile(times, 50), 4),
        "p95_s": round(percentile(times, 95), 4),
        "max_s": round(times[-1], 4),
        "meets_goal": percentile(times, 95) < GOAL_S,
    }


def profile(probe: Probe, n: int, top: int = 18) -> str:
    """cProfile over n requests of one probe: the functions that take the time themselves (tottime)."""
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        probe.call(i)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


@dataclass
class Samples:
    """What the requests ask for: real cases and people of the filled node, in a fixed shuffled order."""

    case_ids: list[str]
    local_nos: list[str]
    names: list[str]
    id_numbers: list[str]
    query_codes: list[str]

    def pick(self, values: list[str], i: int) -> str:
        return values[i % len(values)]


def samples(conn: Any, n: int, seed: int, *, opener: Any = None, open_only: bool = False) -> Samples:
    """n + 1 cases filed here (not county copies), with their applicants (opened with `opener` if sealed)."""
    from sanji_domain.search import query_code
    from sanji_domain.states import OPEN_STATES
    from sanji_domain.views import applicant_of

    sql = "SELECT case_id, local_no FROM cases WHERE origin_case_id IS NULL"
    if open_only:
        sql += f" AND state IN ({','.join(repr(s) for s in sorted(OPEN_STATES))})"
    rows = conn.execute(sql + " ORDER BY case_id").fetchall()
    rows = random.Random(seed).sample(rows, min(len(rows), n + 1))
    people = [applicant_of(conn, r[0], opener) for r in rows]
    return Samples([r[0] for r in rows], [r[1] for r in rows], [p["name"] for p in people],
                   [p["id_number"] for p in people], [query_code(r[0]) for r in rows])  # fmt: skip


def last_month(today: date) -> str:
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


# -- through the pages (Flask test client, signed in) ------------------------------------------
CLERK_LOGIN = "zhangxh"
CLERK_PASSWORD_ENV = "SANJI_BENCH_CLERK_PASSWORD"
CLERK_PASSWORD = "窗口口令-bench-2026"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    m = _CSRF.search(html)
    if m is None:
        raise RuntimeError("no CSRF token on the page")
    return m.group(1)


class Browser:
    """A signed-in Flask test client; `get`/`post` return (status, html) and time nothing themselves."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.token = ""

    def get(self, path: str) -> tuple[int, str]:
        r = self.client.get(path)
        return r.status_code, r.get_data(as_text=True)

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        """A form post and the page its redirect leads to (POST-redirect-GET: both requests)."""
        r = self.client.post(path, data={"csrf_token": self.token, **data}, follow_redirects=True)
        return r.status_code, r.get_data(as_text=True)

    def sign_in(self, login_path: str, form: dict[str, str], then: str) -> None:
        _, html = self.get(login_path)
        r = self.client.post(login_path, data={"csrf_token": csrf_token(html), **form})
        if r.status_code != 302:
            raise RuntimeError(f"sign-in at {login_path} failed ({r.status_code})")
        _, html = self.get(then)
        self.token = csrf_token(html)  # a new session after sign-in: a new token


def ensure_clerk(root: Path) -> None:
    """A clerk account at the township (node-local, never synced), added with the CLI as a head would."""
    os.environ[CLERK_PASSWORD_ENV] = CLERK_PASSWORD
    data = str(root / TOWNSHIP)
    known = json.loads(run_cli(township_cli.main, "clerk", "list", "--data", data, "--json"))
    if not any(c["login"] == CLERK_LOGIN for c in known):
        run_cli(township_cli.main, "clerk", "add", "--data", data, "--name", CLERKS[0], "--login", CLERK_LOGIN,
                "--role", "clerk", "--password-env", CLERK_PASSWORD_ENV)  # fmt: skip


def ok(marker: Callable[[int], str] | str | None = None) -> Callable[[Any], bool]:
    def check(r: Any) -> bool:
        status, html = r
        return bool(status == 200 and (marker is None or marker in html))

    return check


def township_route_probes(app: Any, ws: Any, s: Samples, today: date) -> list[Probe]:
    """The clerk's pages: 待办 (`/`), 办件详情 (`/case/<id>`), 办件查询 (`/cases`, POST then GET), 统计 (`/stats`)."""
    from sanji_domain.search import CaseFilter
    from sanji_node.actions import cases as case_actions
    from township_node.pages.common import PAGE_SIZE
    from township_node.pages.inbox import TODO_STATES

    b = Browser(app)
    b.sign_in("/login", {"login": CLERK_LOGIN, "password": CLERK_PASSWORD}, "/cases")
    todo = case_actions.find_cases(ws, CaseFilter(states=TODO_STATES, county_copies=False), limit=1)["total"]
    deep = min(50, max(1, -(-todo // PAGE_SIZE)))  # page 50, or the last page of a small fill
    month = last_month(today)

    def search(values: list[str]) -> Callable[[int], Any]:
        return lambda i: b.post("/cases", {"text": s.pick(values, i), "submit": "查询"})

    def named(i: int) -> Callable[[Any], bool]:
        return lambda r: r[0] == 200 and s.pick(s.names, i) in r[1]

    return [
        Probe("inbox_first", "待办 第1页 (最急的在前)", lambda i: b.get("/"), ok("待办")),
        Probe("inbox_page50", f"待办 第{deep}页", lambda i: b.get(f"/?page={deep}"), ok("待办")),
        Probe("case", "办件详情", lambda i: b.get(f"/case/{s.pick(s.case_ids, i)}"), ok(s.local_nos[0])),
        Probe("search_name", "办件查询: 姓名", search(s.names), named(0)),
        Probe("search_id_number", "办件查询: 身份证号", search(s.id_numbers), named(0)),
        Probe("search_query_code", "办件查询: 查询码", search(s.query_codes), named(0)),
        Probe("stats", "统计 (按村、按月)", lambda i: b.get("/stats"), ok("梅花村")),
        Probe("stats_month", f"统计 {month} 按村", lambda i: b.get(f"/stats?month={month}"), ok("梅花村")),
    ]


def village_route_probes(app: Any, s: Samples, agent: str) -> list[Probe]:
    """The agent's pages: 首页 (`/`), 我的办件 (`/cases`), a search by name (`/cases`, POST then GET)."""
    b = Browser(app)
    b.sign_in("/login", {"name": agent, "passphrase": PASSPHRASE}, "/cases")
    return [
        Probe("home", "首页", lambda i: b.get("/"), ok()),
        Probe("my_cases", "我的办件 第1页", lambda i: b.get("/cases"), ok()),
        Probe(
            "search_name",
            "我的办件 查询姓名 (逐条解密)",
            lambda i: b.post("/cases", {"text": s.pick(s.names, i)}),
            lambda r: r[0] == 200 and s.names[0] in r[1],
        ),
    ]


# -- the same, as the actions the views call (--mode actions) -----------------------------------
def township_action_probes(ws: Any, s: Samples, today: date) -> list[Probe]:
    """What the clerk's views ask `sanji_node.actions` (and `township_node.villages`) for: no Flask, no templates."""
    from sanji_domain.search import CaseFilter
    from sanji_node.actions import cases
    from township_node import villages
    from township_node.pages.common import PAGE_SIZE
    from township_node.pages.inbox import TODO_STATES

    def found(r: dict[str, Any]) -> bool:
        return r["total"] > 0 and bool(r["rows"])

    todo = CaseFilter(states=TODO_STATES, order="urgent", county_copies=False)
    deep = min(49, max(0, cases.find_cases(ws, todo, limit=1)["total"] - 1) // PAGE_SIZE)
    month = last_month(today)

    def find(f: CaseFilter, offset: int = 0) -> dict[str, Any]:
        return cases.find_cases(ws, f, offset=offset, limit=PAGE_SIZE)

    def text(values: list[str]) -> Callable[[int], Any]:
        return lambda i: find(CaseFilter(text=s.pick(values, i), county_copies=False))

    def stats_page(month: str | None) -> Any:  # what GET /stats computes
        return (villages.statistics(ws, group_by="month"), villages.total(ws, month=month),
                villages.statistics(ws, group_by="village", month=month))  # fmt: skip

    return [
        Probe("inbox_first", "find_cases 待办 最急 第1页", lambda i: find(todo), found),
        Probe("inbox_page50", f"find_cases 待办 最急 第{deep + 1}页", lambda i: find(todo, deep * PAGE_SIZE), found),
        Probe("case", "show_case", lambda i: cases.show_case(ws, s.pick(s.case_ids, i)), lambda r: bool(r["events"])),
        Probe("search_name", "find_cases 姓名", text(s.names), found),
        Probe("search_id_number", "find_cases 身份证号", text(s.id_numbers), found),
        Probe("search_query_code", "find_cases 查询码", text(s.query_codes), found),
        Probe("stats", "statistics ×3 (统计页)", lambda i: stats_page(None), all),
        Probe("stats_month", f"statistics ×3 ({month})", lambda i: stats_page(month), all),
    ]


def village_action_probes(ws: Any, s: Samples) -> list[Probe]:
    from sanji_domain.search import CaseFilter
    from sanji_node.actions import cases

    me = ws.config.node_id

    def found(r: dict[str, Any]) -> bool:
        return r["total"] > 0 and bool(r["rows"]) and all(row["applicant_name"] != "已加密" for row in r["rows"])

    def find(f: CaseFilter) -> dict[str, Any]:
        return cases.find_cases(ws, f, limit=20)

    return [
        Probe("my_cases", "find_cases 在办", lambda i: find(CaseFilter(state="open", village=me)), found),
        Probe(
            "search_name",
            "find_cases 姓名 (逐条解密)",
            lambda i: find(CaseFilter(text=s.pick(s.names, i), state="open", village=me)),
            found,
        ),
    ]


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": args.mode}
    today = datetime.now(CST).date()
    if args.side in ("both", "township"):
        out.update(measure_township(root, args, today))
    if args.side in ("both", "village"):
        out.update(measure_village(root, args))
    return out


def measure_township(root: Path, args: argparse.Namespace, today: date) -> dict[str, Any]:
    from sanji_domain.states import OPEN_STATES
    from sanji_node.workspace import Workspace

    out: dict[str, Any] = {}
    node = ChildNode.load(root / TOWNSHIP)
    if args.mode == "routes":
        ensure_clerk(root)
        app = township_app(node)
        ws = app.extensions["township"].ws  # the pages' own workspace: the one their views read through
    else:
        ws = Workspace(node)
    try:
        s = ws.read(lambda conn: samples(conn, args.requests, args.seed))
        marks = ",".join("?" * len(OPEN_STATES))
        counts = ws.read(lambda conn: conn.execute(
            f"SELECT COUNT(*), SUM(origin_case_id IS NULL), SUM(origin_case_id IS NULL AND state IN ({marks})) "
            "FROM cases", sorted(OPEN_STATES)).fetchone())  # fmt: skip
        out["township_rows"] = {"cases_table": counts[0], "cases_filed": counts[1], "open": counts[2]}
        out["urgent_order_checked"] = ws.read(lambda conn: check_urgent_order(conn, today))
        probes = township_route_probes(app, ws, s, today) if args.mode == "routes" else \
            township_action_probes(ws, s, today)  # fmt: skip
        out["township"] = run_probes(probes, args)
    finally:
        ws.close()
    return out


def measure_village(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from sanji_node.workspace import Workspace

    village = village_ids(args.villages)[0]
    node = ChildNode.load(root / village)
    if args.mode == "routes":
        from village_agent.app import create_app as village_app

        app = village_app(node)
        ws = app.extensions["sanji_village"].workspace
    else:
        ws = Workspace(node)
    try:
        s = ws.read(lambda conn: samples(conn, args.requests, args.seed, opener=ws.opener, open_only=True))
        rows = ws.read(lambda conn: conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0])
        agent = ws.read(lambda conn: conn.execute("SELECT agent_name FROM cases LIMIT 1").fetchone()[0])
        probes = village_route_probes(app, s, agent) if args.mode == "routes" else village_action_probes(ws, s)
        return {"village_node": village, "village_rows": rows, "village": run_probes(probes, args)}
    finally:
        ws.close()


def check_urgent_order(conn: Any, today: date) -> dict[str, Any]:
    """`find_cases` in most-urgent order, page by page over every case filed here, against its plain
    definition: every case summarised with its clock and sorted by (working days left, overdue first,
    cases without a clock last; newer first; case id)."""
    from sanji_domain.search import CaseFilter, find_cases
    from sanji_domain.views import _CASE_SELECT, _dicts, calendar, clock_of, clock_settings

    cal, cs = calendar(conn), clock_settings(conn)
    rows = _dicts(conn.execute(_CASE_SELECT + " WHERE c.origin_case_id IS NULL"))

    def key(r: dict[str, Any]) -> tuple[int, int, int, str]:
        left = clock_of(r, cal, cs, today).remaining
        return (0, left, -r["filed_ms"], r["case_id"]) if left is not None else (1, 0, -r["filed_ms"], r["case_id"])

    want = [r["case_id"] for r in sorted(rows, key=key)]
    f = CaseFilter(order="urgent", county_copies=False)
    got: list[str] = []
    while len(got) <= len(want):
        page = find_cases(conn, f, today=today, offset=len(got), limit=200)
        if not page["rows"]:
            break
        got += [r["case_id"] for r in page["rows"]]
    differs = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if differs is None and len(got) != len(want):
        differs = min(len(got), len(want))
    return {"cases": len(want), "equal": differs is None, "first_difference": differs}


def run_probes(probes: list[Probe], args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for p in probes:
        if args.only and p.name not in args.only:
            continue
        res[p.name] = timings(p, args.requests)
        r = res[p.name]
        log(f"  {_pad(p.label, 30)} p50 {r['p50_s'] * 1000:7.1f} ms  p95 {r['p95_s'] * 1000:7.1f} ms  "
            f"max {r['max_s'] * 1000:7.1f} ms")  # fmt: skip
        if args.profile and (not r["meets_goal"] or args.profile == "all"):
            r["profile"] = profile(p, min(args.requests, 10))
            print(f"\n--- cProfile: {p.name} ({min(args.requests, 10)} requests) ---\n{r['profile']}")
    return res


# -- report and main -----------------------------------------------------------------------------
def _pad(text: str, width: int) -> str:
    """Left-aligned in `width` terminal columns (a Chinese character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def table(res: dict[str, Any]) -> str:
    m = res["measured"]
    lines = [
        f"{_pad('page (' + m['mode'] + ')', 34)} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  p95 < {GOAL_S * 1000:.0f} ms"
    ]
    for side in ("township", "village"):
        if side not in m:
            continue
        lines.append(f"乡镇 {TOWNSHIP} ({m['township_rows']['cases_filed']:,} 件)" if side == "township"
                     else f"村 {m['village_node']} ({m['village_rows']:,} 件)")  # fmt: skip
        for r in m[side].values():
            ok = "yes" if r["meets_goal"] else "NO"
            lines.append(f"  {_pad(r['label'], 32)} {r['p50_s'] * 1000:9.1f} {r['p95_s'] * 1000:9.1f} "
                         f"{r['max_s'] * 1000:9.1f}  {ok}")  # fmt: skip
    return "\n".join(lines)


def load_cache(cache: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The manifest of a filled cache made with the same sizes, or None (then the cache is filled anew)."""
    f = cache / MANIFEST
    if not f.exists():
        return None
    made = json.loads(f.read_text(encoding="utf-8"))
    want = {"format": FORMAT, "cases": args.cases, "villages": args.villages, "days": args.days, "seed": args.seed}
    if args.county:
        want |= {
            "county": True,
            "townships": args.townships,
            "silent": args.silent,
            "forked": args.forked,
            "apply_cases": args.apply_cases,
        }
    if any(made.get(k) != v for k, v in want.items()):
        log(f"cache {cache} holds another fill ({ {k: made.get(k) for k in want} }): filling it anew")
        return None
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=None,
                    help="cases filed in the township (all villages; default 10,000), with --county in the county (100,000)")  # fmt: skip
    ap.add_argument("--villages", type=int, default=25, help="villages under the township (with --county: under each)")
    ap.add_argument("--days", type=int, default=60, help="the cases are filed over the working days of this many days")
    ap.add_argument("--requests", type=int, default=50, help="timed requests per page")
    ap.add_argument("--mode", choices=["routes", "actions"], default="routes",
                    help="time the pages through the Flask apps (default), or only the actions their views call")  # fmt: skip
    ap.add_argument("--seed", type=int, default=2026, help="seed of the plan and the villagers")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the filled nodes here; a later run with the same sizes skips the fill")  # fmt: skip
    ap.add_argument("--profile", nargs="?", const="slow", choices=["slow", "all"], default=None,
                    help="cProfile the pages that miss the goal (or all of them) and print the top functions")  # fmt: skip
    ap.add_argument("--side", choices=["both", "township", "village"], default="both", help="whose pages to time")
    ap.add_argument("--only", type=lambda t: set(t.split(",")), default=None, metavar="PAGE,…",
                    help="time only these pages (keys as in the JSON, e.g. inbox_first,stats)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    county = ap.add_argument_group("the county (--county: its pages over the whole county; see bench/ui_county.py)")
    county.add_argument("--county", action="store_true",
                        help="fill T townships × V villages (default 20 × 25, 100,000 cases) and time the county's pages")  # fmt: skip
    county.add_argument("--townships", type=int, default=20, help="townships under the county (with --county)")
    county.add_argument("--silent", type=int, default=15, help="villages that go quiet before the end (with --county)")
    county.add_argument("--forked", type=int, default=2, help="villages restored from an old copy (with --county)")
    county.add_argument("--page", action="append", metavar="NAME=PATH",
                        help="time this county page too (or instead of the variant of that name), e.g. stats_item=/stats?by=item")  # fmt: skip
    county.add_argument("--apply-cases", type=int, default=1_000,
                        help="cases kept aside in the fill, to time their application at the county (with --county)")  # fmt: skip
    county.add_argument("--no-apply", action="store_true", help="skip the figure of the cases applied at the county")
    county.add_argument("--county-data", type=Path, default=None, metavar="DIR",
                        help="no fill: time the pages of this county data directory as it is (e.g. a copy of a "
                             "real county, or a snapshot of a fill; the bench's 管理员 account is added to it)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.cases is None:
        args.cases = 100_000 if args.county else 10_000
    if args.county:
        if args.townships < 1 or args.cases < args.townships * args.villages:
            ap.error("need --townships ≥ 1 and --cases ≥ --townships × --villages")
    if args.days < 7 or args.villages < 1 or args.cases < args.villages or args.requests < 1:
        ap.error("need --days ≥ 7, --villages ≥ 1, --cases ≥ --villages and --requests ≥ 1")
    import ui_county  # the county mode (it imports this module by name: imported here, not at the top)

    os.environ.setdefault(PASSPHRASE_ENV, PASSPHRASE)  # the villages' key files open with the agent's passphrase
    started, load_at_start = time.time(), os.getloadavg()
    tmp = None
    if args.county_data is not None:  # a county as it is: nothing to fill, nothing to apply
        args.county, args.no_apply = True, True
        measured = ui_county.measure_county(args.county_data, args, county=args.county_data.resolve())
        return report(args, argv, started, load_at_start, True, {"county_data": str(args.county_data)}, measured)
    if args.cache is not None:
        root = args.cache.resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = root = Path(tempfile.mkdtemp(prefix="sanji-ui-bench-"))
    try:
        made = load_cache(root, args) if args.cache is not None else None
        cached = made is not None
        if made is None:
            ours = {"county", TOWNSHIP, MANIFEST, ui_county.APPLY_FILE}
            mine = re.compile(r"v[0-9]+|t[0-9]+|t[0-9]+v[0-9]+(\.(copy|original|restored)\.sqlite)?")
            strangers = [c.name for c in root.iterdir() if c.name not in ours and not mine.fullmatch(c.name)]
            if strangers:
                raise SystemExit(f"{root} holds other things than a ui_bench fill ({', '.join(strangers[:5])})")
            for child in root.iterdir():  # a cache of another fill, or one left half made
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            made = ui_county.fill_county(root, args) if args.county else fill(root, args)
            (root / MANIFEST).write_text(json.dumps(made, ensure_ascii=False, indent=2), encoding="utf-8")
            log(f"filled in {made['fill_s']} s ({made['nodes_s']} s for the nodes)")
        else:
            log(f"using the fill in {root} (made {made['filled_on']} in {made['fill_s']} s)")
            if args.county:
                ui_county.warn_if_older(made)
        measured = ui_county.measure_county(root, args) if args.county else measure(root, args)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(args, argv, started, load_at_start, cached, made, measured)


def report(args: argparse.Namespace, argv: list[str] | None, started: float, load_at_start: tuple[float, ...],
           cached: bool, made: dict[str, Any], measured: dict[str, Any]) -> int:  # fmt: skip
    """Print the table and write the JSON (--json)."""
    import ui_county

    res = {
        "meta": {
            "tool": "sanji ui_bench",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "command": " ".join([Path(sys.executable).name, *(argv if argv is not None else sys.argv)]),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_at_start": load_at_start,
            "load_avg_at_end": os.getloadavg(),
            "goal_p95_s": ui_county.COUNTY_GOAL_S if args.county else GOAL_S,
            "cached": cached,
            "total_s": round(time.time() - started, 1),
        },
        "fill": made,
        "measured": measured,
    }
    print(ui_county.county_table(res) if args.county else table(res))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("ui_bench", sys.modules["__main__"])  # one module, when ui_county imports it by name
    sys.exit(main())
