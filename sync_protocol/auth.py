"""Signed requests between nodes (ARCHITECTURE §3), with a recipient, a nonce and a time window.

A child signs every request to its parent with its node key (protocol.md §10):

    message = b"sanji/request/v2\\n" ‖ canonical {"body","county","method","node","nonce","path","time","to","v"}

where `body` is the hex SHA-256 of the request body, `time` is Unix milliseconds
(ASCII digits only), `nonce` 32 lower-case hex characters and `to` the node id of
the intended recipient. The headers `X-Sanji-Node`, `X-Sanji-To`, `X-Sanji-Time`,
`X-Sanji-Nonce` and `X-Sanji-Signature` carry them. The parent refuses a request
addressed to another node, whose time is outside the window, whose nonce it has
seen, whose node is not enrolled or revoked, or whose signature does not verify.
Pure: the caller passes `now_ms` and the nonce cache (any `Nonces`: in memory
here, in the node's database in `nonce_store`, so a replay is refused after a
restart too).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from . import canonical
from .errors import AuthorizationError, ProtocolError, VerificationError
from .feeds import check_node_id
from .keys import SigningKey, signature_from_hex
from .membership import Directory, Member

REQUEST_TAG = b"sanji/request/v2\n"
REQUEST_VERSION = 2
H_NODE, H_TIME, H_NONCE, H_SIG = "X-Sanji-Node", "X-Sanji-Time", "X-Sanji-Nonce", "X-Sanji-Signature"
H_TO = "X-Sanji-To"
DEFAULT_WINDOW_MS = 5 * 60 * 1000
# decimal milliseconds, ASCII digits only: no sign, no "_", no spaces, no other scripts' digits, no leading zeros
_TIME = re.compile(r"0|[1-9][0-9]{0,15}", re.ASCII)
UPGRADE_HINT = "本县所有节点须同时升级到同一版本 (upgrade every node of the county together)"


def signing_message(
    county: str, node: str, method: str, path: str, body: bytes, time_ms: int, nonce: str, to: str
) -> bytes:
    return REQUEST_TAG + canonical.encode(
        {
            "body": hashlib.sha256(body).hexdigest(),
            "county": county,
            "method": method.upper(),
            "node": node,
            "nonce": nonce,
            "path": path,
            "time": time_ms,
            "to": to,
            "v": REQUEST_VERSION,
        }
    )


def sign_request(
    key: SigningKey,
    *,
    county: str,
    node: str,
    to: str,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
    nonce: bytes,
) -> dict[str, str]:
    """The headers that authenticate one request to node `to`; `nonce` is 16 random bytes from the caller."""
    if len(nonce) != 16:
        raise ProtocolError("a request nonce is 16 random bytes")
    n = nonce.hex()
    sig = key.sign(signing_message(county, node, method, path, body, now_ms, n, check_node_id(to, "recipient")))
    return {H_NODE: node, H_TO: to, H_TIME: str(now_ms), H_NONCE: n, H_SIG: sig.hex()}


def parse_time(text: str) -> int:
    """The X-Sanji-Time header: decimal Unix milliseconds in ASCII digits, at most 16 of them."""
    if not _TIME.fullmatch(text):
        raise ProtocolError(f"X-Sanji-Time must be decimal milliseconds in ASCII digits, not {text[:24]!r}")
    return int(text)


class Nonces(Protocol):
    """Where a parent remembers the nonces it accepted (in memory, or in its database)."""

    window_ms: int

    def check_and_add(self, nonce: str, now_ms: int) -> None: ...


def replayed() -> AuthorizationError:
    return AuthorizationError(
        "这个请求已经收到过（重放）(this request was already received (replayed nonce))",
        hint="每个请求都要重新签名 (sign every request afresh)",
    )


class NonceCache:
    """Nonces seen within the window, in memory; a replay inside the window is refused, older ones are forgotten."""

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, max_size: int = 200_000) -> None:
        self.window_ms = window_ms
        self.max_size = max_size
        self._seen: OrderedDict[str, int] = OrderedDict()

    def check_and_add(self, nonce: str, now_ms: int) -> None:
        horizon = now_ms - 2 * self.window_ms
        while self._seen and (next(iter(self._seen.values())) < horizon or len(self._seen) >= self.max_size):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise replayed()
        self._seen[nonce] = now_ms

    def seen(self, nonce: str) -> bool:
        return nonce in self._seen


@dataclass(frozen=True)
class Caller:
    member: Member
    nonce: str = ""  # the request's nonce: the parent's signed answer is bound to it (answers.py)

    @property
    def node(self) -> str:
        return self.member.node


def _not_signed(e: Exception) -> AuthorizationError:
    return AuthorizationError(
        f"请求签名不正确 (request is not signed correctly: {e})",
        hint="发送 X-Sanji-Node、-To、-Time、-Nonce 和 -Signature 请求头 "
        "(send the X-Sanji-Node, -To, -Time, -Nonce and -Signature headers)",
    )


@dataclass(frozen=True)
class RequestHeaders:
    """A request's signature headers, parsed: what can be checked before its body is read."""

    node: str
    to: str
    time_ms: int
    nonce: str
    sig: bytes


