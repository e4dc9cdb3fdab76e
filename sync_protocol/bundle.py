"""Bundle files: the same batches, carried on a USB stick (docs/protocol.md §6).

    bundle  := "SANJI-BUNDLE" u8 version u32 hlen header frame* end
    header  := canonical {"county","created","source","target","v","vector"}
    frame   := 0x01 u32 len batch
    end     := 0x00 u32 len trailer
    trailer := canonical {"batches","bytes","sha256","sig"}

`sha256` covers every byte before the end frame; `sig` is the source node's
Ed25519 signature over b"sanji/bundle/v1\\n" ‖ canonical {"batches","bytes",
"county","sha256","source"}. A reader streams from any object with
`read(n)`, checks each length before it reads, and proves the whole file
(digest, count, signature) before the caller applies anything: a truncated or
altered file is refused as a whole.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from . import canonical
from .errors import BundleError, ProtocolError, SyncError
from .feeds import check_node_id
from .keys import PublicKey, SigningKey, signature_from_hex
from .limits import DEFAULT_LIMITS, Limits
from .planning import Vector, vector_from_wire, vector_to_wire

MAGIC = b"SANJI-BUNDLE"
VERSION = 1
BUNDLE_TAG = b"sanji/bundle/v1\n"
FRAME_BATCH, FRAME_END = 1, 0
_U32 = struct.Struct(">I")
_HEADER_FIELDS = frozenset({"county", "created", "source", "target", "v", "vector"})
_TRAILER_FIELDS = frozenset({"batches", "bytes", "sha256", "sig"})
MAX_TRAILER_BYTES = 1024


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class BundleHeader:
    county: str
    source: str
    target: str | None
    created: int
    vector: Vector


@dataclass(frozen=True)
class BundleInfo:
    header: BundleHeader
    batches: int
    size: int
    sha256: bytes
    sig: bytes

    def signing_message(self) -> bytes:
        return _message(self.header.county, self.header.source, self.batches, self.size, self.sha256)

    def verify(self, key: PublicKey, *, name: str = "bundle") -> None:
        try:
            key.verify(self.sig, self.signing_message())
        except SyncError as e:
            raise BundleError(
                f"{name}: bundle signature by {self.header.source} does not verify: {e.message}",
                hint="the file was altered or was not made by that node; ask the source node for a new bundle",
            ) from e


def _message(county: str, source: str, batches: int, size: int, digest: bytes) -> bytes:
    body = {"batches": batches, "bytes": size, "county": county, "sha256": digest.hex(), "source": source}
    return BUNDLE_TAG + canonical.encode(body)


class BundleWriter:
    """Write a bundle to a binary stream: header, `add(batch)` …, `finish()`."""

    def __init__(
        self,
        out: BinaryIO,
        *,
        key: SigningKey,
        county: str,
        source: str,
        vector: Vector,
        created: int,
        target: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._out, self._key, self._county, self._source = out, key, county, source
        self._limits = limits
        self._sha = hashlib.sha256()
        self._size = 0
        self.batches = 0
        header = canonical.encode(
            {
                "county": county,
                "created": created,
                "source": source,
                "target": target,
                "v": VERSION,
                "vector": vector_to_wire(vector),
            },
            limits=limits,
        )
        if len(header) > limits.max_bundle_header_bytes:
            raise ProtocolError(
                f"bundle header is {len(header)} bytes, more than the limit of {limits.max_bundle_header_bytes}",
                hint="cut the bundle for fewer feeds",
            )
        self._write(MAGIC + bytes([VERSION]) + _U32.pack(len(header)) + header)

    def _write(self, data: bytes) -> None:
        self._sha.update(data)
        self._size += len(data)
        self._out.write(data)

    def add(self, batch: bytes) -> None:
        if len(batch) > self._limits.max_batch_bytes:
            raise ProtocolError(f"batch is {len(batch)} bytes, more than the limit of {self._limits.max_batch_bytes}")
        self._write(bytes([FRAME_BATCH]) + _U32.pack(len(batch)) + batch)
        self.batches += 1

    def finish(self) -> int:
        """Write the signed end frame; return the bundle's total size."""
        digest = self._sha.digest()
        sig = self._key.sign(_message(self._county, self._source, self.batches, self._size, digest))
        trailer = canonical.encode(
            {"batches": self.batches, "bytes": self._size, "sha256": digest.hex(), "sig": sig.hex()}
        )
        self._out.write(bytes([FRAME_END]) + _U32.pack(len(trailer)) + trailer)
        return self._size + 5 + len(trailer)


