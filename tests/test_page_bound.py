"""A page never exceeds its byte bound, also inside a big commit (issue 12, Deliver 8; protocol.md §3.4, §9.4).

The reproduction: `--page-kib 256` did not make pages smaller, because a page
ended only at a commit, so a 1,000-case commit was one ~176 KB page and a cut
re-sent all of it. An author now signs heads inside a commit (at least every
`HEAD_SPAN_BYTES` of entry wire bytes), and the planner ends batches and pages
there. Real SQLite stores on disk, the real planner, framing, verification and
apply; the village's sync runs through the real sync API (Flask test client).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sync_protocol import compression, routing
from sync_protocol.batches import decode_batch, decode_page, encode_page, entry_wire_size
from sync_protocol.entries import Record
from sync_protocol.feeds import feed_of
from sync_protocol.heads import HEAD_SPAN_BYTES, decode_head, head_positions
from sync_protocol.sqlite_store import Store

from . import test_signed_answers as harness
from .network import Network, Node
from .test_signed_answers import Link, clock, session_to

FEED = "v11/up"
CASES = 1000


def case(i: int) -> dict[str, object]:
    """A case.new body of the size the reproduction had (~176 wire bytes a case)."""
    return {
        "applicant": {"id_number": f"43032119{i % 90 + 10:02d}0101{i % 1000:03d}X", "name": "王秀英"},
        "case_id": f"0190{i:012x}-7c1a-7000-8000-{i * 7919:012x}",
        "item": "养老保险参保登记",
    }


def records(n: int = CASES) -> list[Record]:
    return [Record("case.new", f"c{i}", case(i), 1_790_000_000_000_000 + i) for i in range(n)]


def commit(store: Store, node: Node, n: int = CASES) -> None:
    store.append(node.key, FEED, records(n))


def pages_for(src: Node, dst: Node, bound: int, directory: Any) -> list[bytes]:
    """The pages `src` sends `dst` with a page bound of `bound` bytes, as a sync's push or a pull reply builds them."""
    wanted = lambda f: routing.may_push(src.node_id, dst.node_id, f, directory)  # noqa: E731
    plan = src.store.plan(dst.store.vector(), wanted, max_batch_bytes=min(bound, 1 << 20), max_page_bytes=bound)
    return [encode_page([src.store.read_batch(r) for r in page]) for page in plan]


def held_heads(store: Store, feed: str = FEED) -> list[int]:
    return [s for (s,) in store.conn.execute("SELECT seq FROM heads WHERE feed = ? ORDER BY seq", (feed,))]


def test_head_positions_follow_the_rule() -> None:
    """§3.4: greedy, a head before the run would pass the span; the last entry always; a big entry alone."""
    assert head_positions([], 100) == []
    assert head_positions([40], 100) == [0]
    assert head_positions([40, 40, 20, 1], 100) == [2, 3]  # 100 fits exactly; the 1 byte would pass it
    assert head_positions([40, 70, 30, 30], 100) == [0, 2, 3]
    assert head_positions([250, 10, 10], 100) == [0, 2]  # an entry larger than the span is a run of its own
    assert head_positions([10, 250, 10], 100) == [0, 1, 2]
    assert head_positions([1] * 5, 2) == [1, 3, 4]


