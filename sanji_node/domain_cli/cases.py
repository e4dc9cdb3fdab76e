"""`case new`, `case list`, `case show`, `case conflicts` and `case transition`."""

from __future__ import annotations

import json
from typing import Any

import click

from sanji_domain.errors import ValidationError
from sanji_domain.states import ACTION_LABELS, CONFLICT_RULE, STATE_LABELS

from ..actions import cases as actions
from ..cli import data_option, emit, handle_errors, json_option
from ..workspace import Workspace
from .common import Loader, Prepare, person_option, table

LIST_COLUMNS = [
    ("local_no", "本地编号"),
    ("official_no", "办件编号"),
    ("item_name", "事项"),
    ("state_label", "状态"),
    ("promise_date", "承诺办结日期"),
    ("remaining_days", "剩余工作日"),
    ("clock", "时限状态"),
]
CONFLICT_COLUMNS = [
    ("local_no", "本地编号"),
    ("at", "时间"),
    ("author_name", "作者"),
    ("action_label", "操作"),
    ("state_label", "当时状态"),
    ("conflict", "原因"),
]
REJECT_COLUMNS = [
    ("at", "时间"),
    ("author_name", "作者"),
    ("kind_label", "条目"),
    ("key", "键"),
    ("local_no", "现归属办件"),
    ("owner_name", "登记者"),
    ("reason", "原因"),
]
REJECT_NOTE = (
    "以下条目已签名保存，但作者无权如此声明或内容不可用，不改变任何状态；请核实作者节点 (kept, changes nothing)"
)


