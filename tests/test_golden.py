"""Golden vectors: the protocol's exact bytes with fixed keys (ARCHITECTURE §4).

tests/data/golden_vectors.json pins canonical JSON, genesis and entry hashes,
signed heads, a framed batch, a page, a bundle and vector digests, all made
with fixed Ed25519 seeds. Every value is recomputed here with `sync_protocol`
and compared byte for byte; most are also recomputed from the documented
formulas with only hashlib, struct, json and `cryptography`, so the file is
checked against the spec as well as against the code. Any change to these
bytes is a wire-format change. Regenerate with `python tests/data/make_golden.py`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync_protocol import PROTOCOL_VERSION, answers, canonical
from sync_protocol.auth import NonceCache, sign_request, verify_request
from sync_protocol.batches import decode_batch, decode_page, encode_batch, encode_page
from sync_protocol.bundle import BundleWriter, check_bundle, iter_bundle
from sync_protocol.entries import Record, encode_header, entry_hash, genesis_hash, make_entries, rebuild_chain
from sync_protocol.errors import AnswerVerificationError, AuthorizationError, ProtocolError, SyncError
from sync_protocol.evidence import check_fork, check_part
from sync_protocol.forks import KIND_FORK_RESOLVE, check_resolution
from sync_protocol.heads import HEAD_SPAN_BYTES, SignedHead, decode_head, head_positions, sign_head, signing_message
from sync_protocol.keys import PublicKey, SigningKey
from sync_protocol.membership import Directory
from sync_protocol.planning import digest, vector_from_wire
from sync_protocol.verify import LocalFeed, Status, verify_batch

DATA = Path(__file__).parent / "data"
GOLDEN_PATH = DATA / "golden_vectors.json"
GOLDEN: dict[str, Any] = json.loads(GOLDEN_PATH.read_text(encoding="ascii"))
COUNTY = GOLDEN["county"]
KEYS = {k["node"]: k for k in GOLDEN["keys"]}
ENTRIES = GOLDEN["entries"]
FEED = ENTRIES["feed"]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def signing_key(node: str) -> SigningKey:
    return SigningKey.from_seed(h(KEYS[node]["seed_hex"]))


def directory() -> Directory:
    m = GOLDEN["membership"]
    d = Directory(m["county"], m["root_node"], PublicKey.from_hex(m["root_public_hex"]))
    return d.apply_all((x["kind"], x["body"]) for x in [*m["members"], *m["renames"]])


def wire_items() -> list[tuple[int, str, str, bytes]]:
    return [(e["hlc"], e["kind"], e["key"], h(e["body_hex"])) for e in ENTRIES["items"]]


def heads_by_seq() -> dict[int, dict[str, Any]]:
    return {x["seq"]: x for x in GOLDEN["heads"]}


# -- the file itself -------------------------------------------------------------------


def test_file_is_what_the_generator_writes() -> None:
    """The JSON is exactly the generator's output (not hand-edited), and the generator is deterministic."""
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    first = gen.render()
    assert first == gen.render()
    assert first == GOLDEN_PATH.read_text(encoding="ascii")


def test_every_vector_is_described() -> None:
    assert GOLDEN["protocol_version"] == PROTOCOL_VERSION
    assert GOLDEN["description"]
    groups = [GOLDEN[k] for k in ("keys", "canonical", "canonical_rejects", "genesis", "heads", "vector_digests")]
    for group in groups:
        assert group and all(isinstance(v.get("description"), str) and v["description"] for v in group)
    for k in ("membership", "entries", "batch", "page", "bundle", "signed_request", "signed_answers", "enrol_answer",
              "head_positions"):  # fmt: skip
        assert GOLDEN[k]["description"]


