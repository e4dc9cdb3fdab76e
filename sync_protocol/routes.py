"""The parent's side of the sync API as plain functions: a request in, an answer out.

An I/O adapter (it runs against the node's `Store`), with no web framework:
the Flask blueprint (`http_api`) parses HTTP into a `Request` and sends the
`Answer` back, and the tests' simulated parent (`tests/simparent.py`) calls
the same functions in process. So both answer exactly alike: the same
authentication (`auth`: signature, recipient, time window, nonce), the same
session rules (`session`), the same hooks of the node program, and the same
signature over every answer a child acts on (`answers`).

Each function raises a `SyncError` when it refuses; `error_answer` turns any
exception into the JSON error the peer receives.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import PROTOCOL_VERSION, compression, routing, session
from .answers import H_ANSWER, sign_answer
from .auth import Caller, Nonces, verify_request
from .batches import decode_page_prefix, encode_page, peek_feed
from .errors import AuthorizationError, ProtocolError, SyncError
from .keys import SigningKey
from .limits import DEFAULT_LIMITS, Limits
from .nonce_store import StoredNonces
from .planning import Vector, restrict
from .sqlite_store import Store
from .transport import ENROLL_PATH, HEALTH_PATH, HELLO_PATH, MORE_HEADER, PULL_PATH, PUSH_PATH
from .verify import Status, Verdict
from .verify_pool import VerifyPool

JSON_TYPE = "application/json"
PAGE_TYPE = "application/x-sanji-page"
BUSY_RETRY_AFTER_S = 5
log = logging.getLogger("sanji.http")


@dataclass
class SyncContext:
    """What the sync API needs from the node program that serves it."""

    node_id: str
    role: str
    open_store: Callable[[], Store]
    clock_ms: Callable[[], int]
    key: SigningKey | None = None  # signs the answers (None: answers go unsigned, and children refuse them)
    nonces: Nonces | None = None  # None: kept in the node's database, so they survive a restart
    pool: VerifyPool | None = None
    limits: Limits = DEFAULT_LIMITS
    max_body_bytes: int = 64 * 1024 * 1024
    enroll: Callable[[bytes], dict[str, Any]] | None = None
    after_push: Callable[[Store, Caller, list[Verdict]], None] | None = None
    before_pull: Callable[[Store, Caller, Vector], None] | None = None
    on_request: Callable[[Store, Caller, str], None] | None = None
    # after a hello: the hello, and the caller's vector of the shared feeds when the digests matched (it holds
    # exactly what this node holds of them), else None
    after_hello: Callable[[Store, Caller, session.Hello, Vector | None], None] | None = None
    # one push at a time per caller, in the order their bodies arrived: a child sends its next page while the
    # previous one is applied here (sanji_node.syncer), and the next continues the feeds the previous extends.
    # Two connections share the child's link, so the next page's body can still arrive first: its batches
    # that would leave a gap wait (at most `gap_wait_s`) for another push of the same child to be applied.
    gap_wait_s: float = 5.0
    pushes: dict[str, PushOrder] = field(default_factory=dict)
    pushes_guard: threading.Lock = field(default_factory=threading.Lock)

    def push_order(self, node: str) -> PushOrder:
        with self.pushes_guard:
            return self.pushes.setdefault(node, PushOrder())  # one per enrolled child: bounded


class PushOrder:
    """One child's pushes: applied one at a time; a count of those applied, to wait on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.applied = 0
        self.changed = threading.Condition()

    def done(self) -> None:
        with self.changed:
            self.applied += 1
            self.changed.notify_all()

    def wait_after(self, seen: int, timeout: float) -> bool:
        """True once a push applied after the `seen`-th one (False after `timeout` seconds)."""
        with self.changed:
            return self.changed.wait_for(lambda: self.applied > seen, timeout)


@dataclass(frozen=True)
class Request:
    """One request as the routes see it: the headers (exact names, as `auth` reads them) and the raw body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    """One answer: status, body bytes as sent, and the headers that matter to the protocol."""

    body: bytes
    status: int = 200
    mimetype: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(data: Mapping[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Answer(body, status, JSON_TYPE, headers or {})


# -- errors -------------------------------------------------------------------
def is_busy(err: BaseException | None) -> bool:
    """SQLite's "database is locked / busy" (another writer holds the lock), also behind a StoreError."""
    while err is not None:
        if isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err)):
            return True
        err = err.__cause__
    return False


