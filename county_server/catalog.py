"""Catalog releases (事项实施清单) in the county's public feed.

The thin adapter between `sanji_domain.catalog` (the item model, file import,
release planning, diffs) and the county's store: it rebuilds the current
catalog from the `catalog.item` and `catalog.release` entries of
`{root}/*`, and writes each release as ONE commit of that feed, so a release
is all there or not there at all. A file with one bad row writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from sanji_domain import catalog as domain
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store


def feed(store: Store) -> str:
    return f"{store.trust.root_node}/*"


def rows(store: Store) -> list[domain.Row]:
    """(kind, key, body) of the county feed's catalog entries, in seq order."""
    cur = store.conn.execute(
        "SELECT kind, key, body FROM entries WHERE feed = ? AND kind IN (?, ?) ORDER BY seq",
        (feed(store), domain.KIND_ITEM, domain.KIND_RELEASE),
    )
    return [(kind, key, orjson.loads(body)) for kind, key, body in cur]


def _write(store: Store, key: SigningKey, plan: domain.ReleasePlan, *, now_ms: int) -> dict[str, Any]:
    """Append the release in one commit; return its body without the item list."""
    store.append(key, feed(store), plan.records(now_ms * 1000))
    return {k: v for k, v in (plan.release or {}).items() if k != "items"}


def import_release(store: Store, key: SigningKey, path: Path, *, now_ms: int) -> dict[str, Any]:
    """Check `path` and publish the release it makes; nothing is written if a row is bad or nothing changed."""
    items = domain.read_catalog(path)
    entries = rows(store)
    version, current = domain.latest_version(entries), domain.current_items(entries)
    plan = domain.plan_release(current, items, version + 1, released_ms=now_ms, source=path.name)
    if not plan:  # the file says what the current release says
        return {"version": None, "current": version, "count": len(current), "changes": plan.changes}
    return _write(store, key, plan, now_ms=now_ms)


def change_state(store: Store, key: SigningKey, task_code: str, state: str, reason: str, now_ms: int) -> dict[str, Any]:
    """Suspend (暂停), cancel (取消) or resume (在用) one item as a new one-item release."""
    entries = rows(store)
    version = domain.latest_version(entries)
    plan = domain.set_state(domain.current_items(entries), task_code, state, reason, version + 1, released_ms=now_ms)
    return _write(store, key, plan, now_ms=now_ms)


def releases(store: Store) -> list[dict[str, Any]]:
    """Every release, oldest first, without its item list."""
    return [{k: v for k, v in r.items() if k != "items"} for r in domain.releases(rows(store))]


def diff_releases(store: Store, a: int, b: int) -> dict[str, Any]:
    """Field-level differences between releases `a` and `b` (see `sanji_domain.catalog.diff`)."""
    entries = rows(store)
    old, new = domain.release_items(entries, a), domain.release_items(entries, b)
    names = {code: body.get("name", "") for code, body in {**old, **new}.items()}
    return {"from": a, "to": b, **domain.diff(old, new), "names": names}
