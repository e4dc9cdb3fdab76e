"""Property: honest nodes converge over links that reorder, duplicate, drop and cut pages.

A county, two townships and four villages (tests/network.py) author entries on
every feed they may write, while framed pages travel over an in-memory
transport that hypothesis drives step by step: a page is planned from one side
of a child–parent link against the other side's (possibly stale) vector and
put in flight; in-flight pages are then delivered in any order, delivered
again (duplication), dropped, or cut at any byte and delivered (truncation:
`Store.receive_page` keeps the whole batches before the cut). Afterwards
reliable sessions (up, then down) must bring every node to exactly the
author's heads, and throughout:

- no node ever holds a feed the holding rule keeps from it (checked after
  every delivery);
- nothing is applied twice and nothing is lost: each holder's fold hook saw
  seq 1..n of each feed it holds exactly once, in order, with the author's
  hashes;
- honest nodes never quarantine, fork or freeze anything.

Across the run the test also checks that the faults were really exercised
(duplicate and gap verdicts, drops, truncated pages that still applied a
prefix), so it cannot pass vacuously.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol import routing
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record
from sync_protocol.feeds import feed_of
from sync_protocol.membership import Directory
from sync_protocol.planning import Vector
from sync_protocol.verify import Status, Verdict

from .network import Network, Node, build_network, exchange

EXAMPLES = 200
LINKS = [("v11", "t1"), ("v12", "t1"), ("v21", "t2"), ("v22", "t2"), ("t1", "county"), ("t2", "county")]
"""(child, parent), villages first: one pass up this list carries a village's feed to the county."""
DIRECTIONS = [*LINKS, *((p, c) for c, p in LINKS)]
"""(sender, receiver): child→parent and parent→child only; a child talks only to its parent."""

PHRASES = ["低保申请", "残疾人证办理", "新农合缴费", "宅基地审批", "老年证", "准生证明", "临时救助", "户口迁移"]
NAMES = ["张三", "李四", "王五", "赵六", "陈七"]
KINDS = {"up": "case.event", "*": "notice", "item": "catalog.item", "direct": "case.status"}


# -- the model ----------------------------------------------------------------
@dataclass
class Message:
    """One page in flight from `src` to `dst`."""

    src: str
    dst: str
    page: bytes
    batch_sizes: list[int]
    deliveries: int = 0

    def frames(self) -> list[int]:
        """Offsets where each batch's frame starts (after the 8-byte page header), then the page's end."""
        out = [8]
        for n in self.batch_sizes:
            out.append(out[-1] + 4 + n)
        return out


def writable_feeds(node: Node, directory: Directory) -> list[str]:
    """Every feed `node` may author in this tree."""
    me = node.node_id
    if node.role == "village":
        return [f"{me}/up"]
    below = sorted(directory.descendants(me))
    if node.role == "township":
        return [f"{me}/up", f"{me}/*", *(f"{me}/{v}" for v in below)]
    return [f"{me}/*", *(f"{me}/{n}" for n in below)]


def record(feed: str, n: int, phrase: str, name: str, extra: int) -> Record:
    audience = feed_of(feed).audience
    if audience == "up":
        body: dict[str, object] = {"事项": phrase, "申请人": name, "备注": "代办员已收件", "序号": n}
        return Record(KINDS["up"], f"case-{feed.split('/')[0]}-{n}", body, n)
    if audience == "*" and feed.startswith("county/"):
        body = {"事项名称": phrase, "版本": n, "承诺时限天": 1 + extra, "办理层级": "乡镇"}
        return Record(KINDS["item"], f"item-{extra}", body, n)
    if audience == "*":
        body = {"通知": f"关于{phrase}的通知", "值班": name, "序号": n}
        return Record(KINDS["*"], f"notice-{n}", body, n)
    body = {"状态": ["受理", "补正", "办结"][extra % 3], "事项": phrase, "经办人": name, "序号": n}
    return Record(KINDS["direct"], f"status-{n}", body, n)


def check_holdings(node: Node, directory: Directory) -> None:
    for feed in node.store.vector():
        assert routing.should_hold(node.node_id, feed, directory), f"{node.node_id} holds {feed}, which it must not"


def check_applied_once(node: Node) -> None:
    assert len(node.applied) == len(set(node.applied)), (
        f"{node.node_id} applied some entries twice: {sorted(k for k, c in Counter(node.applied).items() if c > 1)}"
    )


def check_clean(node: Node) -> None:
    store = node.store
    assert store.quarantined() == [], f"{node.node_id} quarantined {store.quarantined()}"
    assert store.forks() == [], f"{node.node_id} recorded forks {store.forks()}"
    assert store.frozen_feeds() == {}, f"{node.node_id} froze {store.frozen_feeds()}"


