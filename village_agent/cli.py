"""`village-agent`: the proxy agent's command line (村便民服务站)."""

from __future__ import annotations

import click

from sanji_node import purge
from sanji_node.child import ChildNode, recover_before_writing
from sanji_node.child_cli import add_child_commands, page_option
from sanji_node.cli import data_option, emit, handle_errors, json_option, now_ms, started
from sanji_node.domain_cli import add_domain_commands
from sanji_node.scheduler import SyncScheduler
from sanji_node.serving import serve as serve_app

from .app import create_app


@click.group(help="Sanji village agent (村便民服务站): the proxy agent's laptop, offline most of the day.")
def main() -> None:
    pass


add_child_commands(main, "village", default_port=8420)


def _recover(node: ChildNode, offline: bool) -> None:
    """Before writing to its own feed, a restored laptop first recovers it from the township."""
    recovered = [] if offline else recover_before_writing(node)
    if recovered:
        click.echo(f"已先从乡镇恢复本机日志: {', '.join(recovered)}", err=True)


add_domain_commands(main, "village", ChildNode.load, prepare=_recover)


@main.command(help="Run the local process (127.0.0.1 only) and the sync job (Ctrl-C stops cleanly).")
@data_option
@click.option("--port", type=int, default=None, help="local port (0 picks a free one; default: from init)")
@click.option("--sync-interval", type=int, default=None, help="seconds between syncs (default: from init)")
@click.option(
    "--max-backoff",
    type=float,
    default=900.0,
    show_default=True,
    help="longest wait between retries while the township is unreachable (seconds)",
)
@page_option
@handle_errors
def serve(data_dir: str, port: int | None, sync_interval: int | None, max_backoff: float, page_kib: int) -> None:
    node = ChildNode.load(data_dir, page_bytes=page_kib * 1024)
    config = node.config
    scheduler = SyncScheduler(node.sync, interval_s=sync_interval or config.sync_interval_s, max_backoff_s=max_backoff)
    app = create_app(node, sync_now=scheduler.sync_now)
    serve_app(
        app,
        node.data,
        host="127.0.0.1",
        port=config.port if port is None else port,
        on_start=lambda url: started(f"村代办点 {config.node_id} 正在运行 listening on {url}", scheduler),
        on_stop=scheduler.stop,
    )


@main.group(
    name="pii", help="Villagers' personal data on this laptop: encrypted at rest, purged after the county's receipt."
)
def pii_group() -> None:
    pass


@pii_group.command(
    name="status", help="Show the purge rule the county set, and how many cases keep personal data here."
)
@data_option
@json_option
@handle_errors
def pii_status(data_dir: str, as_json: bool) -> None:
    node = ChildNode.load(data_dir)
    with node.open_store() as store:
        s = purge.status(store, node.config.node_id, now_ms())
    emit(
        as_json,
        s,
        f"规则: {s['rule']}\n本机加密保存 {s['kept']} 件（其中 {s['kept_not_receipted']} 件县级尚未接收），"
        f"到期待清除 {s['due']} 件，已清除 {s['purged']} 件",
    )


@pii_group.command(name="purge", help="Purge now the personal data the rule says is due (sync does this too).")
@data_option
@json_option
@handle_errors
def pii_purge(data_dir: str, as_json: bool) -> None:
    node = ChildNode.load(data_dir)
    with node.open_store() as store:
        n = purge.purge_due(store, node.config.node_id, now_ms())
    emit(as_json, {"purged": n}, f"已从本机清除 {n} 件办件的申请人个人信息（县级保留完整记录）")


if __name__ == "__main__":  # pragma: no cover
    main()
