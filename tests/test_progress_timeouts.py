"""The child's timeouts measure progress, never a whole body (issue 12, point 8), in-process and fast.

A waitress app on 127.0.0.1 behind the shaping proxy (`tests/linkproxy.py`) at 16 KB/s; the client's socket
gets a small send buffer (the injected fault: loopback would give it ~4 MB and hide what a slow link does).
The timeouts are scaled down (connect 0.5 s, stall 4 s) so that a 48 KB body takes 3 s: six times the
connect timeout, which used to cover the whole body. (The wait for the answer starts once the body is in the
socket; what is still in the kernel's and the proxy's buffers, ~40 KB here, crosses during it: the stall
timeout must cover that too.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from urllib3.connection import HTTPConnection
from waitress.server import create_server

from sync_protocol.errors import TransportError
from sync_protocol.http_client import ParentClient

from .guarded import running
from .linkproxy import LinkProxy, Shape


def echo_length(environ: dict[str, Any], start: Any) -> list[bytes]:
    n = len(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    start("200 OK", [("Content-Type", "text/plain")])
    return [str(n).encode()]


@pytest.fixture
def slow_link() -> Iterator[LinkProxy]:
    server = create_server(echo_length, host="127.0.0.1", port=0)
    # stopped from inside its own thread (`running`): closing it from here raced its select() (EBADF)
    with running(server):
        small = (socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        HTTPConnection.default_socket_options.append(small)  # the list every connection's default argument holds
        proxy = LinkProxy("127.0.0.1", server.effective_port, Shape(up_bps=16_000, down_bps=16_000, sock_buf=8192))  # type: ignore[union-attr]
        try:
            yield proxy
        finally:
            HTTPConnection.default_socket_options.remove(small)
            proxy.close()


def client(url: str) -> ParentClient:
    return ParentClient(url, key=None, node_id="v11", county="430321", timeout=(0.5, 4.0), attempts=1)


def test_a_body_longer_than_the_connect_timeout_goes_through_while_it_moves(slow_link: LinkProxy) -> None:
    c = client(slow_link.url)
    sent: list[float] = []
    t0 = time.monotonic()
    resp = c._send("POST", "/push", b"x" * 48_000, {}, on_sent=lambda: sent.append(time.monotonic() - t0))
    assert resp.status_code == 200 and resp.text == "48000"
    assert time.monotonic() - t0 > 2.0  # it really took several connect timeouts
    assert sent, "the body was never reported sent"


def test_a_silent_drop_fails_within_the_stall_timeout(slow_link: LinkProxy) -> None:
    c = client(slow_link.url)
    slow_link.drop_after("up", 8000)
    t0 = time.monotonic()
    with pytest.raises(TransportError):
        c._send("POST", "/push", b"x" * 48_000, {})
    assert time.monotonic() - t0 < 2 * 4.0


def test_a_link_gone_silent_under_kept_alive_connections_costs_one_stall_not_one_per_connection(
    slow_link: LinkProxy,
) -> None:
    """A cell that re-attaches kills every connection open on it. The client finds one dead by its stall timeout,
    then forgets the other idle ones and retries on a fresh connection, so the pages pushed next from two
    threads do not each meet a dead connection of their own."""
    waits: list[float] = []
    c = ParentClient(slow_link.url, key=None, node_id="v11", county="430321", timeout=(0.5, 1.0), sleep=waits.append)

    def two_at_once() -> list[str]:
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(c._post("/p", b"x" * 4000, signed=False).text))
                   for _ in range(2)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        return results

    assert two_at_once() == ["4000", "4000"] and slow_link.connections == 2  # two kept-alive connections
    slow_link.set_down(True, "silent")  # both go silent for good; the link itself comes back at once
    slow_link.set_down(False)
    time.sleep(0.2)
    assert c._post("/p", b"y" * 100, signed=False).text == "100"  # the session's hello
    assert waits == [0.5]  # one attempt failed (after its 1 s stall), the next went after the backoff
    assert two_at_once() == ["4000", "4000"]  # two pages pipelined
    assert waits == [0.5]  # neither met the other dead connection
    c.close()
