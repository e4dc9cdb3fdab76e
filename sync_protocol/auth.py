"""Signed requests between nodes (ARCHITECTURE §3), with a nonce and a time window.

A child signs every request to its parent with its node key:

    message = b"sanji/request/v1\\n" ‖ canonical {"body","county","method","node","nonce","path","time","v"}

where `body` is the hex SHA-256 of the request body, `time` is Unix milliseconds
and `nonce` 32 lower-case hex characters. The headers `X-Sanji-Node`,
`X-Sanji-Time`, `X-Sanji-Nonce` and `X-Sanji-Signature` carry them. The parent
refuses a request whose time is outside the window, whose nonce it has seen,
whose node is not enrolled or revoked, or whose signature does not verify.
Pure: the caller passes `now_ms` and the nonce cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from . import canonical
from .errors import AuthorizationError, ProtocolError, VerificationError
from .feeds import check_node_id
from .keys import SigningKey, signature_from_hex
from .membership import Directory, Member

REQUEST_TAG = b"sanji/request/v1\n"
REQUEST_VERSION = 1
H_NODE, H_TIME, H_NONCE, H_SIG = "X-Sanji-Node", "X-Sanji-Time", "X-Sanji-Nonce", "X-Sanji-Signature"
DEFAULT_WINDOW_MS = 5 * 60 * 1000


def signing_message(county: str, node: str, method: str, path: str, body: bytes, time_ms: int, nonce: str) -> bytes:
    return REQUEST_TAG + canonical.encode(
        {
            "body": hashlib.sha256(body).hexdigest(),
            "county": county,
            "method": method.upper(),
            "node": node,
            "nonce": nonce,
            "path": path,
            "time": time_ms,
            "v": REQUEST_VERSION,
        }
    )


def sign_request(
    key: SigningKey, *, county: str, node: str, method: str, path: str, body: bytes, now_ms: int, nonce: bytes
) -> dict[str, str]:
    """The headers that authenticate one request; `nonce` is 16 random bytes from the caller."""
    if len(nonce) != 16:
        raise ProtocolError("a request nonce is 16 random bytes")
    n = nonce.hex()
    sig = key.sign(signing_message(county, node, method, path, body, now_ms, n))
    return {H_NODE: node, H_TIME: str(now_ms), H_NONCE: n, H_SIG: sig.hex()}


class NonceCache:
    """Nonces seen within the window; a replay inside the window is refused, older ones are forgotten."""

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, max_size: int = 200_000) -> None:
        self.window_ms = window_ms
        self.max_size = max_size
        self._seen: OrderedDict[str, int] = OrderedDict()

    def check_and_add(self, nonce: str, now_ms: int) -> None:
        horizon = now_ms - 2 * self.window_ms
        while self._seen and (next(iter(self._seen.values())) < horizon or len(self._seen) >= self.max_size):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise AuthorizationError(
                "this request was already received (replayed nonce)", hint="sign every request afresh"
            )
        self._seen[nonce] = now_ms


@dataclass(frozen=True)
class Caller:
    member: Member

    @property
    def node(self) -> str:
        return self.member.node


def verify_request(
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    body: bytes,
    directory: Directory,
    now_ms: int,
    nonces: NonceCache,
) -> Caller:
    """The enrolled, unrevoked node that signed this request, or raise."""
    try:
        node = check_node_id(headers.get(H_NODE, ""), "requesting node")
        time_ms = int(headers.get(H_TIME, ""))
        nonce = headers.get(H_NONCE, "")
        canonical.hex_bytes(nonce, 16, "request nonce")
        sig = signature_from_hex(headers.get(H_SIG, ""))
    except (ValueError, ProtocolError) as e:
        raise AuthorizationError(
            f"request is not signed correctly: {e}", hint="send the X-Sanji-Node, -Time, -Nonce and -Signature headers"
        ) from e
    if abs(now_ms - time_ms) > nonces.window_ms:
        raise AuthorizationError(
            f"request time is {abs(now_ms - time_ms) // 1000} s away from this node's clock",
            hint=f"check the clock of both machines (allowed: ±{nonces.window_ms // 60000} min)",
        )
    member = directory.get(node)
    if member is None:
        raise AuthorizationError(
            f"node {node!r} is not enrolled in county {directory.county}", hint="enrol the node first"
        )
    if member.revocation is not None:
        raise AuthorizationError(
            f"node {node!r} has been revoked ({member.revocation.reason})", hint="enrol a replacement"
        )
    try:
        member.key.verify(sig, signing_message(directory.county, node, method, path, body, time_ms, nonce))
    except VerificationError as e:
        raise AuthorizationError(
            f"request signature of {node} does not verify", hint="is this the node's own key?"
        ) from e
    nonces.check_and_add(nonce, now_ms)
    return Caller(member)