def add_case_commands(case: click.Group, role: str, load: Loader, prepare: Prepare | None) -> None:
    if role != "county" and "new" not in case.commands:
        _add_new(case, load, prepare)

    @case.command(name="list", help="List cases with their state and deadline (承诺办结日期, 预警/黄牌/红牌).")
    @data_option
    @click.option("--state", default=None, type=click.Choice(list(STATE_LABELS)), help="only cases in this state")
    @click.option("--village", default=None, help="only this village's cases")
    @click.option("--item", default=None, help="only this item (实施编码)")
    @click.option("--limit", type=int, default=None, help="at most this many (newest first)")
    @json_option
    @handle_errors
    def case_list(
        data_dir: str, state: str | None, village: str | None, item: str | None, limit: int | None, as_json: bool
    ) -> None:
        with Workspace(load(data_dir)) as ws:
            rows = actions.list_cases(ws, village=village, state=state, item=item, limit=limit)
        emit(as_json, rows, lambda: f"共 {len(rows)} 件\n" + table(rows, LIST_COLUMNS))

    @case.command(
        name="show", help="Show one case: applicant, materials, events, conflicts, deadline, cards, evaluations."
    )
    @data_option
    @click.argument("ref")
    @json_option
    @handle_errors
    def case_show(data_dir: str, ref: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            detail = actions.show_case(ws, ref)
        emit(as_json, detail, lambda: case_text(detail))

    @case.command(
        name="conflicts",
        help="List every event kept as a conflict (concurrent, incompatible decisions) and every entry refused "
        "by the fold (a claim its author may not make).",
    )
    @data_option
    @json_option
    @handle_errors
    def case_conflicts(data_dir: str, as_json: bool) -> None:
        with Workspace(load(data_dir)) as ws:
            rows, refused = actions.conflicts(ws), actions.rejects(ws)
        emit(
            as_json,
            {"rule": CONFLICT_RULE, "conflicts": rows, "rejects": refused},
            lambda: (
                f"共 {len(rows)} 个冲突事件。规则: {CONFLICT_RULE}\n"
                + table(rows, CONFLICT_COLUMNS)
                + f"\n\n共 {len(refused)} 条拒收条目。{REJECT_NOTE}\n"
                + table(refused, REJECT_COLUMNS)
            ),
        )

    choices = actions.role_actions(role)

    @case.command(
        name="transition", help="Move a case on: " + ", ".join(f"{a} ({ACTION_LABELS[a]})" for a in choices) + "."
    )
    @data_option
    @click.argument("ref")
    @click.argument("action", type=click.Choice(choices))
    @click.option("--reason", default=None, help="why (required for 补正, 不予受理, 挂起, 撤回, 作废)")
    @click.option("--result", default=None, help="办结: the result (default 准予办理)")
    @click.option("--kind", default=None, type=click.Choice(["挂起", "特别程序"]), help="suspend: 挂起 or 特别程序")
    @click.option("--material", "materials", multiple=True, help="submit/supplement: a material now received (repeat)")
    @click.option(
        "--ask",
        "asked",
        multiple=True,
        help="request_supplement: a material the applicant must bring (repeat; 一次告知)",
    )
    @person_option
    @json_option
    @handle_errors
    def case_transition(
        data_dir: str,
        ref: str,
        action: str,
        reason: str | None,
        result: str | None,
        kind: str | None,
        materials: tuple[str, ...],
        asked: tuple[str, ...],
        person: str | None,
        as_json: bool,
    ) -> None:
        data = {
            "reason": reason,
            "result": result,
            "kind": kind,
            "materials": list(materials),
            "requested": list(asked),
        }
        with Workspace(load(data_dir)) as ws:
            r = actions.transition(ws, ref, action, data, person=person)
        emit(as_json, r, f"办件 {r['local_no']}: {STATE_LABELS[r['from']]} → {ACTION_LABELS[action]}，已记录，待同步。")


def _add_new(case: click.Group, load: Loader, prepare: Prepare | None) -> None:
    @case.command(name="new", help="File a case (收件): from options, or a JSON file / - with one case or a list.")
    @data_option
    @click.option(
        "--json",
        "json_file",
        type=click.File("r", encoding="utf-8"),
        default=None,
        help="the case(s) as JSON (FILE or -)",
    )
    @click.option("--item", default=None, help="the item's 实施编码 or exact name")
    @click.option("--name", default=None, help="applicant's name (申请人)")
    @click.option("--id-number", default=None, help="applicant's 身份证号")
    @click.option("--phone", default=None, help="applicant's phone")
    @click.option("--address", default=None, help="applicant's address")
    @click.option("--material", "materials", multiple=True, help="a material received (repeat for each)")
    @click.option(
        "--pledge", is_flag=True, help="容缺受理: file with a missing material against a pledge, if the item allows"
    )
    @click.option("--draft", is_flag=True, help="save as a draft (草稿) when materials are still missing")
    @click.option("--proxy-no", default=None, help="委托书编号")
    @click.option("--notes", default=None, help="备注")
    @person_option
    @click.option("--offline", is_flag=True, help="do not ask the parent first (no link)")
    @click.option("--output-json", "as_json", is_flag=True, help="machine-readable JSON output")
    @handle_errors
    def case_new(
        data_dir: str,
        json_file: Any,
        item: str | None,
        name: str | None,
        id_number: str | None,
        phone: str | None,
        address: str | None,
        materials: tuple[str, ...],
        pledge: bool,
        draft: bool,
        proxy_no: str | None,
        notes: str | None,
        person: str | None,
        offline: bool,
        as_json: bool,
    ) -> None:
        if json_file is not None:
            try:
                data = json.loads(json_file.read())
            except json.JSONDecodeError as e:
                raise ValidationError(f"办件 JSON 格式错误: {e} (not valid JSON)") from e
        else:
            data = {
                "item": item,
                "applicant": {"name": name, "id_number": id_number, "phone": phone, "address": address},
                "materials": list(materials),
                "pledge": pledge,
                "draft": draft,
                "agent": {"name": person, "proxy_no": proxy_no},
                "notes": notes,
            }
        many = isinstance(data, list)
        node = load(data_dir)
        if prepare is not None:
            prepare(node, offline)  # a village first recovers its own feed from the township
        with Workspace(node, offline=offline) as ws:  # offline: a restored node writes before checking
            made = actions.file_cases(ws, data if many else [data], person=person)
        emit(as_json, made if many else made[0], "\n".join(_filed_line(c) for c in made))


def _filed_line(c: dict[str, Any]) -> str:
    return (
        f"已登记办件 {c['local_no']}，查询码 {c['query_code']}（{STATE_LABELS[c['state']]}，{c['case_id']}），待上传。"
    )


def case_text(d: dict[str, Any]) -> str:
    """A case for a person to read: what, who, where it stands, and each step with its reason and who did it."""
    a = d.get("applicant") or {}
    lines = [
        f"办件 {d['local_no']}  办件编号 {d.get('official_no') or '（县级接收后赋号）'}  查询码 {d.get('query_code')}",
        f"  事项: {d.get('item_name')}（{d.get('item_code')}，清单版本 {d.get('item_version')}）",
        f"  状态: {d.get('state_label')}  承诺办结日期: {d.get('promise_date') or '未受理'}  预警: {d.get('warning') or '—'}",
    ]
    if isinstance(a, dict):
        lines.append(f"  申请人: {a.get('name', '')}  身份证号: {a.get('id_number', '')}  电话: {a.get('phone', '')}")
    else:
        lines.append(f"  申请人: {a}")
    missing = [m["name"] for m in d.get("materials", []) if m.get("required") and not m.get("received")]
    lines.append(
        f"  材料: {len(d.get('materials', []))} 项"
        + (f"，缺 {'、'.join(missing)}" + ("（容缺承诺）" if d.get("pledge") else "") if missing else "，齐全")
    )
    if d.get("notes"):
        lines.append(f"  备注: {d['notes']}")
    lines.append("  办理过程:")
    if d.get("reissue_of"):
        was = f"，原编号 {d['original_local_no']}" if d.get("original_local_no") else ""
        lines.append(f"    分叉裁决后由本机重新登记（原记录 {str(d['reissue_of'])[:16]}…{was}）")
    for ev in d.get("events", []):
        lines.extend(_event_lines(ev))
    if d.get("conflicts"):
        lines.append(f"  冲突规则: {d.get('conflict_rule', '')}")
    for c in d.get("cards", []):
        lines.append(f"  {c.get('level')} {c.get('reason', '')}" + ("（已撤销）" if c.get("revoked_ms") else ""))
    return "\n".join(lines)


def _event_lines(ev: dict[str, Any]) -> list[str]:
    who = ev.get("author_name") or ev.get("author") or ""
    if ev.get("by"):
        who += f"，经办人 {ev['by']}"
    mark = f"  ⚠ 冲突: {ev['conflict']}" if ev.get("conflict") else ""
    lines = [f"    {ev.get('at', '')} {ev.get('action_label', ev.get('action'))}（{who}）{mark}"]
    if ev.get("kind") and ev.get("action") == "suspend":
        lines.append(f"      类型: {ev['kind']}")
    if ev.get("reason"):
        lines.append(f"      原因: {ev['reason']}")
    if ev.get("asked_materials"):
        lines.append(f"      需补正材料: {'、'.join(ev['asked_materials'])}")
    if ev.get("result") and ev.get("action") == "complete":
        lines.append(f"      办理结果: {ev['result']}")
    return lines
