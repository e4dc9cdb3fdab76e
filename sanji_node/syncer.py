"""One sync session, from the child's side (ARCHITECTURE §5).

hello → (if the digests differ) push what the parent lacks, page by page,
upward first → pull until the parent has nothing more. Interrupted anywhere,
the next session resumes from the vectors: at most the pages in flight (two,
see below) are sent again, and the receiver's verification makes a repeat a no-op.

Pushes are pipelined (issue 12, point 8): the next page is read and encoded
while the previous one is on the wire, and sent as soon as the previous body
has left, while the parent applies and answers it, so a slow link does not
idle one round trip plus the parent's apply time per page. The parent applies
one push per child at a time, in arrival order (`SyncContext.push_lock`). If a
page still arrives before the one it continues (the earlier one was cut and
retried), the parent answers "gap" for it and changes nothing; the batches it
lacks are planned again from the vectors it answered and sent once more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sync_protocol import routing, session
from sync_protocol.batches import decode_page, encode_page
from sync_protocol.errors import SyncError
from sync_protocol.membership import Directory
from sync_protocol.planning import Range, Vector, restrict
from sync_protocol.sqlite_store import Store
from sync_protocol.transport import Parent
from sync_protocol.verify import Status
from sync_protocol.verify_pool import VerifyPool

from . import branch, state

Progress = Callable[[str, int, int], None]  # phase, done, total (total 0 if unknown)


@dataclass
class SyncReport:
    noop: bool = False
    pushed_batches: int = 0
    pushed_entries: int = 0
    pulled_batches: int = 0
    pulled_entries: int = 0
    recovered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    forked: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # batches the parent keeps for review (fork, quarantine)
    stranded: int = 0  # own entries on a forked or frozen own feed that no parent holds (sanji_node.branch)
    requests: int = 0
    elapsed_s: float = 0.0  # the session's own duration, measured in this process

    def summary(self) -> str:
        if self.noop:
            return "已是最新，无需同步 (up to date)"
        parts = [
            f"上传 {self.pushed_entries} 条 ({self.pushed_batches} 批)",
            f"下载 {self.pulled_entries} 条 ({self.pulled_batches} 批)",
        ]
        if self.recovered:
            parts.append("已从上级恢复本机日志: " + ", ".join(self.recovered))
        if self.forked:
            parts.append("本机日志与上级不一致（分叉）: " + ", ".join(self.forked))
        if self.refused:
            parts.append(f"被拒绝 {len(self.refused)} 批")
        if self.held:
            parts.append(f"上级暂扣待审 {len(self.held)} 批")
        return "；".join(parts)

    @property
    def ok(self) -> bool:
        """True if nothing of this node's was refused or held for review, and nothing is stranded."""
        return not (self.forked or self.refused or self.held or self.stranded)

    def problem(self) -> str:
        """What went wrong, in Chinese first, with the count and what to do; "" if nothing did."""
        out = []
        if self.forked or self.stranded:
            out.append(
                f"本机有 {self.stranded} 条数据与乡镇记录不一致（分叉，常见原因：本机从旧备份恢复后又录入了办件）。"
                "乡镇已记下两份不同的记录，暂不接收本机这部分数据和之后新录入的数据；"
                "这些数据已在本机保存，不会丢失。请联系县级信息管理员处理，处理之前不要重装、恢复或删除本机的数据目录。"
            )
        held = [h for h in self.held if h.split(" ", 1)[0] not in self.forked]  # a fork is said above
        if held:
            out.append(
                f"上级暂扣了 {len(held)} 批数据待审核（隔离）：{held[0]}。"
                "这些数据已在本机保存；请把这段提示告诉县级信息管理员。"
            )
        if self.refused:
            out.append(
                f"有 {len(self.refused)} 批数据被拒收：{self.refused[0]}。"
                "这些数据已在本机保存；请把这段提示告诉县级信息管理员。"
            )
        return "\n".join(out)


