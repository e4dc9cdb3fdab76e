"""`backup` and `restore` (issue 11 point 5) on real data directories, through the real CLIs (click's CliRunner).

A county and a township serve their sync API on 127.0.0.1 in this process; a
village (梅花村, its personal data sealed under the agent's passphrase) is
enrolled through the township with the real `init` and files cases with the
real `case new`. The tests check: what a backup holds (and never holds), that
a copy made while a writer appends holds a verified prefix of every feed, the
refusals (a non-empty target, a tampered file, a foreign backup, a live data
directory), and the restored mark: a restored village files nothing before it
has synced with its township, unless the agent says `--offline`, which the
mark records.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from county_server.app import create_app as county_app
from county_server.cli import main as county_main
from sanji_domain import pii
from sanji_domain.demo import DemoPeople
from sanji_node import backup
from sanji_node.actions import cases
from sanji_node.child import ChildNode
from sanji_node.config import DataDir
from sanji_node.workspace import Workspace
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store, Trust
from township_node.app import create_app as township_app
from township_node.cli import main as township_main
from village_agent.cli import main as village_main

from .browser.helpers import serve_wsgi

DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
PASSPHRASE_ENV = "SANJI_BACKUP_TEST_PASSPHRASE"
PASSPHRASE = "梅花村代办员的口令-backup"
ITEM = "城乡居民医保参保登记"
UNREACHABLE = "http://127.0.0.1:9"


@dataclass
class World:
    root: Path
    county: Path
    township: Path
    village: Path
    people: DemoPeople

    def cases_json(self, n: int) -> str:
        spec = next(i for i in json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))["items"] if i["name"] == ITEM)
        return json.dumps([{**self.people.case_request(spec), "item": ITEM} for _ in range(n)], ensure_ascii=False)


def run(program: Any, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(program, list(args), input=input)


def ok(program: Any, *args: str, input: str | None = None) -> str:
    result = run(program, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("backup")
    old = os.environ.get(PASSPHRASE_ENV)
    os.environ[PASSPHRASE_ENV] = PASSPHRASE
    county = root / "county"
    ok(county_main, "init", "--data", str(county), "--county", "430321", "--name", "示范县")
    ok(county_main, "catalog", "import", str(DEMO_CATALOG), "--data", str(county))
    flask_county = county_app(county)
    try:
        with contextlib.ExitStack() as stack:
            county_url = stack.enter_context(serve_wsgi(flask_county))

            def token(role: str, division: str, node: str, parent: str) -> str:
                args = ["--role", role, "--division", division, "--node-id", node, "--parent", parent, "--json"]
                return str(json.loads(ok(county_main, "enroll", "--data", str(county), *args))["token"])

            t = root / "t1"
            ok(township_main, "init", "--data", str(t), "--parent", county_url, "--token",
               token("township", "430321101000", "t1", "county"), "--no-sync")  # fmt: skip
            township = ChildNode.load(t)
            township_url = stack.enter_context(serve_wsgi(township_app(township)))
            township.sync()
            v = root / "v11"
            ok(village_main, "init", "--data", str(v), "--parent", township_url, "--token",
               token("village", "430321101201", "v11", "t1"), "--passphrase-env", PASSPHRASE_ENV)  # fmt: skip
            w = World(root, county, t, v, DemoPeople())
            ok(village_main, "case", "new", "--data", str(v), "--json", "-", input=w.cases_json(3))
            ok(village_main, "sync", "--data", str(v))
            yield w
    finally:
        flask_county.extensions["sanji_numbering"].stop()
        if old is None:
            os.environ.pop(PASSPHRASE_ENV, None)
        else:
            os.environ[PASSPHRASE_ENV] = old


def open_copy(data: Path) -> Store:
    """A node's database opened as the node opens it (a village's with the agent's passphrase)."""
    key = data / "pii.key"
    seal = pii.open_key_file(key, PASSPHRASE) if key.exists() else None
    return Store(data / "node.sqlite", seal=seal)


def verified_prefix(store: Store, trust: Trust) -> dict[str, int]:
    """Every feed of `store` replayed through the store's own verification into an empty store.

    Each signed batch (1..head, head+1..next head, …) is received by a fresh
    in-memory store with the county's trust anchor: hashes, chain and
    signatures are checked exactly as for a sync. Returns feed → entries verified.
    """
    fresh = Store(None)
    fresh.set_trust(trust)
    root_feed = f"{trust.root_node}/*"
    feeds = sorted(store.vector(), key=lambda f: (f != root_feed, f))
    for feed in feeds:
        seq = store.vector()[feed][0]
        start = 1
        for head_seq, _ in store.commits(Range(feed, 1, seq)):
            verdict = fresh.receive(store.read_batch(Range(feed, start, head_seq)))
            assert verdict.ok and len(verdict.accepted) == head_seq - start + 1, (feed, start, head_seq, verdict)
            start = head_seq + 1
        assert start == seq + 1, f"{feed}: signed heads end at {start - 1}, the feed at {seq}"
    verified = {f: s for f, (s, _) in fresh.vector().items()}
    fresh.close()
    return verified


