"""The sync API, one Flask blueprint shared by the county server and the township node.

An I/O adapter: it parses HTTP, authenticates the caller's signed request
(`auth`), runs the session rules (`session`) against the node's store, and
turns every `SyncError` into JSON `{"code", "message", "hint"}` with the
error's HTTP status. Routes (all under `/api/v1`):

    GET  /health        who this node is (no authentication)
    POST /enroll        a new node proves its key and redeems a one-time token
    POST /sync/hello    digest of the caller's vector; 200 {"match": …}
    POST /sync/push     a page the caller pushes up (X-Sanji-Compression: deflate)
    POST /sync/pull     the caller's vector; answers a compressed page (X-Sanji-More: 1 if more)

Every 200 answer to a signed request carries `X-Sanji-Answer`, this node's
signature over the answer bound to the request's nonce (`answers`), so the
child acts only on what this node said.

Pages are compressed under our own header, not Content-Encoding, so no HTTP
library inflates them behind our back: the receiver inflates with a bound.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import PROTOCOL_VERSION, compression, routing, session
from .answers import H_ANSWER, sign_answer
from .auth import H_NODE, Caller, Nonces, check_request_headers, verify_request
from .batches import decode_page_prefix, encode_page, peek_feed
from .errors import AuthorizationError, ProtocolError, SyncError
from .keys import SigningKey
from .limits import DEFAULT_LIMITS, Limits
from .nonce_store import StoredNonces
from .planning import Vector, restrict
from .sqlite_store import Store
from .verify import Verdict
from .verify_pool import VerifyPool

MORE_HEADER = "X-Sanji-More"
PAGE_TYPE = "application/x-sanji-page"


@dataclass
class SyncContext:
    """What the blueprint needs from the node program that mounts it."""

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


BUSY_RETRY_AFTER_S = 5
log = logging.getLogger("sanji.http")


def is_busy(err: BaseException | None) -> bool:
    """SQLite's "database is locked / busy" (another writer holds the lock), also behind a StoreError."""
    while err is not None:
        if isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err)):
            return True
        err = err.__cause__
    return False


def busy_response() -> tuple[Response, int]:
    """503 with Retry-After: the client retries later; nothing was changed."""
    resp = jsonify(
        {
            "code": "busy",
            "message": "上级的数据库正忙，请稍后重试 (the database is busy)",
            "hint": f"wait {BUSY_RETRY_AFTER_S} s and retry; sync retries by itself",
        }
    )
    resp.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
    return resp, 503


def internal_error_response(err: BaseException) -> tuple[Response, int]:
    """An unexpected failure: 500 JSON with an incident id; the traceback goes to the log, not to the peer."""
    incident = uuid.uuid4().hex[:8]
    log.error("incident %s on %s %s", incident, request.method, request.path, exc_info=err)
    body = {
        "code": "internal",
        "message": f"服务器内部出错，事件编号 {incident} (internal error, incident {incident})",
        "hint": "retry later; if it persists, give the incident id to the administrator",
        "incident": incident,
    }
    return jsonify(body), 500


def error_response(err: SyncError) -> tuple[Response, int]:
    if is_busy(err):
        return busy_response()
    return jsonify(err.to_dict()), err.http_status


def not_below(ctx: SyncContext, node: str) -> AuthorizationError:
    return AuthorizationError(
        f"节点 {node} 不在本节点 {ctx.node_id} 之下 (node {node} is not below {ctx.node_id})",
        hint="请与自己的上级同步 (sync with your own parent)",
    )


