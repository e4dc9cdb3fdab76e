"""The transport seam: what a child asks of its parent, whatever carries it.

Pure. `Parent` is the small interface the child's sync session
(`sanji_node.syncer`, `sanji_node.child`) is written against, as python-tuf's
updater is written against its `FetcherInterface`:

    enroll(request)        → the county's signed enrolment answer (a dict)
    hello(Hello)           → HelloReply, once the parent's signature over it verified
    push(page)             → PushReply, the same
    pull(vector, max_bytes) → (page bytes, more?), the same
    close()

plus `requests`, the number of requests made so far (the session reports it).

Two implementations: `http_client.ParentClient` over HTTP, and the in-process
simulated parent of the tests (`tests/simparent.py`), which answers through the
very route functions the HTTP API runs (`routes`) over a real store. Either
way a failure comes back in the error tree: `TransportError` (retry later)
for the link or a parent that is busy or failed, the parent's own error class
(by its `code`) when it said no, `AnswerVerificationError` for an answer its
key does not vouch for.

The paths of the routes and the reading of an error answer are here, so both
implementations say and read the same things.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from . import errors
from .planning import Vector
from .session import Hello, HelloReply, PushReply

API = "/api/v1"
HEALTH_PATH = API + "/health"
ENROLL_PATH = API + "/enroll"
HELLO_PATH = API + "/sync/hello"
PUSH_PATH = API + "/sync/push"
PULL_PATH = API + "/sync/pull"
MORE_HEADER = "X-Sanji-More"


class Parent(Protocol):
    """The calls a child makes to its parent (or to the county, as its fallback)."""

    requests: int  # requests made so far, retries included

    def enroll(self, request_body: bytes) -> dict[str, Any]: ...

    def hello(self, hello: Hello) -> HelloReply: ...

    def push(self, page: bytes, on_sent: Callable[[], None] | None = None) -> PushReply:
        """Push one page; `on_sent()` once its body has left (each attempt), so the next page may follow it."""
        ...

    def pull(self, vector: Vector, max_bytes: int) -> tuple[bytes, bool]: ...

    def close(self) -> None: ...


BY_CODE: dict[str, type[errors.SyncError]] = {
    cls.code: cls
    for cls in (
        errors.ProtocolError,
        errors.BundleError,
        errors.VerificationError,
        errors.AuthorizationError,
        errors.SequenceError,
        errors.KeyFileError,
        errors.StoreError,
        errors.TransportError,
    )
}


def error_from_answer(data: Mapping[str, Any], fallback: str) -> errors.SyncError:
    """The error a parent's JSON error answer `{"code", "message", "hint"}` stands for (`fallback`: the message
    when the answer names none)."""
    cls = BY_CODE.get(str(data.get("code", "")), errors.SyncError)
    hint = data.get("hint")
    return cls(str(data.get("message", fallback)), hint=None if hint is None else str(hint))
