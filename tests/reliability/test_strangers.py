"""Strangers are bounded (issue 12, point 4): idle, slow-header and big stalled connections, garbage requests.

The mechanisms run in-process against the production server with short limits
(seconds instead of tens of seconds); one test runs `bench/strangers_bench.py`
at 30 connections of each kind against real county, township and village
processes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, request

from sanji_node.http_server import GuardedServer, ServerLimits

from ..e2e.cluster import wait_for
from ..guarded import serve_guarded, url

ROOT = Path(__file__).resolve().parents[2]
SHORT = ServerLimits(threads=2, header_timeout_s=1.0, idle_timeout_s=2.0, max_open_bodies=4, cleanup_interval_s=0.2)


def small_app() -> Flask:
    app = Flask("strangers")

    @app.get("/api/v1/health")
    def health() -> Any:
        return {"ok": True}

    @app.post("/api/v1/sync/push")
    def push() -> Any:
        return {"received": len(request.get_data())}

    return app


@pytest.fixture
def server() -> Iterator[GuardedServer]:
    with serve_guarded(small_app(), SHORT) as s:
        yield s


def connect(server: GuardedServer, first: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
    if first:
        s.sendall(first)
    return s


def answer(s: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of what the server sent before it closed."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), data[:200]
    return int(head.split(b" ")[1]), json.loads(body)


def signed_head(length: int, node: str = "v11") -> bytes:
    """Well-formed signature headers (a stranger can copy a node id and the time): they pass the early checks."""
    return (
        "POST /api/v1/sync/push HTTP/1.1\r\nHost: t\r\n"
        f"X-Sanji-Node: {node}\r\nX-Sanji-Time: {int(time.time() * 1000)}\r\n"
        f"X-Sanji-Nonce: {secrets.token_hex(16)}\r\nX-Sanji-Signature: {secrets.token_hex(64)}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def health_ms(server: GuardedServer) -> float:
    t = time.perf_counter()
    assert requests.get(url(server) + "/api/v1/health", timeout=5).json() == {"ok": True}
    return (time.perf_counter() - t) * 1000


def test_idle_and_slow_header_strangers_do_not_stop_health_checks(server: GuardedServer) -> None:
    # 130 in all: past waitress's default limit (100), where it stopped accepting and health checks timed out
    idle = [connect(server) for _ in range(80)]
    slow = [connect(server, b"GET /api/v1/health HTTP/1.1\r\n") for _ in range(50)]
    assert health_ms(server) < 1000
    for s in slow[:10]:
        s.sendall(b"X-A")  # still trickling: the deadline counts from the first byte, not the last
    for s in slow:
        status, body = answer(s)
        assert status == 408 and body["code"] == "protocol_error" and "请求头" in body["message"]
    for s in idle:
        assert s.recv(1) == b""  # closed after the idle timeout, without a word
        s.close()
    assert health_ms(server) < 1000


def test_an_unsigned_push_is_refused_before_its_body(server: GuardedServer) -> None:
    s = connect(server, b"POST /api/v1/sync/push HTTP/1.1\r\nHost: t\r\nContent-Length: 67108864\r\n\r\n")
    status, body = answer(s)  # no body byte sent: the answer comes from the headers alone
    assert status == 403 and body["code"] == "not_allowed" and "签名" in body["message"]


BAD = {  # made when the test runs: a signed head's time must be current
    "garbage": (lambda: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "bad_content_length": (lambda: b"POST /api/v1/sync/push HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400),
    "huge_header": (lambda: b"GET /api/v1/health HTTP/1.1\r\nX-A: " + b"a" * 40_000 + b"\r\n\r\n", 431),
    "oversize_body": (lambda: b"POST /api/v1/other HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
    "chunked_push": (lambda: signed_head(1).replace(b"Content-Length: 1", b"Transfer-Encoding: chunked"), 411),
    "stale_time": (lambda: signed_head(10).replace(b"X-Sanji-Time: ", b"X-Sanji-Time: 1"), 403),
}


@pytest.mark.parametrize("raw, status", BAD.values(), ids=BAD.keys())
def test_malformed_oversize_and_garbage_requests_get_the_json_error(
    server: GuardedServer, raw: Callable[[], bytes], status: int
) -> None:
    got, body = answer(connect(server, raw()))  # was waitress's plain text, or nothing
    assert got == status and body["code"] in ("protocol_error", "not_allowed") and body["message"] and body["hint"]


def test_stalled_bodies_make_room_for_an_honest_one(server: GuardedServer) -> None:
    stalled = []
    for _ in range(6):  # more than max_open_bodies (4): the ones silent longest are closed
        s = connect(server, signed_head(64 * 1024 * 1024) + secrets.token_bytes(256 * 1024))
        stalled.append(s)
    wait_for(lambda: open_bodies(server) <= SHORT.max_open_bodies, "room made", timeout=5, step=0.05)
    page = secrets.token_bytes(512 * 1024)
    s = connect(server, signed_head(len(page)) + page)
    status, body = answer(s)
    assert status == 200 and body == {"received": len(page)}
    assert open_bodies(server) <= SHORT.max_open_bodies
    for s in stalled:
        s.close()


def test_a_body_is_held_in_memory_only_up_to_the_bound(server: GuardedServer) -> None:
    s = connect(server, signed_head(64 * 1024 * 1024) + secrets.token_bytes(1024 * 1024))
    wait_for(lambda: received(server) >= 1024 * 1024, "the first MiB", timeout=5, step=0.05)
    held = [in_memory(c) for c in server.active_channels.values() if c.body_in_progress()]
    assert held and max(held) <= SHORT.inbuf_bytes  # the rest is in a temporary file (was: all 64 MiB in memory)
    s.close()


def open_bodies(server: GuardedServer) -> int:
    return sum(1 for c in list(server.active_channels.values()) if c.body_in_progress())


def received(server: GuardedServer) -> int:
    return max(
        (c.request.body_bytes_received for c in server.active_channels.values() if c.body_in_progress()), default=0
    )


def in_memory(channel: Any) -> int:
    """Bytes of the body in progress that sit in memory (waitress's OverflowableBuffer: `strbuf`, or a BytesIO)."""
    buf = channel.request.body_rcv.buf
    inner = getattr(buf, "buf", None)
    memory = len(buf.strbuf)
    if inner is not None and type(inner).__name__ == "BytesIOBasedBuffer":
        memory += len(inner)
    return memory


def test_thirty_strangers_of_each_kind_leave_room_for_an_honest_village(tmp_path: Path) -> None:
    """The bench, small: real processes; the village's syncs succeed, the township stays under 150 MiB."""
    out = tmp_path / "strangers.json"
    cmd = [sys.executable, str(ROOT / "bench" / "strangers_bench.py"), "--hostile", "30", "--hold-s", "0",
           "--stall-mib", "2", "--cases", "0", "--dir", str(tmp_path / "run"), "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240, env={**os.environ})
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert all(run["ok"] for run in figures["honest_sync"].values())
    assert figures["health"]["failed"] == 0
    peak = figures["township_rss_mib"]["peak"]
    assert peak is None or peak < 150
