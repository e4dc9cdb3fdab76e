"""Hostile input: every attack ends with nothing applied and the receiver unchanged.

Each case builds real SQLite stores under `tmp_path` (tests/network.py), takes
bytes that a real node produced, damages or forges them the way an attacker,
a bad USB stick or a restored laptop would, and delivers them through the same
entry points a sync or a bundle import uses. Each asserts the outcome status,
a phrase of the error that names the problem, and that the receiving store is
exactly as before, except where the design records something on purpose (a
fork is recorded and its feed frozen; entries past a revocation or on a frozen
feed are quarantined): there the entries and the vector are unchanged and the
record is checked.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync_protocol import canonical, routing
from sync_protocol.batches import decode_batch, encode_batch
from sync_protocol.bundle import BundleHeader, BundleWriter, iter_bundle
from sync_protocol.entries import Record, encode_header, entry_hash, genesis_hash
from sync_protocol.errors import AuthorizationError, BundleError, ProtocolError, VerificationError
from sync_protocol.heads import SignedHead, decode_head, sign_head
from sync_protocol.keys import PublicKey, SigningKey
from sync_protocol.limits import Limits
from sync_protocol.membership import KIND_MEMBER, KIND_NAME, KIND_REVOKE, Directory
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store, Trust
from sync_protocol.verify import Status, Verdict

from .network import COUNTY_CODE, UNBOUNDED, Network, Node, build_network, bundle_for, exchange, seeded_key

OTHER_COUNTY = "430322"
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
BUNDLE_NAME = "E:/sanji/v11-to-t1.sjb"

WireItem = tuple[int, str, str, bytes]


# -- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    """The county network on SQLite files, with the county feed (membership) carried to t1, v11 and v12.

    (t2 and its villages are enrolled but get no copy: no case here needs their stores.)
    """
    n = build_network(tmp_path)
    d = n.directory()
    assert all(v.ok for v in exchange(n.nodes["county"], n.nodes["t1"], d))
    for village in ("v11", "v12"):
        assert all(v.ok for v in exchange(n.nodes["t1"], n.nodes[village], d))
    yield n
    n.close()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """The membership directory of the network, for the routing rule (no store is written)."""
    n = build_network(tmp_path_factory.mktemp("routing"))
    yield n.directory()
    n.close()


def snapshot(node: Node) -> dict[str, Any]:
    """Everything a hostile delivery could change in a node's store."""
    s = node.store
    return {
        "vector": s.vector(),
        "entries": s.count("entries"),
        "heads": s.count("heads"),
        "quarantine": s.count("quarantine"),
        "forks": s.count("forks"),
        "frozen": s.frozen_feeds(),
        "rows": s.conn.execute("SELECT feed, seq, hash, body FROM entries ORDER BY feed, seq").fetchall(),
        "applied": list(node.applied),  # what the fold hook (the domain tables) has seen
    }


def assert_refused(verdict: Verdict, status: Status, phrase: str) -> None:
    """One outcome with `status`, nothing accepted, and an error that names the problem."""
    assert [o.status for o in verdict.outcomes] == [status], verdict.outcomes
    assert verdict.accepted == []
    outcome = verdict.outcomes[0]
    assert phrase in outcome.reason, outcome.reason
    if status is Status.QUARANTINED:  # held for review: a record, not an error
        assert outcome.error is None and outcome.entries
    else:
        assert outcome.error is not None and phrase in outcome.error.message


def append(node: Node, feed: str, *bodies: Any, hlc: int = 1000) -> None:
    """One commit (one signed head) per body."""
    for i, body in enumerate(bodies):
        node.store.append(node.key, feed, [Record("case.open", f"c{i}", body, hlc + i)])


def reframe(batch: bytes, *, head: bytes | None = None, feed: str | None = None) -> bytes:
    raw = decode_batch(batch)
    return encode_batch(
        feed or raw.feed, raw.seq, raw.prev, raw.entries, raw.head if head is None else head, limits=UNBOUNDED
    )


def with_signature(batch: bytes, sig: bytes) -> bytes:
    h = decode_head(decode_batch(batch).head)
    return reframe(batch, head=SignedHead(h.county, h.feed, h.seq, h.hash, sig).encode())


def hand_signed(
    key: SigningKey, feed: str, items: list[WireItem], *, start: int = 1, prev: bytes | None = None
) -> bytes:
    """A batch built and signed by hand: correct headers, hash chain and head over whatever bodies are given."""
    first_prev = genesis_hash(COUNTY_CODE, feed) if prev is None else prev
    p, seq = first_prev, start
    for hlc, kind, k, body in items:
        p = entry_hash(encode_header(feed, seq, p, hlc, kind, k), body)
        seq += 1
    head = sign_head(key, COUNTY_CODE, feed, seq - 1, p)
    return encode_batch(feed, start, first_prev, items, head.encode(), limits=UNBOUNDED)


def layout(batch: bytes) -> dict[str, Any]:
    """Byte ranges of the fields of a framed batch (docs/protocol.md §4)."""
    (mlen,) = struct.unpack_from(">I", batch, 4)
    meta = (8, 8 + mlen)
    (n,) = struct.unpack_from(">I", batch, meta[1])
    pos, entries = meta[1] + 4, []
    for _ in range(n):
        hlc = (pos, pos + 8)
        klen = batch[pos + 8]
        kind = (pos + 9, pos + 9 + klen)
        (ylen,) = struct.unpack_from(">H", batch, kind[1])
        key = (kind[1] + 2, kind[1] + 2 + ylen)
        (blen,) = struct.unpack_from(">I", batch, key[1])
        body = (key[1] + 4, key[1] + 4 + blen)
        entries.append({"hlc": hlc, "kind": kind, "key": key, "body": body})
        pos = body[1]
    (slen,) = struct.unpack_from(">I", batch, pos)
    assert pos + 4 + slen == len(batch)
    return {"meta": meta, "entries": entries, "head": (pos + 4, pos + 4 + slen)}


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def first_digit(data: bytes, start: int, end: int) -> int:
    """Index of the first ASCII digit in data[start:end] (flipping bit 0 keeps it a digit, so still hex)."""
    return next(i for i in range(start, end) if 0x30 <= data[i] <= 0x39)


