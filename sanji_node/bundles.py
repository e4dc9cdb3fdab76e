"""Bundle files as the node programs write and read them (USB sticks)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sync_protocol import files, routing
from sync_protocol.keys import SigningKey
from sync_protocol.planning import Vector
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status, Verdict

from .cli import emit, now_ms


def write_bundle(store: Store, path: Path, *, key: SigningKey, source: str, target: str, theirs: Vector) -> int:
    """Write what `target` lacks (by `theirs`) to `path`, owner-only; a half-written file never has the final name."""
    directory = store.directory()
    with files.atomic_writer(path) as out:
        writer = store.export_bundle(
            out,
            key=key,
            source=source,
            theirs=theirs,
            wanted=lambda feed: routing.may_push(source, target, feed, directory),
            created=now_ms(),
            target=target,
        )
    return writer.batches


def import_report(file: str, verdicts: list[Verdict]) -> tuple[dict[str, object], str]:
    """What `import-bundle` prints: the JSON shape and the Chinese line (`problem` explains a quarantine)."""
    new, _ = accepted(verdicts)
    held = quarantined(verdicts)
    report: dict[str, object] = {"file": file, "batches": len(verdicts), "accepted": new, "quarantined": held}
    report["problem"] = " ".join(p for p in (quarantine_problem(verdicts), fork_or_gap_problem(verdicts)) if p)
    return report, f"已导入 {file}：{len(verdicts)} 批，新增 {new} 条" + (f"，隔离待审 {held} 条。" if held else "。")


def quarantined(verdicts: list[Verdict]) -> int:
    """How many entries of the bundle were held in quarantine (after a revocation point, or on a frozen feed)."""
    return sum(o.last - o.first + 1 for v in verdicts for o in v.outcomes if o.status is Status.QUARANTINED)


def quarantine_problem(verdicts: list[Verdict]) -> str:
    """The Chinese warning when entries were quarantined instead of imported; "" if none were."""
    held = [o for v in verdicts for o in v.outcomes if o.status is Status.QUARANTINED]
    if not held:
        return ""
    authors = sorted({o.feed.split("/")[0] for o in held})
    return (
        f"数据包中有 {quarantined(verdicts)} 条记录（{len(held)} 批，来自 {'、'.join(authors)}）已隔离待审，没有导入："
        f"{held[0].reason}。隔离的记录保存在本机数据库中（县级 county-server nodes 显示为 [隔离 n]）。"
        "请把这段提示告诉县级信息管理员：常见原因是该节点已被吊销（笔记本丢失或更换）；"
        "县级核实后，真实的办件须在新登记的节点上重新录入。"
        f" ({quarantined(verdicts)} entries quarantined, not imported)"
    )


def fork_or_gap_problem(verdicts: list[Verdict]) -> str:
    """The Chinese warning when a batch of the bundle was a fork (kept as evidence, the feed frozen) or came after
    entries this node lacks (a gap: not imported); "" if none was."""
    out = []
    for o in (o for v in verdicts for o in v.outcomes):
        author = o.feed.split("/")[0]
        if o.status is Status.FORK:
            out.append(
                f"数据包里 {o.feed} 第 {o.fork_at} 条与本机已有的记录不同：节点 {author} 签过两份不同的记录（分叉）。"
                "这批没有导入，已作为证据保存，该数据流暂停接收，直到县级处理（county-server forks、resolve-fork）。"
                f"请把这段提示告诉县级信息管理员。 (fork in {o.feed} at seq {o.fork_at}: kept as evidence, not imported)"
            )
        elif o.status is Status.GAP:
            out.append(
                f"数据包里 {o.feed} 的记录从第 {o.first} 条开始，本机还缺第 {o.want} 条起的记录，这批没有导入。"
                f"请先导入更早的数据包，或联网同步一次后再导入。 ({o.feed}: entries from seq {o.want} are missing)"
            )
    return " ".join(out)


def finish_import(file: str, verdicts: list[Verdict], as_json: bool) -> None:
    """Print the import report; a quarantine, a fork or a gap is never a success: exit 2 (as `sync` does)."""
    report, text = import_report(file, verdicts)
    emit(as_json, report, text)
    if report["problem"]:
        click.echo(f"错误: {report['problem']}", err=True)
        sys.exit(2)


def accepted(verdicts: list[Verdict]) -> tuple[int, set[str]]:
    """How many entries were new, and whose feeds they were."""
    outcomes = [o for v in verdicts for o in v.outcomes if o.status is Status.ACCEPTED]
    return sum(len(o.entries) for o in outcomes), {o.feed.split("/")[0] for o in outcomes}
