"""`village-agent`: the proxy agent's command line (村便民服务站)."""

from __future__ import annotations

from typing import Any

import click

from sanji_node.child import ChildNode, recover_before_writing
from sanji_node.child_cli import add_child_commands, page_option
from sanji_node.cli import data_option, emit, handle_errors, now_ms, started
from sanji_node.scheduler import SyncScheduler
from sanji_node.serving import serve as serve_app

from . import cases
from .app import create_app


@click.group(help="Sanji village agent (村便民服务站): the proxy agent's laptop, offline most of the day.")
def main() -> None:
    pass


add_child_commands(main, "village", default_port=8420)


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


@main.group(name="case", help="Cases (办件) logged for villagers.")
def case_group() -> None:
    pass


@case_group.command(
    name="new", help="Log a new case (or a JSON list of cases) from a JSON file, or - for standard input."
)
@data_option
@click.option(
    "--json", "json_file", required=True, type=click.File("r", encoding="utf-8"), help="the case as JSON (FILE or -)"
)
@click.option("--offline", is_flag=True, help="do not ask the township first (no link)")
@click.option("--output-json", "as_json", is_flag=True, help="machine-readable JSON output")
@handle_errors
def case_new(data_dir: str, json_file: Any, offline: bool, as_json: bool) -> None:
    node = ChildNode.load(data_dir)
    recovered = [] if offline else recover_before_writing(node)
    if recovered and not as_json:
        click.echo(f"已先从乡镇恢复本机日志: {', '.join(recovered)}", err=True)
    data = cases.parse_json(json_file.read())
    made = cases.new_cases(node, data if isinstance(data, list) else [data], now_ms=now_ms())
    out = made if isinstance(data, list) else made[0]
    emit(as_json, out, "\n".join(f"已登记办件 {c['local_no']}（{c['case_id']}），待上传。" for c in made))


if __name__ == "__main__":  # pragma: no cover
    main()
