"""`county-server`: the county's command line (县政务服务中心)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import sqlite_utils

from sanji_domain import catalog_import as importing
from sanji_domain.catalog import CANCELLED, IN_USE, LABELS, STATE_ACTIONS, SUSPENDED, CatalogFileError
from sanji_domain.errors import DomainError, ValidationError
from sanji_node import state
from sanji_node.accounts_cli import add_account_commands
from sanji_node.backup_cli import add_backup_commands
from sanji_node.bundles import finish_import, write_bundle
from sanji_node.cli import Program, data_option, emit, fmt_ms, handle_errors, json_option, now_ms, parse_duration_ms
from sanji_node.config import DataDir, NodeConfig
from sanji_node.domain_cli import add_domain_commands
from sanji_node.scheduler import PeriodicJob
from sanji_node.serving import serve as serve_app
from sync_protocol import files
from sync_protocol.entries import Record
from sync_protocol.errors import ProtocolError, StoreError
from sync_protocol.keys import SigningKey
from sync_protocol.membership import COUNTY, KIND_MEMBER, check_county_code, check_name
from sync_protocol.verify_pool import VerifyPool

from . import accounts, audit, card_scan, catalog, figures_job, monitor_tables, node_admin, receipts, reconcile, tokens
from .app import create_app
from .calendar_cli import calendar
from .node import county, load_county, open_county_store
from .node_admin import fork_rows
from .recon_cli import completeness_command, reconcile_command

ROLE_NAMES = {"county": "县", "township": "乡镇", "village": "村"}


def unknown_node(node: str) -> StoreError:
    return StoreError(
        f"本县没有注册节点 {node} (no enrolled node {node!r})",
        hint="用 county-server nodes 查看已注册的节点 (see `county-server nodes`)",
    )


@click.group(cls=Program, help="Sanji county server (县政务服务中心): catalog owner, root of trust, archive.")
def main() -> None:
    pass


add_backup_commands(main, "county")


@main.command(help="Create the county's data directory, root key and database.")
@data_option
@click.option("--county", "county_code", required=True, help="6-digit county code (GB/T 2260), e.g. 430321")
@click.option("--name", "county_name", required=True, help="the county's name, e.g. 示范县")
@click.option("--node-id", default="county", show_default=True, help="the county node's id")
@click.option(
    "--passphrase-env", default=None, help="encrypt the root key under the passphrase in this environment variable"
)
@click.option("--port", default=8400, show_default=True, help="default port for serve")
@handle_errors
def init(
    data_dir: str, county_code: str, county_name: str, node_id: str, passphrase_env: str | None, port: int
) -> None:
    check_county_code(county_code)
    county_name = check_name(county_name.strip())
    data = DataDir(data_dir)
    passphrase = None
    if passphrase_env:
        passphrase = os.environ.get(passphrase_env, "").encode()
        if not passphrase:
            raise ProtocolError(f"${passphrase_env} is empty", hint="set it to the passphrase for the root key")
    data.create()
    key = SigningKey.generate()
    config = NodeConfig(
        node_id=node_id,
        role=COUNTY,
        county=county_code,
        root_node=node_id,
        root_key=key.public.hex,
        division=county_code + "000000",
        county_name=county_name,
        host="127.0.0.1",
        port=port,
        passphrase_env=passphrase_env,
    )
    data.save_key(key, passphrase)
    data.save(config)
    with open_county_store(data) as store:
        body = {
            "division": config.division,
            "name": county_name,
            "node": node_id,
            "parent": None,
            "pubkey": key.public.hex,
            "role": COUNTY,
        }
        store.append(key, f"{node_id}/*", [Record(KIND_MEMBER, node_id, body, now_ms() * 1000)])
    click.echo(f"已创建 {county_name} ({county_code}) 县级节点 {node_id}，数据目录 {data.path}")
    click.echo("请备份 node.key（根密钥）。Back up node.key: it is the county's root of trust.")


@main.command(help="Serve the sync API with waitress.")
@data_option
@click.option("--host", default=None, help="address to listen on (default: from init, 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (0 picks a free one; default: from init)")
@click.option("--workers", type=int, default=0, help="verification worker processes (0: none, verify in the server)")
@click.option(
    "--card-scan-interval",
    type=click.IntRange(min=0),
    default=None,
    help="seconds between scheduled card scans (电子监察; 0: none; default: from node.json, 600)",
)
@click.option(
    "--idle-minutes",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="an administrator's page session locks after this many minutes without a request",
)
@handle_errors
def serve(
    data_dir: str, host: str | None, port: int | None, workers: int, card_scan_interval: int | None, idle_minutes: int
) -> None:
    data = DataDir(data_dir)
    config = data.load()
    pool = VerifyPool(workers) if workers else None
    app = create_app(data_dir, pool=pool, idle_minutes=idle_minutes)
    interval = config.card_scan_interval_s if card_scan_interval is None else card_scan_interval
    scan = card_scan.job(lambda: load_county(data_dir), interval) if interval > 0 else None
    figures = figures_job.job(lambda: load_county(data_dir))
    serve_app(
        app,
        data,
        host=host or config.host,
        port=config.port if port is None else port,
        on_start=lambda url: _started(
            app, f"县级节点 {config.node_id} 正在服务 listening on {url}；页面 pages: {url}/", scan, figures
        ),
        on_stop=lambda: _stop_serving(app, pool, scan, figures),
    )


def _started(app: Any, message: str, scan: PeriodicJob | None, figures: PeriodicJob) -> None:
    click.echo(message)
    county = app.extensions["county"]
    if not county.ws.read(lambda _conn: accounts.BOOK.count(county.ws.store.db)):
        click.echo(
            "还没有管理员账号：请先运行 county-server account add --role admin … 创建管理员账号。"
            "(no account yet: create the first one with `account add --role admin`)"
        )
    app.extensions["sanji_numbering"].poke()  # number what arrived while the server was down (bundles)
    if scan is not None:
        scan.start(first_delay_s=scan.interval_s)
        app.extensions["sanji_card_scan"] = scan  # the 电子监察 page shows when it runs next
    figures.start(first_delay_s=1)  # what arrived while the server was down, before anyone opens a page


def _stop_serving(app: Any, pool: VerifyPool | None, scan: PeriodicJob | None, figures: PeriodicJob) -> None:
    figures.stop()
    if scan is not None:
        scan.stop()
    app.extensions["sanji_numbering"].stop()
    if pool is not None:
        pool.close()


@main.command(help="Issue a one-time enrolment token for a township or a village.")
@data_option
@click.option("--role", type=click.Choice(["township", "village"]), required=True)
@click.option("--division", required=True, help="the node's 12-digit 统计用区划代码")
@click.option("--parent", default=None, help="the parent node id (default: the county, for a township)")
@click.option("--node-id", default=None, help="the new node's id (default: its division code)")
@click.option(
    "--name",
    "display_name",
    default=None,
    help="the name people see, e.g. 梅花村 or 城关镇便民服务中心 (default: the node id; strongly recommended)",
)
@click.option("--expires", default="72h", show_default=True, help="how long the token stays valid (m, h or d)")
@json_option
@handle_errors
def enroll(
    data_dir: str,
    role: str,
    division: str,
    parent: str | None,
    node_id: str | None,
    display_name: str | None,
    expires: str,
    as_json: bool,
) -> None:
    ttl = parse_duration_ms(expires)
    with open_county_store(DataDir(data_dir)) as store:
        if parent is None:
            if role == "village":
                raise ProtocolError("a village token needs --parent (its township's node id)")
            parent = store.trust.root_node
        issued = node_admin.issue_token(
            store,
            who=audit.CLI_ACTOR,
            now_ms=now_ms(),
            role=role,
            division=division,
            parent=parent,
            node=node_id,
            ttl_ms=ttl,
            random_bytes=os.urandom(21),
            name=None if display_name is None else display_name.strip(),
        )
    data = {
        "token": issued.token,
        "node": issued.node,
        "name": issued.name,
        "role": role,
        "division": division,
        "parent": parent,
        "expires_ms": issued.expires_ms,
    }
    emit(
        as_json,
        data,
        lambda: (
            f"{ROLE_NAMES[role]}节点 {issued.name}（{issued.node}，区划 {division}，上级 {parent}）的一次性注册码，"
            f"{fmt_ms(issued.expires_ms)} 前有效:\n\n"
            f"    {issued.token}\n\n"
            "在新机器上运行 init --token <注册码>。此字符串可直接生成二维码 (fits a QR code)."
        ),
    )


@main.command(name="tokens", help="List the enrolment tokens issued: for whom, until when, used or not.")
@data_option
@click.option(
    "--cancel", "cancel_id", default=None, help="cancel the unused token with this id (the third part of SJ1.…)"
)
@json_option
@handle_errors
def tokens_command(data_dir: str, cancel_id: str | None, as_json: bool) -> None:
    with open_county_store(DataDir(data_dir)) as store:
        if cancel_id:
            node_admin.cancel_token(store, cancel_id, who=audit.CLI_ACTOR, now_ms=now_ms())
            click.echo(f"已作废注册码 {cancel_id.upper()}。")
            return
        rows = tokens.list_tokens(store)
    now = now_ms()

    def state_of(r: dict[str, Any]) -> str:
        state = node_admin.token_state(r, now)
        return "有效" if state == "unused" else node_admin.TOKEN_STATES[state]

    emit(
        as_json,
        {"tokens": [{**r, "state": state_of(r)} for r in rows]},
        lambda: "\n".join(
            [f"{'编号':<10}{'节点':<16}{'角色':<10}{'区划':<14}{'有效期至':<22}{'状态':<6}名称"]
            + [
                f"{r['token_id']:<10}{r['node']:<16}{r['role']:<10}{r['division']:<14}{fmt_ms(r['expires_ms']):<22}"
                f"{state_of(r):<6}{r['name']}"
                for r in rows
            ]
        ),
    )


@main.command(help="List the enrolled nodes with last contact, backlog and oldest unsent entry.")
@data_option
@json_option
@handle_errors
def nodes(data_dir: str, as_json: bool) -> None:
    with open_county_store(DataDir(data_dir)) as store:
        rows = reconcile.node_rows(store)
        forks = store.forks()
    frozen_by_author: dict[str, int] = {}
    for f in forks:
        if f["resolved_seq"] is None:  # a decided fork is listed by `forks`, not flagged here
            frozen_by_author[f["feed"].split("/")[0]] = frozen_by_author.get(f["feed"].split("/")[0], 0) + 1

    def text() -> str:
        lines = [
            f"{'节点':<16}{'角色':<6}{'上级':<16}{'最后联系':<26}{'最新数据':<22}{'待下发':>8}  {'最早未下发':<20}"
            f"{'笔记本待上传':>8}  名称"
        ]
        for r in rows:
            flag = " [已吊销]" if r["revoked"] else ""
            forks = max(frozen_by_author.get(r["node"], 0), r.get("forks_count") or 0)
            fork = f" [分叉 {forks}]" if forks else ""
            held = f" [隔离 {r['quarantined_entries']}]" if r.get("quarantined_entries") else ""
            held += f" [拒收 {r['rejects']}，见 case conflicts]" if r["rejects"] else ""
            oldest = fmt_ms(r["oldest_unsent_hlc"] // 1000) if r["oldest_unsent_hlc"] else "-"
            via = {"direct": "直连 ", "township": "经乡镇 "}.get(r.get("contact_via") or "", "")
            seen_at = (
                via + fmt_ms(r["last_contact_ms"])
                if r.get("last_contact_ms")
                else ("经乡镇转送" if r["role"] == "village" else "从未")  # no report from its township yet
            )
            latest = fmt_ms(r["latest_entry_ms"]) if r["latest_entry_ms"] else "-"
            backlog = "-" if r["backlog"] is None else str(r["backlog"])
            waiting = str(r["waiting_up"]) if r["role"] == "village" and r.get("waiting_up") is not None else "-"
            lines.append(
                f"{r['node']:<16}{ROLE_NAMES[r['role']]:<6}{(r['parent'] or '-'):<16}{seen_at:<26}{latest:<22}"
                f"{backlog:>8}  {oldest:<20}{waiting:>8}  {r['name']}{flag}{fork}{held}"
            )
        return "\n".join(lines)

    emit(
        as_json,
        {"nodes": rows, "forks": [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in f.items()} for f in forks]},
        text,
    )


@main.command(help="Revoke a node: its entries after what the county holds now are quarantined.")
@data_option
@click.argument("node")
@click.option("--reason", required=True, help="why, e.g. 笔记本丢失")
@handle_errors
def revoke(data_dir: str, node: str, reason: str) -> None:
    data, _config, key = county(data_dir)
    with open_county_store(data) as store:
        if store.directory().get(node) is None:
            raise unknown_node(node)
        node_admin.revoke(store, key, node, reason, who=audit.CLI_ACTOR, now_ms=now_ms())
    click.echo(f"已吊销节点 {node}（{reason}）。其后续写入将被隔离待审。")


@main.command("forks", help="The forks the county knows of: node, feed, when found, entries on each branch, decision.")
@data_option
@json_option
@handle_errors
def forks_command(data_dir: str, as_json: bool) -> None:
    with open_county_store(DataDir(data_dir)) as store:
        rows = fork_rows(store)

    def text() -> str:
        if not rows:
            return "县级没有记录到分叉。"
        lines = [
            f"{'节点':<16}{'日志':<16}{'发现时间':<22}{'分叉处':>6}{'县级分支':>8}{'另一分支':>8}  名称 / 发现方 / 处理"
        ]
        for r in rows:
            other = "-" if r["other_branch_last_seq"] is None else str(r["other_branch_last_seq"])
            done = f"已裁决（以第 {r['resolved_seq']} 条为准）" if r["resolved_seq"] else "待裁决"
            found = fmt_ms(int(r["detected_at"] * 1000)) if r["detected_at"] else "经乡镇报告"
            by = f"{r['found_by_name']}发现" if r["found_by_name"] else "-"
            lines.append(
                f"{r['node']:<16}{r['feed']:<16}{found:<22}{r['seq']:>6}{r['held_seq']:>8}{other:>8}  "
                f"{r['name']} / {by} / {done}"
            )
        return "\n".join(lines)

    emit(as_json, {"forks": rows}, text)


@main.command(
    "resolve-fork",
    help="Resolve a fork of a node's feed: what the county holds is the feed; the node re-issues the rest after it.",
)
@data_option
@click.argument("node")
@click.option("--reason", required=True, help="why, e.g. 笔记本从旧备份恢复后离线登记")
@click.option("--feed", default=None, help="the forked feed (default: the one the county knows, else NODE/up)")
@handle_errors
def resolve_fork(data_dir: str, node: str, reason: str, feed: str | None) -> None:
    data, _config, key = county(data_dir)
    with open_county_store(data) as store:
        m = store.directory().get(node)
        if m is None or m.role == COUNTY:
            raise StoreError(
                f"没有已登记的乡镇或村节点 {node!r} (no enrolled township or village)", hint="见 `county-server nodes`"
            )
        feed, seq = node_admin.resolve_fork(store, key, node, reason, who=audit.CLI_ACTOR, now_ms=now_ms(), feed=feed)
    click.echo(
        f"已裁决 {directory_name(node, m.name)} 的日志 {feed} 分叉：以县级所存第 1–{seq} 条为准（{reason.strip()}）。"
        "裁决经乡镇下发；该节点下次同步后解除冻结，并把另一分支上的办件重新登记上传。"
    )


def directory_name(node: str, name: str) -> str:
    return f"{name}（{node}）" if name else node


@main.command(help="Give an enrolled node a new display name (e.g. 梅花村): a node.name entry every node receives.")
@data_option
@click.argument("node")
@click.argument("name")
@handle_errors
def rename(data_dir: str, node: str, name: str) -> None:
    data, _config, key = county(data_dir)
    with open_county_store(data) as store:
        if store.directory().get(node) is None:
            raise unknown_node(node)
        old_name = node_admin.rename(store, key, node, name, who=audit.CLI_ACTOR, now_ms=now_ms())
    click.echo(f"已将节点 {node} 的名称由 {old_name} 改为 {name.strip()}。各节点同步后显示新名称。")


@main.group(help="The service item catalog (事项清单).")
def catalog_group() -> None:
    pass


main.add_command(catalog_group, name="catalog")


@catalog_group.command(
    name="import",
    help="Preview a JSON, CSV or XLSX catalog file, then publish it as a new release (增量 by default).",
)
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="print the preview only; publish nothing")
@click.option("--replace", is_flag=True, help="全量替换: cancel (取消) the items the file does not list")
@click.option("--yes", is_flag=True, help="with --replace: cancel without asking (for scripts)")
@json_option
@handle_errors
def catalog_import(data_dir: str, file: str, dry_run: bool, replace: bool, yes: bool, as_json: bool) -> None:
    data = DataDir(data_dir)
    key = None if dry_run else county(data_dir)[2]  # a preview needs no key (nor its passphrase)
    path = Path(file)
    files.require_regular(path, "事项清单文件")
    mode = importing.REPLACE if replace else importing.INCREMENTAL
    with open_county_store(data) as store:
        preview = catalog.preview_import(store, path.read_bytes(), path.name, mode=mode)
        if not preview.ok:
            raise CatalogFileError(file, preview.problems)
        if dry_run:
            emit(as_json, {**preview.as_json(), "published": False},
                 lambda: preview_text(preview, file) + "\n预览完毕，未发布任何内容（去掉 --dry-run 即发布）。")  # fmt: skip
            return
        if not as_json:
            click.echo(preview_text(preview, file))
        if preview.cancelled and replace and not yes:
            _confirm_cancel(len(preview.cancelled), ask=not as_json)
        assert key is not None
        release = catalog.publish_import(
            store, key, preview, now_ms=now_ms(), digest=preview.digest, who=audit.CLI_ACTOR
        )
    if release["version"] is None:
        emit(as_json, {**release, "preview": preview.as_json()},
             f"无变化：{file} 与当前第 {release['current']} 版相同，未发布新版本。")  # fmt: skip
        return
    ch = release["changes"]
    emit(as_json, {**release, "preview": preview.as_json()},
         f"已发布事项清单第 {release['version']} 版，共 {release['count']} 项：新增 {len(ch['added'])}，"
         f"变更 {len(ch['changed'])}，取消 {len(ch['cancelled'])}（{file}）。")  # fmt: skip


def _confirm_cancel(n: int, *, ask: bool) -> None:
    """全量替换 cancels items: ask at a terminal; elsewhere (a script, --json) only --yes goes on."""
    question = f"将取消 {n} 项事项并发布新版本，确认吗？(cancel {n} items and publish?)"
    if ask and sys.stdin.isatty() and click.confirm(click.style(question, fg="red", bold=True), default=False):
        return
    raise DomainError(
        f"未确认取消 {n} 项事项，未发布任何内容 (not confirmed: nothing was published)",
        hint="核对上面的预览；确认无误后加 --yes 再运行 (check the preview, then run again with --yes)",
    )


def preview_text(preview: importing.ImportPreview, file: str) -> str:
    """The preview as the CLI prints it: what, against which release, the counts, then item by item."""
    mode = ("全量替换：文件未列出的事项将被取消" if preview.mode == importing.REPLACE
            else "增量：文件未列出的事项保持不变")  # fmt: skip
    base = f"第 {preview.base_version} 版" if preview.base_version else "尚无事项清单"
    lines = [
        f"导入预览 {file}（{mode}；当前{base}）",
        f"新增 {len(preview.added)} 项，变更 {len(preview.changed)} 项，取消 {len(preview.cancelled)} 项，"
        f"不变 {preview.unchanged} 项。",
    ]
    if preview.cancelled:
        lines.append(
            click.style(f"！将取消 {len(preview.cancelled)} 项事项（取消后各村、乡镇不再受理）", fg="red", bold=True)
        )
    lines += [f"+ {c.task_code} {c.name}" for c in preview.added]
    for sign, group in (("~", preview.changed), ("-", preview.cancelled)):
        for c in group:
            lines.append(f"{sign} {c.task_code} {c.name}")
            lines += [f"    {LABELS.get(f, f)}: {_show(old)} → {_show(new)}" for f, (old, new) in c.fields.items()]
    return "\n".join(lines)


@catalog_group.command(name="releases", help="List the catalog releases (版本), oldest first.")
@data_option
@json_option
@handle_errors
def catalog_releases(data_dir: str, as_json: bool) -> None:
    with open_county_store(DataDir(data_dir)) as store:
        rows = catalog.releases(store)

    def text() -> str:
        if not rows:
            return "尚未发布事项清单。"
        lines = ["版本  发布时间             事项数  新增  变更  取消  来源"]
        for r in rows:
            ch = r.get("changes", {})
            why = r.get("reason") or r.get("mode")  # a one-item command's reason, or an import's mode
            source = r.get("source", "") + (f"（{why}）" if why else "")
            lines.append(
                f"{r['version']:<5} {fmt_ms(r.get('released_ms')):<20} {r.get('count', 0):<7} "
                f"{len(ch.get('added', [])):<5} {len(ch.get('changed', [])):<5} {len(ch.get('cancelled', [])):<5} {source}"
            )
        return "\n".join(lines)

    emit(as_json, rows, text)


def _show(value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


@catalog_group.command(name="diff", help="Show what changed, field by field, between two catalog releases.")
@data_option
@click.argument("a", type=int)
@click.argument("b", type=int)
@json_option
@handle_errors
def catalog_diff(data_dir: str, a: int, b: int, as_json: bool) -> None:
    with open_county_store(DataDir(data_dir)) as store:
        d = catalog.diff_releases(store, a, b)

    def text() -> str:
        names = d["names"]
        lines = [f"事项清单第 {a} 版 → 第 {b} 版：新增 {len(d['added'])} 项，删除 {len(d['removed'])} 项，"
                 f"变更 {len(d['changed'])} 项。"]  # fmt: skip
        lines += [f"+ {code} {names[code]}" for code in d["added"]]
        lines += [f"- {code} {names[code]}" for code in d["removed"]]
        for code, fields in d["changed"].items():
            lines.append(f"~ {code} {names[code]}")
            lines += [f"    {LABELS.get(f, f)}: {_show(old)} → {_show(new)}" for f, (old, new) in fields.items()]
        return "\n".join(lines)

    emit(as_json, d, text)


def _state_command(name: str, state: str, help: str, reason_help: str, *, reason_required: bool) -> None:
    """`catalog suspend|cancel|resume CODE`: a one-item release that sets the item's state."""

    @catalog_group.command(name=name, help=help)
    @data_option
    @click.argument("code")
    @click.option("--reason", help=reason_help, **({"required": True} if reason_required else {"default": ""}))
    @json_option
    @handle_errors
    def command(data_dir: str, code: str, reason: str, as_json: bool) -> None:
        data, _, key = county(data_dir)
        with open_county_store(data) as store:
            release = catalog.change_state(store, key, code, state, reason, now_ms=now_ms(), who=audit.CLI_ACTOR)
        why = f"（{reason}）" if reason else ""
        emit(as_json, release, f"已{STATE_ACTIONS[state]}事项 {code}{why}，发布为事项清单第 {release['version']} 版。")


