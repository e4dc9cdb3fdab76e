"""The county for `ui_bench.py --county`: 20 townships × 25 villages, 100,000 cases, and the county's pages.

    python bench/ui_bench.py --county --cache /work/uibench-county --json out.json

What it builds (once; with --cache DIR a later run with the same sizes skips the fill):

* the county, T townships (t01 花石镇便民服务中心 …) and V villages under each (t01v01 梅花村 …), made
  by the real CLIs as in the township mode (`county-server init`, demo `catalog import`,
  `enroll --name`, `township-node init --token` and `village-agent init --token` over HTTP to
  the county and each township served in threads of this process), so every node signs with
  its own enrolled key;
* N cases (N / T a township, N / T / V a village) on the working days of the last D days,
  with the lives of the township mode (`ui_bench._life`: 受理, 补齐补正, 不予受理, 撤回, 挂起,
  on time or late, 即办件, 转报 and completed at the county, 送达, 好差评 with some 差评), day
  by day: each village's steps, its feed up to its township; the township's steps, its
  contact reports (`sanji_node.contacts.report_contacts`) and fork evidence
  (`fork_reports.report_forks`), its feeds up to the county; the county's steps, receipts,
  办件编号 (`number_new_cases`) and the evening card scan (`sanji_node.actions.county.scan_cards`:
  预警/黄牌/红牌); everything the county wrote down to the townships. Every move is the real
  store path (`Store.plan` → `read_batch` → `receive_page`), and the parents record each
  child's contact as their sync API does (`sanji_node.state.record_peer`, `record_own_heads`,
  `record_peer_vector`), so the county's tables are exactly what production folds.
* Lighter villages (only the county's database is measured): a village signs its entries
  with its own key into its own store (sealed at rest) and files its cases on its own
  database (catalog, 本地编号, clock), but folds only what its first sync brought and the
  cases it files, and nothing comes down to it afterwards: its other commands read the
  township's database (which holds every entry the village would hold, its own pushed at
  once when a case acts twice in a day), and the township records the village's daily pull
  as if it had pulled everything. All fill connections write with `synchronous=OFF`
  (durability is not what is measured) and the county's and townships' with a larger page
  cache (`FILL_CACHE_KIB`).
* Trouble, as the county meets it: `--silent` villages stop syncing 1 to 20 working days
  before the end (no contact, their cases' village steps never happen: 静默); `--forked`
  villages are restored from a copy three working days old and re-enter more cases than
  they lost (a fork at the township, reported up as evidence), then file one more, which
  the township holds in quarantine (frozen feed).

What it measures: the county's pages through its Flask app (`county_server.app.create_app`,
Flask test client, signed in as a 管理员 made by `county-server account add`): 对账 `/` and its
variants (sorted by contact, one township, problems only, silent only, 上报完整性), 统计 `/stats`
(this month, last month, this year, one township's villages), 电子监察 `/monitor` (by township,
village, item, clerk; one township) — `county_pages`; --requests N each after a warm-up,
p50 / p95 / max (goal p95 < 0.5 s); `--page NAME=PATH` adds or replaces a variant; a route
that answers 404 is left out, a page that says 建设中 is marked as a stub.
Then what keeping the figures up to date costs where entries are applied: 1,000 cases more
(filed and accepted at t01 after the fill, kept in the cache as pages the county lacks) are
received by a copy of the county's database as opened by production (`open_county_store`,
with every trigger), and by another copy with every SQLite trigger dropped (on main at
4e9a787 the county has none, so any trigger is a page's summary maintenance; upkeep done in
Python inside the fold shows in both figures).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import struct
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import ui_bench as ub
from sync_bench import log

from county_server import cli as county_cli
from county_server.app import create_app as county_app
from county_server.node import open_county_store
from sanji_domain import commands, kinds
from sanji_domain.commands import CST, Actor
from sanji_node import contacts, fork_reports, state
from sanji_node.actions.county import scan_cards
from sanji_node.child import ChildNode
from sanji_node.config import DataDir
from sanji_node.workspace import Workspace
from sync_protocol import routing
from sync_protocol.batches import encode_page
from sync_protocol.planning import Range
from sync_protocol.verify import Status

COUNTY_GOAL_S = 0.5
TOWN_NAMES = (
    "花石 白田 中路铺 射埠 茶恩寺 河口 排头 分水 龙口 谭家山 易俗河 杨嘉桥 云湖桥 石潭 青山桥 石鼓 锦石 "
    "乌石 花桥 梅林桥 姜畲 响塘 古塘 湘乡"
).split()
ADMIN_LOGIN = "admin1"
ADMIN_NAME = "周县长"
ADMIN_PASSWORD_ENV = "SANJI_BENCH_ADMIN_PASSWORD"
ADMIN_PASSWORD = "县管理员口令-bench-2026"
APPLY_FILE = "county_apply.pages"


def township_id(k: int) -> str:
    return f"t{k:02d}"


def town(k: int) -> str:
    base = TOWN_NAMES[(k - 1) % len(TOWN_NAMES)]
    return f"{base}镇" if k <= len(TOWN_NAMES) else f"{base}{k // len(TOWN_NAMES) + 1}镇"


def village_id(k: int, i: int) -> str:
    return f"t{k:02d}v{i:02d}"


def layout(townships: int, villages: int) -> list[ub.TownshipLayout]:
    out = []
    for k in range(1, townships + 1):
        names = [(village_id(k, i), ub.village_name(i)) for i in range(1, villages + 1)]
        out.append(ub.TownshipLayout(township_id(k), f"{town(k)}便民服务中心", 100 + k, names))
    return out


# -- the plan: each township's cases, and the villages that go quiet or fork ---------------------
@dataclass
class CountyPlan(ub.Plan):
    towns: dict[int, int] = field(default_factory=dict)  # case → township number (1-based)


def plan_county(args: argparse.Namespace, today: date, now_ms: int) -> CountyPlan:
    per = args.cases // args.townships
    steps: list[ub.Step] = []
    items: dict[int, dict[str, Any]] = {}
    villages: dict[int, int] = {}
    towns: dict[int, int] = {}
    for k in range(1, args.townships + 1):
        n = per + (1 if k <= args.cases % args.townships else 0)
        p = ub.plan_cases(n, args.villages, args.days, today, now_ms, args.seed + k)
        base = len(items)
        for c in range(n):
            items[base + c] = p.items[c]
            villages[base + c] = p.villages[c]
            towns[base + c] = k
        steps += [ub.Step(s.at_ms, s.order, base + s.case, s.node, s.action, s.data) for s in p.steps]
    steps.sort(key=lambda s: (s.at_ms, s.case, s.order))
    return CountyPlan(steps, items, villages, towns)


@dataclass
class Trouble:
    silent: dict[str, date]  # village → the first day it no longer syncs
    forks: dict[str, tuple[date, date]]  # village → (the day of the copy it is restored from, the day of the restore)


def plan_trouble(args: argparse.Namespace, today: date) -> Trouble:
    rng = random.Random(args.seed)
    everyone = [village_id(k, i) for k in range(1, args.townships + 1) for i in range(2, args.villages + 1)]
    chosen = rng.sample(everyone, min(len(everyone), args.silent + args.forked))
    silent = {v: _workdays_before(today, 1 + (j * 7) % 20) for j, v in enumerate(chosen[: args.silent])}  # 1 … 20
    forks = {v: (_workdays_before(today, 7), _workdays_before(today, 4)) for v in chosen[args.silent :]}
    return Trouble(silent, forks)


def _workdays_before(d: date, n: int) -> date:
    while n > 0:
        d -= timedelta(days=1)
        if ub.is_workday(d):
            n -= 1
    return d


# -- the fill --------------------------------------------------------------------------------------
def exchange(src: ub.Site, dst: ub.Site, statuses: Counter[str] | None = None) -> dict[str, int]:
    """`ui_bench.exchange`, counting what is not accepted in `statuses` instead of stopping (forks,
    quarantine: only the forked villages may meet them)."""
    directory = src.store.directory()
    wanted = lambda feed: routing.may_push(src.node, dst.node, feed, directory)  # noqa: E731
    authors: dict[str, int] = {}
    for page in src.store.plan(dst.store.vector(), wanted, max_page_bytes=1 << 20):
        for v in dst.store.receive_page(encode_page([src.store.read_batch(r) for r in page])):
            for o in v.outcomes:
                if o.status is Status.ACCEPTED:
                    author = o.feed.split("/")[0]
                    authors[author] = authors.get(author, 0) + o.last - o.first + 1
                elif statuses is None:
                    raise RuntimeError(f"{src.node} → {dst.node}: {o.feed} {o.status.name}: {o.reason}")
                else:
                    statuses[o.status.name] += 1
    return authors


def contact(parent: ub.Site, child: ub.Site, at_ms: int) -> None:
    """What the parent's sync API records of a child's push (hello with its own heads)."""
    state.record_peer(parent.store, child.node, "push", at_ms)
    state.record_own_heads(parent.store, child.node, child.store.vector(), at_ms)


def pulled(parent: ub.Site, child: str, vector: Any, directory: Any, at_ms: int) -> None:
    """What the parent records of a child's pull that took everything it should hold."""
    state.record_peer(parent.store, child, "pull", at_ms)
    state.record_peer_vector(
        parent.store, child, {f: h for f, h in vector.items() if routing.should_hold(child, f, directory)}
    )


