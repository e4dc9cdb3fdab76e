"""`township-node`: the township service centre's command line (乡镇便民服务中心)."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlite_utils

from sanji_domain.errors import ValidationError
from sanji_node import state
from sanji_node.actions.sync_status import SyncMonitor
from sanji_node.child import ChildNode
from sanji_node.child_cli import add_child_commands, page_option, recover_first
from sanji_node.cli import Program, data_option, emit, fmt_ms, handle_errors, json_option, now_ms, started
from sanji_node.config import DataDir
from sanji_node.domain_cli import add_domain_commands
from sanji_node.scheduler import SyncScheduler
from sanji_node.serving import serve as serve_app
from sync_protocol.verify_pool import VerifyPool

from . import absences, clerks
from .app import create_app


@click.group(
    cls=Program,
    help="Sanji township node (乡镇便民服务中心): clerk windows and store-and-forward hub for its villages.",
)
def main() -> None:
    pass


add_child_commands(main, "township", default_port=8410)
add_domain_commands(main, "township", ChildNode.load, prepare=recover_first)


@main.command(help="Serve the sync API to the villages and sync upstream on a schedule (Ctrl-C stops cleanly).")
@data_option
@click.option(
    "--host", default=None, help="address to listen on (default: from init, 127.0.0.1; use 0.0.0.0 for the LAN)"
)
@click.option("--port", type=int, default=None, help="port (0 picks a free one; default: from init)")
@click.option("--workers", type=int, default=0, help="verification worker processes (0: none)")
@click.option("--sync-interval", type=int, default=None, help="seconds between upstream syncs (default: from init)")
@click.option(
    "--max-backoff",
    type=float,
    default=900.0,
    show_default=True,
    help="longest wait between retries while the county is unreachable (seconds)",
)
@click.option(
    "--idle-minutes",
    type=click.IntRange(1, 24 * 60),
    default=30,
    show_default=True,
    help="a clerk's page session locks after this many minutes without a request",
)
@page_option
@handle_errors
def serve(
    data_dir: str,
    host: str | None,
    port: int | None,
    workers: int,
    sync_interval: int | None,
    max_backoff: float,
    idle_minutes: int,
    page_kib: int,
) -> None:
    pool = VerifyPool(workers) if workers else None
    node = ChildNode.load(data_dir, pool=pool, page_bytes=page_kib * 1024)
    config = node.config
    monitor = SyncMonitor(sync=node.sync)
    scheduler = SyncScheduler(
        monitor.run, interval_s=sync_interval or config.sync_interval_s, max_backoff_s=max_backoff
    )
    app = create_app(
        node, on_new_data=scheduler.sync_now, idle_minutes=idle_minutes, schedule=scheduler, monitor=monitor
    )
    pages = app.extensions["township"]
    if not pages.ws.read(lambda _conn: clerks.count(pages.ws.store.db)):
        click.echo(
            "还没有窗口人员账号：请先运行 township-node clerk add --role head … 创建中心负责人账号。"
            "(no clerk account yet: create the first one with `clerk add --role head`)",
            err=True,
        )

    def stop() -> None:
        scheduler.stop()
        pages.ws.close()
        if pool is not None:
            pool.close()

    serve_app(
        app,
        node.data,
        host=host or config.host,
        port=config.port if port is None else port,
        on_start=lambda url: started(f"乡镇节点 {config.node_id} 正在服务 listening on {url}", scheduler),
        on_stop=stop,
    )


# -- clerk accounts (node-local: never synced) ---------------------------------------------------------------


@contextmanager
def clerk_db(data_dir: str) -> Iterator[sqlite_utils.Database]:
    """The township's database with the account tables migrated (no key is unlocked for this)."""
    data = DataDir(data_dir)
    config = data.load()
    if config.role != "township":
        raise ValidationError(
            f"{data.path} holds a {config.role} node, not a township (clerk accounts are a township's)"
        )
    store = state.open_store(data, config)
    try:
        clerks.migrate(store.db)
        absences.migrate(store.db)
        yield store.db
    finally:
        store.close()


def _cells(*cells: tuple[str, int]) -> str:
    """Columns padded to display widths (a Chinese character takes two)."""
    out = []
    for text, width in cells:
        used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
        out.append(text + " " * max(1, width - used) if width else text)
    return "".join(out).rstrip()