_state_command("suspend", SUSPENDED, "Suspend (暂停) one item: a new one-item release.",
               "why, e.g. 政策调整，暂停受理", reason_required=True)  # fmt: skip
_state_command("cancel", CANCELLED, "Cancel (取消) one item: a new one-item release.",
               "why, e.g. 省级清单已取消该事项", reason_required=True)  # fmt: skip
_state_command("resume", IN_USE, "Put a suspended or cancelled item back in use (在用).",
               "why (optional)", reason_required=False)  # fmt: skip


@main.command(name="export-bundle", help="Write a bundle file (USB) for a node that has no link.")
@data_option
@click.option("--for", "for_node", required=True, help="the node the bundle is for")
@click.option("--to", "path", required=True, type=click.Path(dir_okay=False), help="the bundle file to write")
@handle_errors
def export_bundle(data_dir: str, for_node: str, path: str) -> None:
    data, config, key = county(data_dir)
    with open_county_store(data) as store:
        if store.directory().get(for_node) is None:
            raise unknown_node(for_node)
        theirs = state.peer_vector(store, for_node)
        n = write_bundle(store, Path(path), key=key, source=config.node_id, target=for_node, theirs=theirs)
    click.echo(f"已写出数据包 {path}（{n} 批，供 {for_node}）。")


