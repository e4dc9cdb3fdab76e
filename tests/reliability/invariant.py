"""The invariant every reliability trial ends with: nothing lost, nothing duplicated, nothing held by mistake.

`survey(stores)` looks at the SQLite stores of several nodes of one county
(opened as the nodes open them: `Cluster.store(name)` for real processes, the
`Store` of `tests.network` in-process) and lists every breach, in words;
`check(stores)` fails the test with all of them at once. What it checks:

- every database file is sound (`PRAGMA integrity_check`);
- every feed at every node is a whole chain 1..n, and the feed's recorded head
  (seq, hash) is its last entry;
- the same (feed, seq) has the same hash at every node (no two histories);
- with `converged=True` (after a full sync round): every entry created
  anywhere is present at every node the holding rule says should hold it;
- exactly once: no case is created twice (`case.new` key) and no catalog
  release written twice (`catalog.release` key) at any node;
- nothing sits in quarantine, and no fork is open (both unless allowed).

Other helpers' tests use it the same way:

    from tests.reliability.invariant import check
    with c.store("county") as a, c.store("t1") as b, c.store("v11") as v:
        figures = check({"county": a, "t1": b, "v11": v})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sync_protocol.routing import should_hold
from sync_protocol.sqlite_store import Store

ONCE_KINDS = ("case.new", "catalog.release")  # a key of these kinds is written once in the whole county


@dataclass
class Figures:
    nodes: int = 0
    feeds: int = 0
    entries: int = 0  # (node, entry) pairs checked
    problems: list[str] = field(default_factory=list)


def survey(
    stores: Mapping[str, Store],
    *,
    converged: bool = True,
    quarantine_ok: bool = False,
    forks_ok: bool = False,
) -> Figures:
    out = Figures(nodes=len(stores))
    say = out.problems.append
    truth: dict[tuple[str, int], tuple[bytes, str]] = {}  # (feed, seq) -> (hash, first node seen at)
    last: dict[str, int] = {}
    held: dict[str, dict[str, int]] = {}
    directory = None
    for name, store in stores.items():
        (ok,) = store.conn.execute("PRAGMA integrity_check").fetchone()
        if ok != "ok":
            say(f"{name}: integrity_check says {ok!r}")
        if directory is None and store.trust_or_none() is not None:
            directory = store.directory()
        feeds = {f: (s, bytes(h)) for f, s, h in store.conn.execute("SELECT feed, seq, hash FROM feeds")}
        held[name] = {f: s for f, (s, _) in feeds.items()}
        for feed, (seq, digest) in feeds.items():
            rows = store.conn.execute("SELECT seq, hash FROM entries WHERE feed = ? ORDER BY seq", (feed,)).fetchall()
            out.entries += len(rows)
            if [s for s, _ in rows] != list(range(1, seq + 1)):
                say(f"{name}: {feed} holds seqs {_ranges([s for s, _ in rows])}, its head says 1..{seq}")
            if rows and (rows[-1][0], bytes(rows[-1][1])) != (seq, digest):
                say(f"{name}: {feed}'s recorded head {seq} is not its last entry {rows[-1][0]}")
            for s, h in rows:
                seen = truth.setdefault((feed, s), (bytes(h), name))
                if seen[0] != bytes(h):
                    say(f"{feed}#{s}: {name} holds another entry than {seen[1]} (two histories)")
            last[feed] = max(last.get(feed, 0), seq)
        for kind in ONCE_KINDS:
            twice = store.conn.execute(
                "SELECT key, COUNT(*) FROM entries WHERE kind = ? GROUP BY key HAVING COUNT(*) > 1", (kind,)
            ).fetchall()
            for key, n in twice:
                say(f"{name}: {kind} {key} is there {n} times")
        if not quarantine_ok:
            for (n,) in store.conn.execute("SELECT COUNT(*) FROM quarantine"):
                if n:
                    say(f"{name}: {n} batches in quarantine")
        if not forks_ok:
            open_forks = store.conn.execute("SELECT feed FROM forks WHERE resolved_seq IS NULL").fetchall()
            if open_forks:
                say(f"{name}: open forks on {sorted({f for (f,) in open_forks})}")
    out.feeds = len(last)
    if converged and directory is not None:
        for feed, seq in sorted(last.items()):
            for name in stores:
                if directory.get(name) is None or not should_hold(name, feed, directory):
                    continue
                has = held[name].get(feed, 0)
                if has < seq:
                    say(f"{name}: {feed} has {has} of {seq} entries (lost or not delivered)")
    return out


def check(stores: Mapping[str, Store], **kw: bool) -> Figures:
    """`survey`, failing the test with every problem found."""
    figures = survey(stores, **kw)
    assert not figures.problems, "invariant broken:\n" + "\n".join(figures.problems)
    return figures


def _ranges(seqs: list[int]) -> str:
    if not seqs:
        return "nothing"
    return f"{len(seqs)} seqs from {seqs[0]} to {seqs[-1]}"