# -- keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("node", sorted(KEYS))
def test_keys_from_fixed_seeds(node: str) -> None:
    v = KEYS[node]
    key = signing_key(node)
    assert key.public.hex == v["public_raw_hex"]
    assert PublicKey.from_hex(v["public_raw_hex"]).raw == h(v["public_raw_hex"])  # a strong key
    pem = Ed25519PublicKey.from_public_bytes(key.public.raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pem.decode() == v["public_pem"]
    loaded = serialization.load_pem_public_key(v["public_pem"].encode())
    assert isinstance(loaded, Ed25519PublicKey)
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == key.public.raw
    assert key.to_pem().decode() == v["private_pkcs8_pem"]
    assert SigningKey.from_pem(v["private_pkcs8_pem"].encode()).public.hex == v["public_raw_hex"]


# -- canonical JSON ------------------------------------------------------------------


@pytest.mark.parametrize("vec", GOLDEN["canonical"], ids=lambda v: v["name"])
def test_canonical_encoding(vec: dict[str, Any]) -> None:
    value = json.loads(vec["input_json"])  # key order of the input preserved: unsorted on purpose
    want = h(vec["canonical_hex"])
    assert canonical.encode(value) == want
    assert want.decode("utf-8") == vec["canonical_text"]
    # the spec, independently: sorted keys, no whitespace, UTF-8, minimal lower-case escapes
    assert json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") == want
    decoded = canonical.decode(want)
    assert decoded == value
    assert canonical.encode(decoded) == want


def test_canonical_vectors_cover_the_tricky_values() -> None:
    texts = {v["name"]: h(v["canonical_hex"]) for v in GOLDEN["canonical"]}
    assert "湘潭县".encode() in texts["chinese_text"]
    assert texts["control_characters"] == b'"\\u0000\\u0001\\u0007\\u000b\\u001b\\u001f\x7f"'
    assert b"\\n" in texts["short_escapes"] and b"\\t" in texts["short_escapes"]
    assert texts["nested_unsorted_keys"] == b'{"a":false,"m":true,"z":{"a":null,"b":[3,{"x":2,"y":1}]}}'
    assert texts["max_safe_integer"] == str(2**53 - 1).encode()
    assert b"-9007199254740991" in texts["negative_integers"]
    assert texts["empty_containers"] == b'{"list":[],"obj":{},"str":""}'
    assert texts["e_acute_nfc"] == b'"\xc3\xa9"'


@pytest.mark.parametrize("vec", GOLDEN["canonical_rejects"], ids=lambda v: v["name"])
def test_canonical_rejects(vec: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        canonical.decode(h(vec["bytes_hex"]))
    assert vec["error_phrase"] in info.value.message


def test_encode_refuses_what_it_cannot_write_canonically() -> None:
    for bad, phrase in ((1.5, "float"), (2**53, "outside"), ("e\u0301", "NFC"), (float("nan"), "float")):
        with pytest.raises(ProtocolError, match=phrase):
            canonical.encode({"v": bad})


# -- genesis and entries -------------------------------------------------------------


@pytest.mark.parametrize("vec", GOLDEN["genesis"], ids=lambda v: v["feed"])
def test_genesis_hash(vec: dict[str, Any]) -> None:
    preimage = b"sanji/genesis/v1\n" + canonical.encode({"county": vec["county"], "feed": vec["feed"]})
    assert preimage.hex() == vec["preimage_hex"]
    assert hashlib.sha256(preimage).hexdigest() == vec["hash_hex"]
    assert genesis_hash(vec["county"], vec["feed"]).hex() == vec["hash_hex"]


def test_entries_headers_and_hashes() -> None:
    items = ENTRIES["items"]
    assert [e["seq"] for e in items] == [1, 2, 3]
    assert any(any("\u4e00" <= c <= "\u9fff" for c in json.dumps(e["body"], ensure_ascii=False)) for e in items)
    records = [Record(e["kind"], e["key"], e["body"], e["hlc"]) for e in items]
    made = make_entries(COUNTY, FEED, 0, None, records)
    prev = genesis_hash(COUNTY, FEED)
    for e, vec in zip(made, items, strict=True):
        body, header = h(vec["body_hex"]), h(vec["header_hex"])
        assert canonical.encode(vec["body"]) == body
        assert e.body == body
        assert e.prev == prev == h(vec["prev_hex"])
        assert e.header == header
        assert header.decode("utf-8") == vec["header_text"]
        # the hand-spelled header equals the canonical encoding of the header object
        header_obj = {
            "feed": FEED,
            "hlc": vec["hlc"],
            "key": vec["key"],
            "kind": vec["kind"],
            "prev": prev.hex(),
            "seq": vec["seq"],
            "v": 1,
        }
        assert encode_header(FEED, vec["seq"], prev, vec["hlc"], vec["kind"], vec["key"]) == header
        assert canonical.encode(header_obj) == header
        assert hashlib.sha256(body).hexdigest() == vec["body_sha256_hex"]
        preimage = b"sanji/entry/v1\n" + header + hashlib.sha256(body).digest()
        assert preimage.hex() == vec["hash_preimage_hex"]
        assert hashlib.sha256(preimage).hexdigest() == vec["hash_hex"]
        assert entry_hash(header, body).hex() == vec["hash_hex"] == e.hash.hex()
        prev = e.hash
    # a receiver rebuilds exactly the same chain from the wire fields alone
    rebuilt = rebuild_chain(FEED, 1, genesis_hash(COUNTY, FEED), wire_items())
    assert [e.hash.hex() for e in rebuilt] == [vec["hash_hex"] for vec in items]


def test_entry_key_and_body_carry_chinese_as_utf8() -> None:
    last = ENTRIES["items"][-1]
    assert last["key"] == "通知/2025-001"
    assert '"key":"通知/2025-001"'.encode() in h(last["header_hex"])
    assert "湘潭县".encode() in h(last["body_hex"])
    assert b"\\n" in h(last["body_hex"]) and b"\\t" in h(last["body_hex"])


# -- signed heads --------------------------------------------------------------------


@pytest.mark.parametrize("vec", GOLDEN["heads"], ids=lambda v: f"seq{v['seq']}")
def test_signed_head(vec: dict[str, Any]) -> None:
    key = signing_key(vec["signer"])
    digest_ = h(vec["hash_hex"])
    assert digest_.hex() == ENTRIES["items"][vec["seq"] - 1]["hash_hex"]
    msg = b"sanji/head/v1\n" + canonical.encode(
        {"county": vec["county"], "feed": vec["feed"], "hash": vec["hash_hex"], "seq": vec["seq"], "v": 1}
    )
    assert msg.hex() == vec["signing_message_hex"]
    assert signing_message(vec["county"], vec["feed"], vec["seq"], digest_) == msg
    head = sign_head(key, vec["county"], vec["feed"], vec["seq"], digest_)
    assert head.sig.hex() == vec["signature_hex"]  # Ed25519 is deterministic
    assert key.sign(msg).hex() == vec["signature_hex"]
    # verified independently of sync_protocol
    Ed25519PublicKey.from_public_bytes(h(KEYS[vec["signer"]]["public_raw_hex"])).verify(h(vec["signature_hex"]), msg)
    wire = h(vec["wire_hex"])
    assert head.encode() == wire
    assert wire.decode("utf-8") == vec["wire_text"]
    assert wire == canonical.encode(
        {
            "county": vec["county"],
            "feed": vec["feed"],
            "hash": vec["hash_hex"],
            "seq": vec["seq"],
            "sig": vec["signature_hex"],
            "v": 1,
        }
    )
    decoded = decode_head(wire)
    assert decoded == SignedHead(vec["county"], vec["feed"], vec["seq"], digest_, h(vec["signature_hex"]))
    decoded.verify(PublicKey.from_hex(KEYS[vec["signer"]]["public_raw_hex"]))


# -- framing -------------------------------------------------------------------------


def reference_batch(feed: str, seq: int, prev: bytes, items: list[tuple[int, str, str, bytes]], head: bytes) -> bytes:
    """The batch grammar of docs/protocol.md §4, spelled out with struct."""
    meta = json.dumps({"feed": feed, "prev": prev.hex(), "seq": seq, "v": 1}, separators=(",", ":")).encode()
    out = b"SJB1" + struct.pack(">I", len(meta)) + meta + struct.pack(">I", len(items))
    for hlc, kind, key, body in items:
        k, y = kind.encode("ascii"), key.encode("utf-8")
        out += struct.pack(">QB", hlc, len(k)) + k + struct.pack(">H", len(y)) + y + struct.pack(">I", len(body)) + body
    return out + struct.pack(">I", len(head)) + head


def test_batch_bytes() -> None:
    vec = GOLDEN["batch"]
    head = h(heads_by_seq()[3]["wire_hex"])
    prev = genesis_hash(COUNTY, FEED)
    want = h(vec["hex"])
    assert encode_batch(FEED, 1, prev, wire_items(), head) == want
    assert reference_batch(FEED, 1, prev, wire_items(), head) == want
    raw = decode_batch(want)
    assert (raw.feed, raw.seq, raw.prev, raw.entries, raw.head) == (FEED, 1, prev, wire_items(), head)


def test_batch_verifies_against_pinned_membership() -> None:
    """The vectors are one valid protocol run: the pinned batch is accepted as is."""
    verdict = verify_batch(h(GOLDEN["batch"]["hex"]), county=COUNTY, directory=directory(), local=None)
    assert verdict.ok and verdict.first_error() is None
    [outcome] = verdict.outcomes
    assert (outcome.status, outcome.first, outcome.last) == (Status.ACCEPTED, 1, 3)
    assert [e.hash.hex() for e in verdict.accepted] == [e["hash_hex"] for e in ENTRIES["items"]]
    assert [e.value for e in verdict.accepted] == [e["body"] for e in ENTRIES["items"]]
    assert verdict.head is not None and verdict.head.encode().hex() == heads_by_seq()[3]["wire_hex"]
    # the same batch in another county is refused: the vectors are bound to theirs
    other = Directory("430322", "county", PublicKey.from_hex(GOLDEN["membership"]["root_public_hex"]))
    refused = verify_batch(h(GOLDEN["batch"]["hex"]), county="430322", directory=other, local=None)
    assert refused.outcomes[0].status is Status.REJECTED


def test_membership_bodies() -> None:
    m = GOLDEN["membership"]
    for x in m["members"]:
        assert canonical.encode(x["body"]).hex() == x["canonical_hex"]
        assert x["body"]["pubkey"] == KEYS[x["body"]["node"]]["public_raw_hex"]
    d = directory()
    assert [x.node for x in d] == ["county", "t1", "v11"]
    assert d.ancestors("v11") == ["t1", "county"]


def test_membership_names() -> None:
    """Display names: optional in node.member, set again by node.name; the fold gives `names`."""
    m = GOLDEN["membership"]
    assert [("name" in x["body"]) for x in m["members"]] == [True, False, True]
    assert "湘潭县".encode() in h(m["members"][0]["canonical_hex"])
    for x in m["renames"]:
        assert x["kind"] == "node.name" and x["body"].keys() == {"name", "node"}
        assert canonical.encode(x["body"]).hex() == x["canonical_hex"]
        assert h(x["canonical_hex"]) == json.dumps(x["body"], sort_keys=True, separators=(",", ":"),
                                                   ensure_ascii=False).encode()  # fmt: skip
    d = directory()
    assert m["names"] == {"county": "湘潭县", "t1": "城关镇便民服务中心", "v11": "梅花村"}
    assert {x.node: d.name_of(x.node) for x in d} == m["names"]
    # before the rename, t1 has no name and is shown by its id
    before = Directory(m["county"], m["root_node"], PublicKey.from_hex(m["root_public_hex"]))
    before.apply_all((x["kind"], x["body"]) for x in m["members"])
    t1 = before.require("t1")
    assert (t1.name, before.name_of("t1")) == ("", "t1")


def test_page_bytes_and_verification() -> None:
    vec = GOLDEN["page"]
    heads = heads_by_seq()
    items, prev = wire_items(), genesis_hash(COUNTY, FEED)
    batch_a = encode_batch(FEED, 1, prev, items[:2], h(heads[2]["wire_hex"]))
    batch_b = encode_batch(FEED, 3, h(ENTRIES["items"][2]["prev_hex"]), items[2:], h(heads[3]["wire_hex"]))
    assert [batch_a.hex(), batch_b.hex()] == vec["batches_hex"]
    want = h(vec["hex"])
    assert encode_page([batch_a, batch_b]) == want
    ref = b"SJP1" + struct.pack(">I", 2) + b"".join(struct.pack(">I", len(b)) + b for b in (batch_a, batch_b))
    assert ref == want
    assert decode_page(want) == [batch_a, batch_b]
    d, local = directory(), None
    for batch, (first, last) in zip(decode_page(want), [(1, 2), (3, 3)], strict=True):
        v = verify_batch(batch, county=COUNTY, directory=d, local=local)
        assert [(o.status, o.first, o.last) for o in v.outcomes] == [(Status.ACCEPTED, first, last)]
        local = LocalFeed(last, v.accepted[-1].hash)


def test_bundle_bytes() -> None:
    vec = GOLDEN["bundle"]
    batches = [h(b) for b in GOLDEN["page"]["batches_hex"]]
    buf = io.BytesIO()
    writer = BundleWriter(
        buf,
        key=signing_key(vec["source"]),
        county=vec["county"],
        source=vec["source"],
        vector=vector_from_wire(vec["vector"]),
        created=vec["created"],
        target=vec["target"],
    )
    for b in batches:
        writer.add(b)
    size = writer.finish()
    want = h(vec["hex"])
    assert buf.getvalue() == want
    assert size == len(want)


def test_bundle_matches_the_documented_layout_and_verifies() -> None:
    vec = GOLDEN["bundle"]
    data = h(vec["hex"])
    batches = [h(b) for b in GOLDEN["page"]["batches_hex"]]
    # parse it by the grammar, with no help from sync_protocol.bundle
    assert data[:12] == b"SANJI-BUNDLE" and data[12] == 1
    (hlen,) = struct.unpack(">I", data[13:17])
    header = data[17 : 17 + hlen]
    assert header == canonical.encode(
        {
            "county": vec["county"],
            "created": vec["created"],
            "source": vec["source"],
            "target": vec["target"],
            "v": 1,
            "vector": vec["vector"],
        }
    )
    pos, frames = 17 + hlen, []
    while data[pos] == 1:
        (n,) = struct.unpack(">I", data[pos + 1 : pos + 5])
        frames.append(data[pos + 5 : pos + 5 + n])
        pos += 5 + n
    assert frames == batches
    assert data[pos] == 0
    (tlen,) = struct.unpack(">I", data[pos + 1 : pos + 5])
    assert pos + 5 + tlen == len(data)
    trailer = json.loads(data[pos + 5 :])
    assert canonical.encode(trailer) == data[pos + 5 :]
    assert trailer["batches"] == vec["batches"] == 2
    assert trailer["bytes"] == pos
    assert trailer["sha256"] == hashlib.sha256(data[:pos]).hexdigest()
    msg = b"sanji/bundle/v1\n" + canonical.encode(
        {
            "batches": 2,
            "bytes": pos,
            "county": vec["county"],
            "sha256": trailer["sha256"],
            "source": vec["source"],
        }
    )
    Ed25519PublicKey.from_public_bytes(h(KEYS[vec["source"]]["public_raw_hex"])).verify(h(trailer["sig"]), msg)
    # and the library reader agrees, and every batch in it verifies in order
    info = check_bundle(io.BytesIO(data), name="golden.sjb")
    info.verify(PublicKey.from_hex(KEYS[vec["source"]]["public_raw_hex"]))
    assert (info.header.county, info.header.source, info.header.target) == (COUNTY, "county", "t1")
    assert info.header.vector == vector_from_wire(vec["vector"])
    assert info.batches == 2 and info.size == pos and info.signing_message() == msg
    read = [x for x in iter_bundle(io.BytesIO(data), name="golden.sjb") if isinstance(x, bytes)]
    assert read == batches
    local = None
    for b in read:
        v = verify_batch(b, county=COUNTY, directory=directory(), local=local)
        assert v.ok and [o.status for o in v.outcomes] == [Status.ACCEPTED]
        local = LocalFeed(v.accepted[-1].seq, v.accepted[-1].hash)
    assert local is not None and local.hash.hex() == vec["vector"][FEED][1]


# -- vector digests --------------------------------------------------------------------


@pytest.mark.parametrize("vec", GOLDEN["vector_digests"], ids=["with_empty_feed", "two_feeds"])
def test_vector_digest(vec: dict[str, Any]) -> None:
    vector = vector_from_wire(vec["vector"])
    present = {f: [s, x.hex()] for f, (s, x) in vector.items() if s > 0}
    assert canonical.encode(present).hex() == vec["canonical_hex"]
    preimage = b"sanji/vector/v1\n" + h(vec["canonical_hex"])
    assert preimage.hex() == vec["preimage_hex"]
    assert hashlib.sha256(preimage).hexdigest() == vec["digest_hex"]
    assert digest(vector).hex() == vec["digest_hex"]
    assert digest(dict(reversed(list(vector.items())))).hex() == vec["digest_hex"]  # order-free


# -- fork.resolve (§8.7) ---------------------------------------------------------------


def test_fork_resolve_vector() -> None:
    v = GOLDEN["fork_resolve"]
    assert v["description"]
    d = directory()
    c = v["canonical_entry"]
    assert canonical.encode(v["body"]).hex() == v["canonical_hex"]
    assert v["body"]["canonical"] == {"hash": c["hash_hex"], "seq": c["seq"]}
    r = check_resolution(v["body"], feed=v["feed"], directory=d)
    assert (r.node, r.feed, r.seq, r.hash.hex()) == ("v11", "v11/up", 1, c["hash_hex"])
    (entry,) = make_entries(
        COUNTY,
        v["feed"],
        0,
        None,
        [Record(KIND_FORK_RESOLVE, "v11/up", v["body"], decode_batch(h(v["batch_hex"])).entries[0][0])],
    )
    assert entry.header.hex() == v["header_hex"] and entry.hash.hex() == v["hash_hex"]
    head = decode_head(h(v["head_hex"]))
    head.verify(d.key_of("county"))
    assert (head.feed, head.seq, head.hash.hex()) == (v["feed"], 1, v["hash_hex"])
    verdict = verify_batch(h(v["batch_hex"]), county=COUNTY, directory=d, local=None)
    assert [o.status for o in verdict.outcomes] == [Status.ACCEPTED]
    for bad in v["rejects"]:
        with pytest.raises(ProtocolError):
            check_resolution(bad["body"], feed=bad["feed"], directory=d)


# -- fork.evidence (§8.8) --------------------------------------------------------------


def test_fork_evidence_vector() -> None:
    v = GOLDEN["fork_evidence"]
    assert v["description"]
    d = directory()
    assert canonical.encode(v["body"]).hex() == v["canonical_hex"]
    fork = check_fork([check_part(v["body"], writer=v["writer"], directory=d)], county=COUNTY, directory=d)
    assert (fork.feed, fork.fork_at, fork.first, fork.last) == ("v11/up", 1, 1, 1)
    assert fork.remote_hash.hex() == v["remote_hash_hex"]
    assert fork.local_hash.hex() == GOLDEN["fork_resolve"]["canonical_entry"]["hash_hex"]
    for bad in v["rejects"]:
        with pytest.raises(SyncError):
            check_fork([check_part(bad["body"], writer=bad["writer"], directory=d)], county=COUNTY, directory=d)


# -- signed requests and answers (§10) ------------------------------------------------------


def spelled_out(tag: bytes, fields: dict[str, Any]) -> bytes:
    """A §10 signing message from the documented formula: the tag, then sorted, compact, raw-UTF-8 JSON."""
    return tag + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def independent_verify(node: str, sig_hex: str, msg: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(h(KEYS[node]["public_raw_hex"])).verify(h(sig_hex), msg)


def test_signed_request_names_its_recipient() -> None:
    v = GOLDEN["signed_request"]
    body = h(v["body_hex"])
    fields = {"body": hashlib.sha256(body).hexdigest(), "county": v["county"], "method": v["method"],
              "node": v["node"], "nonce": v["nonce_hex"], "path": v["path"], "time": v["time"], "to": v["to"], "v": 2}  # fmt: skip
    msg = spelled_out(b"sanji/request/v2\n", fields)
    assert msg.hex() == v["signing_message_hex"]
    headers = v["headers"]
    assert headers == {"X-Sanji-Node": v["node"], "X-Sanji-To": v["to"], "X-Sanji-Time": str(v["time"]),
                       "X-Sanji-Nonce": v["nonce_hex"], "X-Sanji-Signature": headers["X-Sanji-Signature"]}  # fmt: skip
    independent_verify(v["node"], headers["X-Sanji-Signature"], msg)
    assert sign_request(signing_key(v["node"]), county=v["county"], node=v["node"], to=v["to"], method=v["method"],
                        path=v["path"], body=body, now_ms=v["time"], nonce=h(v["nonce_hex"])) == headers  # fmt: skip
    check = dict(method=v["method"], path=v["path"], body=body, directory=directory(), now_ms=v["time"])
    assert verify_request(headers, recipient="t1", nonces=NonceCache(), **check).node == "v11"  # type: ignore[arg-type]
    with pytest.raises(AuthorizationError, match="addressed to t1, not to county"):
        verify_request(headers, recipient="county", nonces=NonceCache(), **check)  # type: ignore[arg-type]


@pytest.mark.parametrize("vec", GOLDEN["signed_answers"]["answers"], ids=lambda v: v["path"])
def test_signed_answer(vec: dict[str, Any]) -> None:
    body = h(vec["body_hex"])
    fields = {"body": hashlib.sha256(body).hexdigest(), "county": COUNTY,
              "encoding": vec["headers"].get("X-Sanji-Compression", ""), "more": vec["headers"].get("X-Sanji-More", ""),
              "node": vec["node"], "nonce": vec["nonce_hex"], "path": vec["path"], "to": vec["to"], "v": 1}  # fmt: skip
    msg = spelled_out(b"sanji/answer/v1\n", fields)
    assert msg.hex() == vec["signing_message_hex"]
    independent_verify(vec["node"], vec["answer_header"], msg)
    sent = {**vec["headers"], answers.H_ANSWER: vec["answer_header"]}
    check = dict(county=COUNTY, parent=vec["node"], to=vec["to"], path=vec["path"], body=body)
    answers.verify_answer(sent, parent_key=signing_key("t1").public, nonce=vec["nonce_hex"], **check)  # type: ignore[arg-type]
    with pytest.raises(AnswerVerificationError, match="does not verify for this request"):
        answers.verify_answer(sent, parent_key=signing_key("t1").public, nonce="00" * 16, **check)  # type: ignore[arg-type]


def test_enrol_answer() -> None:
    v = GOLDEN["enrol_answer"]
    answer = v["answer"]
    msg = spelled_out(
        b"sanji/enrol-answer/v1\n",
        {"answer": {k: x for k, x in answer.items() if k != "sig"}, "token": v["token_id"], "v": 1},
    )
    assert msg.hex() == v["signing_message_hex"]
    independent_verify("county", answer["sig"], msg)
    root = PublicKey.from_hex(GOLDEN["membership"]["root_public_hex"])
    answers.verify_enrol_answer(answer, root, v["token_id"], answer["pubkey"])
    with pytest.raises(AnswerVerificationError):
        answers.verify_enrol_answer({**answer, "parent": "t2"}, root, v["token_id"], answer["pubkey"])


def test_head_positions_inside_a_commit() -> None:
    """Where an author signs heads inside a commit (§3.4): the pinned span and positions."""
    vec = GOLDEN["head_positions"]
    assert vec["span"] == HEAD_SPAN_BYTES == 16_384
    assert head_positions(vec["sizes"], vec["span"]) == vec["positions"] == [2, 3, 4, 5, 6, 7, 8]