def check_verdicts(
    verdicts: list[Verdict], *, receiver: Node, unknown_before: Callable[[str], bool], truncated: bool
) -> Counter[str]:
    """Every outcome an honest sender can cause, and nothing else; returns the statuses seen."""
    seen: Counter[str] = Counter()
    whole = verdicts[:-1] if truncated else verdicts
    if truncated:
        last = verdicts[-1] if verdicts else None
        assert last is not None and last.feed is None, "a cut page must report the cut"
        assert [o.status for o in last.outcomes] == [Status.REJECTED], last.outcomes
        seen["cut-reported"] += 1
    for v in whole:
        for o in v.outcomes:
            seen[o.status.value] += 1
            if o.status is Status.FORBIDDEN:
                # only before the receiver has the membership entries naming the author
                assert v.feed is not None and unknown_before(feed_of(v.feed).author), (
                    f"{receiver.node_id} refused {v.feed}: {o.reason}"
                )
            else:
                assert o.status in (Status.ACCEPTED, Status.DUPLICATE, Status.GAP), (
                    f"{receiver.node_id} got {o.status} for {o.feed} {o.first}..{o.last}: {o.reason}"
                )
        statuses = {o.status for o in v.outcomes}
        if {Status.ACCEPTED, Status.DUPLICATE} <= statuses:
            seen["overlap"] += 1
    return seen


def reliable_sync(net: Network, directory: Directory) -> int:
    """One reliable pass: every link upward (villages first), then downward; returns entries accepted."""
    accepted = 0
    order = [*LINKS, *((p, c) for c, p in reversed(LINKS))]
    for src, dst in order:
        for v in exchange(net.nodes[src], net.nodes[dst], directory):
            for o in v.outcomes:
                assert o.status is Status.ACCEPTED, f"{src}→{dst}: {o.status} {o.feed} {o.first}..{o.last}: {o.reason}"
            accepted += len(v.accepted)
        check_holdings(net.nodes[dst], directory)
    return accepted


def check_converged(net: Network, directory: Directory) -> None:
    feeds = {f for n in net.nodes.values() for f in writable_feeds(n, directory)}
    for feed in sorted(feeds):
        author = net.nodes[feed_of(feed).author]
        want = author.store.vector().get(feed)
        want_hashes = [e.hash for e in author.store.entries(feed)]
        n = want[0] if want else 0
        assert len(want_hashes) == n
        for node in net.nodes.values():
            held = node.store.vector().get(feed)
            applied = [s for f, s in node.applied if f == feed]
            if not routing.should_hold(node.node_id, feed, directory):
                assert held is None and applied == [], f"{node.node_id} holds {feed}"
                continue
            assert held == want, f"{node.node_id} has {feed} at {held}, the author at {want}"
            assert applied == list(range(1, n + 1)), f"{node.node_id} applied {feed} as {applied}"
            assert [e.hash for e in node.store.entries(feed)] == want_hashes, f"{node.node_id} holds another {feed}"
    for node in net.nodes.values():
        check_applied_once(node)
        check_clean(node)


