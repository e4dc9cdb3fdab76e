"""The village agent's local app, bound to 127.0.0.1 only: status and "sync now" (the UI comes later)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request

from sanji_node.child import ChildNode


def create_app(node: ChildNode, *, sync_now: Callable[[], None] | None = None) -> Flask:
    app = Flask("village_agent")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    with node.open_store():  # migrate once, before any request
        pass

    @app.before_request
    def local_only() -> Any:
        # the app listens on 127.0.0.1; refuse other Host names so a web page cannot reach it by DNS rebinding
        host = (request.host or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            return jsonify({"code": "not_allowed", "message": f"host {request.host!r} is not this machine"}), 403
        return None

    @app.errorhandler(404)
    def not_found(_e: Exception) -> Any:
        return jsonify({"code": "not_found", "message": "no such route", "hint": "see docs/http-api.md"}), 404

    @app.get("/api/v1/status")
    def status() -> Any:
        return jsonify(node.status())

    @app.post("/api/v1/sync-now")
    def sync() -> Any:
        if sync_now is None:
            return jsonify({"code": "not_available", "message": "no sync job is running"}), 503
        sync_now()
        return jsonify({"ok": True, "message": "已开始同步"})

    return app
