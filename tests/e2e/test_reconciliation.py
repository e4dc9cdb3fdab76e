"""The 对账 figures equal counts made independently in each node's own database (issue 13, acceptance 3).

Real processes: the county and two townships serve; five villages run their
CLI. 石门村 (v13) is enrolled and files offline but never syncs (silent: 静默 once
the clock is moved past the threshold). 新桥村
(v12) is forked: its laptop is restored from a copy taken before its last two
cases and files one case offline, which its township refuses as a fork. The
others file and sync. Then the figures of `county_server.reconcile` — through
`county-server reconcile --json`, and as the signed-in page `/recon.json` and
`/` show them — are checked against each node's SQLite file opened directly:
case.new entries of each village's feeds (the village's own for a village
that synced whole, its township's copy for the forked one), last contacts
as the township recorded them, forks and quarantine where they were found.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from county_server import reconcile
from county_server.node import open_county_store
from sanji_domain import views
from sanji_domain.commands import CST
from sanji_node.config import DataDir

from .cluster import Cluster

ITEM = "城乡居民医保参保登记"
VILLAGES = {"v11": "t1", "v12": "t1", "v13": "t1", "v21": "t2", "v22": "t2"}
DIVISIONS = {"t1": "430321101000", "t2": "430321102000", "v11": "430321101201", "v12": "430321101202",
             "v13": "430321101203", "v21": "430321102201", "v22": "430321102202"}  # fmt: skip
FILED = {"v11": 3, "v12": 2, "v13": 2, "v21": 4, "v22": 0}
PASSWORD = "zhouming-2026-pass"


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("recon"))
    c.county()
    county = c.start("county")
    for t in ("t1", "t2"):
        c.enrol(t, "township", DIVISIONS[t], "county", county.url or "")
        c.start(t, "--sync-interval", "3600")  # the townships sync up when the test says so
    for v, t in VILLAGES.items():
        c.enrol(v, "village", DIVISIONS[v], t, c.nodes[t].url or "")
    for v, n in FILED.items():
        if v != "v12" and n:
            c.new_cases(v, n, ITEM, "--offline")
    # 新桥村: a copy of the laptop before its cases; two cases synced; the copy put back files one offline
    copy = c.root / "v12-copy"
    shutil.copytree(c.nodes["v12"].data, copy)
    c.new_cases("v12", FILED["v12"], ITEM, "--offline")
    for v in ("v11", "v12", "v21", "v22"):  # 石门村 never syncs
        c.run(v, "sync")
    shutil.rmtree(c.nodes["v12"].data)
    shutil.copytree(copy, c.nodes["v12"].data)
    c.new_cases("v12", 1, ITEM, "--offline")
    assert c.run("v12", "sync", check=False).returncode == 2  # the fork, at the township
    for t in ("t1", "t2"):
        c.run(t, "sync")
    c.run("county", "account", "add", "--role", "admin", "--name", "周明", "--login", "zhouming",
          "--password-env", "PW", env={"PW": PASSWORD})  # fmt: skip
    yield c
    c.close()


def db(c: Cluster, node: str) -> sqlite3.Connection:
    """A node's own SQLite file, opened read-only: nothing of the county's code counts here."""
    return sqlite3.connect(f"file:{c.nodes[node].data / 'node.sqlite'}?mode=ro", uri=True)


def cases_of(c: Cluster, holder: str, village: str) -> dict[str, int]:
    """case.new entries of `village`'s feeds in `holder`'s database: all, and filed today (China time)."""
    with db(c, holder) as conn:
        hlcs = [
            h
            for (h,) in conn.execute(
                "SELECT hlc FROM entries WHERE kind = 'case.new' AND substr(feed, 1, instr(feed, '/') - 1) = ?",
                (village,),
            )
        ]
    today = datetime.now(CST).date()
    on = [datetime.fromtimestamp(h / 1e6, CST).date() for h in hlcs]
    return {
        "all": len(hlcs),
        "today": sum(d == today for d in on),
        "month": sum(d.replace(day=1) == today.replace(day=1) for d in on),
        "week": sum(d.isocalendar()[:2] == today.isocalendar()[:2] for d in on),
    }


def signed_in(c: Cluster) -> requests.Session:
    s = requests.Session()
    url = c.nodes["county"].url
    page = s.get(f"{url}/login", timeout=30).text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf
    done = s.post(f"{url}/login", data={"login": "zhouming", "password": PASSWORD, "csrf_token": csrf[1]}, timeout=30)
    assert done.status_code == 200 and "周明" in done.text
    return s


def rows_of(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["node"]: r for g in figures["groups"] for r in [g["township"], *g["villages"]]} | {
        r["node"]: r for r in figures["unattached"]
    }


def test_the_figures_equal_counts_made_in_each_nodes_own_database(c: Cluster) -> None:
    cli = c.json("county", "reconcile")
    page = signed_in(c).get(f"{c.nodes['county'].url}/recon.json", timeout=30).json()
    for figures in (cli, page):
        rows = rows_of(figures)
        assert set(rows) == {"t1", "t2", *VILLAGES}
        for v, t in VILLAGES.items():
            r = rows[v]
            # cases: the village's own count where it synced whole; the forked laptop's branch is not the
            # canonical one and the silent laptop never sent its cases, so 新桥村 and 石门村 are counted in their
            # township's copy (what came up the chain)
            holder = t if v in ("v12", "v13") else v
            own = cases_of(c, holder, v)
            at_county = cases_of(c, "county", v)
            filed = [own["today"], own["week"], own["month"]]
            assert [r["filed_today"], r["filed_week"], r["filed_month"]] == filed, v
            # received: all came up today, within the minute they were filed
            assert [r["cases_today"], r["cases_week"], r["cases_month"]] == filed, v
            assert at_county == own, v
            # last contact: the village's last request to its township, as the township recorded it
            with db(c, t) as conn:
                seen = conn.execute("SELECT last_seen_ms FROM peers WHERE node = ?", (v,)).fetchone()
                forks = conn.execute(
                    "SELECT COUNT(*) FROM forks WHERE feed LIKE ? AND resolved_seq IS NULL", (v + "/%",)
                ).fetchone()[0]
                held = conn.execute(
                    "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM quarantine WHERE feed LIKE ?", (v + "/%",)
                ).fetchone()[0]
            assert r["last_contact_ms"] == (seen[0] if seen else None), v
            assert (r["forks"], r["quarantined"]) == (forks, held), v
            assert not r["silent"] and r["quiet_workdays"] == 0, v  # all seen today (石门村 at its enrolment)
        for t in ("t1", "t2"):
            with db(c, "county") as conn:
                (seen,) = conn.execute("SELECT last_seen_ms FROM peers WHERE node = ?", (t,)).fetchone()
            assert rows[t]["last_contact_ms"] == seen and not rows[t]["silent"]
            # waiting at the township: entries it holds that the county does not (none after its sync)
            with db(c, t) as tc, db(c, "county") as cc:
                county_seq = dict(cc.execute("SELECT feed, seq FROM feeds").fetchall())
                missing = sum(
                    max(0, seq - county_seq.get(f, 0)) for f, seq in tc.execute("SELECT feed, seq FROM feeds")
                )
            assert sum(rows[x]["waiting_township"] for x in rows if x == t or VILLAGES.get(x) == t) == missing == 0
    v12, v13 = rows_of(cli)["v12"], rows_of(cli)["v13"]
    assert v12["forks"] == 1 and "分叉" in v12["problems"]
    assert v13["cases_month"] == 0
    assert cases_of(c, "v13", "v13")["all"] == FILED["v13"]  # on the silent laptop, never come up
    assert cases_of(c, "v12", "v12")["all"] == 1  # the restored laptop's branch: its one offline case
    assert cases_of(c, "t1", "v12")["all"] == FILED["v12"]
    summary = cli["summary"]
    assert summary["cases_month"] == sum(cases_of(c, "county", v)["month"] for v in VILLAGES)
    assert summary["silent"] == 0 and summary["villages"] == 5


def test_silent_after_the_threshold_with_the_clock_moved_as_the_calendar_counts(c: Cluster) -> None:
    """Fifteen days on (the clock injected into the same figures, on the county's database): every node is
    静默 after `silent_workdays` working days since the contact its township or the county recorded."""
    later = int(datetime.now(CST).timestamp() * 1000) + 15 * 86_400_000
    with open_county_store(DataDir(c.nodes["county"].data)) as store:
        rows = rows_of(reconcile.reconciliation(store, now_ms=later))
        cal = views.calendar(store.conn)
    for node, r in rows.items():
        with db(c, VILLAGES.get(node, "county")) as conn:
            (seen,) = conn.execute("SELECT last_seen_ms FROM peers WHERE node = ?", (node,)).fetchone()
        quiet = cal.workdays_between(datetime.fromtimestamp(seen / 1000, CST).date(), views.to_local_date(later))
        assert (r["quiet_workdays"], r["silent"]) == (quiet, quiet >= 3) and r["silent"], node


def test_the_page_and_the_completeness_show_them_by_name(c: Cluster) -> None:
    s = signed_in(c)
    url = c.nodes["county"].url
    page = s.get(f"{url}/", timeout=30).text
    for name in ("城关镇便民服务中心", "花石镇便民服务中心", "梅花村", "新桥村", "石门村", "白石村"):
        assert name in page
    assert 'href="/nodes/v12"' in page and 'href="/nodes/v11"' not in page  # 新桥村's fork links to its page
    assert "没有符合条件的乡镇或村" in s.get(f"{url}/?silent=1", timeout=30).text  # nobody silent yet
    month = datetime.now(CST).strftime("%Y-%m")
    done = c.json("county", "completeness", "--period", month)
    states = {v["node"]: v["state"] for v in done["villages"]}
    # 石门村 and 龙潭村: seen (at enrolment, or a sync) but no case this month: late; the rest reported
    assert states == {"v11": "reported", "v12": "reported", "v13": "late", "v21": "reported", "v22": "late"}
    assert {t["node"]: t["rate_pct"] for t in done["townships"]} == {"t1": 67, "t2": 50}
    chart = s.get(f"{url}/completeness", timeout=30).text
    assert "<svg" in chart and "石门村" in chart
    export = s.get(f"{url}/recon/export", timeout=30)
    assert export.status_code == 200 and export.content[:2] == b"PK"