def own_filings(village: str, fold: Any) -> Any:
    """A lighter village's fold: what it receives (its first sync: membership, catalog) and the cases it files
    (its numbers come from them), not its other steps: the case's life is folded at the township."""
    own = f"{village}/"

    def folds(db: Any, entries: list[Any]) -> None:
        keep = [e for e in entries if not e.feed.startswith(own) or e.kind == kinds.CASE_NEW]
        if keep:
            fold(db, keep)

    return folds


FILL_CACHE_KIB = {"county": 512 * 1024, "township": 32 * 1024}  # SQLite's page cache of a fill connection


def fast(site: ub.Site) -> ub.Site:
    """A fill connection: no fsync per commit, and a page cache that holds the county's hot pages (with SQLite's
    default 2 MiB the county's 100,000-case file was read again page by page through the OS: 257 GB of read()
    calls and a quarter of the fill's time in the kernel, at half the fill). What is written is the same."""
    site.store.conn.execute("PRAGMA synchronous=OFF")
    if site.role in FILL_CACHE_KIB:
        site.store.conn.execute(f"PRAGMA cache_size=-{FILL_CACHE_KIB[site.role]}")
    return site


class CountyFiller(ub.Filler):
    """The township mode's filler over T townships, with lighter villages and the trouble of `Trouble`."""

    def __init__(
        self, root: Path, args: argparse.Namespace, trouble: Trouble
    ) -> None:  # the township mode's __init__ opens one township
        self.root = root
        self.args = args
        self.trouble = trouble
        self.layout = layout(args.townships, args.villages)
        self.sites: dict[str, ub.Site] = {}
        county = county_cli.load_county(str(root / "county"))
        self.county_node = county
        self.county_config = county.config
        c = county.config
        self.sites["county"] = fast(ub.Site("county", "county", open_county_store(county.data), county.key,
                                            Actor(c.node_id, "county", c.division, None, c.root_node, ub.COUNTY_OFFICER)))  # fmt: skip
        for t in self.layout:
            for name in [t.node, *(v for v, _ in t.villages)]:
                self.sites[name] = self._open(name)
        self.county_ws = Workspace(county, store=self.sites["county"].store)
        self.people = ub.DemoPeople(seed=args.seed)
        self.case_ids: dict[int, str] = {}
        self.agents: dict[int, str] = {}
        self.pushed: set[str] = set()
        self.done: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.failure_examples: list[str] = []
        self.moved = 0
        self.dead: set[int] = set()  # cases whose life stopped (their village went quiet or forked)
        self.skipped: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.unpushed: dict[str, set[int]] = {}  # village → cases it acted on today, not yet at its township
        self.gone: set[str] = set()  # villages that no longer act (silent, or forked and frozen)
        self.cards = 0

    def _open(self, name: str) -> ub.Site:
        node = ChildNode.load(self.root / name)
        c = node.config
        store = node.open_store()
        if c.role == "village":
            store.fold = own_filings(name, store.fold)
        return fast(ub.Site(name, c.role, store, node.key, Actor(c.node_id, c.role, c.division, c.parent, c.root_node)))

    def close(self) -> None:
        for s in self.sites.values():
            s.store.close()

    def township_of(self, village: str) -> str:
        return village[:3]

    def where(self, plan: ub.Plan, step: ub.Step) -> tuple[ub.Site, Any]:
        assert isinstance(plan, CountyPlan)
        k, vi = plan.towns[step.case], plan.villages[step.case]
        if step.node == "village":
            site = self.sites[village_id(k, vi)]
            if step.action == "file":  # its own catalog, numbers and clock
                return site, site.store.conn
            return site, self.sites[township_id(k)].store.conn  # what the village would hold: the township has it
        site = self.sites[township_id(k) if step.node == "township" else "county"]
        return site, site.store.conn

    def place(self, plan: ub.Plan, case: int) -> tuple[str, str]:
        assert isinstance(plan, CountyPlan)
        return town(plan.towns[case]), ub.village_name(plan.villages[case])

    def run(self, plan: ub.Plan) -> None:
        assert isinstance(plan, CountyPlan)
        self.first_sync()
        by_day: dict[date, list[ub.Step]] = {}
        for step in plan.steps:
            by_day.setdefault(datetime.fromtimestamp(step.at_ms / 1000, CST).date(), []).append(step)
        by_town: dict[tuple[date, int, str], list[ub.Step]] = {}
        for day, steps in by_day.items():
            for s in steps:
                by_town.setdefault((day, plan.towns[s.case], s.node), []).append(s)
        t0 = time.perf_counter()
        days = sorted(by_day)
        for n, day in enumerate(days, start=1):
            self.trouble_of_the_day(plan, day)
            evening = int(datetime(day.year, day.month, day.day, 17, 30, tzinfo=CST).timestamp() * 1000)
            for t in self.layout:
                k = int(t.node[1:])
                for step in by_town.get((day, k, "village"), []):
                    self.village_step(plan, step, day)
                for i, (v, _) in enumerate(t.villages):
                    if v not in self.gone and day < self.trouble.silent.get(v, date.max):
                        self.push_village(v, evening + i * 60_000)
                for step in by_town.get((day, k, "township"), []):
                    self.parent_step(plan, step, day)
                self.push_township(t.node, evening + 40 * 60_000)
            for step in (s for s in by_day[day] if s.node == "county"):
                self.parent_step(plan, step, day)
            self.number_and_receipt(day)
            self.cards += len(scan_cards(self.county_ws, at_ms=evening + 45 * 60_000))
            self.sync_down(day, evening + 50 * 60_000)
            if n % 5 == 0 or n == len(days):
                spent = time.perf_counter() - t0
                log(f"fill: {day} done ({n}/{len(days)} days, {spent:.0f} s, about {spent / n * (len(days) - n):.0f} s "
                    f"to go), {len(self.case_ids):,} cases filed")  # fmt: skip

    def first_sync(self) -> None:
        """Every township and village takes the membership and the catalog (their first sync)."""
        county = self.sites["county"]
        for t in self.layout:
            self.moved += sum(exchange(county, self.sites[t.node]).values())
            for v, _ in t.villages:
                self.moved += sum(exchange(self.sites[t.node], self.sites[v]).values())

    def parent_step(self, plan: ub.Plan, step: ub.Step, day: date) -> None:
        if step.case in self.dead:
            self.skipped[f"{step.node} step of a stopped case"] += 1
        else:
            self.take(plan, step, day)

    def village_step(self, plan: ub.Plan, step: ub.Step, day: date) -> None:
        site, _ = self.where(plan, step)
        v = site.node
        if v in self.gone or day >= self.trouble.silent.get(v, date.max) or step.case in self.dead:
            self.dead.add(step.case)
            self.skipped["village step of a quiet village"] += 1
            return
        if step.case in self.unpushed.get(v, ()):  # the case acts again today: the township must see the last step
            self.push_village(v, step.at_ms - 1)
        if self.take(plan, step, day) is not None:
            self.unpushed.setdefault(v, set()).add(step.case)

    def push_village(self, v: str, at_ms: int) -> None:
        t = self.sites[self.township_of(v)]
        contact(t, self.sites[v], at_ms)
        self.moved += sum(exchange(self.sites[v], t, self.statuses if v in self.trouble.forks else None).values())
        self.unpushed.pop(v, None)

    def push_township(self, node: str, at_ms: int) -> None:
        t, county = self.sites[node], self.sites["county"]
        contacts.report_contacts(t.store, t.key, node, at_ms)
        fork_reports.report_forks(t.store, t.key, node, at_ms)
        contact(county, t, at_ms)
        authors = exchange(t, county)
        self.moved += sum(authors.values())
        self.pushed |= set(authors)

    def sync_down(self, day: date, at_ms: int) -> None:
        """The county's entries down to each township; each village pulls from its township (recorded there)."""
        county = self.sites["county"]
        directory = county.store.directory()
        cvector = county.store.vector()
        for t in self.layout:
            ts = self.sites[t.node]
            self.moved += sum(exchange(county, ts).values())
            pulled(county, t.node, cvector, directory, at_ms)
            tvector = ts.store.vector()
            for i, (v, _) in enumerate(t.villages):
                if v not in self.gone and day < self.trouble.silent.get(v, date.max):
                    pulled(ts, v, tvector, directory, at_ms + i * 60_000)

    # -- forks and quarantine ------------------------------------------------------------------
    def aside(self, v: str, what: str) -> Path:
        return self.root / f"{v}.{what}.sqlite"

    def trouble_of_the_day(self, plan: ub.Plan, day: date) -> None:
        for v, (copied, restored) in self.trouble.forks.items():
            if day == copied:
                with sqlite3.connect(self.aside(v, "copy")) as dst:
                    self.sites[v].store.conn.backup(dst)
            elif day == restored:  # the laptop is restored from the copy; the agent files again more than it lost
                self.swap(v, "copy", "original")
                feed = f"{v}/up"
                kept = self.sites[v].store.vector().get(feed, (0, b""))[0]
                lost = self.sites[self.township_of(v)].store.vector().get(feed, (0, b""))[0] - kept
                self.file_extra(v, lost + 1, day, 9.0, fork_from=kept + 1)  # a fork, reported up as evidence
                self.gone.add(v)
            elif day == ub.add_workdays(restored, 1):  # the old laptop turns up and files one more on its branch
                self.swap(v, "original", "restored")
                self.file_extra(v, 1, day, 10.0)  # the township holds it in quarantine: the feed is frozen
                self.swap(v, "restored", "original")

    def swap(self, v: str, take: str, keep: str) -> None:
        """Close the village's store, keep its file aside as `keep`, and open the one kept aside as `take`."""
        self.sites[v].store.close()
        db = ChildNode.load(self.root / v).data.db_path
        for extra in (Path(f"{db}-wal"), Path(f"{db}-shm")):
            extra.unlink(missing_ok=True)
        shutil.move(db, self.aside(v, keep))
        shutil.move(self.aside(v, take), db)
        self.sites[v] = self._open(v)

    def file_extra(self, v: str, n: int, day: date, hour: float, fork_from: int = 0) -> None:
        """n cases filed at village v; pushed to its township (a restored laptop's session sends from where its
        copy and the township's part: `fork_from`)."""
        site, t = self.sites[v], self.sites[self.township_of(v)]
        k, i = int(v[1:3]), int(v[4:])
        item = next(it for it in ub.demo_items() if it.get("village_mode"))
        at = int((datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(hours=hour)).timestamp() * 1000)
        reqs = [self.people.case_request(item, township=town(k), village=ub.village_name(i)) for _ in range(n)]
        cmd = commands.new_cases(
            site.store.conn, ub._with_person(site.actor, reqs[0]["agent"]["name"]), reqs, now_ms=at
        )
        site.store.append(site.key, cmd.feed, cmd.records)
        self.done["file (restored laptop)"] = self.done.get("file (restored laptop)", 0) + n
        if fork_from:
            batch = site.store.read_batch(Range(cmd.feed, fork_from, site.store.vector()[cmd.feed][0]))
            contact(t, site, at + 3_600_000)
            for verdict in t.store.receive_page(encode_page([batch])):
                self.statuses.update(o.status.name for o in verdict.outcomes)
        else:
            self.push_village(v, at + 3_600_000)