@pytest.fixture
def v11_batch(net: Network) -> bytes:
    """v11's first two cases as one batch ending at a signed head, as v11 would send it."""
    v11 = net.nodes["v11"]
    v11.store.append(
        v11.key,
        "v11/up",
        [
            Record("case.open", "c1", {"item": "高龄津贴申请", "name": "王秀英"}, 1000),
            Record("case.event", "c1", {"event": "补正", "note": "缺户口簿"}, 1001),
        ],
    )
    return v11.store.read_batch(Range("v11/up", 1, 2))


def test_control_untampered_batch_is_accepted(net: Network, v11_batch: bytes) -> None:
    """The batch the attacks below start from is good: unchanged, it is accepted (so each refusal is the attack's)."""
    t1 = net.nodes["t1"]
    verdict = t1.store.receive(v11_batch)
    assert [(o.status, o.first, o.last) for o in verdict.outcomes] == [(Status.ACCEPTED, 1, 2)]
    assert t1.store.vector()["v11/up"][0] == 2
    hand = hand_signed(net.nodes["v12"].key, "v12/up", [(5, "case.open", "c1", b'{"a":1}')])
    assert [o.status for o in t1.store.receive(hand).outcomes] == [Status.ACCEPTED]


# -- 1. bit flips -------------------------------------------------------------------


def _meta_digit(b: bytes, lay: dict[str, Any], field: bytes) -> int:
    start = b.index(field, *lay["meta"]) + len(field)
    return first_digit(b, start, lay["meta"][1])


