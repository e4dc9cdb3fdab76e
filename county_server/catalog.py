"""Catalog releases (事项实施清单) in the county's public feed.

The thin adapter between `sanji_domain.catalog` (the item model, file import,
release planning, diffs) and the county's store: it rebuilds the current
catalog from the `catalog.item` and `catalog.release` entries of
`{root}/*`, and writes each release as ONE commit of that feed, so a release
is all there or not there at all. A file with one bad row writes nothing.
An import is previewed first (`preview_import`) and publishes only what its
preview showed (`publish_import`), refusing if the catalog changed since.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from sanji_domain import catalog as domain
from sanji_domain import catalog_history as history
from sanji_domain import catalog_import as importing
from sync_protocol import files
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from . import audit


def feed(store: Store) -> str:
    return f"{store.trust.root_node}/*"


def rows(store: Store) -> list[history.Row]:
    """(kind, key, body) of the county feed's catalog entries, in seq order."""
    cur = store.conn.execute(
        "SELECT kind, key, body FROM entries WHERE feed = ? AND kind IN (?, ?) ORDER BY seq",
        (feed(store), domain.KIND_ITEM, domain.KIND_RELEASE),
    )
    return [(kind, key, orjson.loads(body)) for kind, key, body in cur]


def preview_import(
    store: Store, data: bytes, name: str, *, mode: str = importing.INCREMENTAL
) -> importing.ImportPreview:
    """What importing the file `name` (its bytes) would publish against the current catalog; writes nothing."""
    return importing.preview_import(data, name, rows(store), mode=mode)


def preview_item(store: Store, values: dict[str, Any], *, source: str) -> importing.ImportPreview:
    """What one item's fields (as an edit form gives them, keyed by column name) would publish (增量); writes nothing.

    The same checks as a file's row (row 1); a problem names the field as its
    column (e.g. 承诺时限), so a form shows it beside that field.
    """
    entries = rows(store)
    items, problems = domain.check_rows(
        [domain.RawRow(1, values)], header_row=0, current=history.current_items(entries)
    )
    return importing.plan_import(items, problems, entries, mode=importing.INCREMENTAL, source=source)


def publish_import(
    store: Store, key: SigningKey, preview: importing.ImportPreview, *, now_ms: int, digest: str | None = None,
    who: dict[str, Any] | None = None, action: str = "catalog.publish",
) -> dict[str, Any]:  # fmt: skip
    """Publish exactly what `preview` showed, or refuse.

    Refused (nothing written): a preview with bad rows (`CatalogFileError`); a
    `digest` (the one the user confirmed) that is not the preview's; a catalog
    that changed since the preview (another release: `StalePreviewError`,
    checked inside the write transaction). A page shows the preview with its
    `digest`; on confirmation it previews the same bytes again (same mode) and
    passes the digest the user confirmed, so a confirmation of one preview
    never publishes another. With `who` (the signed-in person, or
    `audit.CLI_ACTOR`) one audit row (`action`: catalog.publish for a file,
    catalog.item for an item edited in a form) is written in the same
    transaction as the release, with its counts. Returns the release as
    `import_release` does.
    """
    if not preview.ok:
        raise domain.CatalogFileError(preview.source, preview.problems)
    if digest is not None and digest != preview.digest:
        raise _stale(preview)
    entries = rows(store)
    current = history.current_items(entries)
    plan = preview.release(current, released_ms=now_ms)
    if not plan:  # the file says what the current release says
        _check_base(preview, entries)
        return {"version": None, "current": preview.base_version, "count": len(current), "changes": plan.changes}

    def unchanged() -> None:  # inside the write transaction: no release can slip in before the append
        _check_base(preview, rows(store))
        if who is not None:
            ch = plan.changes
            counts = {k: len(ch[k]) for k in ("added", "changed", "cancelled")}
            target = preview.written[0]["task_code"] if action == "catalog.item" and len(preview.written) == 1 else ""
            audit.record(store.db, who=who, action=action, at_ms=now_ms, target_kind="catalog", target=target,
                         details={"version": plan.version, "mode": preview.mode, "source": preview.source, **counts})  # fmt: skip

    store.append(key, feed(store), plan.records(now_ms * 1000), precondition=unchanged)
    return {k: v for k, v in (plan.release or {}).items() if k != "items"}


def _check_base(preview: importing.ImportPreview, entries: list[history.Row]) -> None:
    version = history.latest_version(entries)
    current = history.current_items(entries) if version else {}
    if (version, importing.catalog_digest(current)) != (preview.base_version, preview.base_digest):
        raise _stale(preview)


def _stale(preview: importing.ImportPreview) -> importing.StalePreviewError:
    return importing.StalePreviewError(
        f"事项清单在预览之后已变更（预览基于第 {preview.base_version} 版），未发布任何内容"
        " (the catalog changed after the preview; nothing was published)",
        hint="重新预览后再确认 (preview the file again, then confirm)",
    )


def import_release(
    store: Store, key: SigningKey, path: Path, *, now_ms: int, mode: str = importing.INCREMENTAL
) -> dict[str, Any]:
    """Check `path` and publish the release it makes at once (no confirmation: for scripts and tests).

    Nothing is written if a row is bad or nothing changed. `mode` 增量 keeps the
    items the file does not list; 全量替换 cancels them.
    """
    files.require_regular(path, "事项清单文件")
    preview = preview_import(store, path.read_bytes(), path.name, mode=mode)
    return publish_import(store, key, preview, now_ms=now_ms)


def change_state(
    store: Store, key: SigningKey, task_code: str, state: str, reason: str, now_ms: int,
    *, who: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Suspend (暂停), cancel (取消) or resume (在用) one item as a new one-item release.

    With `who`, one audit row (catalog.status, the item, the reason) is written
    in the same transaction as the release.
    """
    entries = rows(store)
    version = history.latest_version(entries)
    plan = domain.set_state(history.current_items(entries), task_code, state, reason, version + 1, released_ms=now_ms)

    def audited() -> None:
        if history.latest_version(rows(store)) != version:  # another release slipped in: decide again
            raise importing.StalePreviewError(
                "事项清单刚刚有了新版本，未作更改 (the catalog changed meanwhile; nothing was changed)",
                hint="刷新页面后再试 (reload, then try again)",
            )
        if who is not None:
            audit.record(store.db, who=who, action="catalog.status", at_ms=now_ms, target_kind="item",
                         target=task_code, reason=plan.release["reason"] if plan.release else reason,
                         details={"version": plan.version, "state": state})  # fmt: skip

    store.append(key, feed(store), plan.records(now_ms * 1000), precondition=audited)
    return {k: v for k, v in (plan.release or {}).items() if k != "items"}


def releases(store: Store) -> list[dict[str, Any]]:
    """Every release, oldest first, without its item list."""
    return [{k: v for k, v in r.items() if k != "items"} for r in history.releases(rows(store))]


def diff_releases(store: Store, a: int, b: int) -> dict[str, Any]:
    """Field-level differences between releases `a` and `b` (see `sanji_domain.catalog_history.diff`)."""
    entries = rows(store)
    old, new = history.release_items(entries, a), history.release_items(entries, b)
    names = {code: body.get("name", "") for code, body in {**old, **new}.items()}
    return {"from": a, "to": b, **history.diff(old, new), "names": names}
