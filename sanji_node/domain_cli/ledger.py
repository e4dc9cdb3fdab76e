"""`ledger show` / `ledger export` (代办台账) and `roster set` / `roster export` (值班表)."""

from __future__ import annotations

from pathlib import Path

import click

from ..actions import ledger as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Loader, export_options, format_for, table, yes_rows

LEDGER_COLUMNS = [(k, k) for k in ("序号", "日期", "村民姓名", "事项", "报送乡镇期限", "报送日期", "状态", "逾期")]


def add_ledger_commands(group: click.Group, role: str, load: Loader) -> None:
    ledger = click.Group("ledger", help="代办台账: one row per proxy request, as the township asks for it every month.")
    group.add_command(ledger)

    @ledger.command(name="show", help="Show the ledger (代办台账), with overdue rows flagged.")
    @data_option
    @click.option("--month", default=None, help="YYYY-MM")
    @click.option("--village", default=None, help="only this village")
    @json_option
    @handle_errors
    def ledger_show(data_dir: str, month: str | None, village: str | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.ledger(ws, month=month, village=village)
        emit(as_json, rows, lambda: table(yes_rows(rows), LEDGER_COLUMNS))

    @ledger.command(name="export", help="Export the ledger to Excel (.xlsx) or CSV, in the printed layout.")
    @export_options
    def ledger_export(
        data_dir: str, path: str, month: str | None, village: str | None, fmt: str | None, as_json: bool
    ) -> None:
        with Workspace(load(data_dir)) as ws:
            n = actions.export_ledger(ws, Path(path), format_for(Path(path), fmt), month=month, village=village)
        emit(as_json, {"path": path, "rows": n}, f"已导出代办台账 {n} 行到 {path}")

    roster = click.Group("roster", help="值班表: who is on duty at the village service station, and the substitute.")
    group.add_command(roster)
    if role == "village":

        @roster.command(name="set", help="Set who is on duty on a day (and the substitute, A/B 岗).")
        @data_option
        @click.argument("day")
        @click.argument("agent")
        @click.option("--substitute", default=None, help="the substitute (替岗)")
        @json_option
        @handle_errors
        def roster_set(data_dir: str, day: str, agent: str, substitute: str | None, as_json: bool) -> None:
            with Workspace(load(data_dir)) as ws:
                r = actions.set_duty(ws, day, agent, substitute)
            emit(as_json, r, f"{day} 值班: {agent}" + (f"，替岗: {substitute}" if substitute else ""))

    @roster.command(name="export", help="Export the duty roster to Excel (.xlsx) or CSV.")
    @export_options
    def roster_export(
        data_dir: str, path: str, month: str | None, village: str | None, fmt: str | None, as_json: bool
    ) -> None:
        with Workspace(load(data_dir)) as ws:
            n = actions.export_roster(ws, Path(path), format_for(Path(path), fmt), month=month, village=village)
        emit(as_json, {"path": path, "rows": n}, f"已导出值班表 {n} 行到 {path}")
