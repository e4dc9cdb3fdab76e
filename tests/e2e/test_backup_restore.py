"""Issue 11 acceptance 4 (the restore half) and 6: `backup` under a write load, `restore`, and the restored mark.

Real processes: the county and the township 城关镇 serve; the village 梅花村
files cases and syncs in a loop (each a new process, as the agent's script
would) while the township and the village are backed up. The copies are
restored into new directories and checked: integrity, and every feed a prefix
of the live node's that passes the store's own verification. Then a restored
laptop files nothing while the township is down, files with `--offline` (the
mark records it), and files again after a successful `sync`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sanji_domain import pii
from sanji_node.config import DataDir
from sync_protocol.sqlite_store import Store

from ..test_backup import verified_prefix
from .cluster import PASSPHRASE_ENV, Cluster, wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("backup"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def held(c: Cluster, node: str, feed: str) -> int:
    with c.store(node) as s:
        return s.vector().get(feed, (0, b""))[0]


def open_store(c: Cluster, data: Path) -> Store:
    """A node's database in `data`, opened as the node opens it (a village's with the agent's passphrase)."""
    key = data / "pii.key"
    seal = pii.open_key_file(key, c.env[PASSPHRASE_ENV]) if key.exists() else None
    return Store(data / "node.sqlite", seal=seal)


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def test_backup_under_load_restores_to_a_verified_prefix_and_the_restored_laptop_waits_for_its_township(
    cluster: Cluster,
) -> None:
    c = cluster
    stop = threading.Event()
    rounds: list[int] = []

    def load() -> None:  # the agent files and syncs; the township stores and forwards
        while not stop.is_set() and len(rounds) < 20:
            c.new_cases("v11", 5, "城乡居民医保参保登记", "--offline")
            c.run("v11", "sync")
            rounds.append(1)

    writer = threading.Thread(target=load)
    writer.start()
    try:
        wait_for(lambda: held(c, "t1", "v11/up") >= 5, "the first cases at the township")
        bt, bv = c.root / "backup-t1", c.root / "backup-v11"
        done_t = c.run("t1", "backup", "--to", str(bt))
        done_v = c.run("v11", "backup", "--to", str(bv))
        after = len(rounds)
        wait_for(lambda: len(rounds) >= after + 2 or not writer.is_alive(), "the load to go on after the backups")
    finally:
        stop.set()
        writer.join()
    assert "已备份乡镇节点 t1" in done_t.stdout and "已备份村代办点 v11" in done_v.stdout
    no_traceback(done_t.stderr + done_v.stderr)
    assert rounds, "no load ran"

    # restore both into new directories: clean, and each feed a verified prefix of the live node's
    for name, b in (("t1", bt), ("v11", bv)):
        restored = c.root / f"restored-{name}"
        out = c.run(name, "restore", "--from", str(b), "--data", str(restored))
        no_traceback(out.stderr)
        manifest = json.loads((b / "backup.json").read_text(encoding="utf-8"))
        trust = DataDir(c.nodes[name].data).load().trust
        with open_store(c, restored) as copy, c.store(name) as live:
            assert copy.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            verified = verified_prefix(copy, trust)
            live_vector = {f: s for f, (s, _) in live.vector().items()}
        assert verified == {f: s for f, (s, _) in manifest["vector"].items()}
        assert verified.get("v11/up", 0) >= 5
        assert all(n <= live_vector[f] for f, n in verified.items()), (verified, live_vector)
        assert verified["v11/up"] < live_vector["v11/up"]  # the writes went on after the copy

    # a tampered backup is refused
    raw = bytearray((bv / "node.sqlite").read_bytes())
    raw[-100] ^= 0xFF
    tampered = c.root / "backup-tampered"
    tampered.mkdir()
    for p in bv.iterdir():
        (tampered / p.name).write_bytes(bytes(raw) if p.name == "node.sqlite" else p.read_bytes())
    refused = c.run("v11", "restore", "--from", str(tampered), "--data", str(c.root / "never"), check=False)
    assert refused.returncode == 2 and "node.sqlite 已损坏或被改动" in refused.stderr
    no_traceback(refused.stderr)
    assert not (c.root / "never").exists()

    # the restored laptop: the township is down
    v_restored = c.root / "restored-v11"
    args = ("case", "new", "--json", "-", "--data", str(v_restored))
    one = json.dumps(c.cases(1, "生育登记"), ensure_ascii=False)
    port = (c.nodes["t1"].url or "").rsplit(":", 1)[1]
    c.stop("t1")
    before = held(c, "v11", "v11/up")  # the township holds all of it: the last round synced
    refused = c.run("v11", *args, input=one, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "本机是从备份恢复的" in refused.stderr and "还没有和乡镇核对过" in refused.stderr
    assert "village-agent sync" in refused.stderr and "--offline" in refused.stderr
    no_traceback(refused.stderr)

    offline = c.root / "restored-v11-offline"
    c.run("v11", "restore", "--from", str(bv), "--data", str(offline))
    at_backup = json.loads((bv / "backup.json").read_text(encoding="utf-8"))["vector"]["v11/up"][0]
    done = c.run("v11", "case", "new", "--json", "-", "--offline", "--data", str(offline), input=one)
    no_traceback(done.stderr)
    mark = DataDir(offline).load().extra["restored"]
    assert [(w["feed"], w["first"], w["last"]) for w in mark["offline_writes"]] == [
        ("v11/up", at_backup + 1, at_backup + 1)
    ]

    # the township is back: sync, the mark is cleared, and the laptop files where the feed stands
    c.start("t1", "--port", port, "--sync-interval", "1", "--max-backoff", "2")
    synced = c.run("v11", "sync", "--data", str(v_restored))
    no_traceback(synced.stderr)
    assert "restored" not in DataDir(v_restored).load().extra
    filed = c.run("v11", *args, input=one)
    no_traceback(filed.stderr)
    with open_store(c, v_restored) as s:
        assert s.vector()["v11/up"][0] == before + 1  # recovered what the township held, then continued
