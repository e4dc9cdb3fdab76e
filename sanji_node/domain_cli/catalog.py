"""`catalog list` and `catalog show`: the service items as the county released them."""

from __future__ import annotations

from typing import Any

import click

from ..actions import catalog as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Loader, table

LIST_COLUMNS = [
    ("task_code", "实施编码"),
    ("name", "事项名称"),
    ("level", "层级"),
    ("village_mode", "村级方式"),
    ("case_type", "办件类型"),
    ("promised_days", "承诺时限"),
    ("state", "状态"),
    ("version", "版本"),
]


def add_catalog_commands(catalog: click.Group, load: Loader) -> None:
    @catalog.command(name="list", help="List the items in the catalog (在用 only unless --all).")
    @data_option
    @click.option("--all", "show_all", is_flag=True, help="also suspended (暂停) and cancelled (取消) items")
    @click.option(
        "--level", type=click.Choice(["县", "乡", "村"]), default=None, help="only items handled at this level"
    )
    @json_option
    @handle_errors
    def catalog_list(data_dir: str, show_all: bool, level: str | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            items = actions.list_items(ws, show_all=show_all, level=level)
        emit(as_json, items, lambda: f"共 {len(items)} 个事项\n" + table(items, LIST_COLUMNS))

    @catalog.command(name="show", help="Show one item in full: conditions, materials, time limits, fees, contacts.")
    @data_option
    @click.argument("item")
    @click.option("--version", type=int, default=None, help="the item as of this release version")
    @json_option
    @handle_errors
    def catalog_show(data_dir: str, item: str, version: int | None, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            body = actions.show_item(ws, item, version=version)
        emit(as_json, body, lambda: item_text(body))


def item_text(i: dict[str, Any]) -> str:
    lines = [
        f"{i['name']}（实施编码 {i['task_code']}，版本 {i.get('version')}，{i.get('state', '在用')}）",
        f"  办理层级: {i.get('level') or '—'}  村级方式: {i.get('village_mode') or '—'}  实施主体: {i.get('department') or '—'}",
        f"  办件类型: {i.get('case_type') or '—'}  法定时限: {i.get('legal_days', 0)} 个工作日  承诺时限: {i.get('promised_days', 0)} 个工作日",
        f"  到现场次数: {i.get('visits', 0)}  网办: {'是' if i.get('online') else '否'}  容缺受理: {'是' if i.get('allow_pledge') else '否'}",
    ]
    if i.get("conditions"):
        lines.append(f"  受理条件: {i['conditions']}")
    if i.get("legal_basis"):
        lines.append(f"  设定依据: {i['legal_basis']}")
    lines.append("  申请材料:")
    for m in i.get("materials", []):
        lines.append(
            f"    - {m['name']}（{m.get('form', '')} {m.get('copies', 1)} 份，{'必需' if m.get('required', True) else '非必需'}）"
        )
    lines.append(f"  收费: {i['fee_text']}")
    for key, label in (
        ("phone", "咨询电话"),
        ("supervise_phone", "监督电话"),
        ("address", "办理地点"),
        ("hours", "办理时间"),
    ):
        if i.get(key):
            lines.append(f"  {label}: {i[key]}")
    return "\n".join(lines)
