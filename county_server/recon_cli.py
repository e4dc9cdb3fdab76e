"""`county-server reconcile` and `county-server completeness`: the 对账 page's figures at a terminal, as JSON
or as an Excel file (the same functions as the page: `county_server.reconcile`)."""

from __future__ import annotations

from typing import Any

import click

from sanji_node.cli import data_option, emit, handle_errors, json_option, now_ms
from sanji_node.config import DataDir

from . import reconcile
from .node import open_county_store


@click.command(
    "reconcile",
    help="对账: each township and village by name with last contact, cases today / this week / this month, "
    "entries waiting, forks, quarantine, refused entries and 静默.",
)
@data_option
@click.option("--township", default=None, help="only this township (its node id) and its villages")
@click.option("--problems", is_flag=True, help="only nodes with a problem (静默, fork, quarantine, refused, revoked)")
@click.option("--silent", is_flag=True, help="only 静默 nodes")
@click.option("--sort", type=click.Choice(list(reconcile.SORTS)), default="name", show_default=True)
@click.option("--export", "export_to", default=None, help="also write the table to this Excel file (.xlsx)")
@json_option
@handle_errors
def reconcile_command(
    data_dir: str, township: str | None, problems: bool, silent: bool, sort: str, export_to: str | None, as_json: bool
) -> None:
    filters = reconcile.Filters(township=township, problems=problems, silent=silent, sort=sort)
    with open_county_store(DataDir(data_dir)) as store:
        figures = reconcile.reconciliation(store, now_ms=now_ms(), filters=filters)
    if export_to:
        n = reconcile.export_xlsx(export_to, figures)
        click.echo(f"已写出 {export_to}（{n} 行）。", err=as_json)

    def text() -> str:
        s = figures["summary"]
        lines = [
            f"对账 {figures['today']}：{s['townships']} 个乡镇、{s['villages']} 个村；收件 今日 {s['cases_today']}、"
            f"本周 {s['cases_week']}、本月 {s['cases_month']}；静默 {s['silent']}（连续 {figures['silent_workdays']} "
            f"个工作日没有联系）；有问题 {s['with_problems']}"
        ]
        for r in reconcile.export_rows(figures):
            indent = "" if r["role"] == "township" else "  "
            waiting = "" if r["waiting_laptop"] is None else f" 笔记本待上传 {r['waiting_laptop']}"
            flags = f" [{r['problems_text']}]" if r["problems_text"] else ""
            lines.append(
                f"{indent}{r['name']}：最后联系 {r['contact_text']}{'（' + r['via_text'] + '）' if r['via_text'] else ''}"
                f" 收件 {r['cases_today']}/{r['cases_week']}/{r['cases_month']} 乡镇待上传 {r['waiting_township']}"
                f"{waiting} 本月缺报 {r['gaps']} 天{flags}"
            )
        return "\n".join(lines)

    emit(as_json, figures, text)


@click.command(
    "completeness",
    help="上报完整性 for a month (YYYY-MM) or a week (YYYY-Www): which villages reported, are late or silent, "
    "and the reporting rate per township.",
)
@data_option
@click.option("--period", default=None, help="YYYY-MM or YYYY-Www (default: this month)")
@json_option
@handle_errors
def completeness_command(data_dir: str, period: str | None, as_json: bool) -> None:
    now = now_ms()
    with open_county_store(DataDir(data_dir)) as store:
        c = reconcile.completeness(store, period or reconcile.current_period(now), now_ms=now)

    def text() -> str:
        t = c["total"]
        rate: Any = "—" if t["rate_pct"] is None else f"{t['rate_pct']}%"
        lines = [f"{c['label']}：已上报 {t['reported']}，迟报 {t['late']}，静默 {t['silent']}，上报率 {rate}"]
        for row in c["townships"]:
            pct = "—" if row["rate_pct"] is None else f"{row['rate_pct']}%"
            lines.append(f"{row['name']}：{row['villages']} 个村，已上报 {row['reported']}，迟报 {row['late']}，"
                         f"静默 {row['silent']}，上报率 {pct}")  # fmt: skip
            lines += [f"  {v['name']}：{v['state_name']}（收件 {v['cases']}，有联系 {v['contact_days']} 天）"
                      for v in c["villages"] if v["township"] == row["node"]]  # fmt: skip
        return "\n".join(lines)

    emit(as_json, c, text)