def sync_once(
    store: Store,
    client: Parent,
    *,
    node_id: str,
    parent_id: str,
    pool: VerifyPool | None = None,
    max_page_bytes: int = 1024 * 1024,
    progress: Progress | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    is_parent: bool = True,
) -> SyncReport:
    """Run one session with `parent_id` through `client` (any `transport.Parent`: HTTP, or the tests' simulated
    parent); raise TransportError if the link fails, AnswerVerificationError if an answer is not the parent's."""
    report = SyncReport()
    started = time.perf_counter()
    start_requests = client.requests
    note = progress or (lambda phase, done, total: None)
    state.set_state(store, last_attempt_ms=clock_ms())
    directory = store.directory()
    shared = session.shared(node_id, parent_id, directory)
    hello = session.Hello.of(store.vector(), shared, node_id)
    reply = client.hello(hello)  # acted on only once the parent's signature over it verified (answers.py)
    record_acks = state.record_acks if is_parent else (lambda *_: None)  # a fallback's holdings are not the parent's
    record_acks(store, reply.own, clock_ms(), set(hello.own or {}))  # what it holds of ours, lower than before too
    report.recovered = session.must_recover(store.vector(), reply.own)
    if reply.match:
        report.noop = True
    else:
        theirs = dict(reply.vector or {})
        record_acks(store, theirs, clock_ms())  # what the parent holds: the base of a bundle for it
        for feed in diverged_feeds(store, theirs):
            # The parent holds a different entry at its head seq than we do (a laptop restored from an
            # old backup wrote on while offline). Send from that seq, so the parent sees the fork,
            # records both histories and freezes the feed for review.
            seq = theirs[feed][0]
            theirs[feed] = (seq - 1, b"")
            report.forked.append(feed)
        if report.forked:
            state.set_state(store, forked_feeds=",".join(report.forked))
        total = 0
        gaps: list[session.BatchResult] = []
        acked: dict[str, int] = {}  # the highest head of each feed the parent answered to any push

        def handle(page: list[Range], pushed: session.PushReply) -> bool:
            gapped = [r for r in pushed.results if r.status == Status.GAP.value]
            gaps.extend(gapped)
            report.pushed_batches += len(page) - len(gapped)
            report.pushed_entries += sum(r.count for r in page) - sum(r.last - r.first + 1 for r in gapped)
            report.refused += [f"{r.feed} {r.first}..{r.last}: {r.reason}" for r in pushed.refused]
            report.held += [f"{r.feed} {r.first}..{r.last}: {r.reason}" for r in pushed.results if r.status in HELD]
            record_acks(store, pushed.vector, clock_ms())
            theirs.update(newer(theirs, pushed.vector))
            for f, (seq, _) in pushed.vector.items():
                acked[f] = max(acked.get(f, 0), seq)
            for r in gapped:  # the parent held less than we thought: send from what it wanted, or from what it
                # acknowledged since (a gap answered before the page it lacked was retried and applied)
                start = max(r.want - 1, acked.get(r.feed, 0)) if r.want is not None else acked.get(r.feed, 0)
                if start < theirs.get(r.feed, (0, b""))[0]:
                    theirs[r.feed] = (start, b"")
            note("push", report.pushed_entries, total)
            return not gapped  # after a gap, the pages planned after it would gap too: plan again first

        for _round in range(MAX_PUSH_ROUNDS):
            pages = store.plan(
                theirs,
                lambda f: routing.may_push(node_id, parent_id, f, directory),
                max_batch_bytes=min(max_page_bytes, 1 << 20),
                max_page_bytes=max_page_bytes,
            )
            total = total or sum(r.count for p in pages for r in p)
            gaps.clear()
            push_pages(client, pages, lambda page: encode_page([store.read_batch(r) for r in page]), handle)
            if not gaps:
                break
        found_here: set[str] = set()

        def own(feed: str) -> bool:  # a feed this node writes
            return feed.split("/", 1)[0] == node_id

        while True:
            before = restrict(store.vector(), shared)
            data, more = client.pull(before, max_page_bytes)
            batches = decode_page(data)
            verdicts = store.receive_many(batches, pool)
            accepted = sum(len(o.entries) for v in verdicts for o in v.outcomes if o.status is Status.ACCEPTED)
            report.pulled_batches += len(batches)
            report.pulled_entries += accepted
            report.refused += [
                f"{o.feed} {o.first}..{o.last}: {o.reason}"
                for v in verdicts
                for o in v.outcomes
                # (the parent's copy of a feed we write, held here after a fork: that is the fork, said below)
                if o.error and o.status is not Status.FORK and not (own(o.feed) and o.status is Status.QUARANTINED)
            ]
            # the parent holds more of a feed we write than we do, and it does not continue ours: a laptop
            # restored from an old copy wrote on offline (the store froze the feed here, both kept)
            found_here |= {o.feed for v in verdicts for o in v.outcomes if o.status is Status.FORK and own(o.feed)}
            note("pull", report.pulled_entries, 0)
            moved = restrict(store.vector(), shared) != before
            # the page may have brought membership (this node's own, on a first sync): what both ends
            # hold is then larger, and the next pull must say so
            shared = session.shared(node_id, parent_id, store.directory())
            if not more or not batches or not moved:
                # done, or a page that moved nothing (e.g. all quarantined): stop rather than loop
                break
        if found_here - set(report.forked):
            _push_branch(
                store, client, report, sorted(found_here - set(report.forked)), node_id, parent_id, directory,
                max_page_bytes,
            )  # fmt: skip
    report.stranded = sum(branch.stranded(store, node_id).values())
    report.requests = client.requests - start_requests
    report.elapsed_s = round(time.perf_counter() - started, 4)
    state.set_state(store, last_success_ms=clock_ms(), last_error="", last_report=report.summary())
    return report


