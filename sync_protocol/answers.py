"""Signed answers: the parent's replies that a child acts on, authenticated (protocol.md §10.2).

A child acts on what its parent answers: the hello reply (what the parent holds
of the child's own feeds: 已送达上级, and whether to recover), the push reply
(the same after each page) and the pull page (what to apply, and whether more
remains). Without a signature anything on the link could answer in the
parent's name. So the parent signs every such answer with its node key:

    message = b"sanji/answer/v1\\n" ‖ canonical {"body","county","encoding","more","node","nonce","path","to","v"}

| field      | value |
|------------|-------|
| `body`     | hex SHA-256 of the answer body exactly as sent (a pull page: its compressed bytes) |
| `county`   | the county id |
| `encoding` | the answer's `X-Sanji-Compression` header, or "" |
| `more`     | the answer's `X-Sanji-More` header, or "" |
| `node`     | the answering node (the signer) |
| `nonce`    | the nonce of the request answered (its `X-Sanji-Nonce`) |
| `path`     | the request path answered |
| `to`       | the requesting node |
| `v`        | 1 |

and sends the signature (128 lower-case hex characters) in `X-Sanji-Answer`.
The child verifies it with the parent's key from its membership directory
before it reads the answer: bound to its own fresh nonce, an answer cannot be
replayed to another request, another node or another path. Pure.

The county's answer to an enrolment (`enrol_answer_message`) is signed with the
county root key, which the new node checks against the token's fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from . import canonical
from .errors import AnswerVerificationError, ProtocolError, VerificationError
from .keys import PublicKey, SigningKey, signature_from_hex

ANSWER_TAG = b"sanji/answer/v1\n"
ANSWER_VERSION = 1
H_ANSWER = "X-Sanji-Answer"
H_MORE = "X-Sanji-More"
H_ENCODING = "X-Sanji-Compression"
ENROL_ANSWER_TAG = b"sanji/enrol-answer/v1\n"
ENROL_ANSWER_VERSION = 1
UNSIGNED_ENROL_FIELDS = frozenset({"sig", "county_feed"})  # the feed is relayed in part and verifies itself


def answer_message(
    headers: Mapping[str, str], *, county: str, node: str, to: str, nonce: str, path: str, body: bytes
) -> bytes:
    """The bytes signed for an answer with these body bytes and headers (only X-Sanji-More and
    X-Sanji-Compression of them count)."""
    return ANSWER_TAG + canonical.encode(
        {
            "body": hashlib.sha256(body).hexdigest(),
            "county": county,
            "encoding": headers.get(H_ENCODING, ""),
            "more": headers.get(H_MORE, ""),
            "node": node,
            "nonce": nonce,
            "path": path,
            "to": to,
            "v": ANSWER_VERSION,
        }
    )


def sign_answer(
    key: SigningKey, *, county: str, node: str, to: str, nonce: str, path: str, body: bytes, headers: Mapping[str, str]
) -> str:
    """The `X-Sanji-Answer` value for an answer with these body bytes and headers."""
    return key.sign(answer_message(headers, county=county, node=node, to=to, nonce=nonce, path=path, body=body)).hex()


def _refused(parent: str, why: str, english: str) -> AnswerVerificationError:
    return AnswerVerificationError(
        f"上级 {parent} 的应答{why}，本机不采用，本地数据未作任何改动 (the answer in the name of {parent} {english}; "
        "nothing was applied)",
        hint="链路上可能有冒充上级的设备，或上级尚未升级；请检查上级地址，并请县级信息管理员确认本县所有节点已同时升级 "
        "(something on the link may be answering in the parent's name, or the parent is not upgraded)",
    )


def verify_answer(
    headers: Mapping[str, str],
    *,
    parent_key: PublicKey | None,
    county: str,
    parent: str,
    to: str,
    nonce: str,
    path: str,
    body: bytes,
) -> None:
    """Raise AnswerVerificationError unless `parent` signed this answer to `to`'s request `nonce` on `path`."""
    if parent_key is None:
        raise _refused(parent, "无法验证：本机没有它的公钥", "cannot be verified: its key is unknown here")
    text = headers.get(H_ANSWER)
    if not text:
        raise _refused(parent, "没有签名", "is not signed")
    try:
        sig = signature_from_hex(text)
    except (ProtocolError, ValueError) as e:
        raise _refused(parent, "签名格式不对", "carries a malformed signature") from e
    msg = answer_message(headers, county=county, node=parent, to=to, nonce=nonce, path=path, body=body)
    try:
        parent_key.verify(sig, msg)
    except VerificationError as e:
        raise _refused(
            parent, "签名验证不通过（不是它的密钥，或不是对本次请求的应答）", "does not verify for this request"
        ) from e


def enrol_answer_message(answer: Mapping[str, Any], token_id: str) -> bytes:
    """What the county signs in its answer to an enrolment: every field but `sig` and `county_feed`, bound
    to the token redeemed (the answer's `pubkey` binds it to the new node's key)."""
    signed = {k: v for k, v in answer.items() if k not in UNSIGNED_ENROL_FIELDS}
    return ENROL_ANSWER_TAG + canonical.encode({"answer": signed, "token": token_id, "v": ENROL_ANSWER_VERSION})


def sign_enrol_answer(key: SigningKey, answer: Mapping[str, Any], token_id: str) -> dict[str, Any]:
    return {**answer, "sig": key.sign(enrol_answer_message(answer, token_id)).hex()}


def verify_enrol_answer(answer: Mapping[str, Any], root_key: PublicKey, token_id: str, pubkey: str) -> None:
    """Raise AnswerVerificationError unless the county root key signed this answer for this token and key."""
    try:
        sig = signature_from_hex(answer.get("sig", ""))
        root_key.verify(sig, enrol_answer_message(answer, token_id))
    except (ProtocolError, VerificationError, ValueError) as e:
        raise _refused("县级", "没有县级根密钥的有效签名", "carries no valid signature of the county root key") from e
    if answer.get("pubkey") != pubkey:
        raise _refused("县级", "登记的不是本机的公钥", "enrols another key than this node's")
