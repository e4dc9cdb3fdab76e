"""The body only after the signature headers pass (issue 12, point 4): a stranger cannot make a parent read a body.

A real parent (the sync API over a county or township database in tmp_path) under the production server
(`sanji_node.serving.make_server`) on 127.0.0.1. Each stranger sends only the headers of a push declaring
64 MiB, signed in form but failing one of the checks the headers allow (recipient, enrolled node, revoked
node, a node not below this one, a seen nonce, a v1 request): the JSON refusal arrives without one body
byte sent, and the server holds no body in progress. The signature itself covers the body, so a request
from an enrolled node with a forged signature is read (at most `inbuf_bytes` of it in memory) and then
refused: the control shows that.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sanji_node.http_server import GuardedServer, ServerLimits
from sanji_node.parent import parent_app
from sync_protocol.auth import H_TO, sign_request
from sync_protocol.entries import Record
from sync_protocol.membership import KIND_REVOKE

from ..e2e.cluster import wait_for
from ..guarded import serve_guarded
from ..network import COUNTY_CODE, Network, build_network, seeded_key
from ..test_signed_answers import node_dir

HELLO = "/api/v1/sync/hello"
BIG = 64 * 1024 * 1024
LIMITS = ServerLimits(threads=2, header_timeout_s=2.0, idle_timeout_s=5.0, cleanup_interval_s=0.2)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    n = build_network(tmp_path)
    county = n.county
    county.store.append(
        county.key,
        "county/*",
        [Record(KIND_REVOKE, "v12", {"last_valid": {}, "node": "v12", "reason": "笔记本电脑遗失"}, 9000)],
    )
    yield n
    n.close()


@pytest.fixture
def township(net: Network, tmp_path: Path) -> Iterator[GuardedServer]:
    node = node_dir(tmp_path / "nodes", net, "t1", role="township", parent="county")
    app = parent_app("t1", node_id="t1", role="township", open_store=node.open_store, key=node.key)
    with serve_guarded(app, LIMITS) as server:
        yield server


@contextmanager
def http_log() -> Iterator[list[str]]:
    """The lines `sanji.http` logs meanwhile (whatever handlers and levels earlier tests left on `sanji`)."""
    lines: list[str] = []
    handler, logger = logging.Handler(logging.DEBUG), logging.getLogger("sanji.http")
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def headers(node: str, *, to: str = "t1", body: bytes = b"{}", nonce: bytes | None = None) -> dict[str, str]:
    return sign_request(
        seeded_key(node),
        county=COUNTY_CODE,
        node=node,
        to=to,
        method="POST",
        path=HELLO,
        body=body,
        now_ms=now_ms(),
        nonce=nonce or secrets.token_bytes(16),
    )


def head(h: dict[str, str], length: int) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return f"POST {HELLO} HTTP/1.1\r\nHost: t1\r\nConnection: close\r\n{lines}Content-Length: {length}\r\n\r\n".encode()


def answer(s: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    top, _, body = data.partition(b"\r\n\r\n")
    return int(top.split(b" ")[1]), json.loads(body)


def send(server: GuardedServer, raw: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
    s.sendall(raw)
    return s


def accepted_nonce(server: GuardedServer) -> bytes:
    """A hello v11 really sent (its nonce is now seen)."""
    nonce, body = secrets.token_bytes(16), b"{}"
    status, _ = answer(send(server, head(headers("v11", body=body, nonce=nonce), len(body)) + body))
    assert status in (200, 400), status  # authenticated: whatever the hello's body, the nonce is recorded
    return nonce


def without_to(h: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in h.items() if k != H_TO}


STRANGERS = {
    "addressed_to_another_node": (lambda srv: headers("v11", to="county"), "不是本节点"),
    "node_not_enrolled": (lambda srv: {**headers("v11"), "X-Sanji-Node": "v99"}, "未在本县注册"),
    "revoked_node": (lambda srv: headers("v12"), "已被撤销"),
    "node_of_another_township": (lambda srv: headers("v21"), "不在本节点"),
    "seen_nonce": (lambda srv: headers("v11", nonce=accepted_nonce(srv)), "重放"),
    "v1_request_without_recipient": (lambda srv: without_to(headers("v11")), "v1"),
}


@pytest.mark.parametrize("make, phrase", STRANGERS.values(), ids=STRANGERS.keys())
def test_a_stranger_is_refused_before_one_body_byte(township: GuardedServer, make: Any, phrase: str) -> None:
    with http_log() as lines:
        s = send(township, head(make(township), BIG))  # headers only: 64 MiB declared, none sent
        status, body = answer(s)
    assert status == 403 and body["code"] == "not_allowed" and phrase in body["message"] and body["hint"]
    assert not any(c.body_in_progress() for c in list(township.active_channels.values()))
    assert any("before its body: not_allowed" in line for line in lines)  # the refusal is logged


def test_control_an_enrolled_node_with_a_forged_signature_is_read_then_refused(
    township: GuardedServer,
) -> None:
    """What the headers cannot show: the signature covers the body. The body is read into a bounded buffer."""
    h = {**headers("v11"), "X-Sanji-Signature": secrets.token_hex(64)}
    s = send(township, head(h, BIG) + secrets.token_bytes(256 * 1024))
    wait_for(lambda: any(c.body_in_progress() for c in list(township.active_channels.values())), "reading", timeout=5)
    [held] = [c for c in list(township.active_channels.values()) if c.body_in_progress()]
    assert len(held.request.body_rcv.buf.strbuf) <= LIMITS.inbuf_bytes  # in memory; the rest spools to a file
    s.close()
    body = b"{}"
    forged = {**headers("v11", body=body), "X-Sanji-Signature": secrets.token_hex(64)}
    with http_log() as lines:
        status, err = answer(send(township, head(forged, len(body)) + body))
    assert status == 403 and "签名验证不通过" in err["message"]
    assert any(f"refused POST {HELLO} from v11: not_allowed" in line for line in lines)
