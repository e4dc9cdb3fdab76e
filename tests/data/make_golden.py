"""Regenerate tests/data/golden_vectors.json: the exact bytes of one small protocol run.

    python tests/data/make_golden.py            # rewrite the file
    python tests/data/make_golden.py --check    # exit 1 if the file differs

Everything is derived from fixed Ed25519 seeds and fixed inputs, and Ed25519
signatures are deterministic (RFC 8032), so the output is byte-for-byte stable.
Running this must never change the file unless the protocol itself changed; if
it does, that is a wire-format change and needs a protocol version bump.

The file is meant to be usable on its own by a second implementation: every
vector carries a "description" of what it is and how it is computed, its
inputs, and its expected bytes as lower-case hex (the authoritative form; text
renderings are for reading). The JSON is written with ASCII escapes so no
editor can re-normalise the Unicode inside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync_protocol import PROTOCOL_VERSION, answers, auth, canonical, session
from sync_protocol.batches import encode_batch, encode_page
from sync_protocol.bundle import BundleWriter
from sync_protocol.entries import ENTRY_TAG, GENESIS_TAG, Record, genesis_hash, make_entries
from sync_protocol.evidence import evidence_bodies
from sync_protocol.forks import KIND_FORK_RESOLVE, resolution_body
from sync_protocol.heads import HEAD_SPAN_BYTES, HEAD_TAG, head_positions, sign_head, signing_message
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER, KIND_NAME
from sync_protocol.planning import VECTOR_TAG, digest, vector_to_wire

OUT = Path(__file__).with_name("golden_vectors.json")

COUNTY = "430321"  # 湘潭县
FEED = "county/*"
BUNDLE_CREATED = 1735689600  # 2025-01-01T00:00:00Z, as the writer's caller passes it
HLC0 = 1735689600000 * 1000  # hlc stamp = wall_ms * 1000 + counter

# (node, role, parent, division, seed)
NODES: list[tuple[str, str, str | None, str, bytes]] = [
    ("county", "county", None, COUNTY + "000000", bytes(range(32))),
    ("t1", "township", "county", COUNTY + "101000", bytes(range(32, 64))),
    ("v11", "village", "t1", COUNTY + "101201", bytes(range(64, 96))),
]
# display names in the node.member bodies (t1 is enrolled without one), then a node.name that names t1
NAMES = {"county": "湘潭县", "v11": "梅花村"}
RENAMES = [("t1", "城关镇便民服务中心")]

# Canonical JSON vectors: (name, description, input as JSON text). The input is
# parsed with object key order preserved (it is deliberately not sorted) and
# then canonicalised; canonical bytes must not depend on the input order.
CANONICAL: list[tuple[str, str, str]] = [
    (
        "chinese_text",
        "Chinese text is written as raw UTF-8, never as \\u escapes; keys sort by code point "
        "(UTF-8 byte order), so ASCII keys come before CJK keys.",
        '{"\\u4e8b\\u9879": "\\u5c45\\u6c11\\u8eab\\u4efd\\u8bc1\\u6362\\u9886", '
        '"county": "\\u6e58\\u6f6d\\u53bf", "fee_fen": 0}',
    ),
    (
        "control_characters",
        "U+0000-U+001F without a short form are escaped as \\u00xx with lower-case hex; "
        "U+007F (DEL) is not a control character for JSON and is written raw.",
        '"\\u0000\\u0001\\u0007\\u000B\\u001b\\u001F\\u007f"',
    ),
    (
        "short_escapes",
        "\\b \\f \\n \\r \\t, the quote and the backslash use their two-character escapes; "
        "'/' is not escaped; U+2028 and U+2029 are written raw.",
        '"line1\\nline2\\ttab\\r\\b\\f \\"quoted\\" back\\\\slash a/b \\u2028\\u2029"',
    ),
    (
        "nested_unsorted_keys",
        "Objects at every depth get their keys sorted; arrays keep their order.",
        '{"z": {"b": [3, {"y": 1, "x": 2}], "a": null}, "m": true, "a": false}',
    ),
    (
        "key_order_by_code_point",
        "Keys sort by Unicode code point (equivalently by UTF-8 bytes), not by UTF-16 units: "
        "U+FFFF sorts before U+1F600, upper-case before lower-case.",
        '{"\\ud83d\\ude00": 1, "\\uffff": 2, "\\u4e2d": 3, "b": 4, "B": 5, "a": 6}',
    ),
    (
        "negative_integers",
        "Negative integers and zero, including the most negative allowed value -(2^53-1).",
        "[-1, -42, 0, -9007199254740991]",
    ),
    (
        "max_safe_integer",
        "2^53-1 = 9007199254740991 is the largest allowed integer; 2^53 is refused.",
        "9007199254740991",
    ),
    (
        "empty_containers",
        "Empty array, empty object and empty string.",
        '{"str": "", "obj": {}, "list": []}',
    ),
    (
        "e_acute_nfc",
        "'\\u00e9' (e with acute, precomposed, NFC) is the two UTF-8 bytes c3 a9; the decomposed "
        "form e + U+0301 is not NFC and is refused (see canonical_rejects).",
        '"\\u00e9"',
    ),
    (
        "scalars",
        "true, false and null.",
        "[true, false, null]",
    ),
]

# Bytes a canonical decoder must refuse: (name, description, bytes, a phrase the error names).
REJECTS: list[tuple[str, str, bytes, str]] = [
    ("whitespace", "insignificant whitespace", b'{"a": 1}', "canonical form"),
    ("unsorted_keys", "object keys not in sorted order", b'{"b":1,"a":2}', "canonical form"),
    ("duplicate_key", "the same key twice in one object", b'{"a":1,"a":1}', "duplicate key"),
    ("float", "a number with a fraction", b'{"a":1.5}', "float"),
    ("float_integral", "an integral value spelled as a float", b"1.0", "float"),
    ("exponent", "an exponent", b"1e2", "float"),
    ("negative_zero", "-0 (canonical zero is 0)", b"-0", "canonical form"),
    ("too_big", "2^53, one beyond the safe integer range", b"9007199254740992", "outside"),
    ("nfd", "decomposed e + U+0301, not NFC", '"e\u0301"'.encode(), "NFC"),
    ("escaped_non_ascii", "non-ASCII written as a \\u escape", b'"\\u00e9"', "canonical form"),
    ("upper_hex_escape", "a control escape with upper-case hex", b'"\\u001F"', "canonical form"),
    ("long_escape_for_newline", "a newline written as \\u000a instead of \\n", b'"\\u000a"', "canonical form"),
    ("escaped_slash", "'/' escaped", b'"\\/"', "canonical form"),
    ("nan", "NaN", b"NaN", "not valid JSON"),
    ("invalid_utf8", "bytes that are not UTF-8", b'"\xff"', "UTF-8"),
    ("trailing_newline", "a newline after the value", b"[]\n", "canonical form"),
]


def _parse_ordered(text: str) -> Any:
    return json.loads(text)  # dicts keep the (unsorted) order of the text


def _public_pem(raw: bytes) -> str:
    pub = Ed25519PublicKey.from_public_bytes(raw)
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _records() -> list[Record]:
    return [
        Record(
            "catalog.release",
            "2025-01",
            {
                "items": [
                    {"code": "430321-0001", "days": 7, "fee_fen": 0, "name": "居民身份证换领"},
                    {"code": "430321-0002", "days": 20, "fee_fen": 1000, "name": "高龄津贴申请"},
                ],
                "version": 3,
            },
            HLC0,
        ),
        Record(
            "calendar.workday",
            "2025",
            {"holidays": [{"date": "2025-10-01", "days": 7, "name": "国庆节"}], "year": 2025},
            HLC0 + 1,
        ),
        Record(
            "notice",
            "通知/2025-001",
            {"priority": -1, "text": "请携带身份证原件。\n地址：湘潭县政务服务中心\t窗口 3", "title": "办事须知"},
            HLC0 + 2,
        ),
    ]


def build() -> dict[str, Any]:
    """All vectors as a JSON-ready dict (deterministic)."""
    keys = {node: SigningKey.from_seed(seed) for node, _, _, _, seed in NODES}
    county_key = keys["county"]

    out: dict[str, Any] = {
        "description": (
            f"Golden vectors for the Sanji sync protocol (version {PROTOCOL_VERSION}): the exact bytes of one "
            f"small, valid protocol run in county {COUNTY} with fixed Ed25519 seeds. Hex strings are lower-case "
            "and authoritative; '*_text' fields are UTF-8 renderings for reading. Regenerate with "
            "`python tests/data/make_golden.py`; tests/test_golden.py recomputes every value with sync_protocol "
            "and compares bytes."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "county": COUNTY,
    }

    # -- keys -----------------------------------------------------------------
    out["keys"] = [
        {
            "node": node,
            "description": (
                f"Ed25519 key of {node}: seed = the 32 bytes given (RFC 8032 private key); public key = its "
                "32-byte encoding; public_pem = SubjectPublicKeyInfo PEM; private_pkcs8_pem = unencrypted PKCS#8 "
                "PEM as written by SigningKey.to_pem()."
            ),
            "seed_hex": seed.hex(),
            "public_raw_hex": keys[node].public.hex,
            "public_pem": _public_pem(keys[node].public.raw),
            "private_pkcs8_pem": keys[node].to_pem().decode(),
        }
        for node, _, _, _, seed in NODES
    ]

    # -- canonical JSON -------------------------------------------------------------
    out["canonical"] = []
    for name, desc, text in CANONICAL:
        data = canonical.encode(_parse_ordered(text))
        out["canonical"].append(
            {
                "name": name,
                "description": desc,
                "input_json": text,
                "canonical_hex": data.hex(),
                "canonical_text": data.decode("utf-8"),
            }
        )
    out["canonical_rejects"] = [
        {
            "name": name,
            "description": f"Not canonical, must be refused by a decoder: {desc}.",
            "bytes_hex": data.hex(),
            "error_phrase": phrase,
        }
        for name, desc, data, phrase in REJECTS
    ]

    # -- genesis ------------------------------------------------------------
    out["genesis"] = []
    for feed in (FEED, "v11/up"):
        preimage = GENESIS_TAG + canonical.encode({"county": COUNTY, "feed": feed})
        out["genesis"].append(
            {
                "description": (
                    "prev of entry 1 of a feed: SHA-256(b'sanji/genesis/v1\\n' || canonical {county, feed})."
                ),
                "county": COUNTY,
                "feed": feed,
                "preimage_hex": preimage.hex(),
                "hash_hex": genesis_hash(COUNTY, feed).hex(),
            }
        )

    # -- membership ----------------------------------------------------------------
    members = []
    names = {node: node for node, *_ in NODES}
    for node, role, parent, division, _ in NODES:
        body = {"division": division, "node": node, "parent": parent, "pubkey": keys[node].public.hex, "role": role}
        if node in NAMES:
            body = dict(sorted({**body, "name": NAMES[node]}.items()))
            names[node] = NAMES[node]
        members.append({"kind": KIND_MEMBER, "body": body, "canonical_hex": canonical.encode(body).hex()})
    renames = []
    for node, name in RENAMES:
        body = {"name": name, "node": node}
        names[node] = name
        renames.append({"kind": KIND_NAME, "body": body, "canonical_hex": canonical.encode(body).hex()})
    out["membership"] = {
        "description": (
            "node.member bodies that enrol the nodes of these vectors (county root first; the county and v11 "
            "with a display name, t1 without), then node.name bodies that rename an enrolled node. Fold members "
            "then renames in order into a Directory(county, root_node, root public key) to verify the batch, "
            "page and bundle below; 'names' is each node's display name after the fold (its id when it has none)."
        ),
        "county": COUNTY,
        "root_node": "county",
        "root_public_hex": county_key.public.hex,
        "members": members,
        "renames": renames,
        "names": names,
    }

    # -- entries ----------------------------------------------------------------
    records = _records()
    entries = make_entries(COUNTY, FEED, 0, None, records)
    items = []
    for rec, e in zip(records, entries, strict=True):
        items.append(
            {
                "seq": e.seq,
                "hlc": e.hlc,
                "kind": e.kind,
                "key": e.key,
                "body": rec.body,
                "body_hex": e.body.hex(),
                "body_sha256_hex": hashlib.sha256(e.body).hexdigest(),
                "prev_hex": e.prev.hex(),
                "header_hex": e.header.hex(),
                "header_text": e.header.decode("utf-8"),
                "hash_preimage_hex": (ENTRY_TAG + e.header + hashlib.sha256(e.body).digest()).hex(),
                "hash_hex": e.hash.hex(),
            }
        )
    out["entries"] = {
        "description": (
            f"Entries 1-3 of feed {FEED} in county {COUNTY}, written by the county. body = canonical JSON of "
            "'body'; header = canonical {feed, hlc, key, kind, prev (hex), seq, v: 1}; prev of entry 1 is the "
            "feed's genesis hash, then the hash of the entry before; "
            "hash = SHA-256(b'sanji/entry/v1\\n' || header || SHA-256(body)) (= hash_preimage)."
        ),
        "county": COUNTY,
        "feed": FEED,
        "author": "county",
        "items": items,
    }

    # -- signed heads ------------------------------------------------------------
    heads = {}
    out["heads"] = []
    for e in entries[1:]:  # heads at seq 2 (used in the page and bundle) and seq 3
        msg = signing_message(COUNTY, FEED, e.seq, e.hash)
        head = sign_head(county_key, COUNTY, FEED, e.seq, e.hash)
        heads[e.seq] = head
        out["heads"].append(
            {
                "description": (
                    f"Signed head of {FEED}#{e.seq} by the county key. signing_message = b'sanji/head/v1\\n' || "
                    "canonical {county, feed, hash (hex), seq, v: 1}; signature = Ed25519(seed of county, "
                    "signing_message); wire = canonical {county, feed, hash, seq, sig (hex), v: 1}."
                ),
                "signer": "county",
                "county": COUNTY,
                "feed": FEED,
                "seq": e.seq,
                "hash_hex": e.hash.hex(),
                "signing_message_hex": msg.hex(),
                "signature_hex": head.sig.hex(),
                "wire_hex": head.encode().hex(),
                "wire_text": head.encode().decode("utf-8"),
            }
        )
    assert HEAD_TAG in bytes.fromhex(out["heads"][-1]["signing_message_hex"])

    # -- batch and page -----------------------------------------------------------------
    def wire(es: list[Any]) -> list[tuple[int, str, str, bytes]]:
        return [(x.hlc, x.kind, x.key, x.body) for x in es]

    batch = encode_batch(FEED, 1, entries[0].prev, wire(entries), heads[3].encode())
    out["batch"] = {
        "description": (
            f"{FEED} entries 1-3 ending at the signed head of seq 3 (heads[-1].wire), framed as "
            '"SJB1" u32 mlen meta u32 n entry{n} u32 slen head; meta = canonical {feed, prev (hex of entry 1\'s '
            "prev), seq (of entry 1), v: 1}; entry = u64 hlc u8 klen kind u16 ylen key (UTF-8) u32 blen body; "
            "integers unsigned big-endian. Verifies against the membership above as ACCEPTED 1-3 for a receiver "
            "holding nothing of the feed."
        ),
        "feed": FEED,
        "first_seq": 1,
        "last_seq": 3,
        "hex": batch.hex(),
    }
    batch_a = encode_batch(FEED, 1, entries[0].prev, wire(entries[:2]), heads[2].encode())
    batch_b = encode_batch(FEED, 3, entries[2].prev, wire(entries[2:]), heads[3].encode())
    page = encode_page([batch_a, batch_b])
    out["page"] = {
        "description": (
            f'A page "SJP1" u32 m (u32 len batch){{m}} of two batches of {FEED}: entries 1-2 ending at the head '
            "of seq 2, then entry 3 ending at the head of seq 3. Applied in order by an empty receiver, both are "
            "ACCEPTED."
        ),
        "batches_hex": [batch_a.hex(), batch_b.hex()],
        "hex": page.hex(),
    }

    # -- bundle --------------------------------------------------------------------
    vector = {FEED: (3, entries[2].hash)}
    buf = io.BytesIO()
    writer = BundleWriter(
        buf, key=county_key, county=COUNTY, source="county", vector=vector, created=BUNDLE_CREATED, target="t1"
    )
    writer.add(batch_a)
    writer.add(batch_b)
    size = writer.finish()
    data = buf.getvalue()
    assert size == len(data)
    out["bundle"] = {
        "description": (
            "A bundle file written by the county for t1 carrying the two batches of the page: "
            '"SANJI-BUNDLE" u8 version(1) u32 hlen header, then frames 0x01 u32 len batch, then the end frame '
            "0x00 u32 len trailer. header = canonical {county, created, source, target, v: 1, vector: {feed: "
            "[seq, hash hex]}}; trailer = canonical {batches, bytes, sha256, sig} where sha256 covers every byte "
            "before the end frame, bytes is that count, and sig = Ed25519(source key, b'sanji/bundle/v1\\n' || "
            "canonical {batches, bytes, county, sha256, source})."
        ),
        "county": COUNTY,
        "source": "county",
        "target": "t1",
        "created": BUNDLE_CREATED,
        "vector": vector_to_wire(vector),
        "batches": 2,
        "hex": data.hex(),
    }

    # -- vector digests ---------------------------------------------------------------
    digests = []
    for desc, vec in (
        (
            "The county feed at seq 3; a feed at seq 0 counts as absent and is left out.",
            {FEED: (3, entries[2].hash), "t1/*": (0, b"")},
        ),
        (
            "Two feeds (sorted by feed id in the canonical object).",
            {"v11/up": (5, entries[0].hash), FEED: (2, entries[1].hash)},
        ),
    ):
        present = {f: v for f, v in vec.items() if v[0] > 0}
        digests.append(
            {
                "description": (
                    f"planning.digest: SHA-256(b'sanji/vector/v1\\n' || canonical {{feed: [seq, hash hex]}}). {desc}"
                ),
                "vector": vector_to_wire(vec),
                "canonical_hex": canonical.encode(vector_to_wire(present)).hex(),
                "preimage_hex": (VECTOR_TAG + canonical.encode(vector_to_wire(present))).hex(),
                "digest_hex": digest(vec).hex(),
            }
        )
    out["vector_digests"] = digests

    # -- fork.resolve (§8.7) ----------------------------------------------------------
    v11_key = keys["v11"]
    (v11_entry,) = make_entries(
        COUNTY, "v11/up", 0, None, [Record("case.new", "c-0001", {"case_id": "c-0001", "local_no": "1"}, HLC0 + 10)]
    )
    v11_head = sign_head(v11_key, COUNTY, "v11/up", v11_entry.seq, v11_entry.hash)
    body = resolution_body("v11", "v11/up", v11_entry.seq, v11_entry.hash, "笔记本从旧备份恢复后离线登记")
    (decision,) = make_entries(COUNTY, "county/v11", 0, None, [Record(KIND_FORK_RESOLVE, "v11/up", body, HLC0 + 20)])
    decision_head = sign_head(county_key, COUNTY, "county/v11", decision.seq, decision.hash)
    out["fork_resolve"] = {
        "description": (
            "The county's decision on a fork of v11/up (protocol.md §8.7): entry 1 of county/v11, kind "
            "fork.resolve, key the feed, body exactly {canonical: {hash, seq}, feed, node, reason}; canonical names "
            "entry 1 of v11/up below (its hash_hex). Written only in <root>/<node>. 'rejects' are bodies (with the "
            "feed they are written in) that a receiver must refuse, rolling the batch back."
        ),
        "canonical_entry": {
            "feed": "v11/up",
            "seq": v11_entry.seq,
            "header_hex": v11_entry.header.hex(),
            "body_hex": v11_entry.body.hex(),
            "hash_hex": v11_entry.hash.hex(),
            "head_hex": v11_head.encode().hex(),
        },
        "feed": "county/v11",
        "body": body,
        "canonical_hex": canonical.encode(body).hex(),
        "header_hex": decision.header.hex(),
        "hash_hex": decision.hash.hex(),
        "head_hex": decision_head.encode().hex(),
        "batch_hex": encode_batch(
            "county/v11",
            1,
            decision.prev,
            [(decision.hlc, decision.kind, decision.key, decision.body)],
            decision_head.encode(),
        ).hex(),
        "rejects": [
            {"feed": "t1/v11", "body": body, "why": "not in county/<node>: only the county decides"},
            {"feed": "county/*", "body": body, "why": "not in the feed addressed to the node"},
            {"feed": "county/v11", "body": {**body, "extra": 1}, "why": "a field too many"},
            {"feed": "county/v11", "body": {**body, "feed": "t1/up"}, "why": "a feed the node does not write"},
            {
                "feed": "county/v11",
                "body": {**body, "canonical": {"hash": v11_entry.hash.hex(), "seq": 0}},
                "why": "seq 0",
            },
        ],
    }

    # -- fork.evidence (§8.8) ---------------------------------------------------------
    (other,) = make_entries(
        COUNTY, "v11/up", 0, None, [Record("case.new", "c-0009", {"case_id": "c-0009", "local_no": "1"}, HLC0 + 30)]
    )  # a restored copy of v11 wrote another entry 1: the other branch
    other_head = sign_head(v11_key, COUNTY, "v11/up", other.seq, other.hash)
    other_batch = encode_batch(
        "v11/up", 1, other.prev, [(other.hlc, other.kind, other.key, other.body)], other_head.encode()
    )
    (evidence,) = evidence_bodies(
        feed="v11/up", fork_at=1, found_ms=HLC0 // 1000 + 40, local_hash=v11_entry.hash, held=v11_head,
        batch=other_batch,
    )  # fmt: skip
    out["fork_evidence"] = {
        "description": (
            "t1 reports the fork of v11/up it found (protocol.md §8.8): an entry of kind fork.evidence in t1/up, key "
            "the forked feed, body exactly {batch: {data (base64 of the raw batch, or of part i of it), part, parts, "
            "sha256 (of the whole batch)}, feed, fork_at, found_ms, held (t1's newest signed head of the feed, as "
            "an object), local_hash (t1's entry hash at fork_at)}. Here t1 holds fork_resolve's canonical_entry as "
            "v11/up#1 and the other branch is a different entry 1 signed by v11 (remote_hash_hex). 'rejects' are "
            "(writer, body) pairs the county must keep as refused."
        ),
        "writer": "t1",
        "body": evidence,
        "canonical_hex": canonical.encode(evidence).hex(),
        "remote_hash_hex": other.hash.hex(),
        "rejects": [
            {"writer": "t2", "body": evidence, "why": "t2 is not v11's township"},
            {"writer": "t1", "body": {**evidence, "fork_at": 2}, "why": "the batch does not cover fork_at"},
            {
                "writer": "t1",
                "body": {**evidence, "local_hash": other.hash.hex()},
                "why": "the batch agrees with local_hash: no fork",
            },
            {"writer": "t1", "body": {**evidence, "extra": 1}, "why": "a field too many"},
        ],
    }
    out.update(_requests_and_answers(keys, vector, page))
    return out


REQUEST_TIME = 1735689600000  # X-Sanji-Time of the signed request below (2025-01-01T00:00:00Z)
REQUEST_NONCE = bytes(range(0xA0, 0xB0))  # its 16 nonce bytes
TOKEN_ID = "ABCDEFGH"  # the token id of the enrolment answer below


def _requests_and_answers(
    keys: dict[str, SigningKey], vector: dict[str, tuple[int, bytes]], page: bytes
) -> dict[str, Any]:
    """§10: a request signed by v11 for t1, t1's signed answers to it, and the county's signed enrol answer."""
    out: dict[str, Any] = {}
    path = "/api/v1/sync/hello"
    body = session.Hello(digest(vector)).encode()
    headers = auth.sign_request(
        keys["v11"], county=COUNTY, node="v11", to="t1", method="POST", path=path, body=body,
        now_ms=REQUEST_TIME, nonce=REQUEST_NONCE,
    )  # fmt: skip
    msg = auth.signing_message(COUNTY, "v11", "POST", path, body, REQUEST_TIME, REQUEST_NONCE.hex(), "t1")
    out["signed_request"] = {
        "description": (
            "A hello from v11 to its township t1 (protocol.md §10.1). signing_message = b'sanji/request/v2\\n' || "
            "canonical {body: hex SHA-256 of the body, county, method, node, nonce, path, time, to, v: 2}; "
            "signature = Ed25519(seed of v11, signing_message); the headers carry node, to, time, nonce and "
            "signature. The same headers sent to any node other than 'to' (t1) are refused."
        ),
        "county": COUNTY,
        "node": "v11",
        "to": "t1",
        "method": "POST",
        "path": path,
        "time": REQUEST_TIME,
        "nonce_hex": REQUEST_NONCE.hex(),
        "body_hex": body.hex(),
        "signing_message_hex": msg.hex(),
        "headers": headers,
    }
    reply = session.HelloReply(False, vector, {}).encode()
    answered = []
    for what, apath, abody, aheaders in (
        ("hello reply", path, reply, {}),
        ("pull page (here sent uncompressed, more remaining)", "/api/v1/sync/pull", page, {answers.H_MORE: "1"}),
    ):
        amsg = answers.answer_message(
            aheaders, county=COUNTY, node="t1", to="v11", nonce=REQUEST_NONCE.hex(), path=apath, body=abody
        )
        answered.append(
            {
                "what": what,
                "node": "t1",
                "to": "v11",
                "nonce_hex": REQUEST_NONCE.hex(),
                "path": apath,
                "body_hex": abody.hex(),
                "headers": aheaders,
                "signing_message_hex": amsg.hex(),
                "answer_header": answers.sign_answer(
                    keys["t1"], county=COUNTY, node="t1", to="v11", nonce=REQUEST_NONCE.hex(), path=apath,
                    body=abody, headers=aheaders,
                ),
            }
        )  # fmt: skip
    out["signed_answers"] = {
        "description": (
            "t1's answers to v11's request above (protocol.md §10.2), as if each answered that request's nonce. "
            "signing_message = b'sanji/answer/v1\\n' || canonical {body: hex SHA-256 of the body bytes as sent, "
            "county, encoding: the X-Sanji-Compression header or '', more: the X-Sanji-More header or '', node: "
            "the answering node, nonce: the request's nonce, path: the request's path, to: the requesting node, "
            "v: 1}; answer_header (X-Sanji-Answer) = hex Ed25519(seed of t1, signing_message)."
        ),
        "county": COUNTY,
        "answers": answered,
    }
    root = keys["county"]
    answer = {
        "county": COUNTY,
        "county_name": NAMES["county"],
        "division": COUNTY + "101201",
        "name": NAMES["v11"],
        "node": "v11",
        "parent": "t1",
        "parent_key": keys["t1"].public.hex,
        "pubkey": keys["v11"].public.hex,
        "role": "village",
        "root_key": root.public.hex,
        "root_node": "county",
    }
    signed = answers.sign_enrol_answer(root, answer, TOKEN_ID)
    out["enrol_answer"] = {
        "description": (
            "The county's answer to v11's enrolment with token id ABCDEFGH (protocol.md §10.3): the JSON object "
            "'answer' plus 'sig'. signing_message = b'sanji/enrol-answer/v1\\n' || canonical {answer: every "
            "field but sig and county_feed, token: the token id, v: 1}; sig = hex Ed25519(county root seed, "
            "signing_message). The new node checks it with the root key whose fingerprint its token carries."
        ),
        "token_id": TOKEN_ID,
        "answer": signed,
        "signing_message_hex": answers.enrol_answer_message(answer, TOKEN_ID).hex(),
    }

    # -- heads inside a commit ---------------------------------------------------------
    sizes = [6000, 6000, 4384, 1, 20000, 100, 16384, 16385, 50]
    out["head_positions"] = {
        "description": (
            "Where an author signs heads inside one commit (protocol.md §3.4), for entries of these wire sizes "
            "(15 + kind + key + body bytes each): walking the entries in order with run = the bytes since the "
            "last head, before adding one of size n, if run > 0 and run + n > span, a head follows the entry "
            "before it (run = 0); the last entry always gets one. 'positions' are 0-based entry indexes."
        ),
        "span": HEAD_SPAN_BYTES,
        "sizes": sizes,
        "positions": head_positions(sizes, HEAD_SPAN_BYTES),
    }
    return out


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        same = OUT.exists() and OUT.read_text(encoding="ascii") == text
        print(f"{OUT}: {'up to date' if same else 'DIFFERS from the generator output'}")
        return 0 if same else 1
    OUT.write_text(text, encoding="ascii", newline="\n")
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
