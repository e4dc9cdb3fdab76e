"""Bundle files as the node programs write and read them (USB sticks)."""

from __future__ import annotations

import os
from pathlib import Path

from sync_protocol import routing
from sync_protocol.keys import SigningKey
from sync_protocol.planning import Vector
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status, Verdict

from .cli import now_ms


def write_bundle(store: Store, path: Path, *, key: SigningKey, source: str, target: str, theirs: Vector) -> int:
    """Write what `target` lacks (by `theirs`) to `path`; a half-written file never has the final name."""
    directory = store.directory()
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as out:
        writer = store.export_bundle(
            out,
            key=key,
            source=source,
            theirs=theirs,
            wanted=lambda feed: routing.may_push(source, target, feed, directory),
            created=now_ms(),
            target=target,
        )
    os.replace(tmp, path)
    return writer.batches


def import_report(file: str, verdicts: list[Verdict]) -> tuple[dict[str, object], str]:
    """What `import-bundle` prints: the JSON shape and the Chinese line."""
    new, _ = accepted(verdicts)
    return {
        "file": file,
        "batches": len(verdicts),
        "accepted": new,
    }, f"已导入 {file}：{len(verdicts)} 批，新增 {new} 条。"


def accepted(verdicts: list[Verdict]) -> tuple[int, set[str]]:
    """How many entries were new, and whose feeds they were."""
    outcomes = [o for v in verdicts for o in v.outcomes if o.status is Status.ACCEPTED]
    return sum(len(o.entries) for o in outcomes), {o.feed.split("/")[0] for o in outcomes}
