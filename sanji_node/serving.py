"""Run a node's Flask app under waitress, with a clean shutdown on Ctrl-C or SIGTERM.

Binding to port 0 picks a free port; the URL actually served is written to
DATA/serve.json (and printed), so scripts and tests can find it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from waitress.server import create_server

from sync_protocol import files
from sync_protocol.errors import TransportError

from .config import DataDir


def serve(
    app: Any,
    data: DataDir,
    *,
    host: str,
    port: int,
    threads: int = 8,
    on_start: Callable[[str], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve until interrupted; `on_start(url)` runs once the socket is bound."""
    try:
        server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            inbuf_overflow=64 * 1024 * 1024,  # keep sync pages in memory rather than spooling them to temp files
            max_request_body_size=128 * 1024 * 1024,
            channel_timeout=300,
            ident="sanji",
        )
    except OSError as e:
        raise TransportError(
            f"cannot listen on {host}:{port}: {e.strerror or e}",
            hint="another program uses this port: stop it, or pass --port",
        ) from e
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
