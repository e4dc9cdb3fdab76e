"""`backup` and `restore`, the same two commands on all three programs (thin edges over sanji_node.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import backup
from .cli import data_option, emit, handle_errors, json_option, now_ms
from .config import DataDir

WHERE = {
    "county": "离线U盘，由县级信息管理员锁柜保管；根密钥 node.key 是全县的信任根",
    "township": "离线U盘，交县级信息管理员保管",
    "village": "离线U盘，交县级信息管理员保管；其中的 pii.key 和 node.key 须代办员口令才能打开，口令另行保管",
}


def add_backup_commands(group: click.Group, role: str) -> None:
    program = backup.PROGRAMS[role]

    @group.command(
        name="backup",
        help="Copy the data directory (a consistent database snapshot, keys, node.json) into an empty directory; "
        "safe while serve runs.",
    )
    @data_option
    @click.option(
        "--to", "target", required=True, type=click.Path(file_okay=False), help="the backup directory (empty or new)"
    )
    @json_option
    @handle_errors
    def backup_command(data_dir: str, target: str, as_json: bool) -> None:
        result = backup.make_backup(DataDir(data_dir), Path(target), now_ms=now_ms())
        report = {"path": str(result.path), "total_bytes": result.total_bytes, **result.manifest}
        emit(as_json, report, lambda: backup_text(result, role))

    @group.command(
        name="restore",
        help="Restore a backup into an empty data directory, checked file by file, and mark the node restored.",
    )
    @data_option
    @click.option(
        "--from",
        "source",
        required=True,
        type=click.Path(file_okay=False),
        help="the backup directory that `backup --to` wrote",
    )
    @json_option
    @handle_errors
    def restore_command(data_dir: str, source: str, as_json: bool) -> None:
        data = DataDir(data_dir)
        manifest = backup.restore_backup(Path(source), data, role=role, now_ms=now_ms())
        report = {"data": str(data.path), "restored": backup.restored_mark(data.load()), "manifest": manifest}
        emit(as_json, report, lambda: restore_text(manifest, data, role, program))


def backup_text(result: backup.BackupResult, role: str) -> str:
    m = result.manifest
    lines = [
        f"已备份{backup.ROLE_NAMES[role]} {m['node']} 到 {result.path}（{len(result.files)} 个文件，共 {_size(result.total_bytes)}），"
        f"数据库完整性检查: {m['integrity_check']}",
    ]
    for name, size, label in result.files:
        lines.append(f"  {name:<12} {_size(size):>9}  {label}")
    feeds = m["vector"]
    lines.append(
        f"  日志 {len(feeds)} 个，共 {sum(seq for seq, _ in feeds.values())} 条；清单与校验值见 {backup.MANIFEST}"
    )
    lines.append(f"请把这份备份放在{WHERE[role]}。")
    return "\n".join(lines)


def restore_text(manifest: dict[str, Any], data: DataDir, role: str, program: str) -> str:
    lines = [
        f"已从备份（{manifest.get('created', '时间不详')}）恢复{backup.ROLE_NAMES[role]} {manifest['node']} 到 {data.path}，"
        f"{len(manifest['files'])} 个文件校验无误，数据库完整性检查通过。",
    ]
    if role == "county":
        lines.append(
            "警告: 备份之后县级签发的记录（注册、清单、办件编号、回执等）不在这份备份里，县级已丢失它们；"
            "各乡镇存有副本，须从乡镇取回，本版本还不能自动取回，请联系开发维护方。"
            "在取回之前，县级新签发的记录会与乡镇的副本冲突。"
        )
    else:
        parent = backup.PARENT_NAMES[role]
        lines.append(
            f"本机已标记为「从备份恢复」：和{parent}同步成功之前不会写入新记录。"
            f"请接通网络后先运行 {program} sync --data {data.path}；"
            "确需离线登记时在 case new 后加 --offline。"
        )
    lines.append(f"启动: {program} serve --data {data.path}")
    return "\n".join(lines)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
