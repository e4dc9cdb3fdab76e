"""Signed feed heads (docs/protocol.md §3).

After each local commit the author signs `(county, feed, seq, hash)`, and
also inside a commit wherever `head_positions` says (a head at least every
`HEAD_SPAN_BYTES` of entry wire bytes), so that no run between two heads, hence
no batch and no page, must be larger than that:

    message = b"sanji/head/v1\\n" ‖ canonical {"county","feed","hash","seq","v"}
    wire    = canonical {"county","feed","hash","seq","sig","v"}

The domain tag and the county id keep a head from being taken for any other
signed structure, or for a head in another county.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import canonical
from .entries import HASH_BYTES
from .errors import ProtocolError, VerificationError
from .feeds import feed_of
from .keys import PublicKey, SigningKey, signature_from_hex
from .limits import DEFAULT_LIMITS, Limits

HEAD_VERSION = 1
HEAD_SPAN_BYTES = 16 * 1024
"""An author signs a head before the entries since its last head in a commit pass this many wire bytes (§3.4)."""
HEAD_TAG = b"sanji/head/v1\n"
_FIELDS = frozenset({"county", "feed", "hash", "seq", "sig", "v"})


@dataclass(frozen=True, slots=True)
class SignedHead:
    county: str
    feed: str
    seq: int
    hash: bytes
    sig: bytes

    def message(self) -> bytes:
        return signing_message(self.county, self.feed, self.seq, self.hash)

    def encode(self) -> bytes:
        return canonical.encode(
            {
                "county": self.county,
                "feed": self.feed,
                "hash": self.hash.hex(),
                "seq": self.seq,
                "sig": self.sig.hex(),
                "v": HEAD_VERSION,
            }
        )

    def verify(self, key: PublicKey) -> None:
        key.verify(self.sig, self.message())


def signing_message(county: str, feed: str, seq: int, digest: bytes) -> bytes:
    return HEAD_TAG + canonical.encode(
        {"county": county, "feed": feed, "hash": digest.hex(), "seq": seq, "v": HEAD_VERSION}
    )


def sign_head(key: SigningKey, county: str, feed: str, seq: int, digest: bytes) -> SignedHead:
    return SignedHead(county, feed, seq, digest, key.sign(signing_message(county, feed, seq, digest)))


def decode_head(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SignedHead:
    d = canonical.decode(data, limits=limits, max_bytes=limits.max_head_bytes, what="signed head")
    if type(d) is not dict or d.keys() != _FIELDS:
        raise ProtocolError("signed head must have exactly the fields county, feed, hash, seq, sig, v")
    if not canonical.is_int(d["v"], HEAD_VERSION):
        raise ProtocolError(f"signed head version {d['v']!r} is not supported (this node reads {HEAD_VERSION})")
    if not isinstance(d["county"], str) or not isinstance(d["feed"], str):
        raise ProtocolError("signed head county and feed must be strings")
    feed_of(d["feed"])
    if not canonical.is_int(d["seq"]) or d["seq"] < 1:
        raise ProtocolError("signed head seq is not a positive integer")
    digest = canonical.hex_bytes(d["hash"], HASH_BYTES, "signed head hash")
    try:
        sig = signature_from_hex(d["sig"])
    except ProtocolError as e:
        raise VerificationError(f"signed head signature is malformed: {e.message}") from e
    return SignedHead(d["county"], d["feed"], d["seq"], digest, sig)


def head_positions(sizes: Sequence[int], span: int = HEAD_SPAN_BYTES) -> list[int]:
    """Where an author signs heads in one commit: the 0-based indexes of the entries a head follows.

    `sizes` are the wire sizes of the commit's entries (`batches.entry_wire_size`:
    15 + kind + key + body bytes). Greedy, in order: before adding an entry that
    would take the run since the last head past `span` (while that run is not
    empty), a head is signed at the entry before it; the last entry always gets
    one. Every run between two heads is then at most `span` bytes, or one single
    entry larger than that.
    """
    out: list[int] = []
    run = 0
    for i, n in enumerate(sizes):
        if run and run + n > span:
            out.append(i - 1)
            run = 0
        run += n
    if sizes:
        out.append(len(sizes) - 1)
    return out
