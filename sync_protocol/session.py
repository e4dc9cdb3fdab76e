"""The sync session between a child and its parent (ARCHITECTURE §5), as messages.

Pure: the shapes of the JSON messages, their checks, and the rules that decide
what each side sends. The HTTP adapters (`http_api`, `http_client`) move them.

1. `hello`: the child sends the digest of its vector restricted to the feeds
   both should hold, and its heads of the feeds it writes (`own`: what waits on
   it to go up, as the parent reports it to the county). Equal digests: done —
   a no-op sync is this one request, and the parent knows the child holds
   what it holds of the shared feeds. Otherwise the parent answers with its
   restricted vector. Either way it also names the newest head it holds of
   each feed the child authors, so a laptop restored from an old backup
   learns that it must recover before it writes.
2. `push`: the child sends pages of what the parent lacks (upward first: cases
   are the precious data); the parent answers each page with what happened to
   every batch and its heads of the pushed feeds (已送达: held by the parent).
3. `pull`: the child sends its restricted vector; the parent answers with a
   page of what the child lacks, and whether more remains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import canonical
from .errors import ProtocolError
from .feeds import feed_of
from .membership import Directory
from .planning import Vector, digest, restrict, vector_from_wire, vector_to_wire
from .routing import should_hold
from .verify import Status, Verdict

SESSION_VERSION = 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def shared(child: str, parent: str, directory: Directory) -> Callable[[str], bool]:
    """Feeds that both ends of a link should hold: the only ones a session compares."""

    root_feed = directory.root_feed

    def both(feed: str) -> bool:
        # The county's public feed is held by every enrolled node. A node that does not yet hold its own
        # membership entry (a fresh laptop whose county feed is still arriving) must still compare it,
        # or each pull would start that feed over from entry 1 and never reach the entry that enrols it.
        if feed == root_feed:
            return True
        return should_hold(child, feed, directory) and should_hold(parent, feed, directory)

    return both


def own(node: str) -> Callable[[str], bool]:
    return lambda feed: feed_of(feed).author == node


def _decode(data: bytes, fields: set[str], what: str) -> dict[str, Any]:
    msg = canonical.decode(data, max_bytes=MAX_MESSAGE_BYTES, what=what)
    if not isinstance(msg, dict) or not fields <= msg.keys() or not canonical.is_int(msg.get("v"), SESSION_VERSION):
        raise ProtocolError(f"{what} must be an object with {', '.join(sorted(fields))} and v={SESSION_VERSION}")
    return msg


@dataclass(frozen=True)
class Hello:
    digest: bytes
    # the child's heads of the feeds it writes (and the parent should hold): what waits on it to go up is
    # these minus what the parent holds. Optional on the wire: a parent that predates it ignores the field.
    own: Vector | None = None

    @classmethod
    def of(cls, vector: Vector, shared_feeds: Callable[[str], bool], author: str | None = None) -> Hello:
        mine = None if author is None else restrict(vector, lambda f: shared_feeds(f) and own(author)(f))
        return cls(digest(restrict(vector, shared_feeds)), mine)

    def encode(self) -> bytes:
        msg: dict[str, Any] = {"digest": self.digest.hex(), "v": SESSION_VERSION}
        if self.own is not None:
            msg["own"] = vector_to_wire(self.own)
        return canonical.encode(msg)

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        msg = _decode(data, {"digest"}, "hello")
        own_heads = None if msg.get("own") is None else vector_from_wire(msg["own"])
        return cls(canonical.hex_bytes(msg["digest"], 32, "hello digest"), own_heads)


@dataclass(frozen=True)
class HelloReply:
    match: bool
    vector: Vector | None  # the parent's restricted vector, when the digests differ
    own: Vector  # the parent's heads of the feeds the child authors

    def encode(self) -> bytes:
        return canonical.encode(
            {
                "match": self.match,
                "own": vector_to_wire(self.own),
                "v": SESSION_VERSION,
                "vector": None if self.vector is None else vector_to_wire(self.vector),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> HelloReply:
        msg = _decode(data, {"match", "own", "vector"}, "hello reply")
        if not isinstance(msg["match"], bool):
            raise ProtocolError("hello reply match must be true or false")
        vector = None if msg["vector"] is None else vector_from_wire(msg["vector"])
        return cls(msg["match"], vector, vector_from_wire(msg["own"]))


def answer_hello(hello: Hello, parent_vector: Vector, shared_feeds: Callable[[str], bool], child: str) -> HelloReply:
    mine = restrict(parent_vector, shared_feeds)
    theirs_own = restrict(parent_vector, own(child))
    if digest(mine) == hello.digest:
        return HelloReply(True, None, theirs_own)
    return HelloReply(False, mine, theirs_own)


def must_recover(local: Vector, parent_own: Vector) -> list[str]:
    """Own feeds of which the parent holds more than this node: recover before writing."""
    return sorted(f for f, (seq, _) in parent_own.items() if seq > local.get(f, (0, b""))[0])


@dataclass(frozen=True)
class PullRequest:
    vector: Vector
    max_bytes: int

    def encode(self) -> bytes:
        return canonical.encode(
            {"max_bytes": self.max_bytes, "v": SESSION_VERSION, "vector": vector_to_wire(self.vector)}
        )

    @classmethod
    def decode(cls, data: bytes) -> PullRequest:
        msg = _decode(data, {"max_bytes", "vector"}, "pull request")
        if not canonical.is_int(msg["max_bytes"]) or not 1024 <= msg["max_bytes"] <= 64 * 1024 * 1024:
            raise ProtocolError("pull max_bytes must be an integer from 1 KiB to 64 MiB")
        return cls(vector_from_wire(msg["vector"]), msg["max_bytes"])


@dataclass(frozen=True)
class BatchResult:
    feed: str
    status: str
    first: int
    last: int
    reason: str
    want: int | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "first": self.first,
            "last": self.last,
            "reason": self.reason,
            "status": self.status,
            "want": self.want,
        }


def results_of(verdicts: list[Verdict]) -> list[BatchResult]:
    return [
        BatchResult(o.feed, o.status.value, o.first, o.last, o.reason, o.want) for v in verdicts for o in v.outcomes
    ]


@dataclass(frozen=True)
class PushReply:
    results: list[BatchResult]
    vector: Vector  # the parent's heads of the pushed feeds, after applying

    @property
    def refused(self) -> list[BatchResult]:
        bad = {Status.REJECTED.value, Status.FORBIDDEN.value}
        return [r for r in self.results if r.status in bad]

    def encode(self) -> bytes:
        return canonical.encode(
            {"results": [r.wire() for r in self.results], "v": SESSION_VERSION, "vector": vector_to_wire(self.vector)}
        )

    @classmethod
    def decode(cls, data: bytes) -> PushReply:
        msg = _decode(data, {"results", "vector"}, "push reply")
        if not isinstance(msg["results"], list):
            raise ProtocolError("push reply results must be a list of batch outcomes")
        results = []
        for r in msg["results"]:
            if (
                not isinstance(r, dict)
                or r.get("status") not in {s.value for s in Status}
                or not isinstance(r.get("feed"), str)
                or not isinstance(r.get("reason"), str)
                or not all(canonical.is_int(r.get(k)) for k in ("first", "last"))
                or not (r.get("want") is None or canonical.is_int(r["want"]))
            ):
                raise ProtocolError(
                    "push reply results must be batch outcomes (feed, status, first, last, reason, want)"
                )
            results.append(BatchResult(r["feed"], r["status"], r["first"], r["last"], r["reason"], r.get("want")))
        return cls(results, vector_from_wire(msg["vector"]))
