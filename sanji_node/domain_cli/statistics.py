"""`stats show` and `stats export`: 按时办结率, 满意率, cases by state, grouped as the county asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sanji_domain.stats import flat_rows

from ..actions import statistics as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Loader, format_for, format_option, table

by_option = click.option(
    "--by", "group_by", type=click.Choice(actions.GROUPS), default="township", show_default=True, help="grouping"
)
month_option = click.option("--month", default=None, help="only this month (YYYY-MM)")


def add_stats_commands(group: click.Group, load: Loader) -> None:
    st = click.Group("stats", help="Statistics: 按时办结率, 满意率, cases by state, overdue, average handling days.")
    group.add_command(st)

    @st.command(name="show", help="Show statistics grouped by county, township, village, item or month.")
    @data_option
    @by_option
    @month_option
    @json_option
    @handle_errors
    def stats_show(data_dir: str, group_by: str, month: str | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.statistics(ws, group_by=group_by, month=month)
        emit(as_json, rows, lambda: stats_text(rows))

    @st.command(name="export", help="Export statistics to Excel (.xlsx) or CSV.")
    @data_option
    @click.argument("path", type=click.Path(dir_okay=False))
    @by_option
    @month_option
    @format_option
    @json_option
    @handle_errors
    def stats_export(
        data_dir: str, path: str, group_by: str, month: str | None, fmt: str | None, as_json: bool
    ) -> None:
        with Workspace(load(data_dir)) as ws:
            n = actions.export_statistics(ws, Path(path), format_for(Path(path), fmt), group_by=group_by, month=month)
        emit(as_json, {"path": path, "rows": n}, f"已导出统计 {n} 行到 {path}")


def stats_text(rows: list[dict[str, Any]]) -> str:
    columns, flat = flat_rows(rows)
    return table(flat, list(columns))
