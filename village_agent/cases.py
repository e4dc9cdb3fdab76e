"""Cases logged by the proxy agent (代办员), as entries of the village's upward feed.

The full case model (items, materials, the state machine) arrives with the
service domain; here a case is the JSON the agent gives, with an id, a readable
local number `{village-code}-{yyyymmdd}-{n}` and the time it was logged.
"""

from __future__ import annotations

import json
import os
import unicodedata
from datetime import datetime
from typing import Any

from sanji_node.child import ChildNode
from sync_protocol.entries import Record
from sync_protocol.errors import ProtocolError

KIND_CASE = "case.new"


def uuid7(now_ms: int, rand: bytes) -> str:
    """A time-ordered UUID (version 7): inserts in time order, sortable by creation."""
    value = (now_ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | (int.from_bytes(rand[:2], "big") & 0x0FFF) << 64
    value |= (0b10 << 62) | (int.from_bytes(rand[2:10], "big") & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    return value


def new_cases(node: ChildNode, items: list[Any], *, now_ms: int) -> list[dict[str, Any]]:
    """Log cases in one commit: all of them, or none if one is not a JSON object."""
    if not items:
        raise ProtocolError("no case given")
    for i, data in enumerate(items, start=1):
        if not isinstance(data, dict):
            raise ProtocolError(
                f"case {i} is not a JSON object", hint='e.g. {"item": "高龄津贴申请", "applicant": {"name": "王秀英"}}'
            )
    day = datetime.fromtimestamp(now_ms / 1000).strftime("%Y%m%d")
    prefix = f"{node.config.division}-{day}-"
    feed = f"{node.config.node_id}/up"
    with node.open_store() as store:
        n = store.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE feed = ? AND kind = ? AND json_extract(CAST(body AS TEXT), '$.local_no') LIKE ?",
            (feed, KIND_CASE, prefix + "%"),
        ).fetchone()[0]
        records, made = [], []
        for i, data in enumerate(items, start=1):
            case_id = uuid7(now_ms, os.urandom(10))
            local_no = f"{prefix}{n + i}"
            body = {
                **_normalise(data),
                "case_id": case_id,
                "local_no": local_no,
                "logged_ms": now_ms,
                "village": node.config.node_id,
            }
            records.append(Record(KIND_CASE, case_id, body, now_ms * 1000 + i))
            made.append({"case_id": case_id, "local_no": local_no})
        entries, _ = store.append(node.key, feed, records)
    for m, e in zip(made, entries, strict=True):
        m.update(seq=e.seq, hash=e.hash.hex())
    return made


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"the case is not valid JSON: {e}") from e
