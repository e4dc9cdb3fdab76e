"""Files on disk (issue 12 point 6): owner-only, written atomically, symlinks refused, inputs regular.

A county and a township are made with the real `init` commands (the township
enrols over HTTP with waitress on 127.0.0.1); the reproductions of the issue
run against them through the real CLIs: a pre-created `.part` symlink, a
named pipe given to `import-bundle` and `catalog import`, world-readable
databases, and a revoked node's bundle that reported "accepted 0" with exit 0.
A command that could block on a named pipe runs with a timeout, after which
the test opens the pipe's other end so that a regression fails instead of
hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from county_server.app import create_app as county_app
from county_server.cli import main as county_main
from sanji_domain import exports, pii
from sanji_node.child import ChildNode
from sanji_node.web.bundles import import_upload
from sync_protocol import files
from sync_protocol.entries import Record
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Outcome, Status, Verdict
from township_node.cli import main as township_main

from .browser.helpers import serve_wsgi

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes, symlinks and named pipes are POSIX here")
REPO = Path(__file__).resolve().parents[1]


def run(program: Any, *args: str) -> Result:
    return CliRunner().invoke(program, list(args))


def ok(program: Any, *args: str) -> str:
    result = run(program, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@dataclass
class World:
    root: Path
    county: Path
    township: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("files")
    county = root / "county"
    ok(county_main, "init", "--data", str(county), "--county", "430321", "--name", "示范县")
    flask_county = county_app(county)
    try:
        with serve_wsgi(flask_county) as url:
            args = ["--role", "township", "--division", "430321101000", "--node-id", "t1", "--parent", "county"]
            token = json.loads(ok(county_main, "enroll", "--data", str(county), *args, "--json"))["token"]
            township = root / "t1"
            ok(township_main, "init", "--data", str(township), "--parent", url, "--token", token, "--no-sync")
        yield World(root, county, township)
    finally:
        flask_county.extensions["sanji_numbering"].stop()


# -- modes ------------------------------------------------------------------------------------------------------


def test_databases_keys_and_config_are_owner_only(world: World) -> None:
    """Reproduction: township and county databases (personal data in clear) were world-readable 0644."""
    for data in (world.county, world.township):
        assert mode(data) == 0o700, data
        for name in ("node.sqlite", "node.key", "node.json"):
            assert mode(data / name) == 0o600, data / name
    store = Store(world.township / "node.sqlite")  # open: WAL mode makes the -wal and -shm files
    try:
        store.conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        for suffix in ("-wal", "-shm"):
            assert mode(Path(f"{world.township / 'node.sqlite'}{suffix}")) == 0o600, suffix
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    Store(db).close()
    os.chmod(db, 0o644)
    Store(db).close()
    assert mode(db) == 0o600


def test_pii_key_exports_and_new_directories_are_owner_only(tmp_path: Path) -> None:
    pii.create_key_file(tmp_path / "v" / "pii.key", "梅花村代办员的口令")
    assert mode(tmp_path / "v") == 0o700 and mode(tmp_path / "v" / "pii.key") == 0o600
    exports.write_csv(tmp_path / "台账.csv", ["姓名"], [["张桂兰"]])
    assert mode(tmp_path / "台账.csv") == 0o600
    assert (tmp_path / "台账.csv").read_bytes() == "\ufeff姓名\r\n张桂兰\r\n".encode()  # BOM and CRLF as before


def test_backups_and_bundles_are_owner_only(world: World) -> None:
    target = world.root / "backup-1"
    ok(county_main, "backup", "--data", str(world.county), "--to", str(target))
    assert mode(target) == 0o700
    names = ["backup.json", "node.json", "node.key", "node.sqlite", "web.secret"]  # the county serves pages too
    assert sorted(p.name for p in target.iterdir()) == names
    assert {p.name: mode(p) for p in target.iterdir()} == dict.fromkeys(names, 0o600)
    bundle = world.root / "to-t1.sjb"
    ok(county_main, "export-bundle", "--data", str(world.county), "--for", "t1", "--to", str(bundle))
    assert mode(bundle) == 0o600


# -- atomic writes and symlinks ---------------------------------------------------------------------------------


def test_export_bundle_does_not_follow_a_precreated_part_symlink(world: World) -> None:
    """Reproduction: `export-bundle` followed a pre-created `.part` symlink and overwrote its target."""
    victim = world.root / "victim.txt"
    victim.write_text("不能被覆盖", encoding="utf-8")
    bundle = world.root / "usb.sjb"
    (world.root / "usb.sjb.part").symlink_to(victim)
    ok(county_main, "export-bundle", "--data", str(world.county), "--for", "t1", "--to", str(bundle))
    assert victim.read_text(encoding="utf-8") == "不能被覆盖"
    assert bundle.read_bytes().startswith(b"SANJI-BUNDLE") and not bundle.is_symlink()


def test_export_bundle_refuses_to_write_through_a_symlink(world: World) -> None:
    victim = world.root / "victim2.txt"
    victim.write_text("不能被覆盖", encoding="utf-8")
    link = world.root / "link.sjb"
    link.symlink_to(victim)
    result = run(county_main, "export-bundle", "--data", str(world.county), "--for", "t1", "--to", str(link))
    assert result.exit_code == 2, result.output
    assert "符号链接" in result.stderr and "Traceback" not in result.output
    assert victim.read_text(encoding="utf-8") == "不能被覆盖" and link.is_symlink()


def test_atomic_writer_keeps_a_stricter_mode_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "f"
    files.write_atomic(path, b"one")
    os.chmod(path, 0o400)
    files.write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and mode(path) == 0o400
    with pytest.raises(RuntimeError), files.atomic_writer(path) as out:
        out.write(b"half")
        raise RuntimeError("cut")
    assert path.read_bytes() == b"two" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# -- inputs that must be regular files -------------------------------------------------------------------------


def refuses_fifo(invoke: Callable[[Path], Result], fifo: Path, timeout: float = 20) -> Result:
    """Run `invoke(fifo)` in a thread; if it still runs after `timeout`, unblock it and fail."""
    os.mkfifo(fifo)
    out: list[Result] = []
    worker = threading.Thread(target=lambda: out.append(invoke(fifo)), daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # its reader gets end-of-file
        worker.join(10)
        pytest.fail(f"the command blocked on the named pipe {fifo}")
    return out[0]


def test_import_bundle_on_a_named_pipe_is_refused_instead_of_hanging(world: World) -> None:
    """Reproduction: `import-bundle` on a named pipe hung (here the real program, in a subprocess)."""
    fifo = world.root / "pipe.sjb"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "county_server", "import-bundle", str(fifo), "--data", str(world.county)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("import-bundle blocked on a named pipe")
    assert result.returncode == 2, result
    assert "命名管道，不是普通文件" in result.stderr and "Traceback" not in result.stderr


def test_township_import_bundle_and_catalog_import_refuse_named_pipes_and_directories(world: World) -> None:
    result = refuses_fifo(
        lambda p: run(township_main, "import-bundle", str(p), "--data", str(world.township)), world.root / "p2.sjb"
    )
    assert result.exit_code == 2 and "命名管道" in result.stderr, result.output
    result = refuses_fifo(
        lambda p: run(county_main, "catalog", "import", str(p), "--data", str(world.county)), world.root / "p3.json"
    )
    assert result.exit_code == 2 and "命名管道" in result.stderr, result.output
    with pytest.raises(files.UnsafeFileError, match="是目录"):
        files.open_regular(world.root)
    with pytest.raises(files.UnsafeFileError, match="设备或特殊文件"):
        files.require_regular(Path("/dev/null"))


# -- a revoked node's bundle ------------------------------------------------------------------------------------


def test_a_revoked_nodes_bundle_says_its_entries_were_quarantined_and_exits_2(world: World) -> None:
    """Reproduction: a revoked node's bundle reported "accepted 0" with exit 0 and never mentioned the quarantine."""
    township = ChildNode.load(world.township)
    with township.open_store() as store:
        store.append(township.key, "t1/up", [Record("probe.note", "p1", {"n": 1}, 1000)])
    bundle = world.root / "t1-up.sjb"
    ok(township_main, "export-bundle", "--data", str(world.township), "--to", str(bundle))
    ok(county_main, "revoke", "t1", "--reason", "笔记本丢失", "--data", str(world.county))
    result = run(county_main, "import-bundle", str(bundle), "--data", str(world.county))
    assert result.exit_code == 2, result.output
    assert "1 批，新增 0 条，隔离待审 1 条。" in result.stdout
    assert "有 1 条记录（1 批，来自 t1）已隔离待审，没有导入" in result.stderr
    assert "revoked" in result.stderr and "[隔离 n]" in result.stderr and "Traceback" not in result.output
    as_json = run(county_main, "import-bundle", str(bundle), "--data", str(world.county), "--json")
    assert as_json.exit_code == 2
    report = json.loads(as_json.stdout)
    assert (report["accepted"], report["quarantined"]) == (0, 1) and "已隔离待审" in report["problem"]


