"""Enrolment messages: one-time tokens and the new node's proof of possession (ARCHITECTURE §3).

Pure. A county administrator issues a token for a role, a division code, a
parent and a node id. The token string fits a QR code (upper-case letters,
digits and dots only):

    SJ1.<county>.<node id>.<token id>.<secret>.<root fingerprint>

(the node id in upper case; it is read back in lower case)

The new node generates its key locally and sends an enrol request whose proof
is its signature over b"sanji/enrol/v1\\n" ‖ canonical {"county","node",
"pubkey","token"} (`token` is the token id). The answer names the root key; the
new node accepts it only if its fingerprint (first 10 bytes of SHA-256 of the
raw key, base32) equals the one in the token, so a relay cannot substitute
another root of trust.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from . import canonical
from .errors import ProtocolError, VerificationError
from .feeds import check_node_id
from .keys import PublicKey, SigningKey, signature_from_hex
from .membership import check_county_code

ENROL_TAG = b"sanji/enrol/v1\n"
MAX_MESSAGE_BYTES = 16384  # an enrol message, on writing and on receipt
TOKEN_PREFIX = "SJ1"
_TOKEN = re.compile(r"SJ1\.([0-9]{6})\.([A-Z0-9_-]{1,64})\.([A-Z2-7]{8})\.([A-Z2-7]{26})\.([A-Z2-7]{16})")


def b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def fingerprint(root_key: PublicKey) -> str:
    return b32(hashlib.sha256(root_key.raw).digest()[:10])


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(b"sanji/token/v1\n" + secret.encode("ascii")).digest()


@dataclass(frozen=True)
class Token:
    county: str
    node: str
    token_id: str
    secret: str
    root_fingerprint: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}.{self.county}.{self.node.upper()}.{self.token_id}.{self.secret}.{self.root_fingerprint}"

    @classmethod
    def new(cls, county: str, node: str, root_key: PublicKey, random_bytes: bytes) -> Token:
        """A token from 21 random bytes (5 for the id, 16 for the secret)."""
        if len(random_bytes) != 21:
            raise ProtocolError("a token needs 21 random bytes")
        return cls(county, check_node_id(node), b32(random_bytes[:5]), b32(random_bytes[5:]), fingerprint(root_key))

    @classmethod
    def parse(cls, text: str) -> Token:
        m = _TOKEN.fullmatch(text.strip().upper())
        if m is None:
            raise ProtocolError(
                "这不是注册令牌 (this is not an enrolment token)",
                hint="把县级打印的整个令牌抄全 (copy the whole token the county printed), "
                "例如 SJ1.430321.430321101000.ABCDEFGH.…",
            )
        county, node, token_id, secret, fp = m.groups()
        return cls(county, check_node_id(node.lower()), token_id, secret, fp)


def proof_message(county: str, node: str, pubkey: str, token_id: str) -> bytes:
    return ENROL_TAG + canonical.encode({"county": county, "node": node, "pubkey": pubkey, "token": token_id})


@dataclass(frozen=True)
class EnrolRequest:
    token: Token
    node: str
    pubkey: str
    proof: bytes

    @classmethod
    def make(cls, token: Token, key: SigningKey) -> EnrolRequest:
        pub = key.public.hex
        return cls(token, token.node, pub, key.sign(proof_message(token.county, token.node, pub, token.token_id)))

    def wire(self) -> dict[str, Any]:
        return {"node": self.node, "proof": self.proof.hex(), "pubkey": self.pubkey, "token": str(self.token), "v": 1}

    @classmethod
    def from_wire(cls, msg: Any) -> EnrolRequest:
        if (
            not isinstance(msg, dict)
            or msg.keys() != {"node", "proof", "pubkey", "token", "v"}
            or not canonical.is_int(msg["v"], 1)
        ):
            raise ProtocolError("an enrol request has exactly node, proof, pubkey, token and v=1")
        return cls(
            Token.parse(str(msg["token"])),
            check_node_id(msg["node"]),
            str(msg["pubkey"]),
            signature_from_hex(msg["proof"]),
        )

    def verify(self) -> PublicKey:
        """The new node's key, if it is strong and the proof verifies."""
        key = PublicKey.from_hex(self.pubkey)
        try:
            key.verify(self.proof, proof_message(self.token.county, self.node, self.pubkey, self.token.token_id))
        except VerificationError as e:
            raise VerificationError(
                "the new node did not prove it holds its key", hint="run init again on the new machine"
            ) from e
        return key


def encode_message(enrol: EnrolRequest, since: int | None) -> bytes:
    """The body of POST /api/v1/enroll: the request, and for a relay its head of the county feed."""
    return canonical.encode({"enrol": enrol.wire(), "since": since, "v": 1}, max_bytes=MAX_MESSAGE_BYTES)


def decode_message(data: bytes) -> tuple[EnrolRequest, int | None]:
    msg = canonical.decode(data, max_bytes=MAX_MESSAGE_BYTES, what="enrol message")
    if not isinstance(msg, dict) or msg.keys() != {"enrol", "since", "v"} or not canonical.is_int(msg["v"], 1):
        raise ProtocolError("an enrol message has exactly enrol, since and v=1")
    since = msg["since"]
    if since is not None and (not canonical.is_int(since) or since < 0):
        raise ProtocolError("enrol since must be a seq or null")
    check_county_code(EnrolRequest.from_wire(msg["enrol"]).token.county)
    return EnrolRequest.from_wire(msg["enrol"]), since
