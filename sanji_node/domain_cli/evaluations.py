"""`evaluate` (好差评) and `rectify` / `rectifications` (the 整改 a 差评 opens)."""

from __future__ import annotations

import click

from sanji_domain.commands import CHANNELS, LEVEL_LABELS, RECTIFY_STEPS, STAGES, TARGETS

from ..actions import evaluations as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Audit, Loader, no_audit, person_option, table, yes_rows

AUDIT_STEPS = {
    "assign": "rectification.assign",
    "followup": "rectification.follow",
    "close": "rectification.close",
    "rate": "rectification.close",
}
RECTIFICATION_COLUMNS = [
    ("evaluation_id", "评价"),
    ("owner", "责任人"),
    ("deadline_date", "整改期限"),
    ("state", "状态"),
    ("overdue", "逾期"),
]


def add_evaluate_command(group: click.Group, load: Loader) -> None:
    @group.command(
        name="evaluate", help="Record a 好差评 evaluation (5 非常满意 … 1 非常不满意); a 差评 opens a rectification."
    )
    @data_option
    @click.argument("ref", required=False)
    @click.option(
        "--level",
        type=click.IntRange(1, 5),
        required=True,
        help="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意",
    )
    @click.option("--stage", type=click.Choice(STAGES), default="办结", show_default=True, help="the stage evaluated")
    @click.option("--channel", type=click.Choice(CHANNELS), default=None, help="现场/代办/网上 (default by node)")
    @click.option("--target-type", type=click.Choice(TARGETS), default=None, help="事项/窗口/人员/代办点")
    @click.option("--target-name", default=None, help="the window, person or item evaluated")
    @click.option("--comment", default=None, help="the applicant's words")
    @json_option
    @handle_errors
    def evaluate(
        data_dir: str,
        ref: str | None,
        level: int,
        stage: str,
        channel: str | None,
        target_type: str | None,
        target_name: str | None,
        comment: str | None,
        as_json: bool,
    ) -> None:
        data = {
            "case": ref,
            "level": level,
            "stage": stage,
            "channel": channel,
            "target_type": target_type,
            "target_name": target_name,
            "comment": comment,
        }
        with Workspace(load(data_dir)) as ws:
            r = actions.evaluate(ws, data)
        emit(
            as_json,
            r,
            f"已记录评价 {LEVEL_LABELS[level]}"
            + ("；差评已转整改" if r["rectification"] else "")
            + f"（{r['evaluation_id']}）",
        )


def add_rectify_commands(group: click.Group, load: Loader, audit: Audit = no_audit) -> None:
    @group.command(
        name="rectify",
        help="A 差评's rectification (整改): assign an owner, record the 回访, close it with the result or the rating.",
    )
    @data_option
    @click.argument("evaluation_id")
    @click.argument("step", type=click.Choice(RECTIFY_STEPS))
    @click.option("--owner", default=None, help="assign: who fixes it (整改责任人)")
    @click.option(
        "--deadline-days", type=int, default=None, help="assign: working days to fix it (default from settings)"
    )
    @click.option("--note", default=None, help="followup: what the 回访 found")
    @click.option("--result", default=None, help="close: what was done (整改结果)")
    @click.option(
        "--level", type=click.IntRange(1, 5), default=None, help="rate (or close): the applicant's rating of the fix"
    )
    @person_option
    @json_option
    @handle_errors
    def rectify(
        data_dir: str,
        evaluation_id: str,
        step: str,
        owner: str | None,
        deadline_days: int | None,
        note: str | None,
        result: str | None,
        level: int | None,
        person: str | None,
        as_json: bool,
    ) -> None:
        data = {"owner": owner, "deadline_days": deadline_days, "note": note, "result": result, "level": level}
        with Workspace(load(data_dir)) as ws:
            r = actions.rectify(ws, evaluation_id, step, data, person=person)
            said = {k: v for k, v in data.items() if v is not None}
            audit(
                ws,
                AUDIT_STEPS[step],
                target_kind="rectification",
                target=evaluation_id,
                reason=str(data.get("owner") or data.get("note") or data.get("result") or ""),
                details=said,
            )
        emit(as_json, r, f"整改记录已更新: {step}")

    @group.command(name="rectifications", help="List rectifications of 差评 with their deadline and state.")
    @data_option
    @json_option
    @handle_errors
    def rectifications(data_dir: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.rectifications(ws)
        emit(as_json, rows, lambda: table(yes_rows(rows), RECTIFICATION_COLUMNS))