# -- the cases applied at the county for the upkeep figure ---------------------------------------
def make_apply_pages(filler: CountyFiller, n: int, now_ms: int) -> list[bytes]:
    """n cases more at t01, filed and accepted, and the pages the county lacks of them (not applied)."""
    t = filler.sites[township_id(1)]
    villages = [v for v, _ in filler.layout[0].villages if v not in filler.gone and v not in filler.trouble.silent]
    item = next(it for it in ub.demo_items() if it.get("village_mode") == "村受理乡办结")
    before = t.store.vector()
    made: list[str] = []
    for j, v in enumerate(villages):
        site = filler.sites[v]
        count = n // len(villages) + (1 if j < n % len(villages) else 0)
        if count == 0:
            continue
        reqs = [filler.people.case_request(item, township=town(1), village=ub.village_name(int(v[4:])))
                for _ in range(count)]  # fmt: skip
        cmd = commands.new_cases(
            site.store.conn, ub._with_person(site.actor, reqs[0]["agent"]["name"]), reqs, now_ms=now_ms
        )
        site.store.append(site.key, cmd.feed, cmd.records)
        made += [c["case_id"] for c in cmd.result["cases"]]
        exchange(site, t)
    for i in range(0, len(made), 200):
        clerk = ub._with_person(t.actor, ub.CLERKS[0])
        for case_id in made[i : i + 200]:
            cmd = commands.transition(t.store.conn, clerk, case_id, "accept", {}, now_ms=now_ms + 600_000)
            t.store.append(t.key, cmd.feed, cmd.records)
    directory = t.store.directory()
    county = filler.sites["county"]
    wanted = lambda feed: routing.may_push(t.node, "county", feed, directory)  # noqa: E731
    pages = [encode_page([t.store.read_batch(r) for r in page])
             for page in t.store.plan(county.store.vector(), wanted, max_page_bytes=1 << 20)]  # fmt: skip
    log(f"apply pages: {len(made)} cases, {sum(len(p) for p in pages):,} bytes in {len(pages)} pages "
        f"({sum(s - before.get(f, (0, b''))[0] for f, (s, _) in t.store.vector().items()):,} entries)")  # fmt: skip
    return pages