def read_password(password_env: str | None, *, prompt: str) -> str:
    """From the environment variable named by --password-env, or asked for without echo (never from argv)."""
    if password_env:
        value = os.environ.get(password_env, "")
        if not value:
            raise ValidationError(
                f"${password_env} is empty or not set", hint="set it to the password, or leave out --password-env"
            )
        return value
    typed: str = click.prompt(prompt, hide_input=True, confirmation_prompt="再输一次 (repeat)")
    return typed


password_env_option = click.option(
    "--password-env",
    default=None,
    metavar="VAR",
    help="read the password from this environment variable (scripts); otherwise it is asked for, hidden",
)
login_option = click.option("--login", required=True, help="the account's login name, e.g. wangfang")


@main.group(help="Clerk accounts for the centre's pages (窗口人员, 中心负责人): kept on this node only, never synced.")
def clerk() -> None:
    pass


@clerk.command(name="add", help="Add an account; its password is asked for (hidden) or read from --password-env.")
@data_option
@click.option("--name", "display_name", required=True, help="the name people see and case events record, e.g. 王芳")
@login_option
@click.option(
    "--role",
    type=click.Choice(list(clerks.ROLES)),
    default=clerks.CLERK,
    show_default=True,
    help="clerk 窗口人员 | head 中心负责人 (manages the accounts)",
)
@password_env_option
@json_option
@handle_errors
def clerk_add(data_dir: str, display_name: str, login: str, role: str, password_env: str | None, as_json: bool) -> None:
    clerks.check_name(display_name)
    clerks.check_login(login)
    password = clerks.check_password(read_password(password_env, prompt="密码 (password)"), login.strip().lower())
    with clerk_db(data_dir) as db:
        made = clerks.add(db, name=display_name, login=login, role=role, password=password, now_ms=now_ms())
    emit(as_json, made, f"已添加{made['role_label']} {made['name']}（登录名 {made['login']}）。")


@clerk.command(name="list", help="List the accounts: login name, name, role, active or disabled, last login.")
@data_option
@json_option
@handle_errors
def clerk_list(data_dir: str, as_json: bool) -> None:
    with clerk_db(data_dir) as db:
        rows = clerks.list_clerks(db)

    def text() -> str:
        if not rows:
            return "还没有账号。用 clerk add --role head 创建中心负责人账号。"
        lines = [_cells(("登录名", 16), ("姓名", 10), ("岗位", 12), ("状态", 8), ("最近登录", 0))]
        for r in rows:
            lines.append(
                _cells(
                    (r["login"], 16),
                    (r["name"], 10),
                    (r["role_label"], 12),
                    ("在用" if r["active"] else "已停用", 8),
                    (fmt_ms(r["last_login_ms"]), 0),
                )
            )
        return "\n".join(lines)

    emit(as_json, rows, text)


@clerk.command(name="passwd", help="Set a new password for an account (asked for, hidden; or --password-env).")
@data_option
@login_option
@password_env_option
@json_option
@handle_errors
def clerk_passwd(data_dir: str, login: str, password_env: str | None, as_json: bool) -> None:
    with clerk_db(data_dir) as db:
        who = clerks.find(db, clerks.check_login(login))
    password = clerks.check_password(read_password(password_env, prompt="新密码 (new password)"), who["login"])
    with clerk_db(data_dir) as db:
        who = clerks.set_password(db, who["login"], password, now_ms=now_ms())
    emit(as_json, who, f"已重设 {who['name']}（{who['login']}）的密码。")


@clerk.command(name="disable", help="Disable an account: it can no longer sign in, and its open sessions end.")
@data_option
@login_option
@json_option
@handle_errors
def clerk_disable(data_dir: str, login: str, as_json: bool) -> None:
    with clerk_db(data_dir) as db:
        who = clerks.set_active(db, clerks.check_login(login), False, now_ms=now_ms())
    emit(as_json, who, f"已停用 {who['name']}（{who['login']}）的账号。")


@clerk.command(name="enable", help="Enable a disabled account again.")
@data_option
@login_option
@json_option
@handle_errors
def clerk_enable(data_dir: str, login: str, as_json: bool) -> None:
    with clerk_db(data_dir) as db:
        who = clerks.set_active(db, clerks.check_login(login), True, now_ms=now_ms())
    emit(as_json, who, f"已启用 {who['name']}（{who['login']}）的账号。")


if __name__ == "__main__":  # pragma: no cover
    main()