def test_a_big_commit_is_signed_inside_at_least_every_span(net: Network) -> None:
    v = net.nodes["v11"]
    commit(v.store, v)
    entries = v.store.entries(FEED)
    sizes = [entry_wire_size(e.kind, e.key, e.body) for e in entries]
    total = sum(sizes)
    assert total == 184_890  # as the reproduction's ~176 KB commit; protocol.md §3.4 quotes these figures
    seqs = held_heads(v.store)
    assert seqs == [entries[i].seq for i in head_positions(sizes)]
    # greedy: any two adjacent runs together pass the span, so at most 2 heads per span (11 for this commit)
    assert -(-total // HEAD_SPAN_BYTES) <= len(seqs) <= 2 * total // HEAD_SPAN_BYTES + 1
    assert len(seqs) == 12
    assert seqs[-1] == CASES
    previous = 0
    for seq in seqs:  # every run between two heads is within the span
        assert sum(sizes[previous:seq]) <= HEAD_SPAN_BYTES
        previous = seq
    directory = v.store.directory()
    for seq, blob in v.store.conn.execute("SELECT seq, head FROM heads WHERE feed = ?", (FEED,)):
        head = decode_head(blob)  # each one a valid head of the feed, signed by the village's enrolled key
        head.verify(directory.check_author(feed_of(FEED)).key)
        assert (head.feed, head.seq, head.hash) == (FEED, seq, entries[seq - 1].hash)


@pytest.mark.parametrize(("kib", "cases"), [(64, CASES), (256, 2 * CASES)])
def test_pages_of_a_big_commit_stay_within_the_bound_and_apply_one_by_one(net: Network, kib: int, cases: int) -> None:
    v, t, county = net.nodes["v11"], net.nodes["t1"], net.county
    commit(v.store, v, cases)
    bound = kib * 1024
    pages = pages_for(v, t, bound, v.store.directory())
    assert len(pages) >= 2  # the commit (~176 or ~352 KB) no longer travels as one page
    assert all(len(p) <= bound for p in pages), [len(p) for p in pages]
    mine = {e.seq: e.hash for e in v.store.entries(FEED)}
    for page in pages:  # after each page the township holds a verified prefix, ending at a signed head
        verdicts = t.store.receive_page(page)
        assert all(verdict.ok for verdict in verdicts)
        last = decode_batch(decode_page(page)[-1]).seq + len(decode_batch(decode_page(page)[-1]).entries) - 1
        assert t.store.vector()[FEED] == (last, mine[last])
        assert held_heads(t.store)[-1] == last
    assert t.store.vector()[FEED] == v.store.vector()[FEED]
    # the relay holds heads where the village's batches ended, so it keeps the same bound towards the county
    relayed = pages_for(t, county, bound, t.store.directory())
    assert all(len(p) <= bound for p in relayed), [len(p) for p in relayed]
    for page in relayed:
        assert all(verdict.ok for verdict in county.store.receive_page(page))
    assert county.store.vector()[FEED] == v.store.vector()[FEED]


def test_a_cut_after_page_k_resends_at_most_one_page(net: Network) -> None:
    """The page after k is cut halfway; the whole batches before the cut stay, the rest is sent again."""
    v, t = net.nodes["v11"], net.nodes["t1"]
    commit(v.store, v)
    bound = 64 * 1024
    directory = v.store.directory()
    clean = pages_for(v, t, bound, directory)
    k = 1
    sent = 0
    for page in clean[:k]:
        t.store.receive_page(page)
        sent += len(page)
    cut = clean[k][: len(clean[k]) // 2]  # the link drops in the middle of page k + 1
    t.store.receive_page(cut)
    sent += len(cut)
    for page in pages_for(v, t, bound, directory):  # the next session sends what the township still lacks
        t.store.receive_page(page)
        sent += len(page)
    assert t.store.vector()[FEED] == v.store.vector()[FEED]
    resent = sent - sum(len(p) for p in clean)
    assert 0 <= resent <= bound, (resent, bound)
    assert resent <= len(clean[k])


def test_a_commit_written_before_the_rule_stays_one_batch(net: Network) -> None:
    """A store written before heads were signed inside commits holds one head per commit: that commit travels
    whole (a page passes its bound only then), and everything still verifies."""
    v, t = net.nodes["v11"], net.nodes["t1"]
    commit(v.store, v)
    v.store.conn.execute("DELETE FROM heads WHERE feed = ? AND seq < ?", (FEED, CASES))  # as an old store holds it
    v.store.conn.commit()
    pages = pages_for(v, t, 64 * 1024, v.store.directory())
    assert [len(decode_page(p)) for p in pages] == [1] and len(pages[0]) > 64 * 1024
    assert all(verdict.ok for verdict in t.store.receive_page(pages[0]))
    assert t.store.vector()[FEED] == v.store.vector()[FEED]


def test_a_relay_splits_only_at_the_heads_it_received(net: Network) -> None:
    """A relay holds the heads that ended the batches it received (§9.4): received in one 1 MiB batch, the commit
    goes on whole; received under a 64 KiB bound, it goes on in pages within 64 KiB."""
    v, t, county = net.nodes["v11"], net.nodes["t1"], net.county
    commit(v.store, v)
    for page in pages_for(v, t, 1 << 20, v.store.directory()):
        t.store.receive_page(page)
    assert held_heads(t.store) == [CASES]
    relayed = pages_for(t, county, 64 * 1024, t.store.directory())
    assert len(relayed) == 1 and len(relayed[0]) > 64 * 1024


# -- the reproduction, through the real sync API ---------------------------------------------------------------

link = harness.link  # county, township t1 and village v11 as real nodes; the sync API in process


@pytest.mark.parametrize(("kib", "cases"), [(64, CASES), (256, 2 * CASES)])
def test_page_kib_bounds_the_push_of_a_big_commit(link: Link, kib: int, cases: int) -> None:
    """`village-agent sync --page-kib N` with one big commit (~176 KB, or ~352 KB for 256 KiB pages): every pushed
    page is within N KiB, where the commit used to be one page."""
    with link.village.open_store() as s:
        s.append(link.village.key, FEED, records(cases))
    link.village.page_bytes = kib * 1024
    pushed: list[int] = []

    def measure(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
        if req.path_url.endswith("/sync/push"):
            pushed.append(len(compression.decompress(req.body, 1 << 24)))  # type: ignore[arg-type]
        return resp

    report = link.village.sync(http=session_to(link.apps, measure), attempts=1, clock_ms=clock)
    assert report.pushed_entries == cases
    assert len(pushed) >= 2 and max(pushed) <= kib * 1024, pushed
    with link.township.open_store() as s, link.village.open_store() as mine:
        assert s.vector()[FEED] == mine.vector()[FEED]


def test_page_kib_bounds_the_pull_of_a_big_commit(link: Link) -> None:
    """The parent's pull replies follow the child's `max_bytes` (its --page-kib): a 1,000-entry commit of the
    township's feed for the village comes down in replies within 64 KiB, each applied before the next is asked."""
    with link.township.open_store() as s:
        s.append(link.township.key, "t1/v11", records())
    link.village.page_bytes = 64 * 1024
    pulled: list[int] = []

    def measure(req: requests.PreparedRequest, resp: requests.Response) -> requests.Response:
        if req.path_url.endswith("/sync/pull"):
            pulled.append(len(compression.decompress(resp.content, 1 << 24)))
        return resp

    link.village.sync(http=session_to(link.apps, measure), attempts=1, clock_ms=clock)
    assert len(pulled) >= 3 and max(pulled) <= 64 * 1024, pulled
    with link.township.open_store() as s, link.village.open_store() as mine:
        assert mine.vector()["t1/v11"] == s.vector()["t1/v11"]
