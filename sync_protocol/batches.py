"""Batch and page framing (docs/protocol.md §4).

    batch := "SJB1" u32 mlen meta u32 n entry{n} u32 slen head
    meta  := canonical {"feed","prev","seq","v"}        feed, prev hash of the first entry, its seq
    entry := u64 hlc u8 klen kind u16 ylen key u32 blen body
    page  := "SJP1" u32 m (u32 len batch){m}

Integers are unsigned big-endian. A batch is a run of consecutive entries of
one feed that ends at a signed head; a page carries batches in one request or
response. The wire does not repeat what the receiver can compute: each entry's
canonical header (feed, seq, prev, hlc, kind, key, v) is rebuilt from the meta,
the position and the previous entry's hash, so it is canonical by
construction and a flipped bit anywhere breaks the chain to the signed head.
Every length is checked against the limits and the bytes left before use; the
stored body bytes are spliced in as they are.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import canonical
from .entries import HASH_BYTES
from .errors import ProtocolError
from .feeds import feed_of
from .limits import DEFAULT_LIMITS, Limits

BATCH_MAGIC = b"SJB1"
PAGE_MAGIC = b"SJP1"
BATCH_VERSION = 1
_U32 = struct.Struct(">I")
_ENTRY_FIXED = struct.Struct(">QB")  # hlc, kind length
_U16 = struct.Struct(">H")
_pack = _U32.pack
_unpack_from = _U32.unpack_from
_META_FIELDS = frozenset({"feed", "prev", "seq", "v"})
ENTRY_OVERHEAD = 15  # framing bytes per entry besides kind, key and body
BATCH_OVERHEAD = 1024  # bound on a batch's framing, meta and signed head, and its length prefix in a page
PAGE_OVERHEAD = 8  # a page's magic and batch count


WireEntry = tuple[int, str, str, bytes]  # hlc, kind, key, body


@dataclass(slots=True)
class RawBatch:
    """A framed batch split into its parts; nothing verified yet."""

    feed: str
    seq: int
    prev: bytes
    entries: list[WireEntry]
    head: bytes
    size: int
    body_at: list[int] = field(default_factory=list)  # where each entry's body starts in the batch bytes


def entry_wire_size(kind: str, key: str, body: bytes) -> int:
    return ENTRY_OVERHEAD + len(kind) + len(key.encode("utf-8")) + len(body)


def encode_batch(
    feed: str,
    seq: int,
    prev: bytes,
    entries: Iterable[tuple[int, str, str, bytes]],
    head: bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Frame entries (hlc, kind, key, body) of `feed` from `seq`, whose first `prev` is given.

    Refuses what `decode_batch` would refuse for its size (§7), so a sender
    never produces a batch its receiver must reject.
    """
    meta = canonical.encode({"feed": feed, "prev": prev.hex(), "seq": seq, "v": BATCH_VERSION})
    items = list(entries)
    if not 1 <= len(items) <= limits.max_entries_per_batch:
        raise ProtocolError(f"a batch holds 1 to {limits.max_entries_per_batch} entries, not {len(items)}")
    _bound(len(meta), limits.max_header_bytes, "batch meta")
    _bound(len(head), limits.max_head_bytes, "signed head")
    parts = [BATCH_MAGIC, _pack(len(meta)), meta, _pack(len(items))]
    bmax = limits.max_body_bytes
    for hlc, kind, key, body in items:
        k, y = kind.encode("ascii"), key.encode("utf-8")
        if len(body) > bmax or len(k) > 255 or len(y) > 65535:
            raise ProtocolError(f"entry body, kind or key is too large for a batch (body {len(body)} bytes of {bmax})")
        parts += (_ENTRY_FIXED.pack(hlc, len(k)), k, _U16.pack(len(y)), y, _pack(len(body)), body)
    parts += (_pack(len(head)), head)
    out = b"".join(parts)
    _bound(len(out), limits.max_batch_bytes, "batch")
    return out


def _bound(n: int, limit: int, what: str) -> None:
    if n > limit:
        raise ProtocolError(f"{what} is {n} bytes, more than the limit of {limit}")


class _Cursor:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.end = data, 0, len(data)

    def need(self, n: int, what: str) -> None:
        if self.pos + n > self.end:
            raise ProtocolError(f"batch is truncated inside {what} ({n} bytes needed, {self.end - self.pos} left)")

    def u32(self, what: str) -> int:
        self.need(4, what)
        n: int = _unpack_from(self.data, self.pos)[0]
        self.pos += 4
        return n

    def take(self, n: int, limit: int, what: str) -> bytes:
        _bound(n, limit, what)
        self.need(n, what)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _meta(data: bytes, limits: Limits) -> tuple[str, int, bytes]:
    m = canonical.decode(data, limits=limits, max_bytes=limits.max_header_bytes, what="batch meta")
    if type(m) is not dict or m.keys() != _META_FIELDS:
        raise ProtocolError("batch meta must have exactly the fields feed, prev, seq, v")
    if not canonical.is_int(m["v"], BATCH_VERSION):
        raise ProtocolError(f"batch version {m['v']!r} is not supported (this node reads version {BATCH_VERSION})")
    if not isinstance(m["feed"], str) or not canonical.is_int(m["seq"]) or m["seq"] < 1:
        raise ProtocolError("batch meta feed must be a feed id and seq a positive integer")
    feed_of(m["feed"])
    return m["feed"], m["seq"], canonical.hex_bytes(m["prev"], HASH_BYTES, "batch meta prev")


