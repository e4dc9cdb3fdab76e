"""What the county and a township have in common as parents: the sync API mounted on a Flask app."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

from sync_protocol.auth import Caller
from sync_protocol.http_api import SyncContext, busy_response, internal_error_response, is_busy, sync_blueprint
from sync_protocol.keys import SigningKey
from sync_protocol.planning import Vector
from sync_protocol.session import Hello
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status, Verdict
from sync_protocol.verify_pool import VerifyPool

from . import state


def now_ms() -> int:
    return int(time.time() * 1000)


def parent_context(
    *,
    node_id: str,
    role: str,
    open_store: Callable[[], Store],
    key: SigningKey | None = None,
    clock_ms: Callable[[], int] = now_ms,
    pool: VerifyPool | None = None,
    enroll: Callable[[bytes], dict[str, Any]] | None = None,
    after_push: Callable[[Store, Caller, list[Verdict]], None] | None = None,
    before_pull: Callable[[Store, Caller, Vector], None] | None = None,
) -> SyncContext:
    """The sync API of a parent node, with what every parent records of its children (contacts, what each
    holds, resent pages): served over HTTP by `parent_app`, in process by the tests' simulated parent."""

    def on_request(store: Store, caller: Caller, action: str) -> None:
        state.record_peer(store, caller.node, action, clock_ms())

    def push_hook(store: Store, caller: Caller, verdicts: list[Verdict]) -> None:
        resent = sum(1 for v in verdicts if v.outcomes and all(o.status is Status.DUPLICATE for o in v.outcomes))
        state.record_resent(store, caller.node, resent)
        if after_push is not None:
            after_push(store, caller, verdicts)

    def hello_hook(store: Store, caller: Caller, hello: Hello, held: Vector | None) -> None:
        # a matching digest proves the child holds what we hold of the shared feeds: a quiet sync (no pull)
        # must bring its backlog to 0, not leave the last pull's page counted as unsent
        if held is not None:
            state.record_peer_vector(store, caller.node, held)
        if hello.own is not None:
            state.record_own_heads(store, caller.node, hello.own, clock_ms())
        elif held is not None:
            state.record_own_heads(store, caller.node, held, clock_ms())

    def pull_hook(store: Store, caller: Caller, vector: Vector) -> None:
        state.record_peer_vector(store, caller.node, vector)
        state.record_own_heads(store, caller.node, vector, clock_ms())
        if before_pull is not None:
            before_pull(store, caller, vector)

    return SyncContext(
        node_id=node_id,
        role=role,
        open_store=open_store,
        clock_ms=clock_ms,
        key=key,  # signs every answer a child acts on
        nonces=None,  # in the node's database: a request replayed after a restart is refused too
        pool=pool,
        enroll=enroll,
        after_push=push_hook,
        before_pull=pull_hook,
        on_request=on_request,
        after_hello=hello_hook,
    )


def parent_app(name: str, **context: Any) -> Flask:
    """A Flask app serving the sync API of `parent_context(**context)`; the context is in
    `app.extensions["sanji_sync"]`."""
    ctx = parent_context(**context)
    app = Flask(name)
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.register_blueprint(sync_blueprint(ctx))

    @app.errorhandler(404)
    def not_found(_e: Exception) -> tuple[Any, int]:
        return jsonify({"code": "not_found", "message": "no such route", "hint": "see docs/http-api.md"}), 404

    @app.errorhandler(405)
    def wrong_method(_e: Exception) -> tuple[Any, int]:
        return jsonify({"code": "method_not_allowed", "message": "this route does not take that method"}), 405

    @app.errorhandler(500)
    def internal(e: Exception) -> tuple[Any, int]:
        """Outside the sync blueprint (which answers its own): busy → 503 with Retry-After, else 500 JSON."""
        original = getattr(e, "original_exception", None) or e
        return busy_response() if is_busy(original) else internal_error_response(original)

    app.extensions["sanji_sync"] = ctx
    return app
