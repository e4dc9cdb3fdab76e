"""Waitress servers in a thread, for tests: any server (`running`), or a Flask app under the production server
(`serve_guarded`: `sanji_node.serving.make_server`, with a parent's checks before the body)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from waitress import wasyncore

from sanji_node.http_server import GuardedServer, ServerLimits
from sanji_node.serving import make_server


@contextmanager
def running(server: Any) -> Iterator[str]:
    """Run a bound waitress server in a thread; yields its base URL. Shutting down closes every socket from
    inside the serving thread, so no request is cut mid-poll."""
    thread = threading.Thread(target=server.run, name="sanji-test-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        socket_map = server._map
        server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        if thread.is_alive():
            raise AssertionError("the test server's thread did not stop")


@contextmanager
def serve_guarded(app: Flask, limits: ServerLimits | None = None) -> Iterator[GuardedServer]:
    """Yields the running production server (its URL: `url(server)`)."""
    server = make_server(app, host="127.0.0.1", port=0, limits=limits or ServerLimits(threads=2))
    with running(server):
        yield server


def url(server: GuardedServer) -> str:
    return f"http://127.0.0.1:{server.effective_port}"