def write_pages(path: Path, pages: list[bytes]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(p)) + p for p in pages))


def read_pages(path: Path) -> list[bytes]:
    blob, out, i = path.read_bytes(), [], 0
    while i < len(blob):
        (n,) = struct.unpack_from(">I", blob, i)
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def fill_county(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    ub.build_nodes(root, layout(args.townships, args.villages))
    t_nodes, c_nodes = time.perf_counter() - t0, time.process_time() - c0
    log(
        f"nodes: the county, {args.townships} townships and {args.townships * args.villages} villages in {t_nodes:.0f} s"
    )
    now = int(time.time() * 1000)
    today = datetime.fromtimestamp(now / 1000, CST).date()
    plan = plan_county(args, today, now)
    trouble = plan_trouble(args, today)
    log(f"fill: {args.cases:,} cases from {args.townships} × {args.villages} villages over {args.days} days, "
        f"{len(plan.steps):,} steps; {len(trouble.silent)} villages go quiet, {len(trouble.forks)} fork")  # fmt: skip
    filler = CountyFiller(root, args, trouble)
    try:
        filler.run(plan)
        t_fill, c_fill = time.perf_counter() - t0, time.process_time() - c0
        write_pages(root / APPLY_FILE, make_apply_pages(filler, args.apply_cases, now))
    finally:
        filler.close()
    if filler.failures:
        raise RuntimeError(f"{sum(filler.failures.values())} steps failed: {filler.failure_examples}")
    db = DataDir(str(root / "county")).db_path
    return {
        "format": ub.FORMAT,
        "county": True,
        "cases": args.cases,
        "townships": args.townships,
        "villages": args.villages,
        "days": args.days,
        "seed": args.seed,
        "silent": args.silent,
        "forked": args.forked,
        "apply_cases": args.apply_cases,
        "filled_on": str(today),
        "filled_at_ms": now,
        "commit": commit(),
        "steps": filler.done,
        "skipped": dict(filler.skipped),
        "not_accepted_at_townships": dict(filler.statuses),
        "cards_issued": filler.cards,
        "silent_villages": {v: str(d) for v, d in sorted(trouble.silent.items())},
        "forked_villages": sorted(trouble.forks),
        "entries_moved": filler.moved,
        "county_db_bytes": os.path.getsize(db) + (os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal") else 0),
        "nodes_s": round(t_nodes, 1),
        "fill_s": round(t_fill, 1),
        "nodes_cpu_s": round(c_nodes, 1),  # this process's CPU seconds: on a shared machine, the figure to compare
        "fill_cpu_s": round(c_fill, 1),
        "apply_pages_s": round(time.perf_counter() - t0 - t_fill, 1),
    }


def commit() -> str:
    """The code's git commit (the fill folds with it: a cache filled before a merge was folded by older code)."""
    import subprocess

    done = subprocess.run(["git", "-C", str(ub.ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


def warn_if_older(made: dict[str, Any]) -> None:
    now = commit()
    if made.get("commit") != now:
        log(f"note: this cache was filled at commit {made.get('commit')}, the code is at {now}: the county's "
            "tables added since were filled by their migrations, not kept up as entries arrived; "
            "fill anew (another --cache directory) to measure the upkeep as production does it")  # fmt: skip


# -- measuring the county's pages ----------------------------------------------------------------
def ensure_admin(county: Path) -> None:
    """A 管理员 account at the county, added with the CLI as the IT officer would."""
    os.environ[ADMIN_PASSWORD_ENV] = ADMIN_PASSWORD
    data = str(county)
    known = json.loads(ub.run_cli(county_cli.main, "account", "list", "--data", data, "--json"))
    rows = known if isinstance(known, list) else known.get("accounts", [])
    if not any(a.get("login") == ADMIN_LOGIN for a in rows):
        ub.run_cli(county_cli.main, "account", "add", "--data", data, "--name", ADMIN_NAME, "--login", ADMIN_LOGIN,
                   "--role", "admin", "--password-env", ADMIN_PASSWORD_ENV)  # fmt: skip


def county_pages(today: date) -> dict[str, tuple[str, str]]:
    """name → (label, path): the pages and their variants, with the query words of the branches that build
    them (i13-recon, i13-stats, i13-monitor as they stood at 08:00 UTC on 2026-12-03)."""
    month = ub.last_month(today)
    return {
        "recon": ("对账 (首页)", "/"),
        "recon_contact": ("对账 按最后联系排序", "/?sort=contact"),
        "recon_township": ("对账 一个乡镇 (t05)", "/?township=t05"),
        "recon_problems": ("对账 只看有问题的", "/?problems=1"),
        "recon_silent": ("对账 只看静默", "/?silent=1"),
        "recon_completeness": ("对账 上报完整性 (本月)", "/completeness"),
        "stats": ("统计 (本月, 各乡镇, 12个月走势)", "/stats"),
        "stats_last_month": (f"统计 {month}", f"/stats?period={month}"),
        "stats_year": (f"统计 {today.year}年", f"/stats?period={today.year}"),
        "stats_township": ("统计 一个乡镇的村 (t05)", "/stats?township=t05"),
        "monitor": ("电子监察 (按乡镇)", "/monitor"),
        "monitor_village": ("电子监察 按村", "/monitor?group=village"),
        "monitor_item": ("电子监察 按事项", "/monitor?group=item"),
        "monitor_clerk": ("电子监察 按受理人", "/monitor?group=clerk"),
        "monitor_township": ("电子监察 一个乡镇 (t05)", "/monitor?township=t05"),
    }


def present(b: ub.Browser, pages: dict[str, tuple[str, str]]) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The pages this branch has (a route not built yet answers 404: left out), and which still say 建设中."""
    found, notes = {}, {}
    for name, (label, path) in pages.items():
        status, html = b.get(path)
        if status == 404:
            notes[name] = "absent (404)"
            continue
        found[name] = (label, path)
        if "建设中" in html:
            notes[name] = "stub (建设中)"
    return found, notes


def county_rows(conn: Any) -> dict[str, Any]:
    """What the county holds: cases, nodes, contact reports, forks, quarantine, cards, evaluations, events."""

    def one(sql: str) -> Any:
        return conn.execute(sql).fetchone()[0]

    states = dict(conn.execute("SELECT state, COUNT(*) FROM cases WHERE origin_case_id IS NULL GROUP BY 1").fetchall())
    return {
        "cases_table": one("SELECT COUNT(*) FROM cases"),
        "cases_filed": one("SELECT COUNT(*) FROM cases WHERE origin_case_id IS NULL"),
        "states": states,
        "case_events": one("SELECT COUNT(*) FROM case_events"),
        "entries": one("SELECT COUNT(*) FROM entries"),
        "nodes": dict(conn.execute("SELECT role, COUNT(*) FROM nodes GROUP BY role").fetchall()),
        "contact_reports": one("SELECT COUNT(*) FROM node_contacts"),
        "forks": one("SELECT COUNT(*) FROM forks"),
        "quarantined_batches": one("SELECT COUNT(*) FROM quarantine"),
        "cards": dict(conn.execute("SELECT level, COUNT(*) FROM cards GROUP BY 1").fetchall()),
        "evaluations": one("SELECT COUNT(*) FROM evaluations"),
    }


def measure_county(root: Path, args: argparse.Namespace, county: Path | None = None) -> dict[str, Any]:
    """The county's pages of the fill in `root` (or of the county data directory `county`, as it is)."""
    county = county or root / "county"
    ensure_admin(county)
    today = datetime.now(CST).date()
    pages = county_pages(today)
    for extra in args.page or []:
        name, _, path = extra.partition("=")
        pages[name] = (f"{name} ({path})", path)
    app = county_app(county)
    app.config["TESTING"] = True
    out: dict[str, Any] = {"mode": "county"}
    try:
        out["county_rows"] = app.extensions["county"].ws.read(county_rows)
        b = ub.Browser(app)
        b.sign_in("/login", {"login": ADMIN_LOGIN, "password": ADMIN_PASSWORD}, "/")
        pages, out["pages_noted"] = present(b, pages)
        probes = [ub.Probe(name, label, (lambda p: lambda i: b.get(p))(path), ub.ok())
                  for name, (label, path) in pages.items()]  # fmt: skip
        out["county"] = ub.run_probes(probes, args)
        for name, r in out["county"].items():
            r["path"] = pages[name][1]
            r["meets_goal"] = r["p95_s"] < COUNTY_GOAL_S
            if name in out["pages_noted"]:
                r["note"] = out["pages_noted"][name]
    finally:
        for ext in app.extensions.values():  # the numbering job and any scheduled scan
            stop = getattr(ext, "stop", None)
            if callable(stop):
                stop()
        app.extensions["county"].ws.close()
    if not args.no_apply and (root / APPLY_FILE).exists():
        out["apply"] = measure_apply(root, read_pages(root / APPLY_FILE), args.apply_cases)
    return out


def measure_apply(root: Path, pages: list[bytes], cases: int, rounds: int = 2) -> dict[str, Any]:
    """Seconds per 1,000 cases applied at the county (verify, write, fold and upkeep), on a copy of its data
    as production opens it, and on a copy with every trigger dropped; each `rounds` times, alternating, the
    best kept (the disk's fsyncs and the shared machine make single figures noisy)."""
    out: dict[str, Any] = {"cases": cases, "bytes": sum(len(p) for p in pages), "rounds": rounds}
    times: dict[str, list[float]] = {"as_opened": [], "without_triggers": []}
    with tempfile.TemporaryDirectory(prefix="sanji-ui-apply-", dir=root) as tmp:
        for _ in range(rounds):
            for variant in times:
                copy = Path(tmp) / variant
                shutil.copytree(root / "county", copy)
                store = open_county_store(DataDir(str(copy)))
                try:
                    if variant == "without_triggers":
                        names = [
                            r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                        ]
                        for name in names:
                            store.conn.execute(f'DROP TRIGGER "{name}"')
                        out["triggers_dropped"] = names
                    t = time.perf_counter()
                    verdicts = [v for p in pages for v in store.receive_page(p)]
                    times[variant].append(time.perf_counter() - t)
                    bad = [o.status.name for v in verdicts for o in v.outcomes if o.status is not Status.ACCEPTED]
                    if bad:
                        raise RuntimeError(f"apply: {Counter(bad)}")
                    out["entries"] = sum(o.last - o.first + 1 for v in verdicts for o in v.outcomes)
                finally:
                    store.close()
                shutil.rmtree(copy)
    for variant, spent in times.items():
        out[f"{variant}_s"] = round(min(spent), 3)
        out[f"{variant}_all_s"] = [round(x, 3) for x in spent]
    a, b = out["as_opened_s"], out["without_triggers_s"]
    out["upkeep_share"] = round((a - b) / a, 3) if a else 0.0
    out["as_opened_per_1000_s"] = round(a * 1000 / cases, 3)
    out["without_triggers_per_1000_s"] = round(b * 1000 / cases, 3)
    log(f"apply {cases:,} cases ({out['entries']:,} entries) at the county: {a:.2f} s as opened, "
        f"{b:.2f} s without triggers ({len(out['triggers_dropped'])} dropped), best of {rounds}")  # fmt: skip
    return out


def county_table(res: dict[str, Any]) -> str:
    m = res["measured"]
    rows = m["county_rows"]
    lines = [f"{ub._pad('county page', 34)} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  p95 < {COUNTY_GOAL_S * 1000:.0f} ms",
             f"县 ({rows['cases_filed']:,} 件, {rows['nodes'].get('township', 0)} 乡镇, {rows['nodes'].get('village', 0)} 村)"]  # fmt: skip
    for r in m["county"].values():
        lines.append(f"  {ub._pad(r['label'], 32)} {r['p50_s'] * 1000:9.1f} {r['p95_s'] * 1000:9.1f} "
                     f"{r['max_s'] * 1000:9.1f}  {'yes' if r['meets_goal'] else 'NO'}  {r.get('note', '')}")  # fmt: skip
    for name, note in m.get("pages_noted", {}).items():
        if name not in m["county"] and note.startswith("absent"):
            lines.append(f"  {ub._pad(name, 32)} {note}")
    if "apply" in m:
        a = m["apply"]
        lines.append(f"apply {a['cases']:,} cases at the county: {a['as_opened_s']:.2f} s as opened, "
                     f"{a['without_triggers_s']:.2f} s without the {len(a['triggers_dropped'])} triggers")  # fmt: skip
    return "\n".join(lines)