def check_request_headers(
    headers: Mapping[str, str],
    *,
    directory: Directory,
    recipient: str,
    now_ms: int,
    window_ms: int,
    seen: Callable[[str], bool] | None = None,
) -> tuple[RequestHeaders, Member]:
    """Everything but the signature (which covers the body): the headers' form, the recipient, the time window,
    an enrolled and unrevoked node, and (when `seen` is given) a nonce not seen before. Raises
    `AuthorizationError`; the server runs this as soon as the headers are in, before it reads any body byte."""
    if H_SIG in headers and H_TO not in headers:
        raise AuthorizationError(
            "请求来自旧版本的同步程序（签名请求 v1，没有收件节点），本节点只接受 v2 "
            "(request signed with protocol v1, naming no recipient; this node requires v2)",
            hint=UPGRADE_HINT,
        )
    try:
        node = check_node_id(headers.get(H_NODE, ""), "requesting node")
        to = check_node_id(headers.get(H_TO, ""), "recipient")
        time_ms = parse_time(headers.get(H_TIME, ""))
        nonce = headers.get(H_NONCE, "")
        canonical.hex_bytes(nonce, 16, "request nonce")
        sig = signature_from_hex(headers.get(H_SIG, ""))
    except (ValueError, ProtocolError) as e:
        raise _not_signed(e) from e
    if to != recipient:
        raise AuthorizationError(
            f"这个请求是发给节点 {to} 的，不是本节点 {recipient} (request is addressed to {to}, not to {recipient})",
            hint="请求只能发给签名时指定的节点；检查上级地址 (a request is valid only at the node it names)",
        )
    if abs(now_ms - time_ms) > window_ms:
        raise AuthorizationError(
            f"请求时间与本机时钟相差 {abs(now_ms - time_ms) // 1000} 秒 "
            f"(request time is {abs(now_ms - time_ms) // 1000} s away from this node's clock)",
            hint=f"请核对两台机器的时钟 (check the clock of both machines; allowed: ±{window_ms // 60000} min)",
        )
    member = directory.get(node)
    if member is None:
        raise AuthorizationError(
            f"节点 {node} 未在本县注册 (node {node!r} is not enrolled in county {directory.county})",
            hint="请先注册该节点 (enrol the node first)",
        )
    if member.revocation is not None:
        raise AuthorizationError(
            f"节点 {node} 已被撤销 (node {node!r} has been revoked ({member.revocation.reason}))",
            hint="请注册一台替换的节点 (enrol a replacement)",
        )
    if seen is not None and seen(nonce):
        raise replayed()
    return RequestHeaders(node, to, time_ms, nonce, sig), member


def verify_request(
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    body: bytes,
    directory: Directory,
    recipient: str,
    now_ms: int,
    nonces: Nonces,
) -> Caller:
    """The enrolled, unrevoked node that signed this request to `recipient` (this node), or raise."""
    h, member = check_request_headers(
        headers, directory=directory, recipient=recipient, now_ms=now_ms, window_ms=nonces.window_ms
    )
    message = signing_message(directory.county, h.node, method, path, body, h.time_ms, h.nonce, h.to)
    try:
        member.key.verify(h.sig, message)
    except VerificationError as e:
        raise AuthorizationError(
            f"节点 {h.node} 的请求签名验证不通过 (request signature of {h.node} does not verify)",
            hint="是否用的是该节点自己的密钥？(is this the node's own key?)",
        ) from e
    nonces.check_and_add(h.nonce, now_ms)
    return Caller(member, h.nonce)