def trust_of(data: Path) -> Trust:
    return DataDir(data).load().trust


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- backup -------------------------------------------------------------------------------------


def test_a_backup_holds_the_database_the_keys_and_a_manifest_and_nothing_else(world: World) -> None:
    v = world.village
    (v / "web.secret").write_bytes(os.urandom(32))  # the pages' session secret, as `serve` makes it
    (v / "serve.json").write_text('{"url": "http://127.0.0.1:8420", "pid": 1}', encoding="utf-8")
    live = open_copy(v)  # an open WAL connection: node.sqlite-wal and -shm exist
    live.conn.execute("BEGIN IMMEDIATE")
    live.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('backup-test', 'x')")
    live.conn.commit()
    assert Path(str(v / "node.sqlite") + "-wal").exists()
    target = world.root / "b-files"
    out = ok(village_main, "backup", "--data", str(v), "--to", str(target))
    assert f"已备份村代办点 v11 到 {target}" in out and "数据库完整性检查: ok" in out
    names = sorted(p.name for p in target.iterdir())
    assert names == ["backup.json", "node.json", "node.key", "node.sqlite", "pii.key", "web.secret"]
    manifest = json.loads((target / "backup.json").read_text(encoding="utf-8"))
    assert manifest["program"] == "village-agent" and manifest["node"] == "v11" and manifest["role"] == "village"
    assert manifest["county"] == "430321" and manifest["integrity_check"] == "ok"
    assert manifest["vector"] == {f: [seq, h.hex()] for f, (seq, h) in live.vector().items()}
    assert manifest["vector"]["v11/up"][0] == 3
    live.close()
    for name, meta in manifest["files"].items():
        assert backup._sha256(target / name) == (meta["sha256"], meta["bytes"])
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o700
        assert {stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {0o600}
    as_json = json.loads(ok(village_main, "backup", "--data", str(v), "--to", str(world.root / "b-json"), "--json"))
    assert as_json["node"] == "v11" and as_json["total_bytes"] > 0 and "node.sqlite" in as_json["files"]
    (v / "serve.json").unlink()


def test_a_backup_taken_while_a_writer_appends_is_a_verified_prefix_of_every_feed(world: World) -> None:
    node = ChildNode.load(world.village)
    stop = threading.Event()
    filed: list[int] = []

    def write() -> None:
        with Workspace(node) as ws:
            spec = json.loads(world.cases_json(40))
            for request in spec:
                if stop.is_set():
                    break
                cases.file_case(ws, request)
                filed.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    copies = []
    try:
        for i in range(3):
            target = world.root / f"b-live-{i}"
            ok(village_main, "backup", "--data", str(world.village), "--to", str(target))
            copies.append(target)
    finally:
        stop.set()
        writer.join()
    assert filed, "the writer wrote nothing while the backups ran"
    trust = trust_of(world.village)
    with open_copy(world.village) as live:
        live_vector = {f: s for f, (s, _) in live.vector().items()}
    seen = []
    for target in copies:
        manifest = json.loads((target / "backup.json").read_text(encoding="utf-8"))
        with open_copy(target) as copy:
            assert copy.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            verified = verified_prefix(copy, trust)
        assert verified == {f: s for f, (s, _) in manifest["vector"].items()}
        assert all(n <= live_vector[f] for f, n in verified.items())
        seen.append(verified["v11/up"])
    assert seen == sorted(seen)
    assert seen[0] < live_vector["v11/up"], "every copy was taken after the writer had finished"


def test_backup_refuses_a_target_that_is_not_empty_or_is_inside_the_data_directory(world: World) -> None:
    full = world.root / "b-full"
    full.mkdir()
    (full / "old.txt").write_text("x", encoding="utf-8")
    result = run(village_main, "backup", "--data", str(world.village), "--to", str(full))
    assert result.exit_code == 2 and "不是空的" in result.stderr and "建议:" in result.stderr
    no_traceback(result)
    assert sorted(p.name for p in full.iterdir()) == ["old.txt"]
    inside = run(village_main, "backup", "--data", str(world.village), "--to", str(world.village / "b"))
    assert inside.exit_code == 2 and "在数据目录之内" in inside.stderr
    empty = world.root / "b-empty"
    empty.mkdir()
    ok(village_main, "backup", "--data", str(world.village), "--to", str(empty))
    assert (empty / "backup.json").exists()


# -- restore ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def village_backup(world: World) -> Path:
    target = world.root / "b-village"
    ok(village_main, "backup", "--data", str(world.village), "--to", str(target))
    return target


def copy_of(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "backup"))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("flip a byte of the database", "node.sqlite 已损坏或被改动"),
        ("edit node.json", "node.json 已损坏或被改动"),
        ("drop the manifest", "不是完整的备份"),
        ("drop the key", "备份中缺少文件 node.key"),
    ],
)
def test_restore_refuses_a_damaged_or_altered_backup(
    world: World, village_backup: Path, tmp_path: Path, damage: str, words: str
) -> None:
    b = copy_of(village_backup, tmp_path)
    if damage.startswith("flip"):
        raw = bytearray((b / "node.sqlite").read_bytes())
        raw[len(raw) // 2] ^= 0x01
        (b / "node.sqlite").write_bytes(bytes(raw))
    elif damage.startswith("edit"):
        (b / "node.json").write_text((b / "node.json").read_text(encoding="utf-8").replace("t1", "t2"), "utf-8")
    elif damage.endswith("manifest"):
        (b / "backup.json").unlink()
    else:
        (b / "node.key").unlink()
    target = tmp_path / "restored"
    result = run(village_main, "restore", "--from", str(b), "--data", str(target))
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "建议:" in result.stderr
    no_traceback(result)
    assert not target.exists()  # nothing half-restored is left behind


def test_restore_refuses_a_live_data_directory_and_another_programs_backup(
    world: World, village_backup: Path, tmp_path: Path
) -> None:
    result = run(village_main, "restore", "--from", str(village_backup), "--data", str(world.village))
    assert result.exit_code == 2 and "不是空的（里面已有一个节点）" in result.stderr and "改名" in result.stderr
    no_traceback(result)
    other = run(township_main, "restore", "--from", str(village_backup), "--data", str(tmp_path / "t"))
    assert other.exit_code == 2 and "用 village-agent restore 恢复它" in other.stderr
    assert not (tmp_path / "t").exists()


def restored_village(world: World, source: Path, target: Path, *, parent_url: str | None = None) -> Path:
    out = ok(village_main, "restore", "--from", str(source), "--data", str(target))
    assert "本机已标记为「从备份恢复」" in out
    if parent_url is not None:  # the link to the township is down
        data = DataDir(target)
        config = data.load()
        config.parent_url = parent_url
        data.save(config)
    return target


def test_a_restored_village_files_nothing_before_it_has_spoken_to_its_township(
    world: World, village_backup: Path, tmp_path: Path
) -> None:
    v = restored_village(world, village_backup, tmp_path / "v", parent_url=UNREACHABLE)
    mark = DataDir(v).load().extra["restored"]
    manifest = json.loads((village_backup / "backup.json").read_text(encoding="utf-8"))
    assert mark["vector"] == manifest["vector"] and mark["backup_ms"] == manifest["created_ms"]
    result = run(village_main, "case", "new", "--data", str(v), "--json", "-", input=world.cases_json(1))
    assert result.exit_code == 2, result.output
    assert "本机是从备份恢复的" in result.stderr and "还没有和乡镇核对过" in result.stderr
    assert "village-agent sync" in result.stderr and "--offline" in result.stderr
    no_traceback(result)
    assert "注意: 本机是从备份恢复的，还没有和上级同步核对" in ok(village_main, "status", "--data", str(v))
    # the pages and every other action pass Workspace.write: refused there too
    node = ChildNode.load(v)
    with Workspace(node) as ws:
        case_id = ws.read(lambda conn: conn.execute("SELECT case_id FROM cases LIMIT 1").fetchone()[0])
        with pytest.raises(backup.RestoredNodeError, match="本机是从备份恢复的"):
            cases.transition(ws, case_id, "withdraw", {"reason": "村民撤回"})
        with pytest.raises(backup.RestoredNodeError):
            cases.file_case(ws, json.loads(world.cases_json(1))[0])
    with open_copy(v) as store:
        assert store.vector()["v11/up"][0] == manifest["vector"]["v11/up"][0]  # nothing was written


def test_case_new_offline_after_a_restore_is_written_and_recorded_in_the_mark(
    world: World, village_backup: Path, tmp_path: Path
) -> None:
    v = restored_village(world, village_backup, tmp_path / "v", parent_url=UNREACHABLE)
    before = json.loads((village_backup / "backup.json").read_text(encoding="utf-8"))["vector"]["v11/up"][0]
    result = run(village_main, "case", "new", "--data", str(v), "--json", "-", "--offline", input=world.cases_json(2))
    assert result.exit_code == 0, result.output
    assert "本机是从备份恢复的，还没有和乡镇核对过" in result.stderr
    mark = DataDir(v).load().extra["restored"]
    assert [(w["feed"], w["first"], w["last"]) for w in mark["offline_writes"]] == [("v11/up", before + 1, before + 2)]
    assert not mark.get("checked_ms")
    refused = run(village_main, "case", "new", "--data", str(v), "--json", "-", input=world.cases_json(1))
    assert refused.exit_code == 2  # the choice is made per command, not once for all
    data = DataDir(v)  # the link is back
    config = data.load()
    config.parent_url = DataDir(world.village).load().parent_url
    data.save(config)
    ok(village_main, "sync", "--data", str(v))
    kept = DataDir(v).load().extra["restored"]  # kept as a record of the offline writes, no longer blocking
    assert kept["checked_ms"] and kept["offline_writes"] == mark["offline_writes"]
    assert "本机从备份恢复后离线写入过 1 批记录" in ok(village_main, "status", "--data", str(v))
    ok(village_main, "case", "new", "--data", str(v), "--json", "-", input=world.cases_json(1))


def test_a_restored_village_files_after_a_successful_sync_and_the_mark_is_cleared(
    world: World, village_backup: Path, tmp_path: Path
) -> None:
    v = restored_village(world, village_backup, tmp_path / "v")
    ok(village_main, "sync", "--data", str(v))
    assert "restored" not in DataDir(v).load().extra
    ok(village_main, "case", "new", "--data", str(v), "--json", "-", input=world.cases_json(1))
    # reachable: `case new` itself syncs first, then files
    v2 = restored_village(world, village_backup, tmp_path / "v2")
    result = run(village_main, "case", "new", "--data", str(v2), "--json", "-", input=world.cases_json(1))
    assert result.exit_code == 0, result.output
    assert "已先与乡镇同步核对" in result.stderr
    assert "restored" not in DataDir(v2).load().extra
    with open_copy(v2) as store, open_copy(world.township) as township:
        # the township's copy of the feed was recovered first: the new case continues it
        held = township.vector()["v11/up"][0]
        assert store.vector()["v11/up"][0] == held + 1


def test_a_restored_township_refuses_to_write_before_it_syncs(world: World, tmp_path: Path) -> None:
    b = tmp_path / "b"
    ok(township_main, "backup", "--data", str(world.township), "--to", str(b))
    t = tmp_path / "t"
    out = ok(township_main, "restore", "--from", str(b), "--data", str(t))
    assert "和县级同步成功之前不会写入新记录" in out
    data = DataDir(t)
    config = data.load()
    config.parent_url = UNREACHABLE
    data.save(config)
    case = json.loads(world.cases_json(1))[0]
    result = run(township_main, "case", "new", "--data", str(t), "--json", "-",
                 input=json.dumps({**case, "agent": {}}, ensure_ascii=False))  # fmt: skip
    assert result.exit_code == 2 and "还没有和县级核对过" in result.stderr and "township-node sync" in result.stderr
    no_traceback(result)
    # the county answers again: 窗口收件 on the command line syncs with the county first, then files
    config.parent_url = DataDir(world.township).load().parent_url
    data.save(config)
    result = run(township_main, "case", "new", "--data", str(t), "--json", "-",
                 input=json.dumps({**case, "agent": {}}, ensure_ascii=False))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "本机是从备份恢复的：已先与县级同步核对" in result.stderr
    assert not backup.must_check(DataDir(t).load())


def test_the_county_restores_with_a_warning_about_what_it_signed_after_the_backup(world: World, tmp_path: Path) -> None:
    b = tmp_path / "b"
    ok(county_main, "backup", "--data", str(world.county), "--to", str(b))
    out = ok(county_main, "restore", "--from", str(b), "--data", str(tmp_path / "c"))
    assert "警告: 备份之后县级签发的记录" in out and "各乡镇存有副本" in out
    restored = json.loads(ok(county_main, "restore", "--from", str(b), "--data", str(tmp_path / "c2"), "--json"))
    assert restored["manifest"]["node"] == "county" and restored["restored"]["vector"] == restored["manifest"]["vector"]
    assert not backup.must_check(DataDir(tmp_path / "c").load())  # the county has no parent to wait for