def test_the_bundle_page_reports_a_quarantine_as_an_error(tmp_path: Path) -> None:
    """The pages import through `import_upload` (any `BundleNode`): the same count and warning as the CLI."""

    class Upload:
        filename = "meihua-up.sjb"

        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"")

    class Node:
        def import_bundle(self, path: Path) -> list[Verdict]:
            held = Outcome(Status.QUARANTINED, "meihua/up", 1, 3, "author meihua was revoked after meihua/up#0")
            return [Verdict("meihua/up", None, [held])]

        def export_bundle(self, path: Path, *, for_node: str | None = None) -> int:
            raise AssertionError("not used")

    success, text = import_upload(Node(), Upload())
    assert not success
    assert text.startswith(
        "已导入 meihua-up.sjb：1 批，新增 0 条，隔离待审 3 条。数据包中有 3 条记录（1 批，来自 meihua）"
    )


def test_restore_from_a_backup_holding_a_named_pipe_is_refused(world: World) -> None:
    target = world.root / "backup-fifo"
    ok(county_main, "backup", "--data", str(world.county), "--to", str(target))
    (target / "node.key").unlink()
    restored = world.root / "restored"
    result = refuses_fifo(
        lambda p: run(county_main, "restore", "--from", str(target), "--data", str(restored)), target / "node.key"
    )
    assert result.exit_code == 2 and "node.key" in result.stderr and "Traceback" not in result.output
    assert not restored.exists()


