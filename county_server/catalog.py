"""Catalog releases (事项实施清单) in the county's public feed.

A release is one commit of the county feed: a `catalog.item` entry per item
(key: the item's 实施编码 task_code) and a `catalog.release` entry that names
the version and every item in it. The whole file is checked first; one bad row
and nothing is written, with every bad row named (row, column, problem).
The full item model, Excel import and release diffs arrive with the service
domain; this module keeps the release mechanics.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path
from typing import Any

from sync_protocol.entries import Record
from sync_protocol.errors import ProtocolError
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

KIND_ITEM, KIND_RELEASE = "catalog.item", "catalog.release"
INT_FIELDS = ("legal_days", "promised_days", "visits")
JSON_FIELDS = ("materials", "fees")
BOOL_FIELDS = ("online", "allow_pledge")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value.strip())
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{value} is not a whole number (use 分 for money, days for time limits)")
    return value


def _from_csv(text: str) -> list[dict[str, Any]]:
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = {k.strip(): (v or "") for k, v in raw.items() if k}
        rows.append(row)
    return rows


def read_items(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProtocolError(f"{path.name} is not valid JSON: {e}") from e
        items = doc.get("items") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise ProtocolError(f'{path.name} must hold a list of items, or an object with "items"')
        return items
    if path.suffix.lower() == ".csv":
        return _from_csv(text)
    raise ProtocolError(f"{path.name}: the catalog must be a .json or .csv file")


def check_items(items: list[Any], source: str) -> list[dict[str, Any]]:
    """Validate every row; raise one ProtocolError naming every bad row and column."""
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(items, start=1):
        row = n + 1 if source.endswith(".csv") else n  # CSV row numbers count the header line
        if not isinstance(item, dict):
            problems.append(f"第 {row} 行: 不是一个对象 (not an object)")
            continue
        try:
            clean = _clean(item)
        except ValueError as e:
            problems.append(f"第 {row} 行: {e}")
            continue
        for col in INT_FIELDS:
            v = clean.get(col, 0)
            if isinstance(v, str):
                if not v.strip().lstrip("-").isdigit():
                    problems.append(f"第 {row} 行 {col}: {v!r} 不是整数 (must be a whole number of days)")
                    continue
                clean[col] = int(v)
        for col in JSON_FIELDS:
            v = clean.get(col, [])
            if isinstance(v, str):
                try:
                    clean[col] = _clean(json.loads(v)) if v.strip() else []
                except (json.JSONDecodeError, ValueError) as e:
                    problems.append(f"第 {row} 行 {col}: 不是 JSON 列表 ({e})")
        for col in BOOL_FIELDS:
            v = clean.get(col)
            if isinstance(v, str):
                clean[col] = v.strip().lower() in ("1", "true", "是", "yes")
        code = clean.get("task_code")
        if not isinstance(code, str) or not code or len(code) > 36:
            problems.append(f"第 {row} 行 task_code: 实施编码必填，且不超过 36 个字符")
        elif code in seen:
            problems.append(f"第 {row} 行 task_code: {code} 与第 {seen[code]} 行重复")
        else:
            seen[code] = row
        if not isinstance(clean.get("name"), str) or not clean.get("name"):
            problems.append(f"第 {row} 行 name: 事项名称必填")
        if isinstance(clean.get("legal_days"), int) and isinstance(clean.get("promised_days"), int):
            if clean["legal_days"] and clean["promised_days"] > clean["legal_days"]:
                problems.append(
                    f"第 {row} 行 promised_days: 承诺时限 {clean['promised_days']} 超过法定时限 {clean['legal_days']}"
                )
        out.append(clean)
    if not items:
        problems.append("文件中没有事项 (no items)")
    if problems:
        raise ProtocolError(
            f"{source}: {len(problems)} 处错误，未导入任何事项:\n  " + "\n  ".join(problems),
            hint="fix these rows and import again",
        )
    return out


def latest_version(store: Store) -> int:
    row = store.conn.execute(
        "SELECT MAX(CAST(key AS INTEGER)) FROM entries WHERE feed = ? AND kind = ?",
        (f"{store.trust.root_node}/*", KIND_RELEASE),
    ).fetchone()
    return int(row[0] or 0)


def import_release(store: Store, key: SigningKey, path: Path, *, now_ms: int) -> dict[str, Any]:
    items = check_items(read_items(path), path.name)
    version = latest_version(store) + 1
    hlc = now_ms * 1000
    records = [Record(KIND_ITEM, item["task_code"], {**item, "version": version}, hlc) for item in items]
    release = {
        "count": len(items),
        "items": [i["task_code"] for i in items],
        "released_ms": now_ms,
        "source": path.name,
        "version": version,
    }
    records.append(Record(KIND_RELEASE, str(version), release, hlc))
    store.append(key, f"{store.trust.root_node}/*", records)
    return {"version": version, "count": len(items)}
