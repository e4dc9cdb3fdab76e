"""The sync API, one Flask blueprint shared by the county server and the township node.

An I/O adapter, and a thin one: it parses HTTP into a `routes.Request`, runs
the route's plain function (`routes`: authentication, session rules, hooks,
the signed answer) against the node's store opened for the request, and
turns every `SyncError` into JSON `{"code", "message", "hint"}` with the
error's HTTP status. The tests' simulated parent runs the same functions in
process. Routes (all under `/api/v1`):

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
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import routes
from .auth import H_NODE, check_request_headers
from .errors import SyncError
from .nonce_store import StoredNonces
from .routes import BUSY_RETRY_AFTER_S, PAGE_TYPE, SyncContext, is_busy, not_below
from .sqlite_store import Store
from .transport import MORE_HEADER

log = logging.getLogger("sanji.http")

__all__ = [
    "BUSY_RETRY_AFTER_S",
    "MORE_HEADER",
    "PAGE_TYPE",
    "SyncContext",
    "busy_response",
    "error_response",
    "internal_error_response",
    "is_busy",
    "sync_blueprint",
]


def _json(body: dict[str, object], status: int, headers: dict[str, str]) -> tuple[Response, int]:
    resp = jsonify(body)
    resp.headers.update(headers)
    return resp, status


def busy_response() -> tuple[Response, int]:
    """503 with Retry-After: the client retries later; nothing was changed."""
    return _json(*routes.busy_body())


def internal_error_response(err: BaseException) -> tuple[Response, int]:
    """An unexpected failure: 500 JSON with an incident id; the traceback goes to the log, not to the peer."""
    return _json(*routes.internal_body(err, request.method, request.path))


def error_response(err: SyncError) -> tuple[Response, int]:
    return _json(*routes.error_body(err, request.method, request.path))


def _response(answer: routes.Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=answer.headers, mimetype=answer.mimetype)


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

    def parsed() -> routes.Request:
        routes.check_size(ctx, request.content_length)
        data = request.get_data(cache=True)
        routes.check_size(ctx, len(data))
        return routes.Request(request.method, request.path, dict(request.headers), data)

    def run(route: Callable[[SyncContext, Store, routes.Request], routes.Answer]) -> Response:
        req = parsed()  # the body is read and bounded before the store is opened
        return _response(route(ctx, store(), req))

    @bp.get("/health")
    def health() -> Response:
        return jsonify(routes.health(ctx, store()))

    @bp.post("/enroll")
    def enroll() -> Response:
        return jsonify(routes.enroll(ctx, b"" if ctx.enroll is None else parsed().body))  # refused unread

    @bp.post("/sync/hello")
    def hello() -> Response:
        return run(routes.hello)

    @bp.post("/sync/push")
    def push() -> Response:
        return run(routes.push)

    @bp.post("/sync/pull")
    def pull() -> Response:
        return run(routes.pull)

    return bp