# -- the random phase -----------------------------------------------------------
def run_example(data: st.DataObject, tally: Counter[str]) -> None:
    net = build_network(None)
    try:
        nodes = net.nodes
        truth = net.county.store.directory()
        pools: dict[tuple[str, str], list[Message]] = {d: [] for d in DIRECTIONS}
        history: dict[str, list[Vector]] = {n: [node.store.vector()] for n, node in nodes.items()}
        authored = Counter[str]()

        def remember(node: Node) -> None:
            vec = node.store.vector()
            if vec != history[node.node_id][-1]:
                history[node.node_id].append(vec)

        if data.draw(st.booleans(), label="membership delivered reliably first"):
            for child, parent in LINKS[::-1]:
                exchange(nodes[parent], nodes[child], truth)
                remember(nodes[child])
            tally["bootstrapped"] += 1

        steps = data.draw(st.integers(20, 100), label="steps")
        for _ in range(steps):
            in_flight = [(d, i) for d, msgs in pools.items() for i in range(len(msgs))]
            authors = [n for n in nodes.values() if n.node_id in n.store.directory()]
            actions = ["send"] * 3
            if authors:
                actions += ["author"] * 3
            if in_flight:
                actions += ["deliver"] * 4 + ["drop", "truncate"]
            action = data.draw(st.sampled_from(actions), label="action")

            if action == "author":
                node = data.draw(st.sampled_from(authors), label="author")
                feed = data.draw(st.sampled_from(writable_feeds(node, truth)), label="feed")
                count = data.draw(st.integers(1, 3), label="records")
                records = []
                for _ in range(count):
                    authored[feed] += 1
                    phrase = data.draw(st.sampled_from(PHRASES), label="phrase")
                    name = data.draw(st.sampled_from(NAMES), label="name")
                    extra = data.draw(st.integers(0, 5), label="extra")
                    records.append(record(feed, authored[feed], phrase, name, extra))
                node.store.append(node.key, feed, records)
                remember(node)
                continue

            if action == "send":
                src, dst = data.draw(st.sampled_from(DIRECTIONS), label="link")
                sender = nodes[src]
                seen = history[dst]
                back = data.draw(st.integers(0, 3), label="vector age")
                theirs = seen[max(0, len(seen) - 1 - back)]
                rewind = data.draw(st.sampled_from([0, 1, 2, 3]), label="rewind every feed by")
                if rewind:  # as if the receiver's vector was read before its last few entries arrived
                    theirs = {f: (s - rewind, b"") for f, (s, _) in theirs.items() if s > rewind}
                if theirs != seen[-1]:
                    tally["stale-vector"] += 1
                directory = sender.store.directory()  # the sender's own view of the tree
                max_batch = data.draw(st.sampled_from([1, 400, 1 << 20, 1 << 20]), label="max batch bytes")
                max_page = data.draw(st.sampled_from([1, 1500, 4 << 20, 4 << 20]), label="max page bytes")
                pages = sender.store.plan(
                    theirs,
                    lambda f, src=src, dst=dst, d=directory: routing.may_push(src, dst, f, d),
                    max_batch_bytes=max_batch,
                    max_page_bytes=max_page,
                )
                for page in pages:
                    batches = [sender.store.read_batch(r) for r in page]
                    pools[(src, dst)].append(Message(src, dst, encode_page(batches), [len(b) for b in batches]))
                tally["pages-sent"] += len(pages)
                continue

            link, index = data.draw(st.sampled_from(in_flight), label="message")
            msg = pools[link][index]
            if action == "drop":
                pools[link].pop(index)
                tally["drop"] += 1
                continue

            receiver = nodes[msg.dst]
            cut = len(msg.page)
            if action == "truncate":
                pools[link].pop(index)
                whole = data.draw(st.integers(0, len(msg.batch_sizes) - 1), label="whole batches before the cut")
                frames = msg.frames()
                assert frames[-1] == len(msg.page)
                lo = frames[whole] if whole else 0
                cut = data.draw(st.integers(lo, frames[whole + 1] - 1), label="cut at")
            elif not data.draw(st.booleans(), label="keep a copy in flight"):
                pools[link].pop(index)
            msg.deliveries += 1
            if len(msg.batch_sizes) > 1:
                tally["multi-batch-page"] += 1
            if msg.deliveries == 2:
                tally["redelivered"] += 1

            directory = receiver.store.directory()
            before = set(receiver.applied)
            verdicts = receiver.store.receive_page(msg.page[:cut])
            seen_statuses = check_verdicts(
                verdicts,
                receiver=receiver,
                unknown_before=lambda author, d=directory: author not in d,
                truncated=action == "truncate",
            )
            for status in seen_statuses:
                tally[status] += 1
            if action == "truncate":
                tally["truncate"] += 1
                assert len(verdicts) == whole + 1, "a cut page applies exactly the whole batches before the cut"
                if whole:
                    tally["truncated-kept-prefix"] += 1
            check_holdings(receiver, truth)
            check_applied_once(receiver)
            assert before <= set(receiver.applied)
            remember(receiver)

        # -- reliable sessions: one pass up then down suffices; a second one moves nothing
        reliable_sync(net, truth)
        assert reliable_sync(net, truth) == 0, "a second reliable pass still moved entries"
        check_converged(net, truth)
        for node in nodes.values():
            check_holdings(node, truth)
    finally:
        net.close()


def test_honest_nodes_converge_over_lossy_links() -> None:
    per_example: list[Counter[str]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(data=st.data())
    def random_sessions(data: st.DataObject) -> None:
        tally: Counter[str] = Counter()
        per_example.append(tally)
        run_example(data, tally)

    random_sessions()

    n = len(per_example)
    share = {k: sum(1 for t in per_example if t[k]) / n for k in {k for t in per_example for k in t}}
    summary = ", ".join(f"{k} {v:.0%}" for k, v in sorted(share.items()))
    print(f"\n{n} examples; share of examples that saw: {summary}")
    assert n >= EXAMPLES
    # about half the lowest share seen over a dozen runs (each run's shares vary widely)
    for what, least in (
        ("redelivered", 0.35),
        ("drop", 0.35),
        ("truncate", 0.35),
        ("truncated-kept-prefix", 0.05),
        (Status.DUPLICATE.value, 0.35),
        (Status.GAP.value, 0.06),
        ("overlap", 0.01),  # 2–4 % seen in two runs of 2026-12-03
        ("stale-vector", 0.5),
    ):
        assert share.get(what, 0) >= least, f"only {share.get(what, 0):.0%} of examples saw {what}: {summary}"
