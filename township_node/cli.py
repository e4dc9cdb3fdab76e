"""`township-node`: the township service centre's command line (乡镇便民服务中心)."""

from __future__ import annotations

import click

from sanji_node.child import ChildNode
from sanji_node.child_cli import add_child_commands, page_option
from sanji_node.cli import data_option, handle_errors, started
from sanji_node.domain_cli import add_domain_commands
from sanji_node.scheduler import SyncScheduler
from sanji_node.serving import serve as serve_app
from sync_protocol.verify_pool import VerifyPool

from .app import create_app


@click.group(help="Sanji township node (乡镇便民服务中心): clerk windows and store-and-forward hub for its villages.")
def main() -> None:
    pass


add_child_commands(main, "township", default_port=8410)
add_domain_commands(main, "township", ChildNode.load, prepare=lambda node, offline: None)


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
@page_option
@handle_errors
def serve(
    data_dir: str,
    host: str | None,
    port: int | None,
    workers: int,
    sync_interval: int | None,
    max_backoff: float,
    page_kib: int,
) -> None:
    pool = VerifyPool(workers) if workers else None
    node = ChildNode.load(data_dir, pool=pool, page_bytes=page_kib * 1024)
    config = node.config
    scheduler = SyncScheduler(node.sync, interval_s=sync_interval or config.sync_interval_s, max_backoff_s=max_backoff)
    app = create_app(node, on_new_data=scheduler.sync_now)

    def stop() -> None:
        scheduler.stop()
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


if __name__ == "__main__":  # pragma: no cover
    main()
