"""Signed requests, compressed pages and the session messages, without HTTP."""

from __future__ import annotations

import zlib

import pytest

from sync_protocol import compression, session
from sync_protocol.auth import H_SIG, NonceCache, sign_request, verify_request
from sync_protocol.entries import Record
from sync_protocol.errors import AuthorizationError, ProtocolError
from sync_protocol.membership import KIND_REVOKE

from .network import Network

NOW = 1_790_000_000_000


def signed(
    net: Network, node: str, body: bytes = b"{}", now: int = NOW, nonce: bytes = b"\x01" * 16, to: str = "county"
) -> dict[str, str]:
    return sign_request(net.nodes[node].key, county="430321", node=node, to=to, method="POST",
                        path="/api/v1/sync/hello", body=body, now_ms=now, nonce=nonce)  # fmt: skip


def check(
    net: Network,
    headers: dict[str, str],
    *,
    body: bytes = b"{}",
    now: int = NOW,
    nonces: NonceCache | None = None,
    path: str = "/api/v1/sync/hello",
    recipient: str = "county",
) -> str:
    caller = verify_request(headers, method="POST", path=path, body=body, directory=net.county.store.directory(),
                            recipient=recipient, now_ms=now, nonces=nonces or NonceCache())  # fmt: skip
    return caller.node


def test_a_signed_request_names_its_node(net: Network) -> None:
    assert check(net, signed(net, "t1")) == "t1"


@pytest.mark.parametrize(
    ("tamper", "phrase"),
    [
        (lambda h: {**h, "X-Sanji-Node": "t2"}, "does not verify"),
        (lambda h: {k: v for k, v in h.items() if k != H_SIG}, "not signed correctly"),
        (lambda h: {**h, "X-Sanji-Time": str(NOW + 1)}, "does not verify"),
        (lambda h: {**h, "X-Sanji-Node": "stranger"}, "not enrolled"),
    ],
)
def test_tampered_requests_are_refused(net: Network, tamper, phrase: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthorizationError, match=phrase):
        check(net, tamper(signed(net, "t1")))


def test_body_path_and_county_are_bound(net: Network) -> None:
    h = signed(net, "t1", body=b'{"a":1}')
    with pytest.raises(AuthorizationError, match="does not verify"):
        check(net, h, body=b'{"a":2}')
    with pytest.raises(AuthorizationError, match="does not verify"):
        check(net, h, body=b'{"a":1}', path="/api/v1/sync/push")


def test_replays_and_stale_clocks_are_refused(net: Network) -> None:
    nonces = NonceCache(window_ms=300_000)
    h = signed(net, "t1")
    check(net, h, nonces=nonces)
    with pytest.raises(AuthorizationError, match="replayed"):
        check(net, h, nonces=nonces)
    with pytest.raises(AuthorizationError, match="away from this node's clock"):
        check(net, signed(net, "t1", now=NOW - 600_000, nonce=b"\x02" * 16), nonces=nonces)
    # nonces are forgotten once they can no longer be replayed inside the window
    check(net, signed(net, "t1", now=NOW + 2_000_000, nonce=b"\x03" * 16), now=NOW + 2_000_000, nonces=nonces)
    assert len(nonces._seen) == 1


def test_a_revoked_node_is_refused(net: Network) -> None:
    net.county.store.append(
        net.county.key, "county/*", [Record(KIND_REVOKE, "t2", {"last_valid": {}, "node": "t2", "reason": "撤销"}, 9)]
    )
    with pytest.raises(AuthorizationError, match="revoked"):
        check(net, signed(net, "t2"))


def test_compressed_pages_are_bounded() -> None:
    page = b"SJP1" + bytes(4) + "县乡村".encode() * 1000
    assert compression.decompress(compression.compress(page), len(page)) == page
    with pytest.raises(ProtocolError, match="more than 1000 bytes"):
        compression.decompress(zlib.compress(bytes(10_000_000)), 1000)  # a zip bomb
    with pytest.raises(ProtocolError, match="truncated"):
        compression.decompress(compression.compress(page)[:-5], len(page))
    with pytest.raises(ProtocolError, match="damaged"):
        compression.decompress(b"not zlib", 1000)


def test_session_messages_round_trip_and_answer_a_noop(net: Network) -> None:
    t1, county = net.nodes["t1"], net.county
    shared = session.shared("t1", "county", county.store.directory())
    hello = session.Hello.of(t1.store.vector(), shared)
    assert session.Hello.decode(hello.encode()) == hello
    reply = session.answer_hello(hello, county.store.vector(), shared, "t1")
    assert reply.match and reply.vector is None
    assert session.HelloReply.decode(reply.encode()) == reply
    county.append("t1", "decision", "d1", {"决定": "同意"}, hlc=5)
    reply = session.answer_hello(hello, county.store.vector(), shared, "t1")
    assert not reply.match and reply.vector is not None and "county/t1" in reply.vector
    pull = session.PullRequest(t1.store.vector(), 65536)
    assert session.PullRequest.decode(pull.encode()) == pull
    with pytest.raises(ProtocolError, match="max_bytes"):
        session.PullRequest.decode(session.PullRequest({}, 10).encode())
    assert session.must_recover({"t1/up": (3, b"")}, {"t1/up": (5, bytes(32))}) == ["t1/up"]
    assert session.must_recover({"t1/up": (5, b"")}, {"t1/up": (5, bytes(32))}) == []
