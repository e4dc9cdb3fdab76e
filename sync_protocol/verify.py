"""Verifying a received batch against the receiver's copy of its feed.

Pure: the caller passes the batch bytes, the county id, the membership
directory and what it holds of the feed; the result names what happened to
each run of entries. Nothing is raised for hostile input: a bad batch is an
outcome, so a page can keep its valid prefix.

Order (docs/protocol.md §5): framing and sizes; the head (county, feed);
rebuild and hash every entry and check that the chain reaches the signed
head; the author's right to write the feed; the head signature; only then
parse the bodies (canonical check) — all of this is `check_batch`, which
needs no local state; last, `classify` compares with local state
(duplicate, gap, fork, frozen, revocation).
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import canonical
from .batches import RawBatch, decode_batch
from .entries import Entry, chain_hashes, entries_from, genesis_hash
from .errors import AuthorizationError, ProtocolError, SequenceError, SyncError, VerificationError
from .feeds import feed_of
from .heads import SignedHead, decode_head
from .limits import DEFAULT_LIMITS, Limits
from .membership import Directory


class Status(enum.StrEnum):
    ACCEPTED = "accepted"  # new entries, to append
    DUPLICATE = "duplicate"  # already held: a no-op
    GAP = "gap"  # starts after the local head: backfill from `want`
    FORK = "fork"  # the author signed two histories: keep both, freeze the feed
    REJECTED = "rejected"  # malformed, bad hash or signature, wrong county
    FORBIDDEN = "forbidden"  # the author may not write this feed
    QUARANTINED = "quarantined"  # past a revocation point, or the feed is frozen


@dataclass(slots=True)
class LocalFeed:
    """What the receiver holds of a feed."""

    seq: int
    hash: bytes
    frozen: bool = False


@dataclass(slots=True)
class Outcome:
    status: Status
    feed: str
    first: int
    last: int
    reason: str = ""
    entries: list[Entry] = field(default_factory=list)
    error: SyncError | None = None
    want: int | None = None  # GAP: the first seq to backfill
    fork_at: int | None = None  # FORK: the seq whose hash differs, and the two hashes there
    local_hash: bytes | None = None
    remote_hash: bytes | None = None


@dataclass(slots=True)
class Verdict:
    feed: str | None
    head: SignedHead | None
    outcomes: list[Outcome]

    @property
    def accepted(self) -> list[Entry]:
        return [e for o in self.outcomes if o.status is Status.ACCEPTED for e in o.entries]

    @property
    def ok(self) -> bool:
        """False if any part was rejected or forbidden."""
        return not any(o.status in (Status.REJECTED, Status.FORBIDDEN) for o in self.outcomes)

    def first_error(self) -> SyncError | None:
        for o in self.outcomes:
            if o.error is not None:
                return o.error
        return None


NO_HASHES: Callable[[int, int], Mapping[int, bytes]] = lambda start, end: {}  # noqa: E731


@dataclass(slots=True)
class Layout:
    """Where a compact result's entries lie in their batch: what `expand` needs besides the hashes.

    Made by the worker that decoded the batch, so the receiving process
    slices the bodies out instead of decoding the framing again.
    """

    seq: int
    hlcs: bytes  # array('Q')
    kinds: list[str]
    keys: list[str]
    starts: bytes  # array('I'): where each body starts
    sizes: bytes  # array('I'): its length

    @classmethod
    def of(cls, raw: RawBatch) -> Layout:
        return cls(
            raw.seq,
            array("Q", [e[0] for e in raw.entries]).tobytes(),
            [e[1] for e in raw.entries],
            [e[2] for e in raw.entries],
            array("I", raw.body_at).tobytes(),
            array("I", [len(e[3]) for e in raw.entries]).tobytes(),
        )


@dataclass(slots=True)
class Checked:
    """What can be known of a batch without the receiver's state (steps 1–4)."""

    feed: str | None
    head: SignedHead | None
    prev: bytes
    entries: list[Entry]
    error: SyncError | None = None
    author: str | None = None
    hashes: bytes = b""  # a compact result (`check_batch(compact=True)`): the entries' hashes, in order
    layout: Layout | None = None  # … and where they lie in the batch

    @property
    def first(self) -> int:
        return self.entries[0].seq if self.entries else 0

    @property
    def last(self) -> int:
        return self.entries[-1].seq if self.entries else 0

    def expand(self, batch: bytes) -> Checked:
        """Rebuild the entries of a compact result (see `check_batch`) from the batch it was made from.

        The worker hashed, parsed and located everything: the bodies are only sliced out here.
        """
        lay = self.layout
        if self.entries or lay is None or self.feed is None:
            return self
        hlcs, starts, sizes, hashes = array("Q"), array("I"), array("I"), self.hashes
        hlcs.frombytes(lay.hlcs)
        starts.frombytes(lay.starts)
        sizes.frombytes(lay.sizes)
        if not len(hlcs) == len(lay.kinds) == len(lay.keys) == len(starts) == len(sizes) == len(hashes) // 32:
            raise ProtocolError("a checked result does not match its batch")
        bodies = [batch[at : at + size] for at, size in zip(starts, sizes, strict=True)]
        items = zip(hlcs, lay.kinds, lay.keys, bodies, strict=True)
        split = [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
        entries = entries_from(self.feed, lay.seq, self.prev, items, split)
        return Checked(self.feed, self.head, self.prev, entries, self.error, self.author)


def check_batch(
    batch: bytes | RawBatch,
    *,
    county: str,
    directory: Directory,
    limits: Limits = DEFAULT_LIMITS,
    compact: bool = False,
) -> Checked:
    """Steps 1–4: framing, head, hash chain, author, signature, canonical bodies.

    Pure and stateless, so it can run in a worker process. `compact=True`
    returns the entries' hashes instead of the entries and keeps no decoded
    body (see `Checked.expand`): all a worker sends back.
    """
    try:
        raw = batch if isinstance(batch, RawBatch) else decode_batch(batch, limits=limits)
        head = decode_head(raw.head, limits=limits)
    except SyncError as e:
        return Checked(None, None, b"", [], e)
    feed = head.feed

    def result(error: SyncError | None, hashes: list[bytes], author: str | None = None) -> Checked:
        if compact:
            layout = Layout.of(raw) if hashes else None
            return Checked(feed, head, raw.prev, [], error, author, b"".join(hashes), layout)
        entries = entries_from(feed, raw.seq, raw.prev, raw.entries, hashes) if hashes else []
        return Checked(feed, head, raw.prev, entries, error, author)

    if head.county != county:
        return result(
            VerificationError(f"batch is signed for county {head.county}, this node belongs to county {county}"), []
        )
    if head.feed != raw.feed:
        return result(
            VerificationError(f"a head signed for feed {feed} was attached to entries of feed {raw.feed}"), []
        )
    # 1. rebuild each header from the wire, hash it, and check the chain reaches the signed head
    try:
        hashes = chain_hashes(feed, raw.seq, raw.prev, raw.entries)
    except ProtocolError as e:
        return result(e, [])
    if head.seq != raw.seq + len(hashes) - 1 or head.hash != hashes[-1]:
        return result(
            VerificationError(
                f"signed head {feed}#{head.seq} does not match the entries' hash chain: bytes were altered"
            ),
            hashes,
        )
    if raw.seq == 1 and raw.prev != genesis_hash(county, feed):
        return result(VerificationError(f"entry 1 of {feed} does not start from this county's genesis hash"), hashes)
    # 2–3. the author's right to write the feed, and the one signature
    try:
        author = directory.check_author(feed_of(feed))
        head.verify(author.key)
    except SyncError as e:
        return result(e, hashes)
    # 4. only now parse: every body must be canonical JSON
    bodies = [body for _, _, _, body in raw.entries]
    what = f"body of an entry of {feed}"
    try:
        if compact:
            canonical.prove_many(bodies, limits=limits, what=what)
            return result(None, hashes, author.node)
        values = canonical.decode_many(bodies, limits=limits, what=what)
    except ProtocolError as e:
        return result(e, hashes, author.node)
    checked = result(None, hashes, author.node)
    for entry, v in zip(checked.entries, values, strict=True):
        entry.value = v
    return checked


def classify(
    checked: Checked,
    *,
    directory: Directory,
    local: LocalFeed | None,
    known_hashes: Callable[[int, int], Mapping[int, bytes]] = NO_HASHES,
) -> Verdict:
    """Step 5: compare a checked batch with the receiver's copy of the feed."""
    feed, head, entries = checked.feed, checked.head, checked.entries
    if checked.error is not None or head is None or feed is None:
        err = checked.error or ProtocolError("batch could not be read")
        status = Status.FORBIDDEN if isinstance(err, AuthorizationError) else Status.REJECTED
        return Verdict(feed, head, [Outcome(status, feed or "", checked.first, checked.last, err.message, error=err)])
    first, last = checked.first, checked.last
    have = local.seq if local else 0
    outcomes: list[Outcome] = []
    if first > have + 1:
        err = SequenceError(
            f"{feed} starts at {first} but this node holds only up to {have}", hint=f"send from {have + 1}"
        )
        return Verdict(feed, head, [Outcome(Status.GAP, feed, first, last, err.message, error=err, want=have + 1)])
    new_from = 0
    if first <= have:
        overlap_end = min(last, have)
        known = known_hashes(first, overlap_end)
        for e in entries[: overlap_end - first + 1]:
            mine = known.get(e.seq)
            if mine is None:
                err = SequenceError(f"local copy of {feed} is missing seq {e.seq}")
                return Verdict(feed, head, [Outcome(Status.GAP, feed, e.seq, last, err.message, error=err, want=e.seq)])
            if mine != e.hash:
                return _fork(feed, head, entries[e.seq - first :], e.seq, mine, e.hash)
        outcomes.append(Outcome(Status.DUPLICATE, feed, first, overlap_end, "already held"))
        new_from = overlap_end + 1 - first
    elif have and local is not None and checked.prev != local.hash:
        return _fork(feed, head, entries, have, local.hash, checked.prev)
    new = entries[new_from:]
    if not new:
        return Verdict(feed, head, outcomes)
    if local is not None and local.frozen:
        reason = f"{feed} is frozen after a fork; held for review"
        outcomes.append(Outcome(Status.QUARANTINED, feed, new[0].seq, new[-1].seq, reason, new))
        return Verdict(feed, head, outcomes)
    author = directory.get(checked.author or "")
    rev = author.revocation if author is not None else None
    if rev is None:
        outcomes.append(Outcome(Status.ACCEPTED, feed, new[0].seq, new[-1].seq, "", new))
        return Verdict(feed, head, outcomes)
    cut = rev.last_valid_seq(feed)
    point = rev.last_valid.get(feed)
    if point is not None and first <= point[0] <= last and entries[point[0] - first].hash.hex() != point[1]:
        cut = new[0].seq - 1  # this history does not reach the recorded revocation point
    ok = [e for e in new if e.seq <= cut]
    late = [e for e in new if e.seq > cut]
    if ok:
        outcomes.append(Outcome(Status.ACCEPTED, feed, ok[0].seq, ok[-1].seq, "", ok))
    if late:
        reason = f"author {checked.author} was revoked after {feed}#{cut} ({rev.reason}); held for review"
        outcomes.append(Outcome(Status.QUARANTINED, feed, late[0].seq, late[-1].seq, reason, late))
    return Verdict(feed, head, outcomes)


def verify_batch(
    batch: bytes | RawBatch,
    *,
    county: str,
    directory: Directory,
    local: LocalFeed | None,
    known_hashes: Callable[[int, int], Mapping[int, bytes]] = NO_HASHES,
    limits: Limits = DEFAULT_LIMITS,
) -> Verdict:
    """Classify every entry of `batch`; see the module docstring for the order."""
    checked = check_batch(batch, county=county, directory=directory, limits=limits)
    return classify(checked, directory=directory, local=local, known_hashes=known_hashes)


def _fork(
    feed: str, head: SignedHead, conflicting: list[Entry], at: int, local_hash: bytes, remote_hash: bytes
) -> Verdict:
    """The author signed a history whose hash at seq `at` differs from the one held here."""
    err = SequenceError(
        f"fork in {feed} at seq {at}: the author signed two different histories; feed frozen, both kept",
        hint="typical cause: a laptop restored from an old backup; the county must review",
    )
    return Verdict(
        feed,
        head,
        [
            Outcome(
                Status.FORK,
                feed,
                conflicting[0].seq,
                conflicting[-1].seq,
                err.message,
                conflicting,
                err,
                fork_at=at,
                local_hash=local_hash,
                remote_hash=remote_hash,
            )
        ],
    )