def peek_feed(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """The feed a batch claims, read from its meta alone (nothing else parsed or trusted)."""
    if data[:4] != BATCH_MAGIC:
        raise ProtocolError("not a batch (bad magic); this node reads batch format SJB1")
    c = _Cursor(data)
    c.pos = 4
    feed, _, _ = _meta(c.take(c.u32("the meta length"), limits.max_header_bytes, "batch meta"), limits)
    return feed


def decode_batch(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> RawBatch:
    if len(data) > limits.max_batch_bytes:
        raise ProtocolError(f"batch is {len(data)} bytes, more than the limit of {limits.max_batch_bytes}")
    if data[:4] != BATCH_MAGIC:
        raise ProtocolError("not a batch (bad magic); this node reads batch format SJB1")
    c = _Cursor(data)
    c.pos = 4
    feed, seq, prev = _meta(c.take(c.u32("the meta length"), limits.max_header_bytes, "batch meta"), limits)
    n = c.u32("the entry count")
    if n == 0 or n > limits.max_entries_per_batch:
        raise ProtocolError(f"batch announces {n} entries; it must hold 1 to {limits.max_entries_per_batch}")
    entries = []
    body_at: list[int] = []
    bmax = limits.max_body_bytes
    unpack_fixed, unpack16 = _ENTRY_FIXED.unpack_from, _U16.unpack_from
    end = c.end
    pos = c.pos
    try:
        for _ in range(n):
            if pos + 9 > end:
                raise ProtocolError("batch is truncated inside an entry")
            hlc, klen = unpack_fixed(data, pos)
            pos += 9
            if pos + klen + 2 > end:
                raise ProtocolError("batch is truncated inside an entry kind")
            kind = data[pos : pos + klen]
            pos += klen
            (ylen,) = unpack16(data, pos)
            pos += 2
            if pos + ylen + 4 > end:
                raise ProtocolError("batch is truncated inside an entry key")
            key = data[pos : pos + ylen]
            pos += ylen
            (blen,) = _unpack_from(data, pos)
            pos += 4
            if blen > bmax:
                raise ProtocolError(f"entry body is {blen} bytes, more than the limit of {bmax}")
            if pos + blen > end:
                raise ProtocolError(
                    f"batch is truncated inside an entry body ({blen} bytes announced, {end - pos} left)"
                )
            entries.append((hlc, kind.decode("ascii"), key.decode("utf-8"), data[pos : pos + blen]))
            body_at.append(pos)
            pos += blen
    except UnicodeDecodeError as e:
        raise ProtocolError(f"entry kind or key is not valid text: {e}") from e
    c.pos = pos
    head = c.take(c.u32("the head length"), limits.max_head_bytes, "signed head")
    if c.pos != end:
        raise ProtocolError(f"batch has {end - c.pos} stray bytes after its signed head")
    return RawBatch(feed, seq, prev, entries, head, len(data), body_at)


def encode_page(batches: Sequence[bytes], *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Frame batches into a page, refusing what `decode_page` would refuse for its size (§7)."""
    if len(batches) > limits.max_batches_per_page:
        raise ProtocolError(f"a page holds at most {limits.max_batches_per_page} batches, not {len(batches)}")
    parts = [PAGE_MAGIC, _pack(len(batches))]
    for b in batches:
        _bound(len(b), limits.max_batch_bytes, "batch")
        parts += (_pack(len(b)), b)
    out = b"".join(parts)
    _bound(len(out), limits.max_page_bytes, "page")
    return out


def decode_page_prefix(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> tuple[list[bytes], ProtocolError | None]:
    """The whole batches at the start of a page, and the error that ended it.

    A page cut short in transit still delivers the batches before the cut;
    the caller applies those and reports the error for the rest.
    """
    if len(data) > limits.max_page_bytes:
        return [], ProtocolError(f"page is {len(data)} bytes, more than the limit of {limits.max_page_bytes}")
    if data[:4] != PAGE_MAGIC:
        return [], ProtocolError("not a page of batches (bad magic); this node reads page format SJP1")
    c = _Cursor(data)
    c.pos = 4
    out: list[bytes] = []
    try:
        m = c.u32("the batch count")
        if m > limits.max_batches_per_page:
            raise ProtocolError(f"page announces {m} batches, more than the limit of {limits.max_batches_per_page}")
        for i in range(m):
            out.append(
                c.take(c.u32(f"the length of batch {i + 1}"), limits.max_batch_bytes, f"batch {i + 1} of the page")
            )
    except ProtocolError as e:
        return out, e
    if c.pos != c.end:
        return out, ProtocolError(f"page has {c.end - c.pos} stray bytes after its last batch")
    return out, None


def decode_page(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> list[bytes]:
    """Split a page into batch byte strings (each still to be decoded)."""
    out, error = decode_page_prefix(data, limits=limits)
    if error is not None:
        raise error
    return out
