"""A hostile link (issue 12, point 11): the fault proxy between every child and its parent, and everything converges.

Real county, township and village processes (tests/e2e/cluster.py), each serving with its sync job on. The
township's link to the county and the village's link to the township each go through a `LinkProxy` that adds
latency and a bandwidth cap, takes the link down for a while in every period (reset or silent, alternately),
and, every half second or so, cuts a connection in the middle of a body (reset or FIN) or drops it silently.

Time is scaled by 0.1 in CI: the stall timeout is 3 s (node.json `stall_timeout_s`, 30 s by default) and
the link is down 1 s in every 3 s (the issue's 10 s in every 30 s); CI carries 120 cases and a 30-item
catalog, the long run 2,000 cases and a 500-item catalog. Checked after convergence: every entry exactly
once at every node that should hold it, with the same hash (the village's feed at the township and the
county; the county's feeds at the township and the village); the figures (bytes of each interrupted exchange,
the worst stall) go to the reliability report.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..e2e.cluster import Cluster, wait_for
from ..e2e.conftest import catalog_file
from ..linkproxy import LinkProxy, Shape
from .report import long_run, record

ITEM = "城乡居民医保参保登记"
SCALE = 0.1  # of the 30 s timeout and 10 s down in every 30 s
STALL_S = 30.0 * SCALE
SHAPE = Shape(up_bps=64_000, down_bps=64_000, latency_s=0.1, sock_buf=16384)


def set_config(c: Cluster, node: str, **values: object) -> None:
    path = c.nodes[node].data / "node.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(values)
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


class Saboteur:
    """Every ~half second, one fault on a random link: a cut (RST or FIN) or a silent drop, somewhere in a body."""

    def __init__(self, proxies: list[LinkProxy], seed: int = 12) -> None:
        self.proxies, self.rng, self.stop = proxies, random.Random(seed), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.2, 0.8)):
            p = self.rng.choice(self.proxies)
            if len(p.faults) >= 2:  # still waiting for traffic to hit: do not pile them up
                continue
            direction, at = self.rng.choice(["up", "down"]), self.rng.randrange(200, 20_000)
            match self.rng.choice(["reset", "fin", "drop"]):
                case "drop":
                    p.drop_after(direction, at)
                case kind:
                    p.cut_after(direction, at, reset=kind == "reset")

    def __enter__(self) -> Saboteur:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def feed_rows(c: Cluster, node: str, feed: str) -> list[tuple[int, bytes]]:
    with c.store(node) as s:
        return [(int(seq), bytes(h)) for seq, h in s.conn.execute(
            "SELECT seq, hash FROM entries WHERE feed = ? ORDER BY seq", (feed,))]  # fmt: skip


def county_feeds(c: Cluster) -> list[str]:
    with c.store("county") as s:
        return sorted(f for f in s.vector() if f.split("/")[0] == "county")


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Cluster, list[LinkProxy]]]:
    c = Cluster(tmp_path)
    proxies: list[LinkProxy] = []
    try:
        c.county()
        county = c.start("county")
        proxies.append(LinkProxy.to_url(county.url or "", SHAPE))
        c.enrol("t1", "township", "430321101000", "county", proxies[0].url)
        set_config(c, "t1", stall_timeout_s=STALL_S)
        t1 = c.start("t1", "--sync-interval", "1", "--max-backoff", "2", "--page-kib", "64")
        proxies.append(LinkProxy.to_url(t1.url or "", SHAPE))
        c.enrol("v11", "village", "430321101201", "t1", proxies[1].url)
        set_config(c, "v11", stall_timeout_s=STALL_S)
        yield c, proxies
    finally:
        for p in proxies:
            p.close()
        c.close()


def test_cases_and_catalog_converge_through_a_hostile_link(
    hostile: tuple[Cluster, list[LinkProxy]], tmp_path: Path
) -> None:
    c, proxies = hostile
    n_cases, n_items = (2000, 500) if long_run() else (120, 30)
    # logged offline in commits of 100: a commit travels as one page whatever its size (pages are cut only at
    # commits), and a 500-case page both outlasts the random faults and keeps the township applying longer than
    # the scaled stall timeout of 3 s
    for start in range(0, n_cases, 100):
        cases = [{**x, "notes": secrets.token_hex(50)} for x in c.cases(min(100, n_cases - start), ITEM)]
        c.run("v11", "case", "new", "--offline", "--json", "-", input=json.dumps(cases, ensure_ascii=False))
    c.run("county", "catalog", "import", str(catalog_file(tmp_path / "catalog.json", n_items)))
    with c.store("county") as s:
        items = int(s.conn.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0])
    for i, p in enumerate(proxies):
        p.forget_stalls()
        p.outage(period_s=30 * SCALE, down_s=10 * SCALE, mode="reset" if i == 0 else "silent")
    c.start("v11", "--sync-interval", "1", "--max-backoff", "2", "--page-kib", "64", "--no-browser")

    def converged() -> bool:
        up = feed_rows(c, "county", "v11/up")
        if len(up) < n_cases or up != feed_rows(c, "v11", "v11/up"):
            return False
        with c.store("v11") as s:
            return int(s.conn.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0]) == items

    with Saboteur(proxies):
        wait_for(converged, "cases at the county and the catalog at the village", timeout=900 if long_run() else 150,
                 step=1.0)  # fmt: skip
    for p in proxies:
        p.outage(period_s=3600, down_s=0)  # the link stays up for the checks (the next outage is an hour away)
    # every entry exactly once at every node that should hold it, with the same hash
    village = feed_rows(c, "v11", "v11/up")
    assert [seq for seq, _ in village] == list(range(1, len(village) + 1))
    assert len(village) >= n_cases
    assert feed_rows(c, "t1", "v11/up") == village == feed_rows(c, "county", "v11/up")

    # the county's feeds: whatever part of each a child holds is the county's, seq for seq (still flowing down)
    for f in county_feeds(c):
        rows = feed_rows(c, "county", f)
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), f
        for node in ("t1", "v11"):
            held = feed_rows(c, node, f)
            assert held == rows[: len(held)], (node, f)
    figures = [p.figures() for p in proxies]
    worst = max(f["worst_gap_s"] for f in figures)
    print(json.dumps(figures, ensure_ascii=False, indent=1))  # shown by pytest when an assertion below fails
    assert sum(f["interruptions"] for f in figures) > 0, figures
    assert worst <= 2 * STALL_S + 2.0, figures  # 2x the stall timeout, plus the sync job's backoff (≤ 2 s)
    record(
        "hostile link",
        cases=n_cases,
        catalog_items=n_items,
        stall_timeout_s=STALL_S,
        interruptions=sum(f["interruptions"] for f in figures),
        bytes_per_interruption=round(
            sum(f["bytes_interrupted"] for f in figures) / max(1, sum(f["interruptions"] for f in figures))
        ),
        worst_stall_s=worst,
        links=[{k: v for k, v in f.items() if k != "long_gaps"} for f in figures],  # the gaps are printed above
    )
