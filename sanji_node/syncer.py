"""One sync session, from the child's side (ARCHITECTURE §5).

hello → (if the digests differ) push what the parent lacks, page by page,
upward first → pull until the parent has nothing more. Interrupted anywhere,
the next session resumes from the vectors: at most the page in flight is sent
again, and the receiver's verification makes a repeat a no-op.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sync_protocol import routing, session
from sync_protocol.batches import decode_page, encode_page
from sync_protocol.errors import SyncError
from sync_protocol.membership import Directory
from sync_protocol.planning import restrict
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
        pages = store.plan(
            theirs,
            lambda f: routing.may_push(node_id, parent_id, f, directory),
            max_batch_bytes=min(max_page_bytes, 1 << 20),
            max_page_bytes=max_page_bytes,
        )
        total = sum(r.count for p in pages for r in p)
        for page in pages:
            pushed = client.push(encode_page([store.read_batch(r) for r in page]))
            report.pushed_batches += len(page)
            report.pushed_entries += sum(r.count for r in page)
            report.refused += [f"{r.feed} {r.first}..{r.last}: {r.reason}" for r in pushed.refused]
            report.held += [f"{r.feed} {r.first}..{r.last}: {r.reason}" for r in pushed.results if r.status in HELD]
            record_acks(store, pushed.vector, clock_ms())
            note("push", report.pushed_entries, total)
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
