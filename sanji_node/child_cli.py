"""The commands a township and a village share: init, sync, status and the bundle commands.

Each program registers these on its own click group (`add_child_commands`)
and adds its own (`serve`, `case new` …).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from sync_protocol.errors import KeyFileError, SyncError, TransportError

from . import backup, resolve
from .backup_cli import add_backup_commands
from .bundles import finish_import
from .child import ChildNode, apply_county_feed, enrol, recover_before_writing
from .cli import data_option, emit, fmt_ms, handle_errors, json_option, progress_printer
from .config import DataDir
from .passphrase import change_passphrase
from .state import open_store

ROLE_NAMES = {"township": "乡镇", "village": "村"}
page_option = click.option("--page-kib", default=1024, show_default=True, help="largest page sent or asked for, in KiB")


def add_child_commands(group: click.Group, role: str, default_port: int) -> None:
    name = ROLE_NAMES[role]
    add_backup_commands(group, role)

    @group.command(help=f"Enrol this {role} node: generate its key here, prove it to the county, save the node.")
    @data_option
    @click.option("--parent", "parent_url", required=True, help="the parent's URL (a village: its township's)")
    @click.option("--token", required=True, help="the one-time token the county printed")
    @click.option(
        "--fallback", "fallback_url", default=None, help="the county's URL, used when the parent is unreachable"
    )
    @click.option(
        "--passphrase-env", default=None, help="encrypt the node key under the passphrase in this environment variable"
    )
    @click.option("--port", default=default_port, show_default=True, help="default port for serve")
    @click.option("--sync-interval", default=60, show_default=True, help="seconds between upstream syncs")
    @click.option("--no-sync", is_flag=True, help="only enrol; the first sync waits for `sync` or `serve`")
    @handle_errors
    def init(
        data_dir: str,
        parent_url: str,
        token: str,
        fallback_url: str | None,
        passphrase_env: str | None,
        port: int,
        sync_interval: int,
        no_sync: bool,
    ) -> None:
        data = DataDir(data_dir)
        config, answer = enrol(
            data,
            parent_url=parent_url,
            token_text=token,
            expect_role=role,
            passphrase_env=passphrase_env,
            fallback_url=fallback_url,
            port=port,
            sync_interval_s=sync_interval,
            since=0,
        )
        with open_store(data, config) as store:
            apply_county_feed(store, answer)
        click.echo(
            f"已注册{name}节点 {config.node_id}（区划 {config.division}，上级 {config.parent}），数据目录 {data.path}"
        )
        if no_sync:
            return
        try:
            report = ChildNode.load(data_dir).sync()
        except TransportError as e:  # the node is enrolled; the first sync can wait for the link
            click.echo(f"首次同步未完成（网络不通，稍后自动重试）: {e.message}", err=True)
            return
        except SyncError as e:  # refused: waiting will not help, say what to do
            click.echo(f"首次同步被拒绝（已注册，但需要处理后再同步）: {e.message}", err=True)
            if e.hint:
                click.echo(f"建议: {e.hint}", err=True)
            sys.exit(2)
        click.echo(f"首次同步完成: {report.summary()}")

    @group.command(
        name="passphrase", help="Change the passphrase that protects this node's key (and a village's personal data)."
    )
    @data_option
    @click.option("--new-env", required=True, help="the environment variable that holds the new passphrase")
    @handle_errors
    def passphrase(data_dir: str, new_env: str) -> None:
        data = DataDir(data_dir)
        config = data.load()
        if not config.passphrase_env:
            raise KeyFileError(
                "本机密钥没有设口令，无法更换 (this node's key has no passphrase)",
                hint="口令在 init 时用 --passphrase-env 设置 (a passphrase is set with init --passphrase-env)",
            )
        old, new = os.environ.get(config.passphrase_env, ""), os.environ.get(new_env, "")
        if not old or not new:
            missing = config.passphrase_env if not old else new_env
            raise KeyFileError(f"${missing} is not set", hint=f"set {missing} (the current / the new passphrase)")
        changed = change_passphrase(data, old, new)
        click.echo(f"口令已更换（{'、'.join(changed)}）。今后请把 ${config.passphrase_env} 设为新口令。")

    @group.command(help="Sync with the parent once, now, with a progress bar.")
    @data_option
    @page_option
    @json_option
    @handle_errors
    def sync(data_dir: str, page_kib: int, as_json: bool) -> None:
        node = ChildNode.load(data_dir, page_bytes=page_kib * 1024)
        report = node.sync(progress=None if as_json else progress_printer())
        if not as_json:
            click.echo("", err=True)
        emit(as_json, {**report.__dict__, "problem": report.problem()}, report.summary())
        if not report.ok:  # refused or held for review: never a success (3 stays "retry later")
            click.echo(f"错误: {report.problem()}", err=True)
            sys.exit(2)

    @group.command(help="Show what waits to go up, the last sync, and receipts (已送达 / 县级已接收).")
    @data_option
    @json_option
    @handle_errors
    def status(data_dir: str, as_json: bool) -> None:
        s = ChildNode.load(data_dir).status()
        emit(as_json, s, lambda: status_text(s))

    @group.command(name="export-bundle", help="Write a bundle file (USB) of what the parent (or --for NODE) lacks.")
    @data_option
    @click.option("--to", "path", required=True, type=click.Path(dir_okay=False), help="the bundle file to write")
    @click.option("--for", "for_node", default=None, help="the node it is for (default: the parent)")
    @handle_errors
    def export_bundle(data_dir: str, path: str, for_node: str | None) -> None:
        node = ChildNode.load(data_dir)
        n = node.export_bundle(Path(path), for_node=for_node)
        click.echo(f"已写出数据包 {path}（{n} 批，供 {for_node or node.config.parent}）。")

    @group.command(
        name="import-bundle", help="Import a bundle file (USB): verified like a sync; importing twice changes nothing."
    )
    @data_option
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @json_option
    @handle_errors
    def import_bundle(data_dir: str, file: str, as_json: bool) -> None:
        finish_import(file, ChildNode.load(data_dir).import_bundle(Path(file)), as_json)


def status_text(s: dict[str, Any]) -> str:
    lines = [
        f"节点 {s['node']}（{ROLE_NAMES.get(s['role'], s['role'])}），上级 {s['parent']} {s['parent_url']}",
        f"最近成功同步: {fmt_ms(s['last_success_ms'])}",
        f"待上传: {s['waiting_up']} 条",
    ]
    if s["last_error"]:
        lines.append(f"最近错误: {s['last_error']}")
    for feed, seq in sorted(s["own_feeds"].items()):
        held = s["held_by_parent"].get(feed, 0)
        rec = s["receipted_by_county"].get(feed, 0)
        lines.append(f"  {feed}: 本机 {seq} 条，已送达上级 {held} 条，县级已接收 {rec} 条")
    if s.get("cases"):
        shown = s["cases"][-20:]
        lines.append(f"办件（共 {len(s['cases'])} 件，显示最近 {len(shown)} 件）:")
        for c in shown:
            held = (
                "已送达乡镇" if c["held_by_parent"] else "未送达（分叉，待县级处理）" if c.get("stranded") else "未送达"
            )
            rec = "县级已接收" if c["receipted_by_county"] else "县级未接收"
            lines.append(f"  {c['local_no']}  {held}  {rec}")
    for feed in s.get("forked_own_feeds", []):
        n = s.get("stranded", {}).get(feed, 0)
        lines.append(
            f"  警告: 本机 {feed} 与上级记录不一致（分叉），有 {n} 条数据上级没有确认接收（已保存在本机，不会丢失）；"
            "请联系县级信息管理员处理，处理之前不要重装、恢复或删除本机的数据目录"
        )
    for f in s["forks"]:
        done = f"县级已裁决，以第 {f['resolved_seq']} 条为准" if f.get("resolved_seq") else "待县级裁决"
        sent = "，已报县级" if f.get("reported") else ("，下次同步报县级" if s["role"] == "township" else "")
        lines.append(
            f"  分叉 {f['feed']}（{f['name']}）: {fmt_ms(f['found_ms'])} 发现，自第 {f['seq']} 条起不一致；"
            f"本机所存分支 {f['held_seq']} 条，另一分支 {f['other_last_seq']} 条{sent}；{done}"
        )
    restored = s.get("restored")
    if restored and not restored.get("checked_ms"):
        lines.append("  注意: 本机是从备份恢复的，还没有和上级同步核对；同步成功之前不会写入新记录")
    elif restored:
        n = len(restored.get("offline_writes") or [])
        lines.append(f"  注意: 本机从备份恢复后离线写入过 {n} 批记录（已记在恢复标记里）")
    if s["quarantined"]:
        lines.append(f"  隔离待审: {s['quarantined']} 批")
    return "\n".join(lines)


def recover_first(node: ChildNode, offline: bool) -> None:
    """`case new`'s first step on a child: recover its own feeds from the parent (a laptop or PC restored
    from an old copy continues its feeds instead of forking), unless the user chose `--offline`."""
    restored = backup.must_check(node.config)
    parent = backup.PARENT_NAMES.get(node.config.role, "上级")
    if offline:
        with node.open_store() as store:
            if resolve.pending(store):  # a decision half applied: an offline write would fork the feed again
                raise resolve.refusal()
    recovered = [] if offline else recover_before_writing(node)
    if restored and not offline:
        click.echo(f"本机是从备份恢复的：已先与{parent}同步核对。", err=True)
    if recovered:
        click.echo(f"已先从{parent}恢复本机日志: {', '.join(recovered)}", err=True)
    if restored and offline:
        click.echo(
            f"注意: 本机是从备份恢复的，还没有和{parent}核对过；这次离线登记已记在恢复标记里"
            f"（若{parent}已有备份之后的记录，同步时会报分叉，须县级处理）。",
            err=True,
        )