class _Reader:
    def __init__(self, src: Readable, name: str) -> None:
        self.src, self.name, self.pos = src, name, 0
        self.sha = hashlib.sha256()

    def exact(self, n: int, what: str, hashed: bool = True) -> bytes:
        data = self.src.read(n)
        if len(data) != n:
            raise BundleError(
                f"{self.name}: the file ends after {self.pos + len(data)} bytes, inside {what}; it was cut short",
                hint="copy the bundle again from the source node",
            )
        self.pos += n
        if hashed:
            self.sha.update(data)
        return data


def _header(data: bytes, name: str, limits: Limits) -> BundleHeader:
    try:
        h = canonical.decode(data, limits=limits, max_bytes=limits.max_bundle_header_bytes, what="bundle header")
        if type(h) is not dict or h.keys() != _HEADER_FIELDS:
            raise ProtocolError("bundle header must have exactly county, created, source, target, v, vector")
        if not canonical.is_int(h["v"], VERSION):
            raise ProtocolError(f"bundle header version {h['v']!r} is not supported")
        source = check_node_id(h["source"], "bundle source")
        target = None if h["target"] is None else check_node_id(h["target"], "bundle target")
        if not isinstance(h["county"], str) or not canonical.is_int(h["created"]):
            raise ProtocolError("bundle county must be a string and created an integer")
        return BundleHeader(h["county"], source, target, h["created"], vector_from_wire(h["vector"]))
    except ProtocolError as e:
        raise BundleError(f"{name}: {e.message}", hint=e.hint) from e


def iter_bundle(
    src: Readable, *, name: str = "bundle", limits: Limits = DEFAULT_LIMITS
) -> Iterator[BundleHeader | bytes | BundleInfo]:
    """Stream a bundle: yields its header, then each batch's bytes, then its info.

    The info comes last, after the digest and count have been checked. A caller
    that must not apply anything from a damaged file runs `check_bundle` first.
    """
    r = _Reader(src, name)
    magic = r.exact(len(MAGIC) + 1, "the file signature")
    if magic[:-1] != MAGIC:
        raise BundleError(f"{name} is not a Sanji bundle (it does not start with {MAGIC.decode()})")
    if magic[-1] != VERSION:
        raise BundleError(
            f"{name} is bundle version {magic[-1]}; this program reads version {VERSION}", hint="upgrade Sanji"
        )
    (hlen,) = _U32.unpack(r.exact(4, "the header length"))
    if hlen > limits.max_bundle_header_bytes:
        raise BundleError(f"{name}: header of {hlen} bytes exceeds the limit of {limits.max_bundle_header_bytes}")
    header = _header(r.exact(hlen, "the header"), name, limits)
    yield header
    count = 0
    while True:
        start = r.pos
        kind = r.exact(1, "a frame type", hashed=False)[0]
        (n,) = _U32.unpack(r.exact(4, "a frame length", hashed=False))
        if kind == FRAME_END:
            break
        if kind != FRAME_BATCH:
            raise BundleError(f"{name}: unknown frame type {kind} at byte {start}")
        if n > limits.max_batch_bytes:
            raise BundleError(
                f"{name}: batch at byte {start} is {n} bytes, more than the limit of {limits.max_batch_bytes}"
            )
        r.sha.update(bytes([kind]) + _U32.pack(n))
        batch = r.exact(n, f"batch {count + 1}")
        count += 1
        yield batch
    digest, size = r.sha.digest(), start
    if n > MAX_TRAILER_BYTES:
        raise BundleError(f"{name}: end frame of {n} bytes is too large")
    trailer = r.exact(n, "the end frame", hashed=False)
    try:
        t: Any = canonical.decode(trailer, limits=limits, max_bytes=MAX_TRAILER_BYTES, what="bundle end frame")
        if type(t) is not dict or t.keys() != _TRAILER_FIELDS:
            raise ProtocolError("bundle end frame must have exactly batches, bytes, sha256, sig")
        sig = signature_from_hex(t["sig"])
    except ProtocolError as e:
        raise BundleError(f"{name}: {e.message}") from e
    if src.read(1):
        raise BundleError(f"{name}: there are stray bytes after the end frame")
    if (
        not canonical.is_int(t["batches"], count)
        or not canonical.is_int(t["bytes"], size)
        or t["sha256"] != digest.hex()
    ):
        raise BundleError(
            f"{name} is damaged: its content does not match its end frame "
            f"({count} batches, {size} bytes read; {t['batches']} batches, {t['bytes']} bytes recorded)",
            hint="copy the bundle again from the source node",
        )
    yield BundleInfo(header, count, size, digest, sig)


def check_bundle(src: Readable, *, name: str = "bundle", limits: Limits = DEFAULT_LIMITS) -> BundleInfo:
    """Read a whole bundle and return its info, or raise BundleError."""
    items = iter_bundle(src, name=name, limits=limits)
    info: object = None
    for info in items:  # noqa: B007 - only the last item (the info) is wanted
        pass
    if not isinstance(info, BundleInfo):
        raise BundleError(f"{name} ended without its end frame")
    return info
