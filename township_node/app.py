"""The township node's Flask app: the sync API for its villages, enrolment relayed to the county, and the
clerks' pages (`township_node.pages`) on the same port for the centre's LAN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from sanji_node.actions.sync_status import Schedule, SyncMonitor
from sanji_node.child import ChildNode, apply_county_feed
from sanji_node.parent import now_ms, parent_app
from sync_protocol import enrolment
from sync_protocol.auth import Caller
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status, Verdict

from .pages import init_township_pages


def create_app(
    node: ChildNode,
    *,
    clock_ms: Callable[[], int] = now_ms,
    on_new_data: Callable[[], None] | None = None,
    idle_minutes: int = 30,
    schedule: Schedule | None = None,
    monitor: SyncMonitor | None = None,
) -> Flask:
    """The sync API for the villages and the clerks' pages; `schedule` and `monitor` are the upstream sync job's
    (the 同步 page shows them and its 立即同步 asks the job)."""
    config = node.config
    with node.open_store():  # migrate once, before any request
        pass

    def enroll(body: bytes) -> dict[str, Any]:
        """A village enrols through its township: forward to the county, keep the new membership."""
        request, _ = enrolment.decode_message(body)
        with node.open_store() as store:
            since = store.vector().get(f"{config.root_node}/*", (0, b""))[0]
            client = node.client(store=store)
            try:
                answer = client.enroll(enrolment.encode_message(request, since))
            finally:
                client.close()
            apply_county_feed(store, answer)
        answer.pop("county_feed", None)
        return answer

    def after_push(store: Store, caller: Caller, verdicts: list[Verdict]) -> None:
        if on_new_data is not None and any(o.status is Status.ACCEPTED for v in verdicts for o in v.outcomes):
            on_new_data()  # store and forward: take it up to the county soon

    app = parent_app(
        "township_node",
        node_id=config.node_id,
        role="township",
        open_store=node.open_store,
        key=node.key,
        clock_ms=clock_ms,
        pool=node.pool,
        enroll=enroll,
        after_push=after_push,
    )
    app.config["SANJI_DATA"] = str(node.data.path)
    init_township_pages(app, node, idle_minutes=idle_minutes, clock_ms=clock_ms, schedule=schedule, monitor=monitor)
    return app