class HeaderCheck:
    """What a signed request's headers allow to check before its body is read: `auth.check_request_headers`
    (form, recipient, time, an enrolled unrevoked node, an unseen nonce) and a node below this one. For the
    server's gate (`sanji_node.http_server`), which calls it in its I/O thread as soon as the headers are in;
    the signature, which covers the body, is checked by the route as before. Returns the refusal, or None: go
    on and read the body. One store is kept open for it (opened on first use, in that thread): a check is two
    small reads, not a store's opening."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        self._store: Store | None = None

    def __call__(self, headers: Mapping[str, str]) -> SyncError | None:
        ctx = self.ctx
        try:
            if self._store is None:
                self._store = ctx.open_store()
            s = self._store
            directory = s.directory()
            nonces = ctx.nonces if ctx.nonces is not None else StoredNonces(s)
            h, _ = check_request_headers(
                headers,
                directory=directory,
                recipient=ctx.node_id,
                now_ms=ctx.clock_ms(),
                window_ms=nonces.window_ms,
                seen=getattr(nonces, "seen", None),
            )
            if not directory.is_ancestor(ctx.node_id, h.node):
                raise not_below(ctx, h.node)
        except SyncError as e:
            return e
        except (sqlite3.Error, OSError) as e:  # busy, or a store that will not open: the route decides
            log.info("early header check skipped: %s", e)
            self.close()
        return None

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except sqlite3.ProgrammingError:  # closed from another thread than the one that used it
                pass


def sync_blueprint(ctx: SyncContext) -> Blueprint:
    bp = Blueprint("sync_api", __name__, url_prefix="/api/v1")

    @bp.errorhandler(SyncError)
    def handle_sync_error(err: SyncError) -> tuple[Response, int]:
        if not is_busy(err):
            node = request.headers.get(H_NODE, "-")[:40]
            log.warning("refused %s %s from %s: %s %s", request.method, request.path, node, err.code, err.message)
        return error_response(err)

    @bp.errorhandler(Exception)
    def handle_other(err: Exception) -> tuple[Response, int]:
        if isinstance(err, HTTPException):  # e.g. a body werkzeug cannot read
            body = {"code": "protocol_error", "message": f"{err.code} {err.name}: {err.description}"}
            return jsonify(body), err.code or 400
        if is_busy(err):
            return busy_response()
        return internal_error_response(err)

    def store() -> Store:
        if "sanji_store" not in g:
            g.sanji_store = ctx.open_store()
        s: Store = g.sanji_store
        return s

    @bp.teardown_app_request
    def close_store(_exc: BaseException | None) -> None:
        s = g.pop("sanji_store", None)
        if s is not None:
            s.close()

    def body() -> bytes:
        if request.content_length is not None and request.content_length > ctx.max_body_bytes:
            raise ProtocolError(f"request body is larger than {ctx.max_body_bytes} bytes", hint="send smaller pages")
        data = request.get_data(cache=True)
        if len(data) > ctx.max_body_bytes:
            raise ProtocolError(f"request body is larger than {ctx.max_body_bytes} bytes", hint="send smaller pages")
        return data

    def caller(raw: bytes, what: str) -> Caller:
        s = store()
        directory = s.directory()
        c = verify_request(
            dict(request.headers),
            method=request.method,
            path=request.path,
            body=raw,
            directory=directory,
            recipient=ctx.node_id,
            now_ms=ctx.clock_ms(),
            nonces=ctx.nonces if ctx.nonces is not None else StoredNonces(s),
        )
        if not directory.is_ancestor(ctx.node_id, c.node):
            # a child, or a village falling back to the county while its township is down
            raise not_below(ctx, c.node)
        if ctx.on_request is not None:
            ctx.on_request(s, c, what)
        return c

    def inflate(raw: bytes) -> bytes:
        if request.headers.get(compression.HEADER, "") == compression.ENCODING:
            return compression.decompress(raw, ctx.limits.max_page_bytes)
        return raw

    @bp.get("/health")
    def health() -> Response:
        s = store()
        t = s.trust
        return jsonify(
            {
                "county": t.county,
                "node": ctx.node_id,
                "role": ctx.role,
                "root": t.root_node,
                "version": PROTOCOL_VERSION,
            }
        )

    @bp.post("/enroll")
    def enroll() -> Response:
        if ctx.enroll is None:
            raise AuthorizationError("this node does not enrol others")
        return jsonify(ctx.enroll(body()))

    @bp.post("/sync/hello")
    def hello() -> Response:
        raw = body()
        c = caller(raw, "hello")
        s = store()
        msg = session.Hello.decode(raw)
        vector = s.vector()
        shared = session.shared(c.node, ctx.node_id, s.directory())
        reply = session.answer_hello(msg, vector, shared, c.node)
        if ctx.after_hello is not None:
            ctx.after_hello(s, c, msg, restrict(vector, shared) if reply.match else None)
        return signed(ctx, store().trust.county, c, Response(reply.encode(), mimetype="application/json"))

    @bp.post("/sync/push")
    def push() -> Response:
        raw = body()
        c = caller(raw, "push")
        s = store()
        directory = s.directory()
        batches, error = decode_page_prefix(inflate(raw), limits=ctx.limits)
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
        verdicts = s.receive_many(batches, ctx.pool)
        if ctx.after_push is not None:
            ctx.after_push(s, c, verdicts)
        vector = s.vector()
        reply = session.PushReply(session.results_of(verdicts), {f: vector[f] for f in sorted(feeds) if f in vector})
        return signed(ctx, store().trust.county, c, Response(reply.encode(), mimetype="application/json"))

    @bp.post("/sync/pull")
    def pull() -> Response:
        raw = body()
        c = caller(raw, "pull")
        s = store()
        req = session.PullRequest.decode(raw)
        if ctx.before_pull is not None:
            ctx.before_pull(s, c, req.vector)
        directory = s.directory()
        pages = s.plan(
            req.vector,
            lambda feed: routing.may_push(ctx.node_id, c.node, feed, directory),
            max_batch_bytes=min(req.max_bytes, ctx.limits.max_batch_bytes),
            max_page_bytes=req.max_bytes,
        )
        page = encode_page([s.read_batch(r) for r in pages[0]]) if pages else encode_page([])
        resp = Response(compression.compress(page), mimetype=PAGE_TYPE)
        resp.headers[compression.HEADER] = compression.ENCODING
        resp.headers[MORE_HEADER] = "1" if len(pages) > 1 else "0"
        return signed(ctx, store().trust.county, c, resp)

    return bp


def signed(ctx: SyncContext, county: str, c: Caller, resp: Response) -> Response:
    """Sign an answer to `c`'s request (protocol.md §10.2): its body as sent, its More and compression headers,
    bound to the request's nonce and path."""
    if ctx.key is not None:
        resp.headers[H_ANSWER] = sign_answer(
            ctx.key,
            county=county,
            node=ctx.node_id,
            to=c.node,
            nonce=c.nonce,
            path=request.path,
            body=resp.get_data(),
            headers=dict(resp.headers.items()),
        )
    return resp
