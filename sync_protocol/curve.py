"""Edwards25519 point checks that `cryptography` does not make.

OpenSSL (and so `cryptography`) loads any 32 bytes as an Ed25519 public key,
including the identity, small-order points, points with a torsion component
and non-canonical encodings (y ≥ p). Signatures under such keys can be made to
verify for many messages or none, so a key is accepted at enrolment only if it
decodes canonically (RFC 8032 §5.1.3) to a point of prime order L.

This is slow, exact big-integer arithmetic: it runs once per key, not per
signature.
"""

from __future__ import annotations

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
_IDENTITY: _Point = (0, 1, 1, 0)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(k: int, pt: _Point) -> _Point:
    out = _IDENTITY
    while k:
        if k & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out


def _is_identity(pt: _Point) -> bool:
    x, y, z, _ = pt
    return x % P == 0 and (y - z) % P == 0


def decode_point(data: bytes) -> _Point:
    """Decode a 32-byte encoding, raising ValueError if it is not canonical."""
    if len(data) != 32:
        raise ValueError(f"an Ed25519 point is 32 bytes, not {len(data)}")
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        raise ValueError("non-canonical encoding (y ≥ p)")
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x2 = u * pow(v, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        raise ValueError("not a point on the curve")
    if x == 0 and sign:
        raise ValueError("non-canonical encoding (x = 0 with the sign bit set)")
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def check_public_point(data: bytes) -> None:
    """Raise ValueError unless `data` encodes a point of prime order L."""
    pt = decode_point(data)
    if _is_identity(pt):
        raise ValueError("the identity point")
    if _is_identity(_mul(8, pt)):
        raise ValueError("a small-order point")
    if not _is_identity(_mul(L, pt)):
        raise ValueError("a point with a small-order (torsion) component")


def scalar_is_canonical(s: bytes) -> bool:
    """True if the 32-byte little-endian scalar S of a signature is below L."""
    return int.from_bytes(s, "little") < L