@main.command(
    name="import-bundle", help="Import a bundle file (USB): verified like a sync; importing twice changes nothing."
)
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@handle_errors
def import_bundle(data_dir: str, file: str, as_json: bool) -> None:
    data, _, key = county(data_dir)
    with files.open_regular(Path(file), "数据包") as f, open_county_store(data) as store:
        verdicts = store.import_bundle(f, name=file)
        # committed here: receipt it; every author in the bundle, not only those with new entries, so an
        # import run again after a crash between its commit and its receipts still writes them
        authors = {v.feed.split("/")[0] for v in verdicts if v.feed}
        receipts.write_receipts(store, key, authors, now_ms() * 1000)
    finish_import(file, verdicts, as_json)


@contextmanager
def account_db(data_dir: str) -> Iterator[sqlite_utils.Database]:
    """The county's database with the account tables migrated."""
    data = DataDir(data_dir)
    if data.load().role != "county":
        raise ValidationError(f"{data.path} 不是县级节点的数据目录 (not a county's data directory)")
    with open_county_store(data) as store:
        yield store.db


add_account_commands(
    main,
    "account",
    accounts.BOOK,
    account_db,
    help="Accounts for the county's pages (管理员 admin, 监察员 inspector): kept at the county only, never synced.",
    default_role=accounts.INSPECTOR,
    role_help="admin 管理员 (changes data, manages accounts) | inspector 监察员 (reads only)",
)

main.add_command(calendar)
main.add_command(reconcile_command)
main.add_command(completeness_command)


def audit_command(ws: Any, action: str, **what: Any) -> None:
    """The county's audit row for a domain command that changed data (as 命令行), in its own transaction;
    a card scan by command is also listed on 电子监察 (the last scan)."""
    db, at = ws.store.db, now_ms()
    with db.atomic():
        if action == "card.scan":
            monitor_tables.record_scan(db, at_ms=at, source="cli", issued=int(what["details"]["issued"]))
        audit.record(db, who=audit.CLI_ACTOR, action=action, at_ms=at, **what)


add_domain_commands(main, "county", load_county, audit=audit_command)


if __name__ == "__main__":  # pragma: no cover
    main()