def test_on_windows_files_and_folders_get_a_user_only_acl_through_icacls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Windows path runs Windows' own icacls with inheritance removed and the user alone granted; here a
    stand-in icacls on PATH records the arguments (this machine is Linux), and a failing one is logged only."""
    assert files.windows_acl_command(Path("C:/Sanji/t1"), directory=True, user="PC\\wang") == [
        "icacls", str(Path("C:/Sanji/t1")), "/inheritance:r", "/grant:r", "PC\\wang:(OI)(CI)F",
    ]  # fmt: skip
    assert files.windows_acl_command(Path("node.key"), directory=False, user="wang")[-1] == "wang:F"
    calls = tmp_path / "calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "icacls"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n', encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("USERNAME", "wang")
    monkeypatch.setenv("USERDOMAIN", "PC")
    monkeypatch.setattr(files.os, "name", "nt")
    files._restrict_windows(tmp_path / "data", directory=True)
    files._restrict_windows(tmp_path / "data" / "node.key", directory=False)
    assert calls.read_text(encoding="utf-8").splitlines() == [
        f"{tmp_path / 'data'} /inheritance:r /grant:r PC\\wang:(OI)(CI)F",
        f"{tmp_path / 'data' / 'node.key'} /inheritance:r /grant:r PC\\wang:F",
    ]
    fake.write_text("#!/bin/sh\nexit 5\n", encoding="utf-8")  # e.g. a FAT USB stick: no ACLs
    files._restrict_windows(tmp_path / "usb.bundle", directory=False)  # logged, not raised
