"""Issue 3 acceptance under failure: a township killed mid-sync, and the county down for a while."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cluster import Cluster, wait_for


def county_count(c: Cluster, feed: str) -> int:
    with c.store("county") as s:
        return int(s.conn.execute("SELECT COUNT(*) FROM entries WHERE feed = ?", (feed,)).fetchone()[0])


def log_cases(c: Cluster, village: str, n: int, per_commit: int = 250) -> None:
    for start in range(0, n, per_commit):
        c.new_cases(village, min(per_commit, n - start), "城乡居民医保参保登记", "--offline", notes="材料齐全" * 40)


@pytest.fixture
def small(tmp_path: Path) -> Cluster:
    c = Cluster(tmp_path)
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2", "--page-kib", "64")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def test_township_killed_mid_sync_converges_without_loss_or_duplicates(small: Cluster) -> None:
    c = small
    county_port = (c.nodes["county"].url or "").rsplit(":", 1)[1]
    t1_port = (c.nodes["t1"].url or "").rsplit(":", 1)[1]
    c.stop("county")
    total = 3000
    log_cases(c, "v11", total)
    c.run("v11", "sync")  # the whole backlog now sits at the township
    c.start("county", "--port", county_port)
    # the township forwards in 64 KiB pages; kill it with part of the backlog through
    wait_for(lambda: county_count(c, "v11/up") > 0, "the township to start forwarding", step=0.01)
    c.kill9("t1")
    through = county_count(c, "v11/up")
    assert 0 < through < total, f"the kill came too late ({through} of {total} through)"
    c.start("t1", "--port", t1_port, "--sync-interval", "1", "--max-backoff", "2", "--page-kib", "64")
    wait_for(lambda: county_count(c, "v11/up") == total, "the backlog to converge at the county")
    with c.store("county") as county, c.store("v11") as v11:
        assert [(e.seq, e.hash) for e in county.entries("v11/up")] == [(e.seq, e.hash) for e in v11.entries("v11/up")]
        resent = county.conn.execute("SELECT resent_batches FROM peers WHERE node = 't1'").fetchone()[0]
    assert resent <= 1, f"{resent} batches were sent twice"


def test_villages_keep_syncing_while_the_county_is_down(small: Cluster) -> None:
    c = small
    county_port = (c.nodes["county"].url or "").rsplit(":", 1)[1]
    c.stop("county")
    log_cases(c, "v11", 40)
    report = c.json("v11", "sync")
    assert report["pushed_entries"] == 40
    status = c.json("v11", "status")
    assert all(x["held_by_parent"] and not x["receipted_by_county"] for x in status["cases"])
    c.start("county", "--port", county_port)  # back; nobody touches the township
    wait_for(lambda: county_count(c, "v11/up") == 40, "the township's backlog at the county")

    def receipted() -> bool:
        c.run("v11", "sync")
        return all(x["receipted_by_county"] for x in c.json("v11", "status")["cases"])

    wait_for(receipted, "county receipts back at the village", step=0.5)


def test_a_village_falls_back_to_the_county_when_its_township_is_down(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.county()
        county = c.start("county")
        c.enrol("t1", "township", "430321101000", "county", county.url or "")
        c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
        c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "", "--fallback", county.url or "")
        c.stop("t1")
        log_cases(c, "v11", 5)
        report = c.json("v11", "sync")
        assert report["pushed_entries"] == 5
        assert county_count(c, "v11/up") == 5  # straight to the county
        assert c.json("v11", "status")["parent"] == "t1"
    finally:
        c.close()


def test_a_restored_laptop_recovers_its_feed_instead_of_forking(small: Cluster) -> None:
    c = small
    v11 = c.nodes["v11"]
    backup = c.root / "v11-backup.sqlite"
    log_cases(c, "v11", 3)
    c.run("v11", "sync")
    with c.store("v11") as s:
        s.conn.execute("PRAGMA wal_checkpoint(FULL)")
        s.db.execute(f"VACUUM INTO '{backup}'")  # the backup, taken now
    log_cases(c, "v11", 4)
    c.run("v11", "sync")  # the township now holds 7 of v11's cases
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(v11.data / "node.sqlite") + suffix)
        if p.exists():
            p.unlink()
    backup.rename(v11.data / "node.sqlite")  # the laptop is restored from the old backup: 3 cases
    out = c.run("v11", "case", "new", "--json", "-", input=json.dumps(c.cases(1, "生育登记")[0], ensure_ascii=False))
    assert "已先从乡镇恢复本机日志" in out.stderr
    with c.store("v11") as s:
        assert s.vector()["v11/up"][0] == 8  # 7 recovered, then the new one continues the feed
    c.run("v11", "sync")
    with c.store("t1") as t1:
        assert t1.forks() == [] and t1.vector()["v11/up"][0] == 8


def test_an_offline_restore_forks_and_the_fork_is_quarantined_and_shown(small: Cluster) -> None:
    c = small
    v11 = c.nodes["v11"]
    backup = c.root / "v11-backup.sqlite"
    with c.store("v11") as s:
        s.db.execute(f"VACUUM INTO '{backup}'")
    log_cases(c, "v11", 2)
    c.run("v11", "sync")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(v11.data / "node.sqlite") + suffix)
        if p.exists():
            p.unlink()
    backup.rename(v11.data / "node.sqlite")
    log_cases(c, "v11", 2)  # offline: nobody to ask, and it writes another seq 1 and 2
    out = c.run("v11", "sync", "--json", check=False)
    assert out.returncode == 2  # never a success while the laptop's entries are held for review
    report = json.loads(out.stdout)
    assert report["forked"] == ["v11/up"] and report["stranded"] == 2
    assert "分叉" in c.run("v11", "status").stdout
    with c.store("t1") as t1:
        forks = t1.forks()
        assert [(f["feed"], f["seq"]) for f in forks] == [("v11/up", 2)]  # found at the parent's head seq
        assert "v11/up" in t1.frozen_feeds()
        kept = [e.key for e in t1.entries("v11/up")]
    log_cases(c, "v11", 1)  # later writes of the forked laptop are held for review, not applied
    assert c.run("v11", "sync", check=False).returncode == 2
    with c.store("t1") as t1:
        assert [e.key for e in t1.entries("v11/up")] == kept  # nothing of the other history applied
        (fork,) = t1.forks()
        assert fork["remote_last_seq"] == 3 and fork["batches"] == 2  # both histories kept, in full
    status = c.json("t1", "status")
    assert [f["feed"] for f in status["forks"]] == ["v11/up"]
    assert "分叉" in c.run("t1", "status").stdout
