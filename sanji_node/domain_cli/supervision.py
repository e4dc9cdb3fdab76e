"""督办 commands: `supervise` and `supervision list` at the county, `supervision inbox/ack` at a township."""

from __future__ import annotations

import click

from sanji_domain.supervision import STATES

from ..actions import supervision as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Audit, Loader, no_audit, person_option, table

COLUMNS = [
    ("notice_id", "督办号"),
    ("township_name", "乡镇"),
    ("subject", "对象"),
    ("reason", "事由"),
    ("issued_at", "发出"),
    ("state", "状态"),
    ("acked_by", "签收人"),
    ("acked_at", "签收时间"),
    ("note", "说明"),
]
state_option = click.option("--state", type=click.Choice(STATES), default=None, help="only notices in this state")


def add_supervision_commands(group: click.Group, role: str, load: Loader, audit: Audit = no_audit) -> None:
    sub = click.Group("supervision", help="督办: supervision notices from the county and their acknowledgements.")
    group.add_command(sub)
    if role == "county":
        _add_county(group, sub, load, audit)
    else:
        _add_township(sub, load)


def _add_county(group: click.Group, sub: click.Group, load: Loader, audit: Audit) -> None:
    @group.command(
        name="supervise",
        help="Send a 督办 about a case (its township's inbox) or, with --window, about a township's window.",
    )
    @data_option
    @click.argument("case", required=False)
    @click.option("--window", default=None, help="the township (node id or name) whose window is supervised")
    @click.option("--reason", required=True, help="督办事由: what the township must do, and why")
    @person_option
    @json_option
    @handle_errors
    def supervise(
        data_dir: str, case: str | None, window: str | None, reason: str, person: str | None, as_json: bool
    ) -> None:
        with Workspace(load(data_dir)) as ws:
            r = actions.send_notice(ws, case=case, window=window, reason=reason, person=person)
            audit(ws, "supervision.notice", **actions.audit_of(r, reason))
        emit(
            as_json,
            r,
            f"已发出督办 {r['notice_id']}，随乡镇下次同步送达 (sent; it reaches the township at its next sync)",
        )

    _add_list(sub, "list", "List every 督办 sent, with its state (待签收/已签收).", load)


def _add_township(sub: click.Group, load: Loader) -> None:
    _add_list(sub, "inbox", "The 督办 addressed to this township, newest first, with its state.", load)

    @sub.command(name="ack", help="签收 a 督办, with a note; the county sees it after the next sync.")
    @data_option
    @click.argument("notice_id")
    @click.option("--note", default=None, help="what was done or will be done")
    @person_option
    @json_option
    @handle_errors
    def supervision_ack(data_dir: str, notice_id: str, note: str | None, person: str | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            r = actions.acknowledge(ws, notice_id, note, person=person)
        emit(as_json, r, f"已签收督办 {notice_id} (acknowledged)")


def _add_list(sub: click.Group, name: str, help: str, load: Loader) -> None:
    @sub.command(name=name, help=help)
    @data_option
    @state_option
    @json_option
    @handle_errors
    def supervision_list(data_dir: str, state: str | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.list_notices(ws, state=state)
        emit(as_json, rows, lambda: table(rows, COLUMNS))