HELD = {Status.FORK.value, Status.QUARANTINED.value}
MAX_PUSH_ROUNDS = 3  # a round re-plans what the parent answered "gap" for (a pipelined page overtook its predecessor)
PIPELINE_DEPTH = 2  # pages in flight: one being applied and answered by the parent, the next on the wire


def push_pages(
    client: Parent,
    pages: list[list[Range]],
    prepare: Callable[[list[Range]], bytes],
    handle: Callable[[list[Range], session.PushReply], bool],
) -> None:
    """Push `pages` in order, each prepared while the previous is sent, and sent once the previous body has left.

    `handle` runs in this thread, in page order (the store is used from this thread only); when it returns
    False no further page is sent (the one in flight is still handled). A transport failure of any page is
    raised once the other page in flight has finished (nothing is left running)."""
    with ThreadPoolExecutor(max_workers=PIPELINE_DEPTH, thread_name_prefix="sanji-push") as pool:
        prev: _Flight | None = None
        for page in pages:
            body = prepare(page)  # while the previous page is on the wire
            if prev is not None:
                prev.left.wait()  # its body has left (or it is over): this one follows it on the link
            cur = _Flight(page)
            cur.future = pool.submit(client.push, body, cur.on_sent)
            cur.future.add_done_callback(cur.over)
            ok = True
            if prev is not None and not prev.handled:
                ok = prev.handle(handle)  # while this page is on the wire
                if ok and prev.sends > 1:  # sent again after this one left: this one may have overtaken it
                    ok = cur.handle(handle)
            prev = cur
            if not ok:
                break
        if prev is not None and not prev.handled:
            prev.handle(handle)


class _Flight:
    """A page in flight: its push, whether its body has left, how many times it was sent."""

    def __init__(self, page: list[Range]) -> None:
        self.page, self.left, self.sends, self.handled = page, threading.Event(), 0, False
        self.future: Future[session.PushReply] | None = None

    def on_sent(self) -> None:  # from the push's thread, once per attempt
        self.sends += 1
        self.left.set()

    def over(self, _future: Future[session.PushReply]) -> None:
        self.left.set()

    def handle(self, handle: Callable[[list[Range], session.PushReply], bool]) -> bool:
        assert self.future is not None
        self.handled = True
        return handle(self.page, self.future.result())


def newer(theirs: Vector, answered: Vector) -> Vector:
    """The heads the parent answered that are ahead of what we thought it held."""
    return {f: v for f, v in answered.items() if v[0] > theirs.get(f, (0, b""))[0]}


def _push_branch(
    store: Store,
    client: Parent,
    report: SyncReport,
    feeds: list[str],
    node_id: str,
    parent_id: str,
    directory: Directory,
    max_page_bytes: int = 1024 * 1024,
) -> None:
    """Send our branch of forked own feeds from the last seq the parent holds with our hash, so the parent
    records the fork (both histories, the feed frozen there) as it does when the fork shows at push."""
    marks = branch.held_marks(store, node_id)
    theirs = {f: (marks.get(f, 0), b"") for f in feeds}
    pages = store.plan(
        theirs,
        lambda f: f in theirs and routing.may_push(node_id, parent_id, f, directory),
        max_page_bytes=max_page_bytes,
    )
    for page in pages:
        pushed = client.push(encode_page([store.read_batch(r) for r in page]))
        report.pushed_batches += len(page)
        report.pushed_entries += sum(r.count for r in page)
        report.held += [f"{r.feed} {r.first}..{r.last}: {r.reason}" for r in pushed.results if r.status in HELD]
    report.forked += feeds
    forked = {f for f in state.get_state(store).get("forked_feeds", "").split(",") if f}
    state.set_state(store, forked_feeds=",".join(sorted(forked | set(feeds))))


def diverged_feeds(store: Store, theirs: dict[str, tuple[int, bytes]]) -> list[str]:
    """Feeds where we hold the parent's head seq but with a different hash there."""
    out = []
    mine = store.vector()
    for feed, (seq, h) in sorted(theirs.items()):
        if seq and feed in mine and mine[feed][0] >= seq:
            row = store.conn.execute("SELECT hash FROM entries WHERE feed = ? AND seq = ?", (feed, seq)).fetchone()
            if row is not None and bytes(row[0]) != h:
                out.append(feed)
    return out


def record_failure(store: Store, err: SyncError, clock_ms: Callable[[], int]) -> None:
    state.set_state(store, last_error=str(err), last_failure_ms=clock_ms())
