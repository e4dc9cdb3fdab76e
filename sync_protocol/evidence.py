"""A fork found by a relay, carried up to the county: `fork.evidence` (docs/protocol.md §8.8).

A restored laptop's other branch meets its township first; the township
records the fork and freezes the feed (§5.2), and the county, which never sees
that branch, must know of it to decide (§8.7). So the township writes the
evidence in its own up feed `<T>/up`, which travels to the county like any
other data (a sync or a USB bundle): for each batch of the other branch it
kept, one entry or more (a batch larger than `PART_BYTES` is cut in parts):

    {"batch": {"data": BASE64, "part": I, "parts": N, "sha256": HEX},
     "feed": FEED, "fork_at": S, "found_ms": MS, "held": SIGNED_HEAD, "local_hash": HEX}

- `feed`: the forked feed; its author must be a village whose parent is the
  writer (the membership says who may report on whom, never the body);
- `fork_at`, `local_hash`: the first seq where the branches part, and the
  hash the writer holds there;
- `held`: the writer's newest signed head of `feed` (its branch, signed by the
  feed's author);
- `batch`: part `I` (0-based) of `N` of the raw batch of the other branch,
  whose SHA-256 is `sha256`; `found_ms`: when the writer met it.

The receiver puts the parts together and checks the whole batch exactly as it
checks any batch (§5.1, against its directory), then the claims against the
batch: it is of `feed`, covers `fork_at`, and its entry there differs from
`local_hash`; `held` is a valid head of `feed` signed by its author. Only
then is the fork recorded, as found by the writer; the receiver's own copy is
not frozen by a report. A report that fails is kept as refused, with its
reason, and changes nothing else.

Pure: bodies and bytes in, checked values out, or `ProtocolError` /
`VerificationError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from . import canonical
from .errors import ProtocolError, SyncError
from .feeds import parse_feed
from .heads import SignedHead, decode_head
from .membership import Directory
from .verify import check_batch

KIND_FORK_EVIDENCE = "fork.evidence"
PART_BYTES = 150_000  # raw bytes a part carries: 200,000 characters of base64, well within one body (§7)
_KEYS = frozenset({"batch", "feed", "fork_at", "found_ms", "held", "local_hash"})
_BATCH_KEYS = frozenset({"data", "part", "parts", "sha256"})


@dataclass(frozen=True)
class Part:
    """One checked evidence body: what it claims, and its part of the batch."""

    feed: str
    fork_at: int
    found_ms: int
    local_hash: bytes
    held: SignedHead
    sha256: bytes
    part: int
    parts: int
    data: bytes


@dataclass(frozen=True)
class Fork:
    """A whole report, checked: the fork it proves and the batch of the other branch."""

    feed: str
    fork_at: int
    found_ms: int
    local_hash: bytes
    remote_hash: bytes
    held_seq: int
    first: int
    last: int
    batch: bytes


def evidence_bodies(
    *, feed: str, fork_at: int, found_ms: int, local_hash: bytes, held: SignedHead, batch: bytes
) -> list[dict[str, Any]]:
    """The bodies that carry one batch of the other branch (one per part)."""
    digest = hashlib.sha256(batch).hexdigest()
    chunks = [batch[i : i + PART_BYTES] for i in range(0, len(batch), PART_BYTES)] or [b""]
    head = canonical.decode(held.encode())
    return [
        {
            "batch": {
                "data": base64.b64encode(chunk).decode("ascii"),
                "part": i,
                "parts": len(chunks),
                "sha256": digest,
            },
            "feed": feed,
            "fork_at": fork_at,
            "found_ms": found_ms,
            "held": head,
            "local_hash": local_hash.hex(),
        }
        for i, chunk in enumerate(chunks)
    ]


def check_part(body: Any, *, writer: str, directory: Directory) -> Part:
    """The shape of one body, and the writer's right to report on the feed (from the membership)."""
    if not isinstance(body, dict) or body.keys() != _KEYS:
        raise ProtocolError("fork.evidence must have exactly batch, feed, fork_at, found_ms, held, local_hash")
    feed, fork_at, found_ms, batch = body["feed"], body["fork_at"], body["found_ms"], body["batch"]
    if not isinstance(feed, str):
        raise ProtocolError("fork.evidence feed must be a feed id")
    author = parse_feed(feed).author
    m = directory.get(author)
    if m is None or m.parent != writer:
        raise ProtocolError(f"{writer} may report forks only of its own children's feeds, not of {feed}")
    if not canonical.is_int(fork_at) or fork_at < 1 or not canonical.is_int(found_ms) or found_ms < 0:
        raise ProtocolError("fork.evidence fork_at must be ≥ 1 and found_ms ≥ 0")
    local_hash = canonical.hex_bytes(body["local_hash"], 32, "fork.evidence local_hash")
    if not isinstance(body["held"], dict):
        raise ProtocolError("fork.evidence held must be a signed head")
    held = decode_head(canonical.encode(body["held"]))
    if held.feed != feed:
        raise ProtocolError(f"fork.evidence held is a head of {held.feed}, not of {feed}")
    if not isinstance(batch, dict) or batch.keys() != _BATCH_KEYS:
        raise ProtocolError("fork.evidence batch must have exactly data, part, parts, sha256")
    part, parts = batch["part"], batch["parts"]
    if not canonical.is_int(parts) or not 1 <= parts <= 128 or not canonical.is_int(part) or not 0 <= part < parts:
        raise ProtocolError("fork.evidence batch part must be 0 ≤ part < parts ≤ 128")
    sha256 = canonical.hex_bytes(batch["sha256"], 32, "fork.evidence batch sha256")
    if not isinstance(batch["data"], str):
        raise ProtocolError("fork.evidence batch data must be base64 text")
    try:
        data = base64.b64decode(batch["data"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(f"fork.evidence batch data is not base64: {e}") from e
    if len(data) > PART_BYTES:
        raise ProtocolError(f"fork.evidence part holds {len(data)} bytes, more than {PART_BYTES}")
    return Part(feed, fork_at, found_ms, local_hash, held, sha256, part, parts, data)


def check_fork(parts: list[Part], *, county: str, directory: Directory) -> Fork:
    """All parts of one batch, in order: the batch checked as any batch (§5.1), then the claims against it."""
    first = parts[0]
    if [p.part for p in parts] != list(range(first.parts)) or any(
        (p.feed, p.fork_at, p.sha256, p.parts) != (first.feed, first.fork_at, first.sha256, first.parts) for p in parts
    ):
        raise ProtocolError("fork.evidence parts do not belong together")
    batch = b"".join(p.data for p in parts)
    if hashlib.sha256(batch).digest() != first.sha256:
        raise ProtocolError("fork.evidence batch does not match its sha256")
    checked = check_batch(batch, county=county, directory=directory)
    if checked.error is not None:
        raise checked.error
    if checked.feed != first.feed:
        raise ProtocolError(f"fork.evidence batch is of {checked.feed}, not of {first.feed}")
    if not checked.first <= first.fork_at <= checked.last:
        raise ProtocolError(f"fork.evidence batch {checked.first}–{checked.last} does not cover fork_at")
    remote = checked.entries[first.fork_at - checked.first].hash
    if remote == first.local_hash:
        raise ProtocolError("fork.evidence batch agrees with the writer's copy at fork_at: no fork")
    held = first.held
    try:
        held.verify(directory.check_author(parse_feed(held.feed)).key)
    except SyncError as e:
        raise type(e)(f"fork.evidence held head: {e.message}") from e
    return Fork(
        first.feed, first.fork_at, first.found_ms, first.local_hash, remote, held.seq, checked.first, checked.last,
        batch,
    )  # fmt: skip
