"""Run a node's Flask app under waitress, with a clean shutdown on Ctrl-C or SIGTERM.

Binding to port 0 picks a free port; the URL actually served is written to
DATA/serve.json (and printed), so scripts and tests can find it. The server
bounds what strangers may hold (`http_server.ServerLimits`: connections,
slow headers, idle connections, bodies in memory), and answers every refusal
with the JSON error.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from sync_protocol import files
from sync_protocol.errors import TransportError
from sync_protocol.http_api import HeaderCheck

from .config import DataDir
from .http_server import DEFAULT_SERVER_LIMITS, GuardedServer, ServerLimits


def make_server(app: Any, *, host: str, port: int, limits: ServerLimits = DEFAULT_SERVER_LIMITS) -> GuardedServer:
    """The bound (not yet running) server; `TransportError` if the address cannot be had."""
    ctx = getattr(app, "extensions", {}).get("sanji_sync")  # a parent: its sync API's checks before the body
    try:
        return GuardedServer(app, limits, HeaderCheck(ctx) if ctx is not None else None, host=host, port=port)
    except OSError as e:
        raise TransportError(
            f"无法在 {host}:{port} 上监听 (cannot listen on {host}:{port}: {e.strerror or e})",
            hint="另一个程序占用了这个端口：停止它，或用 --port 换一个端口",
        ) from e


def serve(
    app: Any,
    data: DataDir,
    *,
    host: str,
    port: int,
    limits: ServerLimits = DEFAULT_SERVER_LIMITS,
    on_start: Callable[[str], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted; `on_start(url)` runs once the socket is bound."""
    server = make_server(app, host=host, port=port, limits=limits)
    url = f"http://{host}:{server.effective_port}"
    files.write_atomic(data.serve_path, json.dumps({"url": url, "pid": os.getpid()}).encode())  # never half a file

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    if on_start is not None:
        on_start(url)
    try:
        server.run()
    finally:
        if on_stop is not None:
            on_stop()
        server.close()
        try:
            data.serve_path.unlink()
        except OSError:
            pass
