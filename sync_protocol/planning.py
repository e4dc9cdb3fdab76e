"""Feed vectors, their digest, and what each side of a link must send.

A vector maps feed id → (seq, head hash) for the feeds a node holds. Two
nodes compare the digest of their vectors restricted to the feeds both should
hold; if the digests match, there is nothing to do. Otherwise each sends the
ranges the other lacks, cut into batches that end at signed heads and grouped
into pages bounded by bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import canonical
from .errors import ProtocolError
from .feeds import feed_of

VECTOR_TAG = b"sanji/vector/v1\n"

Vector = dict[str, tuple[int, bytes]]


@dataclass(frozen=True, order=True)
class Range:
    """Entries `start`..`end` (inclusive) of one feed."""

    feed: str
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.start + 1


def vector_to_wire(vector: Mapping[str, tuple[int, bytes]]) -> dict[str, list[object]]:
    return {feed: [seq, h.hex()] for feed, (seq, h) in vector.items()}


def vector_from_wire(data: object) -> Vector:
    if not isinstance(data, dict):
        raise ProtocolError("a feed vector is an object of feed id → [seq, hash]")
    out: Vector = {}
    for feed, v in data.items():
        feed_of(feed)
        if not isinstance(v, list) or len(v) != 2 or not canonical.is_int(v[0]) or v[0] < 0:
            raise ProtocolError(f"vector entry for {feed} must be [seq, hash hex]")
        out[feed] = (
            v[0],
            b"" if v[0] == 0 and v[1] == "" else canonical.hex_bytes(v[1], 32, f"vector hash for {feed}"),
        )
    return out


def restrict(vector: Mapping[str, tuple[int, bytes]], wanted: Callable[[str], bool]) -> Vector:
    return {f: v for f, v in vector.items() if wanted(f)}


def digest(vector: Mapping[str, tuple[int, bytes]]) -> bytes:
    """SHA-256 over the canonical vector; an empty feed (seq 0) counts as absent."""
    present = {f: v for f, v in vector.items() if v[0] > 0}
    return hashlib.sha256(VECTOR_TAG + canonical.encode(vector_to_wire(present))).digest()


def plan_ranges(
    mine: Mapping[str, tuple[int, bytes]], theirs: Mapping[str, tuple[int, bytes]], wanted: Callable[[str], bool]
) -> list[Range]:
    """Ranges of my feeds that the other side lacks and should hold."""
    out = []
    for feed in sorted(mine):
        seq = mine[feed][0]
        have = theirs.get(feed, (0, b""))[0]
        if seq > have and wanted(feed):
            out.append(Range(feed, have + 1, seq))
    return out


def diverged(mine: Mapping[str, tuple[int, bytes]], theirs: Mapping[str, tuple[int, bytes]]) -> list[str]:
    """Feeds at the same seq with different head hashes: a fork somewhere."""
    return sorted(f for f, (s, h) in mine.items() if f in theirs and theirs[f][0] == s and s and theirs[f][1] != h)


def cut_range(rng: Range, commits: Sequence[tuple[int, int]], max_bytes: int, max_entries: int = 10_000) -> list[Range]:
    """Cut a range into batches that end at signed heads.

    `commits` lists, in order, each signed head seq inside (rng.start-1, rng.end]
    with the bytes of the entries since the previous one. A batch holds whole
    runs between heads up to `max_bytes` and `max_entries`; a single run larger
    than `max_bytes` travels alone (authors sign a head at least every
    `heads.HEAD_SPAN_BYTES` inside a commit, and never write a commit of more
    than `max_entries` entries, see `Store.append`).
    """
    out: list[Range] = []
    start, size, last = rng.start, 0, rng.start - 1
    for head_seq, nbytes in commits:
        if head_seq <= last or head_seq > rng.end:
            raise ProtocolError(f"signed heads for {rng.feed} are out of order or outside {rng.start}..{rng.end}")
        if head_seq - start + 1 > max_entries and last >= start:
            out.append(Range(rng.feed, start, last))
            start, size = last + 1, 0
        if head_seq - start + 1 > max_entries:
            raise ProtocolError(f"{rng.feed} has a commit of more than {max_entries} entries ending at {head_seq}")
        if size and size + nbytes > max_bytes:
            out.append(Range(rng.feed, start, last))
            start, size = last + 1, 0
        size += nbytes
        last = head_seq
    if last != rng.end:
        raise ProtocolError(f"no signed head at {rng.feed}#{rng.end}: cannot end a batch there")
    if size:
        out.append(Range(rng.feed, start, last))
    return out


def paginate(batches: Iterable[tuple[Range, int]], max_page_bytes: int, max_batches: int = 4096) -> list[list[Range]]:
    """Group (batch, size) pairs into pages of at most `max_page_bytes`."""
    pages: list[list[Range]] = []
    page: list[Range] = []
    size = 0
    for rng, n in batches:
        if page and (size + n > max_page_bytes or len(page) >= max_batches):
            pages.append(page)
            page, size = [], 0
        page.append(rng)
        size += n
    if page:
        pages.append(page)
    return pages
