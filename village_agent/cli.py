"""`village-agent`: the proxy agent's command line (村便民服务站)."""

from __future__ import annotations

import threading
import webbrowser

import click

from sanji_node import purge
from sanji_node.child import ChildNode
from sanji_node.child_cli import add_child_commands, page_option, recover_first
from sanji_node.cli import Program, data_option, emit, handle_errors, json_option, now_ms
from sanji_node.domain_cli import add_domain_commands
from sanji_node.serving import serve as serve_app

from .app import Village, create_app


@click.group(cls=Program, help="Sanji village agent (村便民服务站): the proxy agent's laptop, offline most of the day.")
def main() -> None:
    pass


add_child_commands(main, "village", default_port=8420)


add_domain_commands(main, "village", ChildNode.load, prepare=recover_first)


@main.command(
    help="Run the agent's pages and the sync job on 127.0.0.1; the agent logs in on the page (Ctrl-C stops cleanly)."
)
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
@click.option(
    "--idle-minutes",
    type=click.IntRange(1, 24 * 60),
    default=15,
    show_default=True,
    help="lock the pages after this many minutes without use (the agent logs in again)",
)
@click.option("--no-browser", is_flag=True, help="do not open the browser at the page on start")
@page_option
@handle_errors
def serve(
    data_dir: str,
    port: int | None,
    sync_interval: int | None,
    max_backoff: float,
    idle_minutes: int,
    no_browser: bool,
    page_kib: int,
) -> None:
    village = Village.open(data_dir, page_bytes=page_kib * 1024, max_backoff_s=max_backoff, idle_minutes=idle_minutes)
    config = village.config
    village.sync_interval_s = sync_interval or config.sync_interval_s
    problem = village.unlock_from_env()  # the demo and scripts: unlocked at start, so sync runs at once
    if problem:
        click.echo(problem, err=True)
    app = create_app(village)

    def on_start(url: str) -> None:
        click.echo(f"村代办点 {config.node_id} 正在运行 listening on {url}")
        click.echo(
            "已解锁，同步已开始；请在浏览器中登录。"
            if not village.locked
            else "请在浏览器中登录（输入代办员口令解锁）。"
        )
        village.start()
        if not no_browser:
            open_browser(url + "/")

    serve_app(
        app,
        village.data,
        host="127.0.0.1",
        port=config.port if port is None else port,
        on_start=on_start,
        on_stop=village.stop,
    )


def open_browser(url: str) -> None:
    """Open the agent's browser at the page, in the background; never fail or wait if there is none."""

    def run() -> None:
        try:
            webbrowser.open(url)
        except Exception:  # no browser, no display: the URL is printed above
            pass

    threading.Thread(target=run, name="open-browser", daemon=True).start()


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
