"""Signed answers and replays (issue 12, points 2 and 3), in process.

The parent is the real sync API (`sanji_node.parent.parent_app`) over a node
database in tmp_path; the child is a real `ChildNode` whose `requests` session
reaches the app through a WSGI transport (no socket). A "proxy" on that link
rewrites answers as the issue's reproduction did.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from sanji_node import state
from sanji_node.child import ChildNode, recover_before_writing
from sanji_node.parent import parent_app
from sync_protocol import answers, canonical, compression, session
from sync_protocol.auth import H_NONCE, H_TIME, H_TO, NonceCache, parse_time, sign_request, verify_request
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record
from sync_protocol.errors import AnswerVerificationError, AuthorizationError, ProtocolError, TransportError
from sync_protocol.keys import SigningKey

from .network import Network, seeded_key
from .simparent import node_dir

NOW = 1_790_000_000_000
HELLO = "/api/v1/sync/hello"

Tamper = Callable[[requests.PreparedRequest, requests.Response], requests.Response]


class WsgiTransport(BaseAdapter):
    """A `requests` transport that hands each request to the Flask app of its host (`http://t1.test` → apps["t1"])
    through the test client; on the township's link, `tamper` plays a proxy and `cut` drops the link."""

    def __init__(self, apps: dict[str, Any], tamper: Tamper | None = None, cut: Callable[[str], bool] | None = None):
        super().__init__()
        self.apps = apps
        self.tamper, self.cut = tamper, cut

    def send(self, request: requests.PreparedRequest, **_kw: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        on_link = url.hostname == "t1.test"
        if on_link and self.cut is not None and self.cut(request.path_url):
            raise requests.ConnectionError(f"the link is cut before {request.path_url}")
        client = self.apps[(url.hostname or "").removesuffix(".test")].test_client()
        got = client.open(url.path, method=request.method, data=request.body, headers=dict(request.headers))
        resp = requests.Response()
        resp.status_code, resp.reason, resp.url, resp.request = got.status_code, got.status, request.url, request
        resp._content = got.get_data()
        resp.headers = CaseInsensitiveDict(dict(got.headers))
        return self.tamper(request, resp) if on_link and self.tamper is not None else resp

    def close(self) -> None:
        pass


def session_to(
    apps: dict[str, Any], tamper: Tamper | None = None, cut: Callable[[str], bool] | None = None
) -> requests.Session:
    s = requests.Session()
    s.mount("http://", WsgiTransport(apps, tamper, cut))
    return s


@dataclass
class Link:
    net: Network
    township: ChildNode
    village: ChildNode
    county: ChildNode
    apps: dict[str, Any]

    def app(self, node: str) -> Any:
        n = {"t1": self.township, "county": self.county}[node]
        return parent_app(node, node_id=node, role=n.config.role, open_store=n.open_store, key=n.key, clock_ms=clock)

    def sync(self, tamper: Tamper | None = None, cut: Callable[[str], bool] | None = None) -> Any:
        return self.village.sync(http=session_to(self.apps, tamper, cut), attempts=1, clock_ms=clock)


def clock() -> int:
    return NOW


@pytest.fixture
def link(tmp_path: Path, net: Network) -> Iterator[Link]:
    county = node_dir(tmp_path, net, "county", role="county", parent=None)
    township = node_dir(tmp_path, net, "t1", role="township", parent="county")
    village = node_dir(tmp_path, net, "v11", role="village", parent="t1")
    lk = Link(net, township, village, county, {})
    lk.apps = {"t1": lk.app("t1"), "county": lk.app("county")}
    yield lk


def write(node: ChildNode, n: int, start: int = 1) -> None:
    with node.open_store() as s:
        s.append(node.key, f"{node.config.node_id}/up", [Record("test.note", f"n{i}", {"i": i}, i) for i in range(start, start + n)])  # fmt: skip


def local_state(node: ChildNode) -> dict[str, Any]:
    """What an answer could change on the child: its entries, what it records the parent holds, its marks."""
    with node.open_store() as s:
        return {
            "vector": s.vector(),
            "acks": s.conn.execute("SELECT feed, seq, hash FROM parent_acks ORDER BY feed").fetchall(),
            "marks": s.conn.execute("SELECT feed, seq FROM ack_marks ORDER BY feed").fetchall(),
            "receipts": s.conn.execute("SELECT * FROM receipt_times").fetchall(),
        }


def inflated_hello(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
    """The proxy of the reproduction: it claims the parent holds 999999 entries of the village's feed."""
    if req.path_url == HELLO and resp.status_code == 200:
        msg = canonical.decode(resp.content)
        msg["own"] = {"v11/up": [999999, "00" * 32]}
        resp._content = canonical.encode(msg)
    return resp


def unsigned(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
    inflated_hello(req, resp)
    resp.headers.pop(answers.H_ANSWER, None)
    return resp


def signed_by(key: SigningKey, *, nonce: str | None = None, parent: str = "t1") -> Tamper:
    """A proxy that signs its inflated answer with `key` (the nonce of the request, unless `nonce` is given)."""

    def tamper(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
        inflated_hello(req, resp)
        resp.headers[answers.H_ANSWER] = answers.sign_answer(
            key,
            county="430321",
            node=parent,
            to="v11",
            nonce=nonce or str(req.headers[H_NONCE]),
            path=req.path_url,
            body=resp.content,
            headers=resp.headers,
        )
        return resp

    return tamper


def test_an_honest_parent_signs_every_answer_and_the_village_acts_on_it(link: Link) -> None:
    write(link.village, 3)
    report = link.sync()
    assert report.pushed_entries == 3 and report.ok
    status = link.village.status()
    assert status["waiting_up"] == 0 and status["held_by_parent"]["v11/up"] == 3


@pytest.mark.parametrize(
    ("proxy", "phrase"),
    [
        ("inflated, the parent's signature kept", "签名验证不通过"),
        ("unsigned", "没有签名"),
        ("signed by another node's key", "签名验证不通过"),
        ("signed by the parent's key for another request", "签名验证不通过"),
        ("signed as the county's answer", "签名验证不通过"),
    ],
)
def test_a_forged_hello_answer_is_refused_and_changes_nothing(link: Link, proxy: str, phrase: str) -> None:
    """Reproduction (3): a proxy answered hello with own {v11/up: 999999}; the village took it."""
    write(link.village, 2)
    link.sync()
    write(link.village, 1, start=3)  # an offline case: waits to go up
    before, status_before = local_state(link.village), link.village.status()
    assert status_before["waiting_up"] == 1
    tamper = {
        "inflated, the parent's signature kept": inflated_hello,
        "unsigned": unsigned,
        "signed by another node's key": signed_by(seeded_key("v12")),
        "signed by the parent's key for another request": signed_by(link.township.key, nonce="ab" * 16),
        "signed as the county's answer": signed_by(link.county.key, parent="county"),
    }[proxy]
    with pytest.raises(AnswerVerificationError, match=phrase) as e:
        link.sync(tamper)
    assert e.value.message.startswith("上级 t1 的应答") and "本地数据未作任何改动" in e.value.message
    assert e.value.hint and "冒充" in e.value.hint
    assert local_state(link.village) == before
    status = link.village.status()
    assert status["waiting_up"] == 1 and status["held_by_parent"] == status_before["held_by_parent"]
    assert "应答" in status["last_error"]  # the refusal is shown, in Chinese
    # the real township answers again: the offline case goes up
    assert link.sync().pushed_entries == 1
    assert link.village.status()["waiting_up"] == 0


def test_a_forged_answer_sends_the_village_to_its_fallback(link: Link) -> None:
    link.village.config.fallback_url = "http://county.test"
    write(link.village, 2)
    report = link.sync(inflated_hello)  # the township's link answers forged; the county's is genuine
    assert report.pushed_entries == 2
    with link.county.open_store() as c:
        assert c.vector()["v11/up"][0] == 2
    with link.village.open_store() as s:
        assert state.get_state(s)["last_parent"] == "county"
        assert "v11/up" not in state.parent_acks(s)  # the fallback's holdings are not recorded as the parent's


def test_forged_push_and_pull_answers_are_refused(link: Link) -> None:
    write(link.village, 2)

    def on(path: str) -> Tamper:
        def tamper(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
            if req.path_url == path:
                resp.headers.pop(answers.H_ANSWER)
            return resp

        return tamper

    with pytest.raises(AnswerVerificationError, match="没有签名"):
        link.sync(on("/api/v1/sync/push"))
    assert "v11/up" not in dict((f, s) for f, s, _ in local_state(link.village)["acks"])  # the heads not recorded
    with link.township.open_store() as t1:  # something to pull: a township notice
        t1.append(link.township.key, "t1/*", [Record("test.note", "notice", {"n": 1}, 5)])
    with pytest.raises(AnswerVerificationError, match="没有签名"):
        link.sync(on("/api/v1/sync/pull"))
    assert "t1/*" not in local_state(link.village)["vector"]  # the page was not applied

    def more(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
        if req.path_url == "/api/v1/sync/pull":
            resp.headers[answers.H_MORE] = "1"  # the signature covers X-Sanji-More too
        return resp

    with pytest.raises(AnswerVerificationError, match="签名验证不通过"):
        link.sync(more)
    assert link.sync().ok and "t1/*" in local_state(link.village)["vector"]


def test_an_inflated_acknowledgement_stored_before_is_corrected_down(link: Link) -> None:
    """Reproduction (3), the aftermath: the inflated ack stayed, so bundles were empty and a later offline
    case was never counted as waiting. The parent's signed answer now sets it to what the parent holds."""
    write(link.village, 2)
    link.sync()
    with link.village.open_store() as s:  # as the unsigned protocol left it
        state.record_acks(s, {"v11/up": (999999, bytes(32))}, 1)
        s.conn.execute("UPDATE ack_marks SET seq = 999999")
        s.conn.commit()
    write(link.village, 1, start=3)
    assert link.village.status()["waiting_up"] == 0  # the symptom
    assert link.village.export_bundle(link.village.data.path / "before.sjb") == 0
    with pytest.raises(TransportError):
        link.sync(cut=lambda path: path != HELLO)  # the hello's answer, then the link drops
    with link.village.open_store() as s:
        assert state.parent_acks(s)["v11/up"] == 2
    status = link.village.status()
    assert status["waiting_up"] == 1 and status["held_by_parent"]["v11/up"] == 2
    assert link.village.export_bundle(link.village.data.path / "after.sjb") > 0


def test_a_parent_that_lost_a_feed_is_recorded_as_holding_none(link: Link) -> None:
    write(link.village, 2)
    link.sync()
    assert link.village.status()["held_by_parent"]["v11/up"] == 2
    fresh = node_dir(link.village.data.path.parent / "again", link.net, "t1", role="township", parent="county")
    link.apps["t1"] = parent_app(
        "t1", node_id="t1", role="township", open_store=fresh.open_store, key=fresh.key, clock_ms=clock
    )
    with pytest.raises(TransportError):  # a township restored empty says, signed, it holds nothing of v11/up
        link.sync(cut=lambda path: path != HELLO)
    status = link.village.status()
    assert status["waiting_up"] == 2 and "v11/up" not in status["held_by_parent"]
    assert link.sync().pushed_entries == 2


def signed_hello(link: Link, to: str, nonce: bytes = b"\x07" * 16) -> tuple[bytes, dict[str, str]]:
    with link.village.open_store() as s:
        body = session.Hello.of(s.vector(), lambda f: True, "v11").encode()
    headers = sign_request(link.village.key, county="430321", node="v11", to=to, method="POST", path=HELLO,
                           body=body, now_ms=NOW, nonce=nonce)  # fmt: skip
    return body, headers


def test_a_push_signed_for_the_township_is_refused_at_the_county(link: Link) -> None:
    """Reproduction (4): a push signed for the township was accepted when replayed at the county."""
    write(link.township, 2)
    with link.township.open_store() as s:
        page = encode_page([s.read_batch(r) for p in s.plan({}, lambda f: f == "t1/up") for r in p])
    body = compression.compress(page)
    headers = sign_request(link.township.key, county="430321", node="t1", to="t1", method="POST",
                           path="/api/v1/sync/push", body=body, now_ms=NOW, nonce=os.urandom(16))  # fmt: skip
    headers["X-Sanji-Compression"] = "deflate"
    got = link.apps["county"].test_client().post("/api/v1/sync/push", data=body, headers=headers)
    assert got.status_code == 403
    assert "不是本节点 county" in got.json["message"] and "addressed to t1" in got.json["message"]
    with link.county.open_store() as c:
        assert "t1/up" not in c.vector()
    # the same push, addressed to the county, goes in
    headers = sign_request(link.township.key, county="430321", node="t1", to="county", method="POST",
                           path="/api/v1/sync/push", body=body, now_ms=NOW, nonce=os.urandom(16))  # fmt: skip
    headers["X-Sanji-Compression"] = "deflate"
    assert link.apps["county"].test_client().post("/api/v1/sync/push", data=body, headers=headers).status_code == 200
    with link.county.open_store() as c:
        assert c.vector()["t1/up"][0] == 2


def test_a_hello_replayed_after_the_parent_restarts_is_refused(link: Link) -> None:
    """Reproduction (4): the nonce cache lived only in memory."""
    body, headers = signed_hello(link, "t1")
    assert link.apps["t1"].test_client().post(HELLO, data=body, headers=headers).status_code == 200
    restarted = link.app("t1")  # a new app object over the same database
    again = restarted.test_client().post(HELLO, data=body, headers=headers)
    assert again.status_code == 403 and "重放" in again.json["message"] and "replayed" in again.json["message"]
    with link.township.open_store() as s:
        assert s.conn.execute("SELECT COUNT(*) FROM request_nonces").fetchone()[0] == 1


def test_stored_nonces_are_pruned_after_two_windows(link: Link) -> None:
    from sync_protocol.nonce_store import StoredNonces

    with link.township.open_store() as s:
        nonces = StoredNonces(s, window_ms=1000)
        nonces.check_and_add("a" * 32, 10_000)
        with pytest.raises(AuthorizationError, match="replayed"):
            nonces.check_and_add("a" * 32, 11_000)
        nonces.check_and_add("b" * 32, 12_000)
        assert len(nonces) == 2
        nonces.check_and_add("c" * 32, 12_001)  # "a" (10_000) is now older than two windows
        assert len(nonces) == 2
        nonces.check_and_add("a" * 32, 12_002)  # and could no longer pass the time check anyway


@pytest.mark.parametrize(
    "bad",
    ["0001790000000000", "+1790000000000", "1790_000_000_000", " 1790000000000", "1790000000000 ", "-0",
     "\u0661\u0667\u0669\u0660", "1" * 17, "", "0x1A"],
)  # fmt: skip
def test_the_time_header_is_strictly_ascii_digits(net: Network, bad: str) -> None:
    """Reproduction (4): X-Sanji-Time values such as 000…, +… and 1796_228… parsed."""
    with pytest.raises(ProtocolError, match="ASCII digits"):
        parse_time(bad)
    headers = sign_request(net.nodes["t1"].key, county="430321", node="t1", to="county", method="POST", path=HELLO,
                           body=b"{}", now_ms=NOW, nonce=b"\x01" * 16)  # fmt: skip
    with pytest.raises(AuthorizationError, match="not signed correctly"):
        verify_request({**headers, H_TIME: bad}, method="POST", path=HELLO, body=b"{}",
                       directory=net.directory(), recipient="county", now_ms=NOW, nonces=NonceCache())  # fmt: skip


def test_time_header_accepts_plain_digits() -> None:
    assert parse_time("0") == 0 and parse_time(str(NOW)) == NOW and parse_time("9" * 16) == int("9" * 16)


def test_a_version_1_request_is_refused_with_an_upgrade_hint(net: Network) -> None:
    headers = sign_request(net.nodes["t1"].key, county="430321", node="t1", to="county", method="POST", path=HELLO,
                           body=b"{}", now_ms=NOW, nonce=b"\x01" * 16)  # fmt: skip
    del headers[H_TO]
    with pytest.raises(AuthorizationError, match="旧版本") as e:
        verify_request(headers, method="POST", path=HELLO, body=b"{}", directory=net.directory(),
                       recipient="county", now_ms=NOW, nonces=NonceCache())  # fmt: skip
    assert e.value.hint and "同时升级" in e.value.hint


def test_the_enrolment_answer_verifies_against_the_county_root(net: Network) -> None:
    root, new = net.county.key, seeded_key("v99")
    answer = {"county": "430321", "node": "v99", "parent": "t1", "parent_key": net.nodes["t1"].key.public.hex,
              "pubkey": new.public.hex, "role": "village", "root_key": root.public.hex}  # fmt: skip
    signed = answers.sign_enrol_answer(root, answer, "ABCDEFGH")
    answers.verify_enrol_answer({**signed, "county_feed": "relayed in part"}, root.public, "ABCDEFGH", new.public.hex)
    refusals = [
        ({**signed, "parent_key": seeded_key("x").public.hex}, "ABCDEFGH", new.public.hex, "没有县级根密钥的有效签名"),
        ({k: v for k, v in signed.items() if k != "sig"}, "ABCDEFGH", new.public.hex, "没有县级根密钥的有效签名"),
        (signed, "ZZZZZZZZ", new.public.hex, "没有县级根密钥的有效签名"),  # the answer to another token
        (answers.sign_enrol_answer(seeded_key("t1"), answer, "ABCDEFGH"), "ABCDEFGH", new.public.hex, "根密钥"),
        (signed, "ABCDEFGH", seeded_key("other").public.hex, "登记的不是本机的公钥"),
    ]
    for bad, token_id, pub, phrase in refusals:
        with pytest.raises(AnswerVerificationError, match=phrase):
            answers.verify_enrol_answer(bad, root.public, token_id, pub)


def test_a_forged_hello_before_a_write_recovers_nothing(link: Link) -> None:
    """Reproduction (3): before writing, the village asked the proxy what the township holds, and 'recovered'."""
    write(link.village, 2)
    link.sync()
    before = local_state(link.village)
    http = session_to(link.apps, inflated_hello)
    assert recover_before_writing(link.village, http=http, clock_ms=clock) == []  # as if offline: the write goes on
    assert local_state(link.village) == before
    assert "签名验证不通过" in link.village.status()["last_error"]
    # the genuine township's answer is acted on: it holds no more than the village, nothing to recover
    assert recover_before_writing(link.village, http=session_to(link.apps), clock_ms=clock) == []
