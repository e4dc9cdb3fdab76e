"""Ed25519 keys: generation, key files, weak public keys, strict signatures."""

from __future__ import annotations

import pytest

from sync_protocol import curve
from sync_protocol.errors import KeyFileError, VerificationError
from sync_protocol.keys import PublicKey, SigningKey

P, L = curve.P, curve.L


def enc(n: int) -> bytes:
    return n.to_bytes(32, "little")


# Small-order points (libsodium's blocklist) and a non-canonical alias of the identity.
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity (order 1)
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2 (y = -1)
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4, the other x
    "0100000000000000000000000000000000000000000000000000000000000080",  # identity with the sign bit set (x = 0): non-canonical
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
]


def test_generate_sign_verify() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"message")
    key.public.verify(sig, b"message")
    with pytest.raises(VerificationError, match="does not verify"):
        key.public.verify(sig, b"other message")
    assert PublicKey.from_hex(key.public.hex) == key.public


@pytest.mark.parametrize("hexkey", SMALL_ORDER)
def test_small_order_and_identity_keys_are_refused(hexkey: str) -> None:
    with pytest.raises(VerificationError, match="weak or invalid"):
        PublicKey.from_hex(hexkey)


def test_non_canonical_y_is_refused() -> None:
    # y = p + 1 encodes the same point as y = 1 (the identity) but is not canonical
    with pytest.raises(VerificationError, match=r"non-canonical encoding \(y ≥ p\)"):
        PublicKey.from_bytes(enc(P + 1))
    # y = p + 2 (non-canonical alias of y = 2)
    with pytest.raises(VerificationError, match="non-canonical"):
        PublicKey.from_bytes(enc(P + 2))


def test_point_off_the_curve_is_refused() -> None:
    # y = 2 has no x on edwards25519
    with pytest.raises(VerificationError, match="not a point on the curve"):
        PublicKey.from_bytes(enc(2))


def test_mixed_order_key_is_refused() -> None:
    """A real public key plus an order-8 point: verifies under OpenSSL for some messages, refused here."""
    good = curve.decode_point(SigningKey.from_seed(b"\x01" * 32).public.raw)
    torsion = curve.decode_point(bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
    x, y, z, _ = curve._add(good, torsion)
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    raw = enc(y | ((x & 1) << 255))
    with pytest.raises(VerificationError, match="torsion"):
        PublicKey.from_bytes(raw)


def test_wrong_length_key() -> None:
    with pytest.raises(VerificationError, match="32 bytes"):
        PublicKey.from_bytes(b"\x01" * 31)


def test_malleated_and_zero_signatures_are_refused() -> None:
    key = SigningKey.from_seed(b"\x07" * 32)
    sig = key.sign(b"head")
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + L).to_bytes(32, "little")
    with pytest.raises(VerificationError, match="malleated"):
        key.public.verify(malleated, b"head")
    with pytest.raises(VerificationError, match="does not verify"):
        key.public.verify(bytes(64), b"head")
    with pytest.raises(VerificationError, match="64 bytes"):
        key.public.verify(sig[:63], b"head")


def test_key_files_plain_and_encrypted() -> None:
    key = SigningKey.from_seed(b"\x09" * 32)
    plain = key.to_pem()
    assert b"BEGIN PRIVATE KEY" in plain
    assert SigningKey.from_pem(plain).public == key.public
    locked = key.to_pem("代办员口令".encode())
    assert b"ENCRYPTED" in locked
    assert SigningKey.from_pem(locked, "代办员口令".encode()).public == key.public
    with pytest.raises(KeyFileError, match="cannot decrypt"):
        SigningKey.from_pem(locked, b"wrong")
    with pytest.raises(KeyFileError, match="encrypted"):
        SigningKey.from_pem(locked)
    with pytest.raises(KeyFileError, match="not encrypted"):
        SigningKey.from_pem(plain, b"pass")
    with pytest.raises(KeyFileError, match="not a PEM"):
        SigningKey.from_pem(b"garbage")
