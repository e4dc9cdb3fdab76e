"""The parent's sync routes through Flask's test client: their error answers, and the same answers as the
simulated parent gives in process (both run `sync_protocol.routes`).

Every refusal is the JSON error `{"code", "message", "hint"}` with the error's status; the child reads it
back as the same class (`transport.error_from_answer`).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from county_server.app import create_app as county_app
from sanji_node.child import ChildNode
from sanji_node.parent import parent_app
from sync_protocol import answers, compression, errors, routes, session
from sync_protocol.auth import sign_request
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.limits import DEFAULT_LIMITS
from sync_protocol.transport import ENROLL_PATH, HEALTH_PATH, HELLO_PATH, PULL_PATH, PUSH_PATH, error_from_answer

from .network import seeded_key
from .simparent import SimParent, load_copy, make_template

NOW = 1_790_000_000_000


def clock() -> int:
    return NOW


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("routes"))


@pytest.fixture
def t1(tmp_path: Path, template: Path) -> ChildNode:
    return load_copy(template, "t1", tmp_path / "t1")


def app_of(node: ChildNode) -> Flask:
    cfg = node.config
    return parent_app(cfg.node_id, node_id=cfg.node_id, role=cfg.role, open_store=node.open_store, key=node.key,
                      clock_ms=clock)  # fmt: skip


def signed(
    path: str, body: bytes, *, key: SigningKey | None = None, node: str = "v11", to: str = "t1", now: int = NOW
) -> dict[str, str]:
    return sign_request(key or seeded_key(node), county="430321", node=node, to=to, method="POST", path=path,
                        body=body, now_ms=now, nonce=os.urandom(16))  # fmt: skip


def hello_body() -> bytes:
    return session.Hello(b"\x00" * 32).encode()


def post(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    got = app.test_client().post(path, data=body, headers=headers)
    assert got.is_json and "Traceback" not in got.get_data(as_text=True)
    return got.status_code, got.get_json(), got.headers


def refused(app: Flask, path: str, body: bytes, headers: dict[str, str], status: int, code: str, phrase: str) -> None:
    got_status, data, _ = post(app, path, body, headers)
    assert (got_status, data["code"]) == (status, code) and phrase in data["message"], data
    assert type(error_from_answer(data, "")).code == code  # the child reads it back as the same class


def test_health_says_who_answers(t1: ChildNode) -> None:
    got = app_of(t1).test_client().get(HEALTH_PATH)
    assert got.status_code == 200
    assert got.get_json() == {"county": "430321", "node": "t1", "role": "township", "root": "county", "version": 1}


@pytest.mark.parametrize("path", [HELLO_PATH, PUSH_PATH, PULL_PATH])
def test_an_unsigned_request_is_refused_on_every_sync_route(t1: ChildNode, path: str) -> None:
    refused(app_of(t1), path, hello_body(), {}, 403, "not_allowed", "请求签名不正确")


@pytest.mark.parametrize(
    ("who", "phrase"),
    [
        ({"node": "v21"}, "not below t1"),  # enrolled, but under another township
        ({"key": seeded_key("v99"), "node": "v99"}, "未在本县注册"),
        ({"key": seeded_key("v12")}, "签名验证不通过"),  # v11's name, another key
        ({"to": "county"}, "不是本节点 t1"),
        ({"now": NOW - 10 * 60_000}, "相差 600 秒"),
    ],
)
def test_hello_refuses_who_may_not_ask(t1: ChildNode, who: dict[str, Any], phrase: str) -> None:
    body = hello_body()
    refused(app_of(t1), HELLO_PATH, body, signed(HELLO_PATH, body, **who), 403, "not_allowed", phrase)


@pytest.mark.parametrize(
    ("path", "body", "phrase"),
    [
        (HELLO_PATH, b"not json", ""),
        (HELLO_PATH, b'{"digest":"00","v":1}', "hello digest"),
        (HELLO_PATH, b'{"digest":"' + b"00" * 32 + b'","v":2}', "v=1"),
        (PULL_PATH, session.PullRequest({}, 1024).encode().replace(b"1024", b"1023"), "max_bytes"),
        (PULL_PATH, b'{"v":1}', "max_bytes, vector"),
    ],
)
def test_malformed_session_messages_are_a_400(t1: ChildNode, path: str, body: bytes, phrase: str) -> None:
    refused(app_of(t1), path, body, signed(path, body), 400, "protocol_error", phrase)


def test_a_replayed_request_is_refused(t1: ChildNode) -> None:
    app, body = app_of(t1), hello_body()
    headers = signed(HELLO_PATH, body)
    assert post(app, HELLO_PATH, body, headers)[0] == 200
    refused(app, HELLO_PATH, body, headers, 403, "not_allowed", "重放")


def page_of(node: ChildNode, feed: str) -> bytes:
    with node.open_store() as s:
        return encode_page([s.read_batch(r) for p in s.plan({}, lambda f: f == feed) for r in p])


def push(app: Flask, body: bytes, *, compressed: bool = True, **who: Any) -> tuple[int, dict[str, Any], Any]:
    headers = signed(PUSH_PATH, body, **who)
    if compressed:
        headers[compression.HEADER] = compression.ENCODING
    return post(app, PUSH_PATH, body, headers)


def test_push_refuses_a_feed_the_caller_may_not_push_and_stores_nothing(tmp_path: Path, template: Path) -> None:
    t1, v21 = load_copy(template, "t1", tmp_path / "t1"), load_copy(template, "v21", tmp_path / "v21")
    with v21.open_store() as s:
        s.append(v21.key, "v21/up", [Record("test.note", "n", {"i": 1}, 1)])
    status, data, _ = push(app_of(t1), compression.compress(page_of(v21, "v21/up")))  # v11 pushes v21's feed
    assert (status, data["code"]) == (403, "not_allowed") and "may not push feed v21/up" in data["message"]
    with t1.open_store() as s:
        assert "v21/up" not in s.vector()


@pytest.mark.parametrize(
    ("body", "compressed", "phrase"),
    [
        (b"\x78\x9c garbage", True, "compressed body is damaged"),
        ("bomb", True, "expands to more than 65536 bytes"),  # zeros, one byte more than a page may hold
        (b"\x01\x02\x03", False, ""),  # not a page
    ],
)
def test_push_refuses_a_damaged_or_oversize_page(t1: ChildNode, body: Any, compressed: bool, phrase: str) -> None:
    app = app_of(t1)
    app.extensions["sanji_sync"].limits = replace(DEFAULT_LIMITS, max_page_bytes=1 << 16)
    if body == "bomb":
        body = zlib.compress(b"\x00" * ((1 << 16) + 1))
    status, data, _ = push(app, body, compressed=compressed)
    assert (status, data["code"]) == (400, "protocol_error") and phrase in data["message"]


def test_a_body_over_the_bound_is_refused_before_it_is_read(t1: ChildNode) -> None:
    app = app_of(t1)
    app.extensions["sanji_sync"].max_body_bytes = 1000
    body = b"{" + b" " * 2000 + b"}"
    refused(app, HELLO_PATH, body, signed(HELLO_PATH, body), 400, "protocol_error", "larger than 1000 bytes")


def test_pull_answers_a_signed_compressed_page(t1: ChildNode) -> None:
    with t1.open_store() as s:
        s.append(t1.key, "t1/*", [Record("test.note", "notice", {"n": 1}, 5)])
    body = session.PullRequest({}, 1 << 20).encode()
    headers = signed(PULL_PATH, body)
    got = app_of(t1).test_client().post(PULL_PATH, data=body, headers=headers)
    assert (
        got.status_code == 200 and got.headers[compression.HEADER] == "deflate" and got.headers["X-Sanji-More"] == "0"
    )
    answers.verify_answer(got.headers, parent_key=t1.key.public, county="430321", parent="t1", to="v11",
                          nonce=headers["X-Sanji-Nonce"], path=PULL_PATH, body=got.get_data())  # fmt: skip
    assert len(compression.decompress(got.get_data(), 1 << 20)) > 0


def test_enroll_at_a_node_that_does_not_enrol(t1: ChildNode) -> None:
    refused(app_of(t1), ENROLL_PATH, b"{}", {}, 403, "not_allowed", "does not enrol")


@pytest.mark.parametrize(
    ("body", "phrase"),
    [(b"{}", "exactly enrol, since and v=1"), (b"\xff", ""), (b'{"enrol":{},"since":-1,"v":1}', "since")],
)
def test_enroll_at_the_county_refuses_a_malformed_request(
    tmp_path: Path, template: Path, body: bytes, phrase: str
) -> None:
    load_copy(template, "county", tmp_path / "county")
    refused(county_app(tmp_path / "county", clock_ms=clock), ENROLL_PATH, body, {}, 400, "protocol_error", phrase)


def test_wrong_routes_and_methods_are_json(t1: ChildNode) -> None:
    client = app_of(t1).test_client()
    assert (
        client.get(HELLO_PATH).status_code == 405 and client.get(HELLO_PATH).get_json()["code"] == "method_not_allowed"
    )
    assert client.post("/api/v1/sync/nothing").get_json()["code"] == "not_found"


@pytest.mark.parametrize("path", [HELLO_PATH, PULL_PATH, PUSH_PATH])
def test_the_simulated_parent_answers_byte_for_byte_as_the_flask_route(
    tmp_path: Path, template: Path, path: str
) -> None:
    """The same signed request to two copies of t1, one through Flask, one through `SimParent`: the same status,
    body, protocol headers and answer signature (Ed25519 is deterministic)."""
    over_http, in_process = (load_copy(template, "t1", tmp_path / name) for name in ("http", "sim"))
    v11 = load_copy(template, "v11", tmp_path / "v11")
    with v11.open_store() as s:
        s.append(v11.key, "v11/up", [Record("test.note", f"n{i}", {"i": i}, i) for i in (1, 2)])
    for node in (over_http, in_process):
        with node.open_store() as s:
            s.append(node.key, "t1/*", [Record("test.note", "notice", {"n": 1}, 5)])
    body = {
        HELLO_PATH: hello_body(),
        PULL_PATH: session.PullRequest({}, 1 << 20).encode(),
        PUSH_PATH: compression.compress(page_of(v11, "v11/up")),
    }[path]
    headers = signed(path, body) | ({compression.HEADER: compression.ENCODING} if path == PUSH_PATH else {})
    got = app_of(over_http).test_client().post(path, data=body, headers=headers)
    sim = SimParent.of(in_process, clock_ms=clock).exchange(routes.Request("POST", path, headers, body))
    assert (got.status_code, got.get_data()) == (sim.status, sim.body) and got.status_code == 200
    for h in (answers.H_ANSWER, answers.H_MORE, answers.H_ENCODING):
        assert got.headers.get(h) == sim.headers.get(h)
    assert got.mimetype == sim.mimetype


def test_the_simulated_parent_refuses_as_the_flask_route(tmp_path: Path, template: Path) -> None:
    over_http, in_process = (load_copy(template, "t1", tmp_path / name) for name in ("http", "sim"))
    body = hello_body()
    headers = signed(HELLO_PATH, body, node="v21")
    got = app_of(over_http).test_client().post(HELLO_PATH, data=body, headers=headers)
    sim = SimParent.of(in_process, clock_ms=clock).exchange(routes.Request("POST", HELLO_PATH, headers, body))
    assert (
        (got.status_code, got.get_json())
        == (sim.status, json.loads(sim.body))
        == (
            403,
            errors.AuthorizationError(
                "节点 v21 不在本节点 t1 之下 (node v21 is not below t1)", hint="请与自己的上级同步 (sync with your own parent)"
            ).to_dict(),
        )
    )
