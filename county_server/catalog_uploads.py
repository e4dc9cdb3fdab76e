"""Catalog files held between their preview and the administrator's confirmation (导入预览 → 确认发布).

An uploaded catalog file (or the fields of an item edited in a form) is kept
on the county's disk, never in the session cookie: `DATA/catalog-uploads/`,
owner-only (0700 directory, 0600 files), under an opaque random id. The
preview page and the confirmation read it back by that id; it is deleted when
it is published or discarded, and any upload older than `KEEP_MS` is swept
away whenever a new one is stored.

Each upload is two files: `<id>.bin` (the bytes) and `<id>.json` (what it is:
the file name, the import mode, `import` or `edit`, the item an edit is for,
who uploaded it and when).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sanji_domain.errors import NotFoundError
from sync_protocol import files

FOLDER = "catalog-uploads"
MAX_BYTES = 5 * 1024 * 1024  # a county catalog of a few thousand items is well under 1 MB
KEEP_MS = 24 * 3600 * 1000
IMPORT, EDIT = "import", "edit"
_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")


@dataclass(frozen=True)
class Upload:
    upload_id: str
    name: str  # the file's name as uploaded (its suffix says the format), or the edit's source text
    mode: str  # 增量 / 全量替换
    kind: str  # IMPORT or EDIT
    login: str  # who uploaded it
    created_ms: int
    target: str = ""  # the item an edit is for ("" for a new item or a file)

    def meta(self) -> dict[str, Any]:
        return asdict(self)


def folder(data_path: Path) -> Path:
    return files.private_dir(Path(data_path) / FOLDER)


def save(
    data_path: Path, data: bytes, *, name: str, mode: str, kind: str, login: str, now_ms: int, target: str = ""
) -> Upload:
    """Keep `data` owner-only under a new opaque id (sweeping expired uploads first)."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"an upload may hold at most {MAX_BYTES} bytes")
    sweep(data_path, now_ms)
    where = folder(data_path)
    upload = Upload(secrets.token_urlsafe(18), name, mode, kind, login, now_ms, target)
    # what it is first: a .bin never lies there without its .json (a sweep removes such leftovers)
    files.write_atomic(where / f"{upload.upload_id}.json", json.dumps(upload.meta(), ensure_ascii=False).encode())
    files.write_atomic(where / f"{upload.upload_id}.bin", data)
    return upload


def load(data_path: Path, upload_id: str) -> tuple[Upload, bytes]:
    """The upload and its bytes; `NotFoundError` (in Chinese) when it is unknown, published or expired."""
    gone = NotFoundError(
        "找不到这次导入的文件：可能已经发布、已放弃或已过期 (no such upload)",
        hint="请重新选择文件导入 (upload the file again)",
    )
    if not _ID.match(upload_id):
        raise gone
    where = Path(data_path) / FOLDER
    try:
        meta = json.loads((where / f"{upload_id}.json").read_text(encoding="utf-8"))
        data = (where / f"{upload_id}.bin").read_bytes()
        return Upload(**meta), data
    except (OSError, ValueError, TypeError):
        raise gone from None


def discard(data_path: Path, upload_id: str) -> None:
    if not _ID.match(upload_id):
        return
    where = Path(data_path) / FOLDER
    for suffix in (".bin", ".json"):
        (where / f"{upload_id}{suffix}").unlink(missing_ok=True)


def sweep(data_path: Path, now_ms: int) -> int:
    """Delete the uploads older than `KEEP_MS` (and any half-written leftovers); return how many."""
    where = Path(data_path) / FOLDER
    if not where.is_dir():
        return 0
    gone = 0
    for meta in where.glob("*.json"):
        try:
            created = int(json.loads(meta.read_text(encoding="utf-8"))["created_ms"])
        except (OSError, ValueError, KeyError, TypeError):
            created = 0
        if now_ms - created > KEEP_MS:
            discard(data_path, meta.stem)
            gone += 1
    for data in where.glob("*.bin"):
        if not (where / f"{data.stem}.json").exists():
            data.unlink(missing_ok=True)
    return gone