def busy_body() -> tuple[dict[str, Any], int, dict[str, str]]:
    """503 with Retry-After: the client retries later; nothing was changed."""
    body = {
        "code": "busy",
        "message": "上级的数据库正忙，请稍后重试 (the database is busy)",
        "hint": f"wait {BUSY_RETRY_AFTER_S} s and retry; sync retries by itself",
    }
    return body, 503, {"Retry-After": str(BUSY_RETRY_AFTER_S)}


def internal_body(err: BaseException, method: str, path: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """An unexpected failure: 500 with an incident id; the traceback goes to the log, not to the peer."""
    incident = uuid.uuid4().hex[:8]
    log.error("incident %s on %s %s", incident, method, path, exc_info=err)
    body = {
        "code": "internal",
        "message": f"服务器内部出错，事件编号 {incident} (internal error, incident {incident})",
        "hint": "retry later; if it persists, give the incident id to the administrator",
        "incident": incident,
    }
    return body, 500, {}


def error_body(err: BaseException, method: str, path: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """What the peer receives for any failure: a refusal with the error's status, busy, or an incident."""
    if is_busy(err):
        return busy_body()
    if isinstance(err, SyncError):
        return dict(err.to_dict()), err.http_status, {}
    return internal_body(err, method, path)


def error_answer(err: BaseException, req: Request) -> Answer:
    body, status, headers = error_body(err, req.method, req.path)
    return json_answer(body, status, headers)


# -- the routes ---------------------------------------------------------------
def check_size(ctx: SyncContext, length: int | None) -> None:
    if length is not None and length > ctx.max_body_bytes:
        raise ProtocolError(f"request body is larger than {ctx.max_body_bytes} bytes", hint="send smaller pages")


def authenticate(ctx: SyncContext, store: Store, req: Request, what: str) -> Caller:
    """The node below this one that signed `req` to this node, or raise (and note the contact)."""
    directory = store.directory()
    c = verify_request(
        req.headers,
        method=req.method,
        path=req.path,
        body=req.body,
        directory=directory,
        recipient=ctx.node_id,
        now_ms=ctx.clock_ms(),
        nonces=ctx.nonces if ctx.nonces is not None else StoredNonces(store),
    )
    if not directory.is_ancestor(ctx.node_id, c.node):
        # a child, or a village falling back to the county while its township is down
        raise not_below(ctx, c.node)
    if ctx.on_request is not None:
        ctx.on_request(store, c, what)
    return c


def not_below(ctx: SyncContext, node: str) -> AuthorizationError:
    return AuthorizationError(
        f"节点 {node} 不在本节点 {ctx.node_id} 之下 (node {node} is not below {ctx.node_id})",
        hint="请与自己的上级同步 (sync with your own parent)",
    )


def health(ctx: SyncContext, store: Store) -> dict[str, Any]:
    t = store.trust
    return {"county": t.county, "node": ctx.node_id, "role": ctx.role, "root": t.root_node, "version": PROTOCOL_VERSION}


def enroll(ctx: SyncContext, body: bytes) -> dict[str, Any]:
    if ctx.enroll is None:
        raise AuthorizationError("this node does not enrol others")
    return ctx.enroll(body)


def hello(ctx: SyncContext, store: Store, req: Request) -> Answer:
    c = authenticate(ctx, store, req, "hello")
    msg = session.Hello.decode(req.body)
    vector = store.vector()
    shared = session.shared(c.node, ctx.node_id, store.directory())
    reply = session.answer_hello(msg, vector, shared, c.node)
    if ctx.after_hello is not None:
        ctx.after_hello(store, c, msg, restrict(vector, shared) if reply.match else None)
    return sign(ctx, store, c, req.path, Answer(reply.encode()))


def _inflate(ctx: SyncContext, req: Request) -> bytes:
    if req.headers.get(compression.HEADER, "") == compression.ENCODING:
        return compression.decompress(req.body, ctx.limits.max_page_bytes)
    return req.body


def push(ctx: SyncContext, store: Store, req: Request) -> Answer:
    c = authenticate(ctx, store, req, "push")
    directory = store.directory()
    batches, error = decode_page_prefix(_inflate(ctx, req), limits=ctx.limits)
    if error is not None:
        raise error
    feeds = set()
    for b in batches:
        try:
            feed = peek_feed(b, limits=ctx.limits)
        except ProtocolError as e:
            raise ProtocolError(f"pushed page holds an unreadable batch: {e.message}") from e
        if not routing.may_push(c.node, ctx.node_id, feed, directory):
            raise AuthorizationError(
                f"{c.node} may not push feed {feed} to {ctx.node_id}", hint="a node pushes only feeds it holds"
            )
        feeds.add(feed)
    order = ctx.push_order(c.node)
    with order.lock:
        seen = order.applied
        verdicts = store.receive_many(batches, ctx.pool)
    first_gap = next((i for i, v in enumerate(verdicts) if any(o.status is Status.GAP for o in v.outcomes)), None)
    if first_gap is not None and order.wait_after(seen, ctx.gap_wait_s):  # its predecessor was overtaken
        with order.lock:
            verdicts[first_gap:] = store.receive_many(batches[first_gap:], ctx.pool)
    order.done()
    if ctx.after_push is not None:
        ctx.after_push(store, c, verdicts)
    vector = store.vector()
    reply = session.PushReply(session.results_of(verdicts), {f: vector[f] for f in sorted(feeds) if f in vector})
    return sign(ctx, store, c, req.path, Answer(reply.encode()))


def pull(ctx: SyncContext, store: Store, req: Request) -> Answer:
    c = authenticate(ctx, store, req, "pull")
    msg = session.PullRequest.decode(req.body)
    if ctx.before_pull is not None:
        ctx.before_pull(store, c, msg.vector)
    directory = store.directory()
    pages = store.plan(
        msg.vector,
        lambda feed: routing.may_push(ctx.node_id, c.node, feed, directory),
        max_batch_bytes=min(msg.max_bytes, ctx.limits.max_batch_bytes),
        max_page_bytes=msg.max_bytes,
    )
    page = encode_page([store.read_batch(r) for r in pages[0]]) if pages else encode_page([])
    headers = {compression.HEADER: compression.ENCODING, MORE_HEADER: "1" if len(pages) > 1 else "0"}
    return sign(ctx, store, c, req.path, Answer(compression.compress(page), mimetype=PAGE_TYPE, headers=headers))


def sign(ctx: SyncContext, store: Store, c: Caller, path: str, answer: Answer) -> Answer:
    """Sign an answer to `c`'s request (protocol.md §10.2): its body as sent, its More and compression headers,
    bound to the request's nonce and path."""
    if ctx.key is None:
        return answer
    sig = sign_answer(
        ctx.key,
        county=store.trust.county,
        node=ctx.node_id,
        to=c.node,
        nonce=c.nonce,
        path=path,
        body=answer.body,
        headers=answer.headers,
    )
    return replace(answer, headers={**answer.headers, H_ANSWER: sig})


SIGNED_ROUTES: dict[str, Callable[[SyncContext, Store, Request], Answer]] = {
    HELLO_PATH: hello,
    PUSH_PATH: push,
    PULL_PATH: pull,
}


def answer(ctx: SyncContext, req: Request) -> Answer:
    """One whole exchange in process, as the HTTP API answers it: a store opened for the request and closed
    after it, every failure as the JSON error with its status."""
    try:
        check_size(ctx, len(req.body))
        if req.method == "POST" and req.path == ENROLL_PATH:
            return json_answer(enroll(ctx, req.body))
        route = SIGNED_ROUTES.get(req.path) if req.method == "POST" else None
        if route is None and not (req.method == "GET" and req.path == HEALTH_PATH):
            return json_answer({"code": "not_found", "message": "no such route", "hint": "see docs/http-api.md"}, 404)
        with ctx.open_store() as store:
            return json_answer(health(ctx, store)) if route is None else route(ctx, store, req)
    except Exception as e:  # as the HTTP API's error handlers: a refusal, busy, or an incident
        return error_answer(e, req)
