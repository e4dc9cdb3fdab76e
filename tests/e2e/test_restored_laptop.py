"""A village laptop restored from a plain copy of its data directory (issue 11, acceptance 1 in part and 3).

One county, one township, two villages, real processes. The copy is taken with
the laptop closed (a file copy of the whole data directory), some cases later.

- v12, restored and then synced first: every entry comes back, every recovered
  case shows its 办件编号, and the next local number continues the old ones.
- v11, restored and then used offline before the first sync: the sync exits 2
  with a Chinese message and the count, the stranded cases show no receipt,
  new cases are refused in Chinese, and the township holds both histories.
- The refusals a county IT officer meets here (wrong passphrase, a damaged
  bundle) are in Chinese on stderr, with no traceback.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .cluster import PASSPHRASE_ENV, Cluster, wait_for

ITEM = "城乡居民医保参保登记"


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("restored"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    for name, division in (("v11", "430321101201"), ("v12", "430321101202")):
        c.enrol(name, "village", division, "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def restore(c: Cluster, village: str, copy: Path) -> None:
    data = c.nodes[village].data
    shutil.rmtree(data)
    shutil.copytree(copy, data)


def numbered(c: Cluster, village: str, n: int) -> bool:
    """Sync until the laptop shows `n` 办件编号 (the county numbers, then the receipts and numbers come down)."""
    c.run(village, "sync")
    return sum(1 for x in c.json(village, "case", "list") if x["official_no"]) == n


def test_restored_then_synced_first_shows_every_number_and_continues_local_numbers(c: Cluster) -> None:
    c.new_cases("v12", 4, ITEM, "--offline")
    c.run("v12", "sync")
    copy = c.root / "v12-copy"
    shutil.copytree(c.nodes["v12"].data, copy)  # the laptop's data directory, copied while it is closed
    c.new_cases("v12", 8, ITEM, "--offline")
    wait_for(lambda: numbered(c, "v12", 12), "the county's numbers at v12", step=0.5)
    before = {x["case_id"]: (x["local_no"], x["official_no"]) for x in c.json("v12", "case", "list")}
    restore(c, "v12", copy)
    assert len(c.json("v12", "case", "list")) == 4
    out = c.run("v12", "sync")
    assert "已从上级恢复本机日志: v12/up" in out.stdout
    after = {x["case_id"]: (x["local_no"], x["official_no"]) for x in c.json("v12", "case", "list")}
    assert after == before  # all 12 back, each with its 办件编号 and local number
    status = c.json("v12", "status")
    assert status["stranded_total"] == 0 and status["forked_own_feeds"] == []
    assert all(x["held_by_parent"] and x["receipted_by_county"] for x in status["cases"])
    (new,) = c.new_cases("v12", 1, ITEM)
    assert new["local_no"] not in {no for no, _ in before.values()}
    assert new["local_no"].endswith("-13")  # the next number continues the recovered ones


def test_restored_then_used_offline_says_so_and_shows_no_receipt(c: Cluster) -> None:
    c.new_cases("v11", 4, ITEM, "--offline")
    c.run("v11", "sync")
    copy = c.root / "v11-copy"
    shutil.copytree(c.nodes["v11"].data, copy)
    c.new_cases("v11", 6, ITEM, "--offline")
    wait_for(lambda: numbered(c, "v11", 10), "the county's numbers at v11", step=0.5)
    restore(c, "v11", copy)
    stranded = c.new_cases("v11", 3, ITEM, "--offline")  # the agent works on, offline
    for _ in range(2):  # the first sync and every later one: never a success
        out = c.run("v11", "sync", check=False)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "本机有 3 条数据与乡镇记录不一致（分叉" in out.stderr and "县级信息管理员" in out.stderr
        assert "Traceback" not in out.stderr
    status = c.json("v11", "status")
    assert status["stranded_total"] == 3 and status["forked_own_feeds"] == ["v11/up"]
    by_id = {x["case_id"]: x for x in status["cases"]}
    for case in stranded:
        assert not by_id[case["case_id"]]["held_by_parent"] and not by_id[case["case_id"]]["receipted_by_county"]
    assert sum(1 for x in status["cases"] if x["held_by_parent"] and x["receipted_by_county"]) == 4
    assert status["held_by_parent"]["v11/up"] == 4 and status["receipted_by_county"]["v11/up"] == 4
    text = c.run("v11", "status").stdout
    assert "有 3 条数据上级没有确认接收" in text and text.count("未送达（分叉，待县级处理）") == 3
    listed = [x["local_no"] for x in c.json("v11", "case", "list")]
    assert len(listed) == len(set(listed)) == 7  # the other branch is not folded here: no number shown twice
    refused = c.run("v11", "case", "new", "--json", "-", input=json.dumps(c.cases(1, ITEM), ensure_ascii=False),
                    check=False)  # fmt: skip
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "与上级记录不一致（分叉），已冻结" in refused.stderr and "县级信息管理员" in refused.stderr
    assert "已先从乡镇恢复" not in refused.stderr
    township = c.json("t1", "status")
    assert [f["feed"] for f in township["forks"]] == ["v11/up"]  # both histories kept there for review

    def county_sees_the_fork() -> bool:  # reported by the township (node.contact) with its next sync
        return {r["node"]: r for r in c.json("county", "nodes")["nodes"]}["v11"]["forks_count"] >= 1

    wait_for(county_sees_the_fork, "the fork to reach the county with the township's next sync", step=0.5)
    line = next(x for x in c.run("county", "nodes").stdout.splitlines() if x.startswith("v11 "))
    assert "[分叉" in line and "梅花村" in line
    village = c.start("v11", "--no-browser", "--sync-interval", "3600")  # the agent's pages and local API
    try:
        api = requests.get(f"{village.url}/api/v1/status", timeout=10).json()
    finally:
        c.stop("v11")
    assert api["stranded_total"] == 3 and api["held_by_parent"]["v11/up"] == 4
    assert [x["held_by_parent"] or x["receipted_by_county"] for x in api["cases"]] == [True] * 4 + [False] * 3


def test_refusals_are_in_chinese_with_a_next_step(c: Cluster) -> None:
    c.env[PASSPHRASE_ENV], good = "不是这个口令-wrong", c.env[PASSPHRASE_ENV]
    try:
        out = c.run("v12", "status", check=False)
    finally:
        c.env[PASSPHRASE_ENV] = good
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("错误: 口令不对") and f"把环境变量 {PASSPHRASE_ENV} 设为" in out.stderr
    bundle = c.root / "for-v12.sjb"
    c.run("t1", "export-bundle", "--for", "v12", "--to", str(bundle))
    cut = c.root / "cut.sjb"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    out = c.run("v12", "import-bundle", str(cut), check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"错误: 数据包 {cut} 已损坏或不完整" in out.stderr and "重新导出" in out.stderr
