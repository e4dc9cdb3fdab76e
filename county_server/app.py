"""The county server's Flask app: the sync API for its townships (and villages falling back
to it), enrolment, and signed receipts for what it commits."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from sanji_node.config import DataDir
from sanji_node.parent import now_ms, parent_app
from sync_protocol import answers, compression, enrolment
from sync_protocol.auth import Caller
from sync_protocol.batches import encode_page
from sync_protocol.planning import Vector
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status, Verdict
from sync_protocol.verify_pool import VerifyPool

from . import numbering, receipts, tokens
from .node import CountyNode, open_county_store
from .pages import init_county_pages


def county_feed_page(store: Store, since: int) -> bytes:
    """The county's public feed after `since`, as a compressed page (for a relaying township)."""
    root_feed = f"{store.trust.root_node}/*"
    pages = store.plan({root_feed: (since, b"")} if since else {}, lambda f: f == root_feed, max_page_bytes=1 << 30)
    return compression.compress(encode_page([store.read_batch(r) for p in pages for r in p]))


def create_app(
    data_dir: str | Path,
    *,
    clock_ms: Callable[[], int] = now_ms,
    pool: VerifyPool | None = None,
    idle_minutes: int = 30,
) -> Flask:
    """The sync API for the townships (and villages falling back to the county), and the administrators' pages."""
    data = DataDir(data_dir)
    config = data.load()
    key = data.load_key(config)
    open_store = lambda: open_county_store(data)  # noqa: E731
    with open_store():  # migrate once, before any request
        pass

    numberer = numbering.NumberingJob(open_store, key, config, clock_ms)

    def enroll(body: bytes) -> dict[str, Any]:
        request, since = enrolment.decode_message(body)
        with open_store() as store:
            member = tokens.redeem(store, key, request, now_ms=clock_ms())
            parent = store.directory().get(str(member["parent"]))
            out: dict[str, Any] = {
                **member,
                "county": config.county,
                "county_name": config.county_name,
                "root_node": config.root_node,
                "root_key": config.root_key,
                "parent_key": "" if parent is None else parent.key.hex,  # the new node checks its parent's answers
            }
            out = answers.sign_enrol_answer(key, out, request.token.token_id)
            if since is not None:
                out["county_feed"] = base64.b64encode(county_feed_page(store, since)).decode("ascii")
        return out

    def after_push(store: Store, caller: Caller, verdicts: list[Verdict]) -> None:
        authors = {o.feed.split("/")[0] for v in verdicts for o in v.outcomes if o.status is Status.ACCEPTED}
        if authors:
            receipts.write_receipts(store, key, authors, clock_ms() * 1000)
            numberer.poke()  # 办件编号, off the push's path

    def before_pull(store: Store, caller: Caller, vector: Vector) -> None:
        receipts.write_receipts(store, key, receipts.subtree(store, caller.node), clock_ms() * 1000)

    app = parent_app(
        "county_server",
        node_id=config.node_id,
        role="county",
        open_store=open_store,
        key=key,
        clock_ms=clock_ms,
        pool=pool,
        enroll=enroll,
        after_push=after_push,
        before_pull=before_pull,
    )
    app.config["SANJI_DATA"] = str(data.path)
    app.extensions["sanji_numbering"] = numberer  # `serve` pokes it at start: cases imported while it was down
    init_county_pages(app, CountyNode(data, config, key), idle_minutes=idle_minutes, clock_ms=clock_ms)
    return app
