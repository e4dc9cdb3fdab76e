"""Catalog import with a preview (导入预览): what a file would publish, before anything is published.

Pure: the file's bytes and the county feed's catalog rows in, an `ImportPreview`
out. The CLI (`county-server catalog import`) and the county's pages call the
same `preview_import`, show the preview, and publish only that preview
(`county_server.catalog.publish_import`), so nothing is published that the
preview did not show.

**Modes.** 增量 (`INCREMENTAL`, the default): the file adds and changes items;
items it does not list stay as they are. 全量替换 (`REPLACE`): the file states
the whole catalog; items it does not list are cancelled (取消). In both modes a
row may cancel its own item by giving 状态 取消.

**The preview** lists the items added, the items changed field by field (old →
new), the items cancelled, how many stay unchanged, and every bad row and cell
(`RowProblem`: row as the user sees it, column as written, what is wrong and
what to write). A preview with one problem publishes nothing.

**The digest** binds a confirmation to one preview: sha256 over the mode, the
release the preview was computed against (its version and a digest of its
items) and every item body the release would write. Publishing recomputes the
preview against the catalog as it is then; a different digest means the
catalog (or the file) changed in between, and the publish is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import catalog, catalog_history
from .errors import DomainError

INCREMENTAL, REPLACE = MODES = ("增量", "全量替换")


class StalePreviewError(DomainError):
    """The catalog changed between the preview and its confirmation: nothing was published."""

    http_status = 409
    code = "stale_preview"


@dataclass(frozen=True)
class ItemChange:
    """One item the import adds, changes or cancels; `fields` maps field → [old, new] (not for added items)."""

    task_code: str
    name: str
    fields: dict[str, list[Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"task_code": self.task_code, "name": self.name, "fields": self.fields}


@dataclass(frozen=True)
class ImportPreview:
    """What importing one file would publish (see the module docstring)."""

    source: str
    mode: str
    base_version: int  # the release the preview was computed against (0: none yet)
    base_digest: str  # digest of that release's items
    added: list[ItemChange]
    changed: list[ItemChange]
    cancelled: list[ItemChange]
    unchanged: int
    problems: list[catalog.RowProblem]
    written: list[dict[str, Any]]  # the item bodies the release writes (with "version")
    digest: str

    @property
    def ok(self) -> bool:
        """No bad row: the preview may be published."""
        return not self.problems

    @property
    def version(self) -> int:
        """The release this preview publishes."""
        return self.base_version + 1

    @property
    def changes(self) -> dict[str, list[str]]:
        return {
            "added": [c.task_code for c in self.added],
            "changed": [c.task_code for c in self.changed],
            "cancelled": [c.task_code for c in self.cancelled],
        }

    def release(self, current: Mapping[str, dict[str, Any]], *, released_ms: int) -> catalog.ReleasePlan:
        """The release to append (empty when nothing changes); `current` is the catalog at `base_version`."""
        if not self.ok:
            raise catalog.CatalogFileError(self.source, self.problems)
        return catalog.release_of(
            current, self.written, self.changes, self.version, released_ms, self.source, mode=self.mode
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mode": self.mode,
            "base_version": self.base_version,
            "version": self.version if self.written and self.ok else None,
            "digest": self.digest,
            "counts": {
                "added": len(self.added),
                "changed": len(self.changed),
                "cancelled": len(self.cancelled),
                "unchanged": self.unchanged,
                "problems": len(self.problems),
            },
            "added": [c.as_json() for c in self.added],
            "changed": [c.as_json() for c in self.changed],
            "cancelled": [c.as_json() for c in self.cancelled],
            "problems": [
                {"row": p.row, "column": p.column, "field": p.field, "message": p.message} for p in self.problems
            ],
        }


def digest_of(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def catalog_digest(current: Mapping[str, Mapping[str, Any]]) -> str:
    """A digest of a release's items (bodies with their versions), to see that nothing changed since."""
    return digest_of(sorted([code, dict(body)] for code, body in current.items()))


def _fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    keys = sorted(set(old) | set(new))
    return {k: [old.get(k), new.get(k)] for k in keys if k != "version" and old.get(k) != new.get(k)}


def plan_import(
    items: Sequence[Mapping[str, Any]], problems: Sequence[catalog.RowProblem], rows: Iterable[catalog_history.Row], *,
    mode: str = INCREMENTAL, source: str = "",
) -> ImportPreview:  # fmt: skip
    """The preview of importing checked `items` (with the file's `problems`) onto the catalog in `rows`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    rows = list(rows)
    base = catalog_history.latest_version(rows)
    current = catalog_history.current_items(rows) if base else {}
    written: list[dict[str, Any]] = []
    added: list[ItemChange] = []
    changed: list[ItemChange] = []
    cancelled: list[ItemChange] = []
    if not problems:
        plan = catalog.plan_release(current, items, base + 1, replace=mode == REPLACE)
        written = plan.items
        kinds = {code: kind for kind, codes in plan.changes.items() for code in codes}
        for body in written:
            code, name = body["task_code"], body.get("name", "")
            old = current.get(code)
            if old is None:
                added.append(ItemChange(code, name))
            else:
                change = ItemChange(code, name, _fields(old, body))
                (cancelled if kinds[code] == "cancelled" else changed).append(change)
    base_digest = catalog_digest(current)
    digest = digest_of({"mode": mode, "base": [base, base_digest], "written": written, "problems": len(problems)})
    return ImportPreview(
        source=source,
        mode=mode,
        base_version=base,
        base_digest=base_digest,
        added=added,
        changed=changed,
        cancelled=cancelled,
        unchanged=len(current) - len(changed) - len(cancelled),
        problems=list(problems),
        written=written,
        digest=digest,
    )


def preview_import(
    data: bytes, name: str, rows: Iterable[catalog_history.Row], *, mode: str = INCREMENTAL
) -> ImportPreview:
    """Read a .json, .csv or .xlsx file's bytes, check every row, and preview it against the catalog in `rows`.

    A row for an item already in the catalog changes only the fields the file
    has columns (JSON: keys) for; the others keep their current values. A file
    that cannot be read at all (not JSON/CSV/XLSX, broken) raises
    `ValidationError`; bad rows and cells are the preview's `problems`.
    """
    raw, header_row = catalog.parse_rows(data, name)
    rows = list(rows)
    current = catalog_history.current_items(rows)
    items, problems = catalog.check_rows(raw, header_row=header_row, current=current)
    return plan_import(items, problems, rows, mode=mode, source=name)
