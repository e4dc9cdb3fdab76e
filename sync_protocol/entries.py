"""Feed entries: header, body, hash chain (docs/protocol.md §2).

An entry is a canonical JSON header plus a canonical JSON body:

    header = {"feed","hlc","key","kind","prev","seq","v"}   (canonical bytes)
    entry_hash = SHA-256(b"sanji/entry/v1\\n" ‖ header ‖ SHA-256(body))

`prev` is the hex hash of entry seq-1; for seq 1 it is the feed's genesis hash
SHA-256(b"sanji/genesis/v1\\n" ‖ canonical {"county","feed"}), which binds the
chain to one county and one feed. Authors build entries with `make_entries`;
receivers rebuild headers from the wire fields and hash them
(`rebuild_chain`), verify the signed head, and only then parse bodies
(`parse_body`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from . import canonical
from .errors import ProtocolError
from .feeds import feed_of
from .limits import DEFAULT_LIMITS, Limits

ENTRY_VERSION = 1
ENTRY_TAG = b"sanji/entry/v1\n"
GENESIS_TAG = b"sanji/genesis/v1\n"
HASH_BYTES = 32
_KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")
MAX_KEY_CHARS = 200
MAX_HLC = 2**53 - 1

_sha256 = hashlib.sha256


def genesis_hash(county: str, feed: str) -> bytes:
    """The `prev` of entry 1 of `feed` in `county`."""
    return _sha256(GENESIS_TAG + canonical.encode({"county": county, "feed": feed})).digest()


def entry_hash(header: bytes, body: bytes) -> bytes:
    return _sha256(ENTRY_TAG + header + _sha256(body).digest()).digest()


@dataclass(slots=True)
class Entry:
    """One entry: its fields, its exact body bytes, its hash, and (once parsed) its body value.

    The canonical header is a pure function of the fields; it is spelled out
    when first asked for (`header`) rather than kept with every entry.
    """

    feed: str
    seq: int
    prev: bytes
    hlc: int
    kind: str
    key: str
    body: bytes
    hash: bytes
    value: Any = None
    _header: bytes | None = None

    @property
    def header(self) -> bytes:
        if self._header is None:
            self._header = encode_header(self.feed, self.seq, self.prev, self.hlc, self.kind, self.key)
        return self._header


@dataclass(frozen=True, slots=True)
class Record:
    """What an author wants to append: the entry minus its chain fields."""

    kind: str
    key: str
    body: Any
    hlc: int


@functools.lru_cache(maxsize=1024)
def _kind_ok(kind: str) -> bool:
    return _KIND.fullmatch(kind) is not None


def _check_fields(hlc: object, kind: object, key: object) -> None:
    if type(hlc) is not int or not 0 <= hlc <= MAX_HLC:
        raise ProtocolError(f"entry hlc {hlc!r} is not an integer from 0 to 2^53-1")
    if type(kind) is not str or not _kind_ok(kind):
        raise ProtocolError(
            f"entry kind {kind!r} is not valid", hint="use a-z, 0-9, '_' and '.', starting with a letter"
        )
    if type(key) is not str or len(key) > MAX_KEY_CHARS:
        raise ProtocolError(f"entry key must be a string of at most {MAX_KEY_CHARS} characters")


def _key_json(key: str) -> bytes:
    """The key as it appears in a canonical header (checked: UTF-8, and NFC as written)."""
    try:
        out = orjson.dumps(key)
    except TypeError as e:
        raise ProtocolError(f"entry key {key!r} is not valid Unicode text") from e
    if not out.isascii() and not unicodedata.is_normalized("NFC", out.decode("utf-8")):
        raise ProtocolError(f"entry key {key!r} is not in Unicode NFC form")
    return out


def encode_header(feed: str, seq: int, prev: bytes, hlc: int, kind: str, key: str) -> bytes:
    """Canonical header bytes, after checking the fields an author or a wire controls.

    Spelled out rather than built by a JSON encoder (this is the hot path); a
    test proves it equals `canonical.encode` of the header object. `feed` must
    already be a valid feed id (ASCII, no escapes needed); `kind` is checked here.
    """
    _check_fields(hlc, kind, key)
    if type(seq) is not int or not 1 <= seq <= MAX_HLC:
        raise ProtocolError(f"entry seq {seq!r} is not a positive integer")
    return b'{"feed":"%b","hlc":%d,"key":%b,"kind":"%b","prev":"%b","seq":%d,"v":%d}' % (
        feed.encode("ascii"),
        hlc,
        _key_json(key),
        kind.encode("ascii"),
        prev.hex().encode("ascii"),
        seq,
        ENTRY_VERSION,
    )


def make_entries(
    county: str,
    feed: str,
    last_seq: int,
    last_hash: bytes | None,
    records: Iterable[Record],
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Entry]:
    """Chain `records` onto a feed whose head is (`last_seq`, `last_hash`)."""
    feed_of(feed)
    prev = last_hash if last_seq else genesis_hash(county, feed)
    if prev is None or len(prev) != HASH_BYTES:
        raise ProtocolError("the previous head hash is missing or not 32 bytes")
    out = []
    seq = last_seq
    for rec in records:
        seq += 1
        body = canonical.encode(rec.body, limits=limits, max_bytes=limits.max_body_bytes)
        header = encode_header(feed, seq, prev, rec.hlc, rec.kind, rec.key)
        h = entry_hash(header, body)
        out.append(Entry(feed, seq, prev, rec.hlc, rec.kind, rec.key, body, h, rec.body, header))
        prev = h
    return out


def chain_hashes(feed: str, seq: int, prev: bytes, items: Iterable[tuple[int, str, str, bytes]]) -> list[bytes]:
    """The hash of each entry rebuilt from wire fields (hlc, kind, key, body), in order.

    Each header is canonical by construction; its `prev` is the hash just
    computed for the entry before, so the chain is checked by the signed head
    that covers the last hash. No Entry objects are made: a verification
    worker needs only the hashes.
    """
    sha = hashlib.sha256
    out = []
    for hlc, kind, key, body in items:
        prev = sha(ENTRY_TAG + encode_header(feed, seq, prev, hlc, kind, key) + sha(body).digest()).digest()
        out.append(prev)
        seq += 1
    return out


def entries_from(
    feed: str, seq: int, prev: bytes, items: Iterable[tuple[int, str, str, bytes]], hashes: Iterable[bytes]
) -> list[Entry]:
    """Entries from wire fields and the hashes `chain_hashes` computed for them."""
    out = []
    for (hlc, kind, key, body), h in zip(items, hashes, strict=True):
        out.append(Entry(feed, seq, prev, hlc, kind, key, body, h))
        prev = h
        seq += 1
    return out


def rebuild_chain(feed: str, seq: int, prev: bytes, items: Iterable[tuple[int, str, str, bytes]]) -> list[Entry]:
    """Entries from wire fields (hlc, kind, key, body), rebuilding each header and hash."""
    items = list(items)
    return entries_from(feed, seq, prev, items, chain_hashes(feed, seq, prev, items))


def parse_body(entry: Entry, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode and check the canonical body of a received entry."""
    entry.value = canonical.decode(
        entry.body, limits=limits, max_bytes=limits.max_body_bytes, what=f"body of {entry.feed}#{entry.seq}"
    )
    return entry.value
