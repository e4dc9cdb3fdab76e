"""Backup and restore of a node's data directory, and the mark a restored node carries until it has spoken to its parent.

A backup is a directory holding a consistent copy of the database, made with
SQLite's online backup API while `serve` may be writing (WAL mode: the copy
reads one snapshot, the writer goes on), the node's small files, and
`backup.json`, the manifest: which node, when, the feed vector of the copied
database, its `integrity_check`, and every file's SHA-256. The manifest is
written last, so a backup cut short never looks complete.

`restore` checks every file against the manifest, copies into an empty data
directory and marks it restored (`extra.restored` in node.json). A restored
township or village then refuses to write to its own feeds until a sync with
its parent has succeeded: the parent may hold entries of those feeds that the
backup does not, and writing on from the backup's head would fork the feed.
The agent who must work offline says so (`case new --offline`); the write goes
ahead and is recorded in the mark, for the county's later review. The county
has no parent: its mark only records the restore.

The mark is read once, with node.json, into `NodeConfig.extra`; the workspace
checks it on every write (a dict lookup) and the sync clears it through the
same object, so the pages see the change at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sanji_domain.commands import CST
from sync_protocol.errors import SequenceError, StoreError, VerificationError
from sync_protocol.files import create_private, open_regular, private_database, private_dir, write_atomic

from .config import CONFIG_FILE, DB_FILE, KEY_FILE, DataDir, NodeConfig

MANIFEST = "backup.json"
FORMAT = "sanji-backup/1"
RESTORED = "restored"  # the key of the mark in node.json's `extra`
# what a data directory holds besides the database; serve.json (a running server's address),
# the database's -wal/-shm and temporary files are never copied
FILES = (
    (CONFIG_FILE, "节点配置（节点、上级地址、区划）"),
    (KEY_FILE, "节点私钥（有口令时加密）"),
    ("pii.key", "村代办点个人信息密钥（代办员口令加密）"),
    ("web.secret", "页面登录会话的签名密钥"),
)
DB_LABEL = "数据库（全部日志与办件）"
PROGRAMS = {"county": "county-server", "township": "township-node", "village": "village-agent"}
ROLE_NAMES = {"county": "县级节点", "township": "乡镇节点", "village": "村代办点"}
PARENT_NAMES = {"township": "县级", "village": "乡镇"}
PARTIAL = ".partial"


class BackupError(StoreError):
    """A backup could not be made or used: the target is not empty, a file is missing, the wrong program."""

    code = "backup_error"


class DamagedBackupError(VerificationError):
    """A backup whose files do not match its manifest: damaged or altered; never restore from it."""

    code = "backup_damaged"


class RestoredNodeError(SequenceError):
    """A node restored from a backup has not yet checked its own feeds with its parent."""

    code = "restored_not_checked"


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    files: list[tuple[str, int, str]] = field(default_factory=list)  # name, bytes, what it holds

    @property
    def total_bytes(self) -> int:
        return sum(n for _, n, _ in self.files)


# -- backup ------------------------------------------------------------------------------------


def make_backup(data: DataDir, target: Path, *, now_ms: int) -> BackupResult:
    """Copy `data` into the empty (or absent) directory `target`, manifest last."""
    config = data.load()
    target = Path(target).expanduser().resolve()
    _check_empty_target(target, data.path)
    if not data.db_path.exists():
        raise BackupError(
            f"数据目录 {data.path} 中没有数据库 {DB_FILE} (no database)", hint="确认 --data 指向节点的数据目录"
        )
    created = not target.exists()
    private_dir(target)
    written: list[Path] = []
    try:
        db_tmp = target / (DB_FILE + PARTIAL)
        written.append(db_tmp)
        vector, integrity = _copy_database(data.db_path, db_tmp)
        if integrity != "ok":
            raise BackupError(
                f"节点数据库未通过完整性检查（{integrity}），没有写出备份 (the live database is damaged)",
                hint="立即停止该节点并联系县级信息管理员；保留现有数据目录和以前的备份，不要覆盖",
            )
        files = {DB_FILE: _publish(db_tmp, target / DB_FILE)}
        result = BackupResult(target, {})
        result.files.append((DB_FILE, files[DB_FILE]["bytes"], DB_LABEL))
        for name, label in FILES:
            src = data.path / name
            if src.is_file():
                tmp = target / (name + PARTIAL)
                written.append(tmp)
                _copy_private(src, tmp)
                files[name] = _publish(tmp, target / name)
                result.files.append((name, files[name]["bytes"], label))
        manifest = {
            "format": FORMAT,
            "program": PROGRAMS.get(config.role, config.role),
            "node": config.node_id,
            "role": config.role,
            "county": config.county,
            "created_ms": now_ms,
            "created": _local_time(now_ms),
            "vector": vector,
            "integrity_check": integrity,
            "files": files,
        }
        write_atomic(target / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
    except BaseException:
        for p in [*written, *(target / n for n in _published_names(written))]:
            p.unlink(missing_ok=True)
        Path(str(target / (DB_FILE + PARTIAL)) + "-journal").unlink(missing_ok=True)
        if created:
            try:
                target.rmdir()
            except OSError:
                pass
        raise
    result.manifest = manifest
    return result


def _published_names(written: list[Path]) -> list[str]:
    """The final names of the files a failed backup had already published (to remove them)."""
    return [p.name.removesuffix(PARTIAL) for p in written]


def _check_empty_target(target: Path, source: Path) -> None:
    if target == source or source in target.parents:
        raise BackupError(
            f"备份目录 {target} 在数据目录之内 (the backup cannot go inside the data directory)",
            hint="把备份写到另一个位置，最好是U盘，例如 E:\\sanji-备份-20261203",
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(
            f"备份目录 {target} 不是空的 (the target directory is not empty)",
            hint="每次备份用一个新的空目录（例如按日期命名）；不要覆盖已有的备份",
        )


def _copy_database(src_path: Path, dst_path: Path) -> tuple[dict[str, list[Any]], str]:
    """One snapshot of the live database into `dst_path`: its feed vector and integrity_check.

    `Connection.backup` with all pages in one step reads one consistent snapshot;
    in WAL mode the node's writers go on meanwhile (a busy source is retried).
    The copy is switched to rollback journaling so it is one self-contained file.
    """
    src = sqlite3.connect(str(src_path), timeout=30)
    try:
        private_database(dst_path)
        dst = sqlite3.connect(str(dst_path))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            integrity = _integrity(dst)
            vector = _vector(dst)
        finally:
            dst.close()
    except sqlite3.Error as e:
        raise BackupError(
            f"无法复制数据库: {e} (the database could not be copied)", hint="稍后重试；磁盘空间是否足够？"
        ) from e
    finally:
        src.close()
    return vector, integrity


def _integrity(conn: sqlite3.Connection) -> str:
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    return "ok" if rows == ["ok"] else "; ".join(rows[:5])


def _vector(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    """feed → [seq, head hash hex], read with plain SQL (a village's sealed database needs no passphrase)."""
    rows = conn.execute("SELECT feed, seq, hash FROM feeds ORDER BY feed").fetchall()
    return {feed: [int(seq), bytes(h).hex()] for feed, seq, h in rows}


def _chain_gaps(conn: sqlite3.Connection) -> list[str]:
    """Feeds whose stored entries are not exactly 1..seq (a copy that is not a prefix of each feed)."""
    rows = conn.execute(
        "SELECT f.feed, f.seq, COUNT(e.seq), COALESCE(MIN(e.seq), 0), COALESCE(MAX(e.seq), 0) "
        "FROM feeds f LEFT JOIN entries e ON e.feed = f.feed GROUP BY f.feed"
    ).fetchall()
    return [feed for feed, seq, n, lo, hi in rows if seq and (n, lo, hi) != (seq, 1, seq)]


def _publish(tmp: Path, final: Path) -> dict[str, Any]:
    digest, size = _sha256(tmp)
    os.replace(tmp, final)
    return {"sha256": digest, "bytes": size}


# -- restore -----------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    path = Path(source) / MANIFEST
    if not Path(source).is_dir():
        raise BackupError(f"找不到备份目录 {source} (no such directory)", hint="确认U盘已插好、路径正确")
    if not path.is_file():
        raise BackupError(
            f"{source} 不是完整的备份：缺少 {MANIFEST} (not a complete backup)",
            hint="备份没有做完（中途断电或拔出U盘）；换用另一份备份",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DamagedBackupError(f"{path} 已损坏，无法读取 (damaged manifest)", hint="换用另一份备份") from e
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise DamagedBackupError(
            f"{path} 不是本程序写出的备份清单 (not a Sanji backup manifest)", hint="换用另一份备份"
        )
    return manifest


def restore_backup(source: Path, data: DataDir, *, role: str, now_ms: int) -> dict[str, Any]:
    """Check the backup in `source` against its manifest, copy it into the empty `data`, mark it restored.

    Returns the manifest. Nothing is left in `data` if a check fails.
    """
    source = Path(source).expanduser().resolve()
    manifest = read_manifest(source)
    if manifest.get("role") != role:
        program = PROGRAMS.get(str(manifest.get("role")), "对应的程序")
        raise BackupError(
            f"这是{ROLE_NAMES.get(str(manifest.get('role')), str(manifest.get('role')))} "
            f"{manifest.get('node')} 的备份，不是{ROLE_NAMES[role]}的 (a backup of another role)",
            hint=f"用 {program} restore 恢复它",
        )
    _check_empty_data(data)
    allowed = {DB_FILE, *(n for n, _ in FILES)}
    files: dict[str, Any] = manifest["files"]
    if DB_FILE not in files or CONFIG_FILE not in files or not set(files) <= allowed:
        raise DamagedBackupError(f"{source / MANIFEST} 列出的文件不对 (unexpected file list)", hint="换用另一份备份")
    created = not data.path.exists()
    private_dir(data.path)
    copied: list[Path] = []
    try:
        for name, meta in sorted(files.items()):
            src = source / name
            if not src.is_file():
                raise DamagedBackupError(f"备份中缺少文件 {name} (missing from the backup)", hint="换用另一份备份")
            tmp = data.path / (name + PARTIAL)
            copied.append(tmp)
            digest, size = _copy_private(src, tmp)
            if digest != meta.get("sha256") or size != meta.get("bytes"):
                raise DamagedBackupError(
                    f"备份文件 {name} 已损坏或被改动（校验值与 {MANIFEST} 不符）(damaged or altered)",
                    hint="不要用这份备份恢复；换用另一份备份，并检查U盘",
                )
        _check_database(data.path / (DB_FILE + PARTIAL), manifest)
        for tmp in copied:
            final = data.path / tmp.name.removesuffix(PARTIAL)
            os.replace(tmp, final)
        copied = [data.path / p.name.removesuffix(PARTIAL) for p in copied]
        config = data.load()
        config.extra[RESTORED] = {
            "backup_ms": manifest.get("created_ms"),
            "restored_ms": now_ms,
            "source": str(source),
            "vector": manifest.get("vector", {}),
            "offline_writes": [],
        }
        data.save(config)
    except BaseException:
        for p in copied:
            p.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(str(data.db_path) + PARTIAL + suffix).unlink(missing_ok=True)
        if created:
            try:
                data.path.rmdir()
            except OSError:
                pass
        raise
    return manifest


def _check_empty_data(data: DataDir) -> None:
    if data.path.exists() and (not data.path.is_dir() or any(data.path.iterdir())):
        what = "里面已有一个节点" if data.exists() else "里面已有文件"
        raise BackupError(
            f"数据目录 {data.path} 不是空的（{what}）：restore 不会覆盖它 (refusing to overwrite)",
            hint="恢复到一个新的空目录（--data 新目录）；或先停止该节点，把旧目录改名留存（例如加上 -old-日期），再恢复到原路径",
        )


def _check_database(path: Path, manifest: dict[str, Any]) -> None:
    try:
        conn = sqlite3.connect(str(path))
        try:
            integrity = _integrity(conn)
            vector = _vector(conn) if integrity == "ok" else {}
            gaps = _chain_gaps(conn) if integrity == "ok" else []
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise DamagedBackupError(
            f"备份中的数据库无法打开: {e} (the database does not open)", hint="换用另一份备份"
        ) from e
    if integrity != "ok":
        raise DamagedBackupError(f"备份中的数据库未通过完整性检查: {integrity}", hint="换用另一份备份")
    if vector != manifest.get("vector") or gaps:
        raise DamagedBackupError(
            f"备份中的数据库与 {MANIFEST} 记录的日志位置不一致 (the feeds differ from the manifest)",
            hint="换用另一份备份",
        )


# -- the restored mark ---------------------------------------------------------------------------


def restored_mark(config: NodeConfig) -> dict[str, Any] | None:
    mark = config.extra.get(RESTORED)
    return mark if isinstance(mark, dict) else None


def must_check(config: NodeConfig) -> bool:
    """A township or village restored from a backup that has not yet synced with its parent."""
    mark = restored_mark(config)
    return config.role != "county" and mark is not None and not mark.get("checked_ms")


def refusal(config: NodeConfig, cause: str | None = None) -> RestoredNodeError:
    """The Chinese refusal of a write before the restored node has spoken to its parent."""
    parent = PARENT_NAMES.get(config.role, "上级")
    program = PROGRAMS.get(config.role, "")
    mark = restored_mark(config) or {}
    when = _local_time(int(mark["backup_ms"])) if mark.get("backup_ms") else "（时间不详）"
    reason = f"；{cause}" if cause else ""
    return RestoredNodeError(
        f"本机是从备份恢复的（备份于 {when}），还没有和{parent}核对过{reason}：为免与{parent}已有的记录冲突，暂不写入"
        f" (restored from a backup; not yet checked with the parent)",
        hint=f"接通网络后运行 {program} sync（或在「同步」页点「立即同步」），成功后即可登记；"
        f"如确需离线登记，在 case new 后加 --offline（会记在恢复标记里；若{parent}已有备份之后的记录，同步时会报分叉，"
        f"须县级处理）",
    )


def check_may_write(config: NodeConfig, *, offline: bool) -> None:
    """Refuse an own-feed write of a restored child that has not synced yet, unless the user chose offline."""
    if not offline and must_check(config):
        raise refusal(config)


def note_offline_writes(data: DataDir, config: NodeConfig, written: list[tuple[str, int, int]], now_ms: int) -> None:
    """Record in the mark that entries were written before the restored node spoke to its parent."""
    if not written or not must_check(config):
        return
    notes = [{"feed": f, "first": a, "last": b, "ms": now_ms} for f, a, b in written]
    _update_mark(data, config, lambda mark: mark.setdefault("offline_writes", []).extend(notes))


def clear_after_sync(data: DataDir, config: NodeConfig, now_ms: int) -> None:
    """The node has spoken to its parent: lift the block (a mark with offline writes is kept, as a record)."""
    if not must_check(config):
        return

    def clear(mark: dict[str, Any]) -> None:
        mark["checked_ms"] = now_ms

    _update_mark(data, config, clear)
    mark = restored_mark(config)
    if mark is not None and not mark.get("offline_writes"):
        fresh = data.load()
        fresh.extra.pop(RESTORED, None)
        data.save(fresh)
        config.extra.pop(RESTORED, None)


def clear_after_decision(data: DataDir, config: NodeConfig) -> None:
    """The county decided the fork the offline writes made, and they were re-issued (sanji_node.resolve):
    the restored mark has nothing left to record."""
    if restored_mark(config) is None or must_check(config):
        return
    fresh = data.load()
    fresh.extra.pop(RESTORED, None)
    data.save(fresh)
    config.extra.pop(RESTORED, None)


def _update_mark(data: DataDir, config: NodeConfig, change: Any) -> None:
    """Change the mark in node.json as it is on disk now, then in the config object the process holds."""
    fresh = data.load()
    mark = dict(fresh.extra.get(RESTORED) or restored_mark(config) or {})
    change(mark)
    fresh.extra[RESTORED] = mark
    data.save(fresh)
    config.extra[RESTORED] = mark


# -- files -------------------------------------------------------------------------------------


def _sha256(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _copy_private(src: Path, dst: Path) -> tuple[str, int]:
    """Copy `src` to a new owner-only file `dst`, synced to disk; the SHA-256 and size of what was written."""
    h, size = hashlib.sha256(), 0
    with open_regular(src, "备份文件") as f, create_private(dst) as out:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), size


def _local_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CST).strftime("%Y-%m-%d %H:%M:%S")
