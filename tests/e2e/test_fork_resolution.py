"""A restored laptop's fork: seen at every tier, resolved with one county command, nothing lost (issue 11,
acceptance 1, 2 and 4).

County, two townships and three villages, real processes; the townships sync up
only when the test says so (`township-node sync`), so "after the township's next
sync" is exact. A village is restored from a copy taken before N = 50 of its
cases, files 3 cases offline and syncs: `sync` exits 2 in Chinese, the 3 cases
show no receipt, the fork is in the township's `status` at once and at the
county (with the evidence: when and by whom found, the entries on each branch)
after the township's next sync. `county-server resolve-fork` decides it; after
the next syncs the county holds all N+3 cases once each, with distinct local
numbers and 办件编号, the 3 offline ones keep their case ids, and the village
files again. Twice: v11 restored from a plain copy of its data directory, v12
with `backup` and `restore` (which refuses to file before contacting the
township, and whose offline choice is resolved the same way). v21, under the
other township, files and syncs throughout and is never flagged.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from .cluster import Cluster, wait_for

ITEM = "城乡居民医保参保登记"
N = 50


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("fork"))
    c.county()
    county = c.start("county")
    for t, division in (("t1", "430321101000"), ("t2", "430321102000")):
        c.enrol(t, "township", division, "county", county.url or "")
        c.start(t, "--sync-interval", "3600")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    c.enrol("v12", "village", "430321101202", "t1", c.nodes["t1"].url or "")
    c.enrol("v21", "village", "430321102201", "t2", c.nodes["t2"].url or "")
    yield c
    c.close()


def county_cases(c: Cluster, village: str) -> list[dict]:
    return [x for x in c.json("county", "case", "list") if x["case_id"] and x.get("village") == village]


def up(c: Cluster, *villages: str) -> None:
    """The villages sync, then both townships (one sync each, exit 0)."""
    for v in villages:
        c.run(v, "sync", check=False)
    for t in ("t1", "t2"):
        c.run(t, "sync")


def county_fork(c: Cluster, village: str) -> dict | None:
    return next((f for f in c.json("county", "forks")["forks"] if f["node"] == village), None)


@pytest.mark.parametrize(
    ("village", "how"),
    [("v11", "copy"), ("v12", "restore")],  # a plain copy of the data directory; `backup` then `restore`
)
def test_one_county_decision_resolves_a_restored_laptops_fork(c: Cluster, village: str, how: str) -> None:
    v = village
    neighbour = c.new_cases("v21", 2, ITEM, "--offline")
    up(c, v, "v21")
    copy = c.root / f"{v}-copy"
    if how == "copy":
        shutil.copytree(c.nodes[v].data, copy)  # taken before the N cases
    else:
        c.run(v, "backup", "--to", str(copy))
    at_copy = c.json(v, "status")["own_feeds"].get(f"{v}/up", 0)  # entries of its feed in the copy
    c.new_cases(v, N, ITEM, "--offline")
    up(c, v)
    wait_for(lambda: len(county_cases(c, v)) == N, "the N cases at the county", step=0.5)
    shutil.rmtree(c.nodes[v].data)
    if how == "copy":
        shutil.copytree(copy, c.nodes[v].data)
    else:
        c.run(v, "restore", "--from", str(copy), "--data", str(c.nodes[v].data))
        assert c.json(v, "status")["restored"]
        url = c.nodes["t1"].url or ""
        c.stop("t1")  # acceptance 4: with the township out of reach, a restored laptop refuses to file …
        refused = c.run(v, "case", "new", "--json", "-", input=_one(c), check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert "本机是从备份恢复的" in refused.stderr and "--offline" in refused.stderr
        assert len(c.json(v, "case", "list")) == 0  # nothing was filed
        c.start("t1", "--sync-interval", "3600", "--port", url.rsplit(":", 1)[1])  # … the agent files offline
        assert c.nodes["t1"].url == url
    offline = c.new_cases(v, 3, ITEM, "--offline")

    # acceptance 1: the sync says so in Chinese and exits non-zero; no receipt for the 3 cases
    out = c.run(v, "sync", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "本机有 3 条数据与乡镇记录不一致（分叉" in out.stderr and "县级信息管理员" in out.stderr
    status = c.json(v, "status")
    by_id = {x["case_id"]: x for x in status["cases"]}
    assert [by_id[x["case_id"]]["held_by_parent"] or by_id[x["case_id"]]["receipted_by_county"] for x in offline] == [
        False
    ] * 3
    assert status["stranded_total"] == 3
    # … the fork at the township after that sync, with the name, when found and each branch's entries
    (fork,) = [f for f in c.json("t1", "status")["forks"] if f["feed"] == f"{v}/up"]
    assert fork["name"] in ("梅花村", "新桥村") and fork["found_ms"] and not fork["reported"]
    assert (fork["seq"], fork["held_seq"], fork["other_last_seq"]) == (at_copy + 1, at_copy + N, at_copy + 3)
    line = next(x for x in c.run("t1", "status").stdout.splitlines() if f"分叉 {v}/up" in x)
    assert f"本机所存分支 {at_copy + N} 条，另一分支 {at_copy + 3} 条" in line and "待县级裁决" in line
    # … and at the county after the township's next sync, evidence included
    assert county_fork(c, v) is None
    c.run("t1", "sync")
    f = county_fork(c, v)
    assert f is not None and f["found_by"] == "t1" and f["found_by_name"] == "城关镇便民服务中心"
    assert f["detected_at"] and (f["seq"], f["held_seq"], f["other_branch_last_seq"]) == (
        at_copy + 1, at_copy + N, at_copy + 3
    )  # fmt: skip
    line = next(x for x in c.run("county", "nodes").stdout.splitlines() if x.startswith(v + " "))
    assert "[分叉 1]" in line
    assert "城关镇便民服务中心发现" in c.run("county", "forks").stdout
    assert [x["name"] for x in c.json("county", "nodes")["nodes"] if x.get("forks_count")] == [fork["name"]]

    # acceptance 2: one command; after the next syncs all N+3 cases are at the county exactly once
    done = c.run("county", "resolve-fork", v, "--reason", "笔记本从旧备份恢复后离线登记")
    assert "已裁决" in done.stdout

    def settled() -> bool:
        up(c, v)
        out = c.run(v, "sync", check=False)
        return out.returncode == 0 and len(county_cases(c, v)) == N + 3

    wait_for(settled, "the village's sync to succeed and the 3 cases to reach the county", step=0.2)
    status = c.json(v, "status")
    assert status["stranded_total"] == 0 and status["frozen"] == {} and status["forked_own_feeds"] == []
    assert status["restored"] is None  # the restored mark (if any) is satisfied
    at_county = county_cases(c, v)
    ids = [x["case_id"] for x in at_county]
    assert len(ids) == len(set(ids)) == N + 3
    assert {x["case_id"] for x in offline} <= set(ids)
    assert len({x["local_no"] for x in at_county}) == N + 3

    def numbered() -> bool:  # the county numbers; the numbers come down with the township's and the laptop's sync
        up(c, v)
        c.run(v, "sync")
        return all(x["official_no"] for x in county_cases(c, v) + c.json(v, "case", "list"))

    wait_for(numbered, "every case numbered at the county and on the laptop", step=0.2)
    official = [x["official_no"] for x in county_cases(c, v)]
    assert len(set(official)) == N + 3
    renumbered = [c.json(v, "case", "show", x["case_id"]) for x in offline]
    assert all(x["reissue_of"] for x in renumbered)
    assert [x["original_local_no"] for x in renumbered] == [x["local_no"] for x in offline]  # taken on canonical
    assert "原编号 " + offline[0]["local_no"] in c.run(v, "case", "show", offline[0]["case_id"]).stdout
    laptop = c.json(v, "case", "list")
    assert len(laptop) == N + 3 and len({x["local_no"] for x in laptop}) == N + 3
    assert all(x["official_no"] for x in laptop)  # every case shows its 办件编号 on the laptop too
    (new,) = c.new_cases(v, 1, ITEM)

    def filed_again() -> bool:
        up(c, v)
        return new["case_id"] in {x["case_id"] for x in county_cases(c, v)}

    wait_for(filed_again, "the new case at the county", step=0.2)
    assert len(county_cases(c, v)) == N + 4
    f = county_fork(c, v)
    assert (f is not None and f["resolved_seq"] == f["held_seq"] - N - 3 - 1 + N) or f["resolved_seq"]
    assert "已裁决" in c.run("county", "forks").stdout
    line = next(x for x in c.run("county", "nodes").stdout.splitlines() if x.startswith(v + " "))
    assert "[分叉" not in line  # decided: no longer flagged
    assert f"分叉 {v}/up" in (t1 := c.run("t1", "status").stdout) and "县级已裁决" in t1  # the evidence stays
    # the neighbour under the other township was never touched
    assert {x["case_id"] for x in neighbour} <= {x["case_id"] for x in county_cases(c, "v21")}
    line = next(x for x in c.run("county", "nodes").stdout.splitlines() if x.startswith("v21 "))
    assert "[分叉" not in line and "[隔离" not in line


def _one(c: Cluster) -> str:
    return json.dumps(c.cases(1, ITEM), ensure_ascii=False)
