"""`township-node`: the township service centre's command line (乡镇便民服务中心)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlite_utils

from sanji_domain.errors import ValidationError
from sanji_node import state
from sanji_node.accounts_cli import add_account_commands
from sanji_node.actions.sync_status import SyncMonitor
from sanji_node.child import ChildNode
from sanji_node.child_cli import add_child_commands, page_option, recover_first
from sanji_node.cli import Program, data_option, handle_errors, started
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


add_account_commands(
    main,
    "clerk",
    clerks.BOOK,
    clerk_db,
    help="Clerk accounts for the centre's pages (窗口人员, 中心负责人): kept on this node only, never synced.",
    default_role=clerks.CLERK,
    role_help="clerk 窗口人员 | head 中心负责人 (manages the accounts)",
)


if __name__ == "__main__":  # pragma: no cover
    main()
