"""A fork resolved with one county command, nothing lost (issue 11, point 3 and acceptance 1, 2, 4 in part).

County, one township, one village, real processes. The village is restored from
a copy taken before N of its cases, files 3 cases offline and syncs: the fork
shows at the township and `sync` exits 2. `county-server resolve-fork` then
decides it; after the next syncs the county holds all N+3 cases once each,
with distinct local numbers and 办件编号, the 3 offline ones keep their case
ids, the village's sync exits 0 with nothing stranded, and it files again.
Twice: v11 restored from a plain copy of its data directory, v12 with `backup`
and `restore` (its restored mark, kept for the offline writes, is then gone).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from .cluster import Cluster, wait_for

ITEM = "城乡居民医保参保登记"
N = 10


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("fork"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    c.enrol("v12", "village", "430321101202", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def county_cases(c: Cluster, village: str) -> list[dict]:
    return [x for x in c.json("county", "case", "list") if x["case_id"] and x.get("village") == village]


@pytest.mark.parametrize(
    ("village", "how"),
    [("v11", "copy"), ("v12", "restore")],  # a plain copy of the data directory; `backup` then `restore`
)
def test_one_county_decision_resolves_a_restored_laptops_fork(c: Cluster, village: str, how: str) -> None:
    v = village
    c.run(v, "sync")
    copy = c.root / f"{v}-copy"
    if how == "copy":
        shutil.copytree(c.nodes[v].data, copy)  # taken before the N cases
    else:
        c.run(v, "backup", "--to", str(copy))
    c.new_cases(v, N, ITEM, "--offline")
    c.run(v, "sync")
    wait_for(lambda: len(county_cases(c, v)) == N, "the N cases at the county", step=0.5)
    shutil.rmtree(c.nodes[v].data)
    if how == "copy":
        shutil.copytree(copy, c.nodes[v].data)
    else:
        c.run(v, "restore", "--from", str(copy), "--data", str(c.nodes[v].data))
        assert c.json(v, "status")["restored"]
    offline = c.new_cases(v, 3, ITEM, "--offline")
    out = c.run(v, "sync", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{v}/up" in [f["feed"] for f in c.json("t1", "status")["forks"]]

    def county_knows() -> bool:
        return any(r["node"] == v for r in c.json("county", "forks")["forks"])

    wait_for(county_knows, "the fork reported to the county", step=0.5)
    done = c.run("county", "resolve-fork", v, "--reason", "笔记本从旧备份恢复后离线登记")
    assert "已裁决" in done.stdout

    def settled() -> bool:
        out = c.run(v, "sync", check=False)
        return out.returncode == 0 and len(county_cases(c, v)) == N + 3

    wait_for(settled, "the village's sync to succeed and the 3 cases to reach the county", step=1.0)
    status = c.json(v, "status")
    assert status["stranded_total"] == 0 and status["frozen"] == {} and status["forked_own_feeds"] == []
    assert status["restored"] is None  # the restored mark (if any) is satisfied
    at_county = county_cases(c, v)
    ids = [x["case_id"] for x in at_county]
    assert len(ids) == len(set(ids)) == N + 3
    assert {x["case_id"] for x in offline} <= set(ids)
    local = [x["local_no"] for x in at_county]
    assert len(set(local)) == N + 3

    def numbered() -> bool:
        c.run(v, "sync")
        return all(x["official_no"] for x in county_cases(c, v))

    wait_for(numbered, "every case numbered at the county", step=0.5)
    official = [x["official_no"] for x in county_cases(c, v)]
    assert len(set(official)) == N + 3
    renumbered = [c.json(v, "case", "show", x["case_id"]) for x in offline]
    assert all(x["reissue_of"] for x in renumbered)
    assert [x["original_local_no"] for x in renumbered] == [x["local_no"] for x in offline]  # taken on canonical
    assert "原编号 " + offline[0]["local_no"] in c.run(v, "case", "show", offline[0]["case_id"]).stdout
    laptop = c.json(v, "case", "list")
    assert len(laptop) == N + 3 and len({x["local_no"] for x in laptop}) == N + 3
    (new,) = c.new_cases(v, 1, ITEM)

    def filed_again() -> bool:
        assert c.run(v, "sync").returncode == 0
        return new["case_id"] in {x["case_id"] for x in county_cases(c, v)}

    wait_for(filed_again, "the new case at the county", step=0.5)
    assert len(county_cases(c, v)) == N + 4
    (decision,) = [f for f in c.json("county", "forks")["forks"] if f["node"] == v]
    assert decision["resolved_seq"]
    assert "已裁决" in c.run("county", "forks").stdout
    line = next(x for x in c.run("county", "nodes").stdout.splitlines() if x.startswith(v + " "))
    assert "[分叉" not in line  # decided: no longer flagged
    assert f"分叉 {v}/up" in (t1 := c.run("t1", "status").stdout) and "县级已裁决" in t1  # the evidence stays
