"""The catalog as the county feed holds it: the release history, the items of any release, diffs.

Pure: the caller passes the feed's catalog rows, (kind, key, body) in seq
order (`county_server.catalog.rows`); nothing is read here. Releases are
written by `sanji_domain.catalog` (`plan_release`, `set_state`) and
`sanji_domain.catalog_import` (an import's preview).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import KIND_ITEM, KIND_RELEASE
from .errors import NotFoundError

Row = tuple[str, str, Mapping[str, Any]]  # (kind, key, body) of a county-feed entry, in seq order


def _index(rows: Iterable[Row]) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[int, dict[str, Any]]]:
    bodies: dict[tuple[str, int], dict[str, Any]] = {}
    releases: dict[int, dict[str, Any]] = {}
    for kind, key, body in rows:
        if kind == KIND_ITEM and isinstance(body, Mapping) and isinstance(body.get("version"), int):
            bodies[(key, body["version"])] = dict(body)
        elif kind == KIND_RELEASE and isinstance(body, Mapping) and isinstance(body.get("version"), int):
            releases[body["version"]] = dict(body)
    return bodies, releases


def releases(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Every `catalog.release` body, oldest first."""
    return [body for _, body in sorted(_index(rows)[1].items())]


def latest_version(rows: Iterable[Row]) -> int:
    return max(_index(rows)[1], default=0)


def release_items(rows: Iterable[Row], version: int) -> dict[str, dict[str, Any]]:
    """task_code → item body as of release `version`."""
    bodies, rels = _index(rows)
    release = rels.get(version)
    if release is None:
        known = "、".join(str(v) for v in sorted(rels)) or "无"
        raise NotFoundError(
            f"没有第 {version} 版事项清单（已有版本: {known}）",
            hint="用 catalog releases 查看版本 (see `catalog releases`)",
        )
    out: dict[str, dict[str, Any]] = {}
    for entry in release.get("items", []):
        code, item_version = (entry, version) if isinstance(entry, str) else entry  # early releases listed codes
        body = bodies.get((code, item_version))
        if body is not None:
            out[code] = body
    return out


def current_items(rows: Iterable[Row]) -> dict[str, dict[str, Any]]:
    """task_code → item body in the latest release ({} before the first)."""
    rows = list(rows)
    version = latest_version(rows)
    return release_items(rows, version) if version else {}


def diff(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Field-level differences: added and removed codes, changed {code: {field: [old, new]}} (not `version`)."""
    changed: dict[str, dict[str, list[Any]]] = {}
    for code in sorted(set(old) & set(new)):
        a, b = old[code], new[code]
        fields = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if k != "version" and a.get(k) != b.get(k)}
        if fields:
            changed[code] = fields
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)), "changed": changed}
