"""Limits on receipt equal the encoder's (docs/protocol.md §7, issue 12 point 5).

For each limit and each decoder: a value at the limit is accepted, one unit
over is refused with ProtocolError (or its subclass for bundles), and the
encoder refuses the same value, so an honest sender never produces what a
receiver must reject. Where a valid structure cannot reach the protocol's own
number (a batch meta of exactly 2,048 bytes), the limit is set to the exact
size of a real structure, which tests the same comparison.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import orjson
import pytest

from sync_protocol import canonical, enrolment, session
from sync_protocol.batches import decode_batch, decode_page, encode_batch, encode_page
from sync_protocol.bundle import MAX_TRAILER_BYTES, BundleWriter, check_bundle
from sync_protocol.entries import Record, encode_header, entry_hash, genesis_hash, make_entries
from sync_protocol.errors import BundleError, ProtocolError
from sync_protocol.heads import decode_head, sign_head
from sync_protocol.limits import DEFAULT_LIMITS, Limits
from sync_protocol.verify import Status

from .network import COUNTY_CODE, UNBOUNDED, Network, seeded_key

L = DEFAULT_LIMITS
S = L.max_string_bytes
N = L.max_container_items
KEY = seeded_key("v11")
FEED = "v11/up"


def refused(fn: Any, *args: Any, match: str | None = None, **kw: Any) -> None:
    with pytest.raises(ProtocolError, match=match):
        fn(*args, **kw)


# -- canonical JSON: strings, keys, containers, depth, whole size -----------------------------------------------


def _nest(depth: int) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v]
    return v


AT_LIMIT = {
    "ascii string": "a" * S,
    "CJK string (3 bytes each)": "中" * (S // 3) + "a",
    "4-byte characters": "𠀀" * (S // 4),
    "object key": {"k" * S: 1},
    "array": [0] * N,
    "object": {f"{i:06d}": 0 for i in range(N)},
    "depth": _nest(L.max_depth),
}
OVER_LIMIT = {
    "ascii string": ("a" * (S + 1), "longer than 262144 bytes"),
    "CJK string (3 bytes each)": ("中" * (S // 3) + "ab", "longer than 262144 bytes"),
    "4-byte characters": ("𠀀" * (S // 4) + "a", "longer than 262144 bytes"),
    "object key": ({"k" * (S + 1): 1}, "longer than 262144 bytes"),
    "array": ([0] * (N + 1), "more than 100000 items"),
    "object": ({f"{i:06d}": 0 for i in range(N + 1)}, "more than 100000 items"),
    "depth": (_nest(L.max_depth + 1), "nested deeper than 32"),
}


@pytest.mark.parametrize("name", sorted(AT_LIMIT))
def test_canonical_value_at_the_limit_is_encoded_and_decoded(name: str) -> None:
    value = AT_LIMIT[name]
    data = canonical.encode(value)
    assert canonical.decode(data) == value
    assert canonical.decode_many([data, b"1"], limits=replace(L, max_body_bytes=len(data))) == [value, 1]


@pytest.mark.parametrize("name", sorted(OVER_LIMIT))
def test_canonical_value_one_over_the_limit_is_refused_by_encoder_and_every_decoder(name: str) -> None:
    value, phrase = OVER_LIMIT[name]
    refused(canonical.encode, value, match=phrase)
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)  # the bytes a careless sender would write
    refused(canonical.decode, data, match=phrase)
    body_limits = replace(L, max_body_bytes=len(data))  # the body size is not what refuses it
    refused(canonical.decode_many, [b"1", data], limits=body_limits, match=phrase)
    refused(canonical.prove_many, [b"1", data], limits=body_limits, match=phrase)


def test_decoder_accepted_a_262145_byte_string_and_a_100001_item_array() -> None:
    """The reproduction of issue 12 point 6: the fast path let both through."""
    for data in (orjson.dumps("x" * (S + 1)), orjson.dumps({"x" * (S + 1): 0}), orjson.dumps([0] * (N + 1))):
        refused(canonical.decode, data, match="not canonical")
        refused(canonical.prove_many, [data], limits=UNBOUNDED, match="not canonical")


def test_smaller_limits_are_kept_by_the_fast_path_too() -> None:
    tight = Limits(max_string_bytes=8, max_container_items=3, max_depth=2)
    assert canonical.decode(b'{"abcdefgh":[1,2,3]}', limits=tight) == {"abcdefgh": [1, 2, 3]}
    for bad, phrase in ((b'"abcdefghi"', "longer than 8"), (b"[1,2,3,4]", "more than 3"), (b"[[[1]]]", "deeper")):
        refused(canonical.decode, bad, limits=tight, match=phrase)
        refused(canonical.encode, orjson.loads(bad), limits=tight, match=phrase)


def test_canonical_max_bytes_at_and_over() -> None:
    data = canonical.encode({"a": "x" * 100})
    assert canonical.decode(data, max_bytes=len(data)) == {"a": "x" * 100}
    refused(canonical.decode, data, max_bytes=len(data) - 1, match="more than the limit")
    refused(canonical.encode, {"a": "x" * 100}, max_bytes=len(data) - 1, match="more than the limit")


# -- batches: bodies, entries, meta, head, whole batch -------------------------------------------------------------


def signed_batch(bodies: list[bytes], *, limits: Limits = L) -> bytes:
    """A correctly chained and signed batch of `bodies` (bytes as given), framed under `limits`."""
    prev = genesis_hash(COUNTY_CODE, FEED)
    items = [(1000 + i, "case.open", f"c{i}", b) for i, b in enumerate(bodies)]
    p = prev
    for seq, (hlc, kind, key, body) in enumerate(items, 1):
        p = entry_hash(encode_header(FEED, seq, p, hlc, kind, key), body)
    head = sign_head(KEY, COUNTY_CODE, FEED, len(items), p).encode()
    return encode_batch(FEED, 1, prev, items, head, limits=limits)


def body_of(size: int) -> bytes:
    body = b'{"t":"' + b"x" * (size - 8) + b'"}'
    assert len(body) == size
    return body


def test_batch_body_at_and_over_max_body_bytes() -> None:
    batch = signed_batch([body_of(L.max_body_bytes)])
    assert len(decode_batch(batch).entries[0][3]) == L.max_body_bytes
    refused(signed_batch, [body_of(L.max_body_bytes + 1)], match="too large for a batch")
    over = signed_batch([body_of(L.max_body_bytes + 1)], limits=UNBOUNDED)
    refused(decode_batch, over, match="entry body is 262145 bytes, more than the limit of 262144")


def test_batch_entry_count_at_and_over_max_entries_per_batch() -> None:
    n = L.max_entries_per_batch
    batch = signed_batch([b"0"] * n)
    assert len(decode_batch(batch).entries) == n
    refused(signed_batch, [b"0"] * (n + 1), match="1 to 10000 entries")
    refused(decode_batch, signed_batch([b"0"] * (n + 1), limits=UNBOUNDED), match="announces 10001 entries")


def test_batch_bytes_at_and_over_max_batch_bytes() -> None:
    batch = signed_batch([body_of(L.max_body_bytes)] * 3)
    at = replace(L, max_batch_bytes=len(batch))
    assert len(decode_batch(batch, limits=at).entries) == 3
    assert signed_batch([body_of(L.max_body_bytes)] * 3, limits=at) == batch
    under = replace(L, max_batch_bytes=len(batch) - 1)
    refused(decode_batch, batch, limits=under, match=f"batch is {len(batch)} bytes")
    refused(signed_batch, [body_of(L.max_body_bytes)] * 3, limits=under, match=f"batch is {len(batch)} bytes")


def test_batch_of_the_protocol_maximum_16_mib() -> None:
    """Exactly max_batch_bytes with the default limits, and one byte more."""
    parts = [body_of(L.max_body_bytes)] * (L.max_batch_bytes // L.max_body_bytes)
    extra = len(signed_batch(parts, limits=UNBOUNDED)) - L.max_batch_bytes  # the framing of 64 entries
    parts[-1] = body_of(L.max_body_bytes - extra)
    batch = signed_batch(parts)
    assert len(batch) == L.max_batch_bytes
    assert len(decode_batch(batch).entries) == len(parts)
    parts[-1] = body_of(len(parts[-1]) + 1)
    refused(signed_batch, parts, match="more than the limit of 16777216")
    refused(decode_batch, signed_batch(parts, limits=UNBOUNDED), match="more than the limit of 16777216")


def test_batch_meta_and_head_at_and_over_their_limits() -> None:
    batch = signed_batch([b"0"])
    raw = decode_batch(batch)
    meta_len = len(canonical.encode({"feed": FEED, "prev": raw.prev.hex(), "seq": 1, "v": 1}))
    head_len = len(raw.head)
    at = replace(L, max_header_bytes=meta_len, max_head_bytes=head_len)
    assert decode_batch(batch, limits=at).head == raw.head
    assert decode_head(raw.head, limits=at).seq == 1
    for over, what in (
        (replace(at, max_header_bytes=meta_len - 1), "batch meta"),
        (replace(at, max_head_bytes=head_len - 1), "signed head"),
    ):
        refused(decode_batch, batch, limits=over, match=f"{what} is")
        refused(signed_batch, [b"0"], limits=over, match=f"{what} is")
    refused(decode_head, raw.head, limits=replace(at, max_head_bytes=head_len - 1), match="signed head is")
    assert head_len <= L.max_head_bytes and meta_len <= L.max_header_bytes


def test_body_with_100001_items_is_refused_by_check_batch_and_not_stored(net: Network) -> None:
    """The reproduction of issue 12 point 6: such a body passed check_batch and was stored."""
    t1 = net.nodes["t1"]
    before = (t1.store.vector(), t1.store.count("entries"))
    over = signed_batch([orjson.dumps({"items": [0] * (N + 1)})])
    verdict = t1.store.receive(over)
    assert [o.status for o in verdict.outcomes] == [Status.REJECTED]
    assert "more than 100000 items" in verdict.outcomes[0].reason
    assert (t1.store.vector(), t1.store.count("entries")) == before
    # the author's own store never writes it
    refused(
        make_entries,
        COUNTY_CODE,
        FEED,
        0,
        None,
        [Record("case.open", "c0", {"items": [0] * (N + 1)}, 1000)],
        match="items",
    )
    at = signed_batch([orjson.dumps({"items": [0] * N})])
    assert [o.status for o in t1.store.receive(at).outcomes] == [Status.ACCEPTED]
    assert t1.store.vector()[FEED][0] == 1


# -- pages -------------------------------------------------------------------------------------------------------


def test_page_batch_count_at_and_over_max_batches_per_page() -> None:
    batch = b"SJB1"  # pages are split without decoding their batches
    m = L.max_batches_per_page
    assert len(decode_page(encode_page([batch] * m))) == m
    refused(encode_page, [batch] * (m + 1), match="at most 4096 batches")
    refused(decode_page, encode_page([batch] * (m + 1), limits=UNBOUNDED), match="announces 4097 batches")


def test_page_bytes_at_and_over_max_page_bytes() -> None:
    """Four batches of 16 MiB less their framing make a page of exactly 64 MiB."""
    size = L.max_page_bytes // 4 - 4
    batches = [bytes(size)] * 3 + [bytes(size - 8)]
    page = encode_page(batches)
    assert len(page) == L.max_page_bytes
    assert [len(b) for b in decode_page(page)] == [size] * 3 + [size - 8]
    batches[-1] = bytes(size - 7)
    refused(encode_page, batches, match="page is 67108865 bytes")
    refused(decode_page, encode_page(batches, limits=UNBOUNDED), match="page is 67108865 bytes")


def test_page_with_a_batch_over_max_batch_bytes() -> None:
    at = replace(L, max_batch_bytes=100)
    assert decode_page(encode_page([bytes(100)], limits=at), limits=at) == [bytes(100)]
    refused(encode_page, [bytes(101)], limits=at, match="batch is 101 bytes")
    refused(decode_page, encode_page([bytes(101)], limits=UNBOUNDED), limits=at, match="101 bytes, more than")


# -- bundles -----------------------------------------------------------------------------------------------------


def bundle(limits: Limits = L, *, batches: tuple[bytes, ...] = (), vector_feeds: int = 1) -> bytes:
    out = io.BytesIO()
    vector = {f"v{i}/up": (1, bytes(32)) for i in range(vector_feeds)}
    w = BundleWriter(out, key=KEY, county=COUNTY_CODE, source="v11", vector=vector, created=1, limits=limits)
    for b in batches:
        w.add(b)
    w.finish()
    return out.getvalue()


def header_len(data: bytes) -> int:
    return int.from_bytes(data[13:17], "big")


def test_bundle_header_at_and_over_max_bundle_header_bytes() -> None:
    data = bundle()
    at = replace(L, max_bundle_header_bytes=header_len(data))
    assert check_bundle(io.BytesIO(data), limits=at).header.source == "v11"
    assert bundle(at) == data
    over = replace(at, max_bundle_header_bytes=header_len(data) - 1)
    with pytest.raises(BundleError, match="exceeds the limit"):
        check_bundle(io.BytesIO(data), limits=over)
    refused(bundle, over, match="bundle header is")


def test_bundle_header_with_too_many_vector_items_is_refused() -> None:
    """A header within its byte limit whose vector has more items than a JSON object may hold."""
    tight = replace(L, max_container_items=6)  # the header object itself has 6 fields
    assert len(check_bundle(io.BytesIO(bundle(vector_feeds=6)), limits=tight).header.vector) == 6
    with pytest.raises(BundleError, match="more than 6 items"):
        check_bundle(io.BytesIO(bundle(vector_feeds=7)), limits=tight)
    refused(bundle, tight, vector_feeds=7, match="more than 6 items")


def test_bundle_batch_frame_at_and_over_max_batch_bytes() -> None:
    at = replace(L, max_batch_bytes=64)
    assert check_bundle(io.BytesIO(bundle(at, batches=(bytes(64),))), limits=at).batches == 1
    refused(bundle, at, batches=(bytes(65),), match="batch is 65 bytes")
    with pytest.raises(BundleError, match="65 bytes, more than the limit of 64"):
        check_bundle(io.BytesIO(bundle(UNBOUNDED, batches=(bytes(65),))), limits=at)


def test_bundle_end_frame_at_and_over_its_limit() -> None:
    data = bundle()
    end = data.rindex(b"\x00" + len(data[data.rindex(b'{"batches"') :]).to_bytes(4, "big"))
    trailer = data[end + 5 :]

    def with_trailer(extra: int) -> bytes:
        """The bundle with its end frame padded by a field "z" to MAX_TRAILER_BYTES + extra bytes."""
        padded = trailer[:-1] + b',"z":"' + b"x" * (MAX_TRAILER_BYTES - len(trailer) - 7 + extra) + b'"}'
        assert len(padded) == MAX_TRAILER_BYTES + extra
        return data[:end] + b"\x00" + len(padded).to_bytes(4, "big") + padded

    with pytest.raises(BundleError, match="must have exactly batches, bytes, sha256, sig"):  # read, then its fields
        check_bundle(io.BytesIO(with_trailer(0)))
    with pytest.raises(BundleError, match="end frame of 1025 bytes is too large"):
        check_bundle(io.BytesIO(with_trailer(1)))


# -- session and enrolment messages ------------------------------------------------------------------------------


def _hello_of_size(size: int, field: str = "pad") -> bytes:
    """A canonical hello of exactly `size` bytes (unknown fields are ignored by the decoder)."""
    base = {"digest": "00" * 32, "v": 1, field: []}
    empty = len(canonical.encode(base))
    chunk = S - 2  # each item "xxx…" is S bytes with its quotes, plus a comma
    n, rest = divmod(size - empty + 1, chunk + 3)
    items = ["x" * chunk] * n
    if rest:
        items.append("x" * (rest - 3))
    data = canonical.encode({**base, field: items})
    assert len(data) == size, (len(data), size)
    return data


def test_session_message_at_and_over_its_16_mib_limit() -> None:
    assert session.Hello.decode(_hello_of_size(session.MAX_MESSAGE_BYTES)).digest == bytes(32)
    refused(session.Hello.decode, _hello_of_size(session.MAX_MESSAGE_BYTES + 1), match="more than the limit")


SESSION_DECODERS = {
    "hello": (session.Hello.decode, {"digest": "00" * 32, "v": 1}),
    "hello reply": (session.HelloReply.decode, {"match": True, "own": {}, "v": 1, "vector": None}),
    "pull request": (session.PullRequest.decode, {"max_bytes": 1024, "v": 1, "vector": {}}),
    "push reply": (session.PushReply.decode, {"results": [], "v": 1, "vector": {}}),
}


@pytest.mark.parametrize("name", sorted(SESSION_DECODERS))
def test_session_decoders_keep_the_canonical_limits(name: str) -> None:
    decode, msg = SESSION_DECODERS[name]
    decode(canonical.encode({**msg, "pad": ["x" * S, [0] * N]}))  # at the limits
    for pad, phrase in ((["x" * (S + 1)], "longer than 262144"), ([[0] * (N + 1)], "more than 100000 items")):
        refused(decode, orjson.dumps({**msg, "pad": pad}, option=orjson.OPT_SORT_KEYS), match=phrase)


def test_enrol_message_at_and_over_16_kib() -> None:
    req = enrolment.EnrolRequest.make(
        enrolment.Token.new(COUNTY_CODE, "430321101201", KEY.public, bytes(21)), seeded_key("new")
    )
    base = orjson.loads(enrolment.encode_message(req, None))
    pad = 16384 - len(canonical.encode({**base, "zz": ""}))
    at = canonical.encode({**base, "zz": "x" * pad})
    assert len(at) == 16384
    with pytest.raises(ProtocolError, match="exactly enrol, since and v=1"):  # read whole, then refused for its shape
        enrolment.decode_message(at)
    refused(enrolment.decode_message, canonical.encode({**base, "zz": "x" * (pad + 1)}), match="more than the limit")
    assert enrolment.decode_message(enrolment.encode_message(req, None))[0].node == "430321101201"
    padded = replace(req, pubkey="ab" * 8192)  # no real request is this large; the writer refuses it all the same
    refused(enrolment.encode_message, padded, None, match="more than the limit of 16384")
