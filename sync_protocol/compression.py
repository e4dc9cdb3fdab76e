"""Compressed request and response bodies, with a bound on what they expand to.

Pages travel zlib-compressed (RFC 1950), marked `X-Sanji-Compression: deflate`. A
receiver never inflates more than `max_bytes`: a small body that would expand
past it (a "zip bomb") is refused before the memory is spent.
"""

from __future__ import annotations

import zlib

from .errors import ProtocolError

HEADER = "X-Sanji-Compression"
ENCODING = "deflate"
LEVEL = 6


def compress(data: bytes, level: int = LEVEL) -> bytes:
    return zlib.compress(data, level)


def decompress(data: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, max_bytes)
    except zlib.error as e:
        raise ProtocolError(f"compressed body is damaged: {e}", hint="send it again") from e
    if d.unconsumed_tail:
        raise ProtocolError(f"compressed body expands to more than {max_bytes} bytes", hint="send smaller pages")
    if not d.eof:
        raise ProtocolError("compressed body is truncated", hint="send it again")
    if d.unused_data:
        raise ProtocolError("compressed body has stray bytes after its end")
    return out