FLIPS: dict[str, tuple[Any, str]] = {
    # name: (batch, layout -> (index, mask), phrase the error must contain)
    "body_first_entry": (lambda b, lay: (lay["entries"][0]["body"][0] + 9, 0x01), "does not match the entries' hash"),
    "body_last_entry": (lambda b, lay: (lay["entries"][1]["body"][1] - 3, 0x10), "does not match the entries' hash"),
    "hlc_low_bit": (lambda b, lay: (lay["entries"][0]["hlc"][1] - 1, 0x01), "does not match the entries' hash"),
    "hlc_high_bit": (lambda b, lay: (lay["entries"][1]["hlc"][0], 0x80), "is not an integer from 0 to 2^53-1"),
    "kind_letter": (lambda b, lay: (lay["entries"][0]["kind"][0], 0x01), "does not match the entries' hash"),
    "kind_upper_case": (lambda b, lay: (lay["entries"][1]["kind"][0], 0x20), "entry kind 'Case.event' is not valid"),
    "key_byte": (lambda b, lay: (lay["entries"][1]["key"][1] - 1, 0x01), "does not match the entries' hash"),
    "meta_prev": (lambda b, lay: (_meta_digit(b, lay, b'"prev":"'), 0x01), "does not match the entries' hash"),
    "meta_seq": (lambda b, lay: (_meta_digit(b, lay, b'"seq":'), 0x02), "does not match the entries' hash"),
    "head_hash": (lambda b, lay: (first_digit(b, b.index(b'"hash":"', *lay["head"]), lay["head"][1]), 0x01), "does not match the entries' hash"),
    "head_sig": (lambda b, lay: (first_digit(b, b.index(b'"sig":"', *lay["head"]), lay["head"][1]), 0x01), "signature does not verify"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_bit_flip_in_framed_batch_is_rejected(net: Network, v11_batch: bytes, name: str) -> None:
    locate, phrase = FLIPS[name]
    index, mask = locate(v11_batch, layout(v11_batch))
    bad = flip(v11_batch, index, mask)
    assert bad != v11_batch and len(bad) == len(v11_batch)
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    assert_refused(t1.store.receive(bad), Status.REJECTED, phrase)
    assert snapshot(t1) == before
    assert "v11/up" not in t1.store.vector()


# -- 2. signatures ----------------------------------------------------------------------


def _forged(batch: bytes) -> bytes:
    h = decode_head(decode_batch(batch).head)
    return sign_head(seeded_key("v12"), h.county, h.feed, h.seq, h.hash).sig  # a real signature, wrong key


def _forged_by_root(batch: bytes) -> bytes:
    h = decode_head(decode_batch(batch).head)
    return sign_head(seeded_key("county"), h.county, h.feed, h.seq, h.hash).sig  # even the root may not sign for v11


def _malleated(batch: bytes) -> bytes:
    sig = decode_head(decode_batch(batch).head).sig
    s = int.from_bytes(sig[32:], "little")
    assert s < L and s + L < 2**256
    return sig[:32] + (s + L).to_bytes(32, "little")  # the same signature in the group, another encoding


SIGNATURES: dict[str, tuple[Any, str]] = {
    "forged_by_other_village": (_forged, "signature does not verify under the author's key"),
    "forged_by_county_root": (_forged_by_root, "signature does not verify under the author's key"),
    "malleated_s_plus_l": (_malleated, "signature is malleated"),
    "all_zero": (lambda b: bytes(64), "signature does not verify under the author's key"),
    "truncated_63_bytes": (lambda b: decode_head(decode_batch(b).head).sig[:63], "signed head signature is malformed"),
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_bad_signature_is_rejected(net: Network, v11_batch: bytes, name: str) -> None:
    make_sig, phrase = SIGNATURES[name]
    sig = make_sig(v11_batch)
    assert sig != decode_head(decode_batch(v11_batch).head).sig
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    assert_refused(t1.store.receive(with_signature(v11_batch, sig)), Status.REJECTED, phrase)
    assert snapshot(t1) == before


# -- 3. weak keys at enrolment ------------------------------------------------------------


def _recover_x(y: int, sign: int) -> int:
    d = -121665 * pow(121666, P - 2, P) % P
    x2 = (y * y - 1) * pow(d * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - x2) % P == 0
    return P - x if x & 1 != sign else x


def _decode(raw: bytes) -> tuple[int, int]:
    n = int.from_bytes(raw, "little")
    y = n & ((1 << 255) - 1)
    return _recover_x(y, n >> 255), y


def _encode(pt: tuple[int, int]) -> bytes:
    x, y = pt
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine twisted Edwards addition on edwards25519 (a = -1), written here independently of sync_protocol.curve."""
    d = -121665 * pow(121666, P - 2, P) % P
    (x1, y1), (x2, y2) = a, b
    t = d * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


ORDER8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def torsioned_key() -> bytes:
    """A real public key plus a point of order 8: on the curve and canonical, but not of prime order."""
    a, t = _decode(seeded_key("v13").public.raw), _decode(ORDER8)
    at = _add(a, t)

    def times8(p: tuple[int, int]) -> tuple[int, int]:
        for _ in range(3):
            p = _add(p, p)
        return p

    assert at != a and times8(at) == times8(a)  # the cofactor kills exactly the torsion component
    return _encode(at)


WEAK_KEYS: dict[str, tuple[bytes, str]] = {
    "identity": (bytes([1]) + bytes(31), "the identity point"),
    "all_zero_order_4": (bytes(32), "a small-order point"),
    "order_2": (bytes([0xEC]) + b"\xff" * 30 + bytes([0x7F]), "a small-order point"),
    "order_8": (ORDER8, "a small-order point"),
    "non_canonical_y_is_p": (P.to_bytes(32, "little"), "non-canonical encoding (y ≥ p)"),
    "non_canonical_y_is_p_plus_1": ((P + 1).to_bytes(32, "little"), "non-canonical encoding (y ≥ p)"),
    "non_canonical_negative_zero_x": (bytes([1]) + bytes(30) + bytes([0x80]), "non-canonical encoding (x = 0"),
    "torsion_component": (torsioned_key(), "a point with a small-order (torsion) component"),
}


def member_body(pubkey_hex: str) -> dict[str, Any]:
    return {"division": f"{COUNTY_CODE}101203", "node": "v13", "parent": "t1", "pubkey": pubkey_hex, "role": "village"}


@pytest.mark.parametrize("name", sorted(WEAK_KEYS))
def test_weak_key_is_refused_by_public_key(name: str) -> None:
    raw, phrase = WEAK_KEYS[name]
    Ed25519PublicKey.from_public_bytes(raw)  # `cryptography` (OpenSSL) loads it: the check must be ours
    with pytest.raises(VerificationError) as info:
        PublicKey.from_hex(raw.hex())
    assert "weak or invalid Ed25519 public key" in info.value.message
    assert phrase in info.value.message


@pytest.mark.parametrize("name", sorted(WEAK_KEYS))
def test_weak_key_membership_entry_is_refused(net: Network, name: str) -> None:
    raw, phrase = WEAK_KEYS[name]
    county, t1 = net.county, net.nodes["t1"]

    # appended at the county: the store refuses to commit it
    before = snapshot(county)
    with pytest.raises(VerificationError) as info:
        county.store.append(county.key, "county/*", [Record(KIND_MEMBER, "v13", member_body(raw.hex()), 5000)])
    assert phrase in info.value.message
    assert snapshot(county) == before
    assert "v13" not in county.store.directory()

    # signed by the root all the same and delivered: the receiver refuses the whole batch
    seq, last = county.store.vector()["county/*"]
    body = canonical.encode(member_body(raw.hex()))
    batch = hand_signed(county.key, "county/*", [(5000, KIND_MEMBER, "v13", body)], start=seq + 1, prev=last)
    before = snapshot(t1)
    assert_refused(t1.store.receive(batch), Status.REJECTED, phrase)
    assert snapshot(t1) == before
    assert "v13" not in t1.store.directory()


def test_control_strong_key_membership_is_enrolled(net: Network) -> None:
    """The same two paths with a proper key: enrolled at the county and downstream alike."""
    county, t1 = net.county, net.nodes["t1"]
    body = member_body(seeded_key("v13").public.hex)
    seq, last = county.store.vector()["county/*"]
    batch = hand_signed(
        county.key, "county/*", [(5000, KIND_MEMBER, "v13", canonical.encode(body))], start=seq + 1, prev=last
    )
    assert [o.status for o in t1.store.receive(batch).outcomes] == [Status.ACCEPTED]
    assert "v13" in t1.store.directory()
    county.store.append(county.key, "county/*", [Record(KIND_MEMBER, "v13", body, 5000)])
    assert "v13" in county.store.directory()
    assert county.store.vector()["county/*"] == t1.store.vector()["county/*"]  # the very same entry


# -- 3b. display names: node.member's name and node.name ------------------------------------


def named_member(**extra: Any) -> dict[str, Any]:
    return {**member_body(seeded_key("v13").public.hex), **extra}


BAD_NAMES: dict[str, tuple[str, Any, str]] = {
    # name: (kind, body, a phrase the error names)
    "member_name_too_long": (KIND_MEMBER, named_member(name="梅" * 41), "has 41 characters, not 1–40"),
    "member_name_empty": (KIND_MEMBER, named_member(name=""), "has 0 characters"),
    "member_name_not_text": (KIND_MEMBER, named_member(name=123), "is not text"),
    "member_name_control": (KIND_MEMBER, named_member(name="梅花\n村"), "control character (U+000A)"),
    "member_name_bidi": (KIND_MEMBER, named_member(name="梅花\u202e村"), "control character (U+202E)"),
    "member_extra_key": (KIND_MEMBER, named_member(name="梅花村", alias="mh"), "must have exactly"),
    "rename_too_long": (KIND_NAME, {"name": "城" * 41, "node": "v11"}, "has 41 characters"),
    "rename_not_text": (KIND_NAME, {"name": ["梅花村"], "node": "v11"}, "is not text"),
    "rename_extra_key": (KIND_NAME, {"name": "梅花村", "node": "v11", "reason": "并村"}, "must have exactly"),
    "rename_no_name": (KIND_NAME, {"node": "v11"}, "must have exactly"),
    "rename_unknown_node": (KIND_NAME, {"name": "梅花村", "node": "v99"}, "not an enrolled node"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_name_in_membership_is_refused(net: Network, case: str) -> None:
    kind, body, phrase = BAD_NAMES[case]
    county, t1 = net.county, net.nodes["t1"]

    # appended at the county: the store refuses to commit it
    before = snapshot(county)
    with pytest.raises(ProtocolError) as info:
        county.store.append(county.key, "county/*", [Record(kind, body["node"], body, 5000)])
    assert phrase in info.value.message
    assert snapshot(county) == before
    assert county.store.directory().name_of("v11") == "v11"

    # signed by the root all the same and delivered: the receiver refuses the whole batch
    seq, last = county.store.vector()["county/*"]
    batch = hand_signed(
        county.key, "county/*", [(5000, kind, body["node"], canonical.encode(body))], start=seq + 1, prev=last
    )
    before = snapshot(t1)
    assert_refused(t1.store.receive(batch), Status.REJECTED, phrase)
    assert snapshot(t1) == before
    assert "v13" not in t1.store.directory()


@pytest.mark.parametrize("feed", ["t1/*", "t1/v11"])
def test_node_name_written_by_a_township_is_refused(net: Network, feed: str) -> None:
    """Only the county's public feed carries node.*: a township naming its village is refused everywhere."""
    t1, v11 = net.nodes["t1"], net.nodes["v11"]
    body = {"name": "梅花村", "node": "v11"}

    before = snapshot(t1)
    with pytest.raises(AuthorizationError) as info:
        t1.store.append(t1.key, feed, [Record(KIND_NAME, "v11", body, 5000)])
    assert "node.name is written only in the county's public feed county/*" in info.value.message
    assert snapshot(t1) == before

    # signed by t1 and delivered to its village: refused as a whole, the name unchanged
    batch = hand_signed(t1.key, feed, [(5000, KIND_NAME, "v11", canonical.encode(body))])
    before = snapshot(v11)
    assert_refused(v11.store.receive(batch), Status.REJECTED, f"not in {feed}")
    assert snapshot(v11) == before
    assert v11.store.directory().name_of("v11") == "v11"


def test_node_name_in_another_county_feed_is_refused(net: Network) -> None:
    """The county too writes node.* only in county/*, not in a feed addressed to one node."""
    county, t1 = net.county, net.nodes["t1"]
    body = {"name": "城关镇便民服务中心", "node": "t1"}
    with pytest.raises(AuthorizationError, match="only in the county's public feed"):
        county.store.append(county.key, "county/t1", [Record(KIND_NAME, "t1", body, 5000)])
    batch = hand_signed(county.key, "county/t1", [(5000, KIND_NAME, "t1", canonical.encode(body))])
    before = snapshot(t1)
    assert_refused(t1.store.receive(batch), Status.REJECTED, "not in county/t1")
    assert snapshot(t1) == before


def test_control_names_are_folded_at_the_county_and_downstream(net: Network) -> None:
    """A named enrolment and a rename by the county, sent down: the same names everywhere."""
    county, t1, v11 = net.county, net.nodes["t1"], net.nodes["v11"]
    county.store.append(
        county.key,
        "county/*",
        [
            Record(KIND_MEMBER, "v13", named_member(name="石门村"), 5000),
            Record(KIND_NAME, "v11", {"name": "梅花村", "node": "v11"}, 5001),
            Record(KIND_NAME, "v11", {"name": "梅花村便民服务站", "node": "v11"}, 5002),
        ],
    )
    assert all(v.ok for v in exchange(county, t1, net.directory()))
    assert all(v.ok for v in exchange(t1, v11, net.directory()))
    for node in (county, t1, v11):
        d = node.store.directory()
        assert (d.name_of("v13"), d.name_of("v11"), d.name_of("t1")) == ("石门村", "梅花村便民服务站", "t1")
    assert county.store.vector()["county/*"] == v11.store.vector()["county/*"]


# -- 4. wrong county ------------------------------------------------------------------


def other_county(tmp_path: Path) -> tuple[Store, Store]:
    """County 430322 with the very same keys and node ids: its county store and a v11 store."""
    trust = Trust(OTHER_COUNTY, "county", seeded_key("county").public.hex)
    county = Store(tmp_path / "other" / "county.sqlite")
    county.set_trust(trust)
    members = [
        ("county", "county", None, OTHER_COUNTY + "000000"),
        ("t1", "township", "county", OTHER_COUNTY + "101000"),
        ("v11", "village", "t1", OTHER_COUNTY + "101201"),
    ]
    county.append(
        seeded_key("county"),
        "county/*",
        [
            Record(
                KIND_MEMBER,
                node,
                {"division": div, "node": node, "parent": parent, "pubkey": seeded_key(node).public.hex, "role": role},
                1,
            )
            for node, role, parent, div in members
        ],
    )
    v11 = Store(tmp_path / "other" / "v11.sqlite")
    v11.set_trust(trust)
    assert v11.receive(county.read_batch(Range("county/*", 1, 3))).ok
    v11.append(seeded_key("v11"), "v11/up", [Record("case.open", "c1", {"name": "王秀英"}, 1000)])
    return county, v11


@pytest.mark.parametrize("feed", ["county/*", "v11/up"])
def test_batch_for_another_county_is_rejected(net: Network, tmp_path: Path, feed: str) -> None:
    """Same keys, same node ids, same feed ids: only the county id in the signed head tells them apart."""
    county, v11 = other_county(tmp_path)
    try:
        src = county if feed == "county/*" else v11
        seq = src.vector()[feed][0]
        batch = src.read_batch(Range(feed, 1, seq))
    finally:
        county.close()
        v11.close()
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    assert_refused(
        t1.store.receive(batch), Status.REJECTED, f"signed for county {OTHER_COUNTY}, this node belongs to county"
    )
    assert snapshot(t1) == before


def test_bundle_for_another_county_is_refused(net: Network, tmp_path: Path) -> None:
    county, v11 = other_county(tmp_path)
    buf = io.BytesIO()
    try:
        v11.export_bundle(
            buf, key=seeded_key("v11"), source="v11", theirs={}, wanted=lambda f: f == "v11/up", created=1
        )
    finally:
        county.close()
        v11.close()
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    with pytest.raises(BundleError) as info:
        t1.store.import_bundle(io.BytesIO(buf.getvalue()), name=BUNDLE_NAME)
    assert BUNDLE_NAME in info.value.message and f"was made in county {OTHER_COUNTY}" in info.value.message
    assert snapshot(t1) == before


# -- 5. a head replayed onto another feed ------------------------------------------------


def test_head_of_one_feed_replayed_onto_another_feed_of_the_same_author(net: Network) -> None:
    """t1's head for t1/* is a valid signature by t1, but not over the entries of t1/up."""
    t1, county = net.nodes["t1"], net.county
    t1.store.append(t1.key, "t1/*", [Record("notice", "n1", {"text": "端午节值班表"}, 1000)])
    t1.store.append(t1.key, "t1/up", [Record("case.open", "c1", {"name": "李桂兰"}, 1001)])
    head_a = t1.store.read_batch(Range("t1/*", 1, 1))
    entries_b = t1.store.read_batch(Range("t1/up", 1, 1))
    replayed = reframe(entries_b, head=decode_batch(head_a).head)
    before = snapshot(county)
    assert_refused(
        county.store.receive(replayed),
        Status.REJECTED,
        "a head signed for feed t1/* was attached to entries of feed t1/up",
    )
    # relabelling the entries as t1/* to match the head breaks the hash chain instead
    relabelled = reframe(entries_b, head=decode_batch(head_a).head, feed="t1/*")
    assert_refused(county.store.receive(relabelled), Status.REJECTED, "does not match the entries' hash chain")
    assert snapshot(county) == before


def test_head_of_one_village_replayed_onto_another_villages_feed(net: Network, v11_batch: bytes) -> None:
    v12, t1 = net.nodes["v12"], net.nodes["t1"]
    append(v12, "v12/up", {"name": "赵德明"}, {"name": "钱小红"})
    replayed = reframe(v12.store.read_batch(Range("v12/up", 1, 2)), head=decode_batch(v11_batch).head)
    before = snapshot(t1)
    assert_refused(
        t1.store.receive(replayed),
        Status.REJECTED,
        "a head signed for feed v11/up was attached to entries of feed v12/up",
    )
    assert snapshot(t1) == before


# -- 6. forks -----------------------------------------------------------------------


def restored_copy(net: Network, tmp_path: Path, node_id: str) -> Store:
    """A second store holding the same node key (a laptop restored from an old backup)."""
    node = net.nodes[node_id]
    store = Store(tmp_path / f"{node_id}-restored.sqlite")
    store.set_trust(node.store.trust)
    seq = net.county.store.vector()["county/*"][0]
    assert store.receive(net.county.store.read_batch(Range("county/*", 1, seq))).ok
    return store


def test_fork_is_recorded_and_freezes_the_feed(net: Network, tmp_path: Path) -> None:
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    restored = restored_copy(net, tmp_path, "v11")
    try:
        append(v11, "v11/up", {"name": "王秀英", "n": 1}, {"name": "王秀英", "n": 2})
        restored.append(v11.key, "v11/up", [Record("case.open", "c0", {"name": "周建国", "n": 1}, 1000)])
        original = v11.store.read_batch(Range("v11/up", 1, 1))
        other = restored.read_batch(Range("v11/up", 1, 1))
    finally:
        restored.close()
    assert [o.status for o in t1.store.receive(original).outcomes] == [Status.ACCEPTED]
    before = snapshot(t1)
    local_hash = t1.store.vector()["v11/up"][1]
    remote_hash = decode_head(decode_batch(other).head).hash

    assert_refused(t1.store.receive(other), Status.FORK, "fork in v11/up at seq 1")
    after = snapshot(t1)
    for unchanged in ("vector", "entries", "heads", "rows", "applied", "quarantine"):
        assert after[unchanged] == before[unchanged], unchanged
    [fork] = t1.store.forks()
    assert (fork["feed"], fork["seq"]) == ("v11/up", 1)
    assert (fork["local_hash"], fork["remote_hash"]) == (local_hash, remote_hash)
    assert local_hash != remote_hash
    assert t1.store.conn.execute("SELECT batch FROM forks").fetchone()[0] == other  # both histories kept
    assert "fork" in t1.store.frozen_feeds()["v11/up"]
    assert t1.store.local_feed("v11/up").frozen  # type: ignore[union-attr]

    # the feed stays frozen: the genuine continuation is held for review, not applied
    before = snapshot(t1)
    verdict = t1.store.receive(v11.store.read_batch(Range("v11/up", 2, 2)))
    assert_refused(verdict, Status.QUARANTINED, "v11/up is frozen after a fork")
    after = snapshot(t1)
    assert after["quarantine"] == before["quarantine"] + 1
    for unchanged in ("vector", "entries", "heads", "rows", "applied", "forks", "frozen"):
        assert after[unchanged] == before[unchanged], unchanged
    [q] = t1.store.quarantined()
    assert (q["feed"], q["first_seq"], q["last_seq"]) == ("v11/up", 2, 2)


def test_fork_found_at_continuation_records_the_diverging_seq_and_both_hashes(net: Network, tmp_path: Path) -> None:
    """The other history arrives as seq 2 only: its prev, not an overlap, shows the fork (fixed in 6fa806c)."""
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    restored = restored_copy(net, tmp_path, "v11")
    try:
        append(v11, "v11/up", {"n": 1})
        restored.append(v11.key, "v11/up", [Record("case.open", "c0", {"n": 99}, 1000)])
        restored.append(v11.key, "v11/up", [Record("case.open", "c1", {"n": 98}, 1001)])
        remote_hashes = {e.seq: e.hash for e in restored.entries("v11/up")}
        continuation = restored.read_batch(Range("v11/up", 2, 2))  # seq 2 only: it continues t1's seq 1
    finally:
        restored.close()
    assert t1.store.receive(v11.store.read_batch(Range("v11/up", 1, 1))).ok
    before = snapshot(t1)
    local_1 = t1.store.vector()["v11/up"][1]

    verdict = t1.store.receive(continuation)
    assert_refused(verdict, Status.FORK, "fork in v11/up at seq 1")
    after = snapshot(t1)
    for unchanged in ("vector", "entries", "heads", "rows", "applied", "quarantine"):
        assert after[unchanged] == before[unchanged], unchanged
    assert "v11/up" in after["frozen"]
    [fork] = t1.store.forks()
    # the histories diverge at seq 1 (t1 holds nothing at seq 2): the record names seq 1 and both seq-1 hashes
    assert (fork["seq"], fork["local_hash"], fork["remote_hash"]) == (1, local_1, remote_hashes[1])


# -- 7. quarantine after a revocation -------------------------------------------------


def test_entries_after_revocation_point_are_quarantined(net: Network) -> None:
    v11, t1, county = net.nodes["v11"], net.nodes["t1"], net.county
    append(v11, "v11/up", {"n": 1}, {"n": 2})
    assert t1.store.receive(v11.store.read_batch(Range("v11/up", 1, 1))).ok
    h1 = t1.store.vector()["v11/up"][1]
    revoke = {"last_valid": {"v11/up": {"hash": h1.hex(), "seq": 1}}, "node": "v11", "reason": "笔记本电脑遗失"}
    county.store.append(county.key, "county/*", [Record(KIND_REVOKE, "v11", revoke, 9000)])
    assert all(v.ok for v in exchange(county, t1, county.store.directory()))
    before = snapshot(t1)

    verdict = t1.store.receive(v11.store.read_batch(Range("v11/up", 2, 2)))
    assert_refused(verdict, Status.QUARANTINED, "author v11 was revoked after v11/up#1")
    after = snapshot(t1)
    assert after["quarantine"] == before["quarantine"] + 1
    for unchanged in ("vector", "entries", "heads", "rows", "applied", "forks", "frozen"):
        assert after[unchanged] == before[unchanged], unchanged
    [q] = t1.store.quarantined()
    assert (q["feed"], q["first_seq"], q["last_seq"]) == ("v11/up", 2, 2) and "笔记本电脑遗失" in q["reason"]


# -- 8. gaps --------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "start", "end"), [(1, 3, 4), (0, 2, 3), (2, 4, 4)])
def test_gap_is_reported_with_the_first_missing_seq(net: Network, held: int, start: int, end: int) -> None:
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    append(v11, "v11/up", *({"n": i} for i in range(1, 5)))  # four commits, a signed head at each
    if held:
        assert t1.store.receive(v11.store.read_batch(Range("v11/up", 1, held))).ok
    before = snapshot(t1)
    verdict = t1.store.receive(v11.store.read_batch(Range("v11/up", start, end)))
    assert_refused(verdict, Status.GAP, f"v11/up starts at {start} but this node holds only up to {held}")
    assert verdict.outcomes[0].want == held + 1
    assert snapshot(t1) == before


# -- 9. non-canonical bodies, signed correctly ------------------------------------------


NON_CANONICAL: dict[str, tuple[bytes, str]] = {
    "space": (b'{"name": "x"}', "not in canonical form"),
    "float": (b'{"fee":1.5}', "is a float (1.5)"),
    "integral_float": (b'{"fee":15.0}', "is a float"),
    "duplicate_key": (b'{"a":1,"a":2}', "duplicate key 'a'"),
    "unsorted_keys": (b'{"b":1,"a":2}', "not in canonical form"),
    "non_nfc": ('{"name":"Jose\u0301"}'.encode(), "not in Unicode NFC form"),
    "escaped_chinese": (b'{"name":"\\u738b"}', "not in canonical form"),
    "big_integer": (b'{"id":9007199254740993}', "outside"),
    "negative_zero": (b'{"n":-0}', "not in canonical form"),
    "trailing_newline": (b'{"a":1}\n', "not in canonical form"),
    "invalid_utf8": (b'{"a":"\xc3"}', "not valid UTF-8"),
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
@pytest.mark.parametrize("position", ["only", "after_good_entry"])
def test_non_canonical_body_is_rejected_only_by_the_canonical_check(net: Network, name: str, position: str) -> None:
    """Headers, hash chain and head are all correct and signed by v11: only the body check can catch it."""
    body, phrase = NON_CANONICAL[name]
    items: list[WireItem] = [(1000, "case.open", "c1", body)]
    if position == "after_good_entry":
        items.insert(0, (999, "case.open", "c0", '{"name":"王秀英"}'.encode()))
    batch = hand_signed(net.nodes["v11"].key, "v11/up", items)
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    verdict = t1.store.receive(batch)
    assert_refused(verdict, Status.REJECTED, phrase)
    assert verdict.outcomes[0].reason.startswith("body of an entry of v11/up")  # reached step 4: hash and sig passed
    assert isinstance(verdict.outcomes[0].error, ProtocolError)
    assert verdict.head is not None and verdict.head.feed == "v11/up"
    assert snapshot(t1) == before


# -- 10. oversize entries ------------------------------------------------------------------


def test_oversize_body_is_rejected_even_when_signed(net: Network) -> None:
    limit = Limits().max_body_bytes
    body = b'{"t":"' + b"x" * (limit - 7) + b'"}'  # canonical, one byte over the limit
    assert len(body) == limit + 1
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    batch = hand_signed(v11.key, "v11/up", [(1000, "case.open", "c1", body)])
    before = snapshot(t1)
    assert_refused(
        t1.store.receive(batch), Status.REJECTED, f"entry body is {limit + 1} bytes, more than the limit of {limit}"
    )
    assert snapshot(t1) == before
    # nor will an author's own store write it
    author_before = snapshot(v11)
    with pytest.raises(ProtocolError, match="more than the limit"):
        v11.store.append(v11.key, "v11/up", [Record("case.open", "c1", {"t": "x" * (limit - 7)}, 1000)])
    assert snapshot(v11) == author_before


def test_control_body_at_the_limit_is_accepted(net: Network) -> None:
    limit = Limits().max_body_bytes
    body = b'{"t":"' + b"x" * (limit - 8) + b'"}'
    assert len(body) == limit
    batch = hand_signed(net.nodes["v11"].key, "v11/up", [(1000, "case.open", "c1", body)])
    assert [o.status for o in net.nodes["t1"].store.receive(batch).outcomes] == [Status.ACCEPTED]


# -- 11. damaged bundles -----------------------------------------------------------------


@pytest.fixture
def bundle(net: Network) -> bytes:
    """A bundle v11 writes for t1 with its two commits."""
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    append(v11, "v11/up", {"name": "王秀英"}, {"name": "孙丽"})
    return bundle_for(v11, t1)


def bundle_layout(data: bytes) -> dict[str, int]:
    (hlen,) = struct.unpack_from(">I", data, 13)
    trailer = data.rindex(b'{"batches":')
    return {"header": 17, "header_end": 17 + hlen, "end_frame": trailer - 5, "trailer": trailer}


def test_control_bundle_imports(net: Network, bundle: bytes) -> None:
    t1 = net.nodes["t1"]
    verdicts = t1.store.import_bundle(io.BytesIO(bundle), name=BUNDLE_NAME)
    assert [o.status for v in verdicts for o in v.outcomes] == [Status.ACCEPTED]
    assert t1.store.vector()["v11/up"][0] == 2


def _cuts(data: bytes) -> dict[str, int]:
    lay = bundle_layout(data)
    return {
        "inside_magic": 5,
        "inside_header_length": 15,
        "inside_header": (lay["header"] + lay["header_end"]) // 2,
        "at_first_frame": lay["header_end"],
        "inside_first_frame_length": lay["header_end"] + 3,
        "inside_batch": (lay["header_end"] + lay["end_frame"]) // 2,
        "before_end_frame": lay["end_frame"],
        "inside_end_frame_length": lay["end_frame"] + 2,
        "inside_trailer": (lay["trailer"] + len(data)) // 2,
        "last_byte_missing": len(data) - 1,
    }


CUTS = [
    "inside_magic",
    "inside_header_length",
    "inside_header",
    "at_first_frame",
    "inside_first_frame_length",
    "inside_batch",
    "before_end_frame",
    "inside_end_frame_length",
    "inside_trailer",
    "last_byte_missing",
]


@pytest.mark.parametrize("cut", CUTS)
def test_truncated_bundle_is_refused(net: Network, bundle: bytes, cut: str) -> None:
    t1 = net.nodes["t1"]
    at = _cuts(bundle)[cut]
    assert 0 < at < len(bundle)
    before = snapshot(t1)
    with pytest.raises(BundleError) as info:
        t1.store.import_bundle(io.BytesIO(bundle[:at]), name=BUNDLE_NAME)
    assert BUNDLE_NAME in info.value.message
    assert "cut short" in info.value.message and f"ends after {at} bytes" in info.value.message
    assert snapshot(t1) == before


@pytest.mark.parametrize("cut", ["inside_trailer", "last_byte_missing"])
def test_truncated_bundle_error_is_well_formed_inside_the_trailer(net: Network, bundle: bytes, cut: str) -> None:
    with pytest.raises(BundleError) as info:
        net.nodes["t1"].store.import_bundle(io.BytesIO(bundle[: _cuts(bundle)[cut]]), name=BUNDLE_NAME)
    assert info.value.message.count(BUNDLE_NAME) == 1
    assert info.value.hint is not None and "copy the bundle again" in info.value.hint


def _sig_char(trailer: bytes, chars: bytes) -> int:
    """Index in the trailer of the first signature hex character that is one of `chars`."""
    start = trailer.index(b'"sig":"') + len(b'"sig":"')
    return next(i for i in range(start, start + 128) if trailer[i] in chars)


def _flips(data: bytes) -> dict[str, int]:
    lay = bundle_layout(data)
    trailer = data[lay["trailer"] :]
    return {
        "magic": 0,
        "version": 12,
        "header_length": 16,
        "header_brace": lay["header"],
        "header_created_digit": data.index(b'"created":', lay["header"]) + len(b'"created":'),
        "first_frame_type": lay["header_end"],
        "batch_byte": (lay["header_end"] + lay["end_frame"]) // 2,
        "end_frame_type": lay["end_frame"],
        "trailer_sha256": lay["trailer"] + first_digit(trailer, trailer.index(b'"sha256":"'), len(trailer)),
        "trailer_batches_count": lay["trailer"] + len(b'{"batches":'),
        "trailer_sig_to_non_hex": lay["trailer"] + _sig_char(trailer, b"af"),  # 'a'->'`', 'f'->'g'
    }


FLIPPED = [
    "magic",
    "version",
    "header_length",
    "header_brace",
    "header_created_digit",
    "first_frame_type",
    "batch_byte",
    "end_frame_type",
    "trailer_sha256",
    "trailer_batches_count",
    "trailer_sig_to_non_hex",
]


@pytest.mark.parametrize("where", FLIPPED)
def test_bundle_with_one_flipped_byte_is_refused(net: Network, bundle: bytes, where: str) -> None:
    t1 = net.nodes["t1"]
    bad = flip(bundle, _flips(bundle)[where])
    before = snapshot(t1)
    with pytest.raises(BundleError) as info:
        t1.store.import_bundle(io.BytesIO(bad), name=BUNDLE_NAME)
    assert BUNDLE_NAME in info.value.message
    assert snapshot(t1) == before


def _sig_digit_flipped(bundle: bytes) -> bytes:
    lay = bundle_layout(bundle)
    trailer = bundle[lay["trailer"] :]
    return flip(bundle, lay["trailer"] + _sig_char(trailer, b"0123456789"))  # a digit stays a digit


def test_bundle_with_a_flipped_signature_digit_is_refused(net: Network, bundle: bytes) -> None:
    """Still valid hex, so the file parses; only the signature check catches it."""
    t1 = net.nodes["t1"]
    before = snapshot(t1)
    with pytest.raises(BundleError) as info:
        t1.store.import_bundle(io.BytesIO(_sig_digit_flipped(bundle)), name=BUNDLE_NAME)
    assert "bundle signature by v11 does not verify" in info.value.message
    assert snapshot(t1) == before


def test_bundle_signature_error_names_the_file(net: Network, bundle: bytes) -> None:
    with pytest.raises(BundleError) as info:
        net.nodes["t1"].store.import_bundle(io.BytesIO(_sig_digit_flipped(bundle)), name=BUNDLE_NAME)
    assert BUNDLE_NAME in info.value.message


class _SwappedAfterCheck:
    """A file whose content changes between import_bundle's check pass and its apply pass (a hostile device)."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self._first, self._second = io.BytesIO(first), io.BytesIO(second)
        self._current = self._first

    def read(self, n: int = -1) -> bytes:
        return self._current.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._current = self._second  # the rewind before the apply pass
        return self._current.seek(pos, whence)


def test_bundle_swapped_between_check_and_apply_is_refused(net: Network, bundle: bytes) -> None:
    """import_bundle reads the file twice (prove, then apply): the second read must be the file proven."""
    v12, t1 = net.nodes["v12"], net.nodes["t1"]
    append(v12, "v12/up", {"name": "赵德明"})
    genuine = list(iter_bundle(io.BytesIO(bundle)))
    header = genuine[0]
    assert isinstance(header, BundleHeader)
    # "from v11", carrying v11's batches plus one v11 never sent, signed by a key that is not v11's
    buf = io.BytesIO()
    w = BundleWriter(
        buf, key=v12.key, county=COUNTY_CODE, source="v11", vector=header.vector, created=header.created, target="t1"
    )
    for b in [x for x in genuine if isinstance(x, bytes)] + [v12.store.read_batch(Range("v12/up", 1, 1))]:
        w.add(b)
    w.finish()
    forged = buf.getvalue()
    before = snapshot(t1)
    with pytest.raises(BundleError, match="bundle signature by v11 does not verify"):
        t1.store.import_bundle(io.BytesIO(forged), name=BUNDLE_NAME)  # refused when read on its own
    assert snapshot(t1) == before
    with pytest.raises(BundleError) as info:
        t1.store.import_bundle(_SwappedAfterCheck(bundle, forged), name=BUNDLE_NAME)  # type: ignore[arg-type]
    assert f"{BUNDLE_NAME} changed while it was being imported" in info.value.message
    after = snapshot(t1)
    # the fold hook saw the batches inside the transaction that was rolled back; the database kept nothing
    assert after["applied"][: len(before["applied"])] == before["applied"]
    del after["applied"], before["applied"]
    assert after == before


# -- 12. routing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "receiver", "feed"),
    [
        ("v11", "t1", "v12/up"),  # a village pushing its neighbour's cases to their own township
        ("v11", "county", "v12/up"),
        ("v11", "t2", "v21/up"),
        ("v11", "v12", "v11/up"),  # a village's cases to another village
        ("v21", "t1", "v11/up"),
        ("v11", "t1", "t2/up"),  # a township's upward feed is not for villages
        ("t2", "t1", "t2/up"),  # townships are not linked
    ],
)
def test_may_push_refuses_feeds_outside_the_holding_rule(
    directory: Directory, sender: str, receiver: str, feed: str
) -> None:
    assert not routing.may_push(sender, receiver, feed, directory)


@pytest.mark.parametrize(
    ("sender", "receiver", "feed"),
    [("v11", "t1", "v11/up"), ("t1", "county", "v11/up"), ("county", "t1", "county/*"), ("t1", "v11", "county/*")],
)
def test_control_may_push_allows_the_holding_rule(directory: Directory, sender: str, receiver: str, feed: str) -> None:
    assert routing.may_push(sender, receiver, feed, directory)


def test_a_receiver_refuses_a_feed_the_holding_rule_keeps_from_it(net: Network) -> None:
    """A faulty or hostile sender cannot hand a village its neighbour's cases (personal data)."""
    v11, v12 = net.nodes["v11"], net.nodes["v12"]
    append(v12, "v12/up", {"name": "赵德明"})
    before = snapshot(v11)
    verdict = v11.store.receive(v12.store.read_batch(Range("v12/up", 1, 1)))
    assert [o.status for o in verdict.outcomes] == [Status.FORBIDDEN]
    assert "v11 must not hold feed v12/up" in verdict.outcomes[0].reason
    assert snapshot(v11) == before


def test_village_holding_a_neighbours_feed_sends_it_nowhere(net: Network) -> None:
    """Even if v11 somehow holds v12's cases (an old copy), planning by may_push sends t1 nothing of them."""
    v11, v12, t1 = net.nodes["v11"], net.nodes["v12"], net.nodes["t1"]
    append(v12, "v12/up", {"name": "赵德明"})
    v11.store.conn.execute("DELETE FROM meta WHERE key = 'node'")  # a store that does not know who it is
    v11.store.conn.commit()
    v11.store._node_id = None
    assert v11.store.receive(v12.store.read_batch(Range("v12/up", 1, 1))).ok  # v11 now holds v12/up
    before = snapshot(t1)
    assert exchange(v11, t1, net.directory()) == []
    assert snapshot(t1) == before
    assert "v12/up" not in t1.store.vector()
