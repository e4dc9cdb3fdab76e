"""Ed25519 node keys: generation, key files, strict public keys, signatures.

Private keys are stored as PKCS#8 PEM, encrypted under a passphrase when one
is given. Public keys travel as 64 lower-case hex characters and are accepted
only when they decode canonically to a point of prime order (see `curve`).
Signatures are 64 bytes; S must be below the group order L, so a malleated
signature (S + L) is rejected even where a library would accept it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import curve
from .canonical import hex_bytes
from .errors import KeyFileError, ProtocolError, VerificationError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


@functools.lru_cache(maxsize=8192)
def _check_point(raw: bytes) -> None:
    """`curve.check_public_point`, once per key (a few ms of big-integer arithmetic; failures are not cached)."""
    curve.check_public_point(raw)


@dataclass(frozen=True)
class PublicKey:
    """A checked Ed25519 public key (never a weak one)."""

    raw: bytes
    _key: Ed25519PublicKey = field(repr=False, compare=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> PublicKey:
        if len(raw) != PUBLIC_KEY_BYTES:
            raise VerificationError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
        try:
            _check_point(raw)
        except ValueError as e:
            raise VerificationError(
                f"weak or invalid Ed25519 public key: {e}",
                hint="generate a fresh key on the node; this one cannot be enrolled",
            ) from e
        return cls(raw, Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        return cls.from_bytes(hex_bytes(text, PUBLIC_KEY_BYTES, "public key"))

    @property
    def hex(self) -> str:
        return self.raw.hex()

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise VerificationError unless `signature` signs `message`."""
        if len(signature) != SIGNATURE_BYTES:
            raise VerificationError(f"a signature is 64 bytes, not {len(signature)}")
        if not curve.scalar_is_canonical(signature[32:]):
            raise VerificationError("signature is malleated (its S is not reduced below the group order)")
        try:
            self._key.verify(signature, message)
        except InvalidSignature as e:
            raise VerificationError("signature does not verify under the author's key") from e


@dataclass(frozen=True)
class SigningKey:
    """A node's private key."""

    _key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from 32 seed bytes (golden vectors, tests)."""
        if len(seed) != 32:
            raise ProtocolError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> PublicKey:
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey.from_bytes(raw)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM; encrypted with the best available scheme under a passphrase."""
        encryption: serialization.KeySerializationEncryption
        if passphrase:
            encryption = serialization.BestAvailableEncryption(passphrase)
        else:
            encryption = serialization.NoEncryption()
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase or None)
        except TypeError as e:
            if passphrase:
                raise KeyFileError("the key file is not encrypted, but a passphrase was given") from e
            raise KeyFileError("the key file is encrypted", hint="give the passphrase the key was saved with") from e
        except (ValueError, UnsupportedAlgorithm) as e:
            if passphrase:
                raise KeyFileError(
                    "cannot decrypt the key file", hint="check the passphrase; the file may also be damaged"
                ) from e
            raise KeyFileError("the key file is not a PEM private key") from e
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError("the key file holds a key that is not Ed25519")
        return cls(key)


def signature_from_hex(text: str) -> bytes:
    return hex_bytes(text, SIGNATURE_BYTES, "signature")
