"""The county's decision on a fork: `fork.resolve` (docs/protocol.md §8.7).

A laptop restored from an old copy that wrote on offline signs two histories
of its own feed; the node that meets both records the fork and freezes the
feed (§5.2). Only the county ends that, with one signed entry in the feed
addressed to the node, `<root>/<node>`, so the holding rule carries it down
through the township to the laptop:

    {"canonical": {"hash": HEX, "seq": N}, "feed": FEED, "node": NODE, "reason": TEXT}

`canonical` names the history that is the feed from now on: the one whose
entry at `seq` has `hash` (what the county holds). A receiver whose copy holds
that entry lifts the freeze; the author continues after the canonical head and
re-issues the records of its other branch as new entries (`reissue_of`).

Pure: bodies in, a checked `Resolution` out, or `ProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .canonical import hex_bytes, is_int
from .errors import ProtocolError
from .feeds import parse_feed
from .membership import COUNTY, Directory

KIND_FORK_RESOLVE = "fork.resolve"
_KEYS = frozenset({"canonical", "feed", "node", "reason"})


@dataclass(frozen=True)
class Resolution:
    node: str
    feed: str
    seq: int
    hash: bytes
    reason: str


def check_resolution(body: Any, *, feed: str, directory: Directory) -> Resolution:
    """A `fork.resolve` body written in `feed`: exactly the four fields, in the feed `<root>/<node>`."""
    if not isinstance(body, dict) or body.keys() != _KEYS:
        raise ProtocolError("fork.resolve must have exactly canonical, feed, node, reason")
    node, forked, reason, canonical = body["node"], body["feed"], body["reason"], body["canonical"]
    m = directory.get(node) if isinstance(node, str) else None
    if m is None or m.role == COUNTY:
        raise ProtocolError(f"fork.resolve names {node!r}, not an enrolled township or village")
    if feed != f"{directory.root}/{node}":
        raise ProtocolError(f"fork.resolve for {node} is written only in {directory.root}/{node}, not in {feed}")
    if not isinstance(forked, str) or parse_feed(forked).author != node:
        raise ProtocolError(f"fork.resolve for {node} names feed {forked!r}, which {node} does not write")
    if not isinstance(reason, str) or not reason.strip():
        raise ProtocolError("fork.resolve needs a reason (text)")
    if (
        not isinstance(canonical, dict)
        or canonical.keys() != {"hash", "seq"}
        or not is_int(canonical["seq"])
        or canonical["seq"] < 1
    ):
        raise ProtocolError("fork.resolve canonical must be {seq ≥ 1, hash}")
    digest = hex_bytes(canonical["hash"], 32, f"fork.resolve canonical hash for {forked}")
    return Resolution(node, forked, canonical["seq"], digest, reason)


def resolution_body(node: str, feed: str, seq: int, digest: bytes, reason: str) -> dict[str, Any]:
    return {"canonical": {"hash": digest.hex(), "seq": seq}, "feed": feed, "node": node, "reason": reason}
