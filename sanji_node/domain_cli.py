"""The service-domain commands all three node programs share: catalog, cases, 好差评, ledger, statistics.

Each program calls `add_domain_commands(group, role, load)`; the commands
parse, call `sanji_domain`, append what it returns in one commit, and format
the answer (Chinese by default, `--json` for scripts). Which commands a
program gets follows who uses it: the agent files cases and keeps the ledger,
the clerk handles cases and rectifications, the county numbers, supervises
and publishes statistics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import click
import orjson

from sanji_domain import commands, exports, stats, views
from sanji_domain.commands import CST, Actor, Command
from sanji_domain.errors import ValidationError
from sanji_domain.states import ACTION_LABELS, ACTIONS, CONFLICT_RULE, STATE_LABELS
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from .cli import data_option, emit, handle_errors, json_option, now_ms
from .config import DataDir, NodeConfig


class LocalNode(Protocol):
    data: DataDir
    config: NodeConfig
    key: SigningKey

    def open_store(self) -> Store: ...


Loader = Callable[[str], LocalNode]


def today() -> date:
    return datetime.now(CST).date()


def actor_of(node: LocalNode, person: str | None = None) -> Actor:
    c = node.config
    return Actor(c.node_id, c.role, c.division, c.parent, c.root_node, person)


def read(node: LocalNode, query: Callable[[Any], Any]) -> Any:
    """Answer `query` from the node's folded tables (one store opened and closed)."""
    with node.open_store() as store:
        return query(store.conn)


def run(
    node: LocalNode, build: Callable[[Any, Actor], Command | list[Command]], person: str | None = None
) -> list[Command]:
    """Build the command from the folded state and append it, in one commit per feed."""
    with node.open_store() as store:
        built = build(store.conn, actor_of(node, person))
        cmds = built if isinstance(built, list) else [built]
        for cmd in cmds:
            if cmd.records:
                store.append(node.key, cmd.feed, cmd.records)
    return cmds


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    if not rows:
        return "（无）"
    lines = ["  ".join(h for _, h in cols)]
    for r in rows:
        lines.append("  ".join("" if r.get(k) is None else str(r.get(k)) for k, _ in cols))
    return "\n".join(lines)


person_option = click.option(
    "--person", default=None, help="the name of who does it (窗口人员/代办员姓名), recorded on the event"
)


def add_domain_commands(
    group: click.Group, role: str, load: Loader, prepare: Callable[[LocalNode, bool], None] | None = None
) -> None:
    """Register the domain commands for a node program of `role` (county, township or village).

    `prepare(node, offline)` runs before a case is filed (a village first recovers its own feed).
    """
    catalog = group.commands.get("catalog")
    if not isinstance(catalog, click.Group):
        catalog = click.Group("catalog", help="The service item catalog (事项清单), as released by the county.")
        group.add_command(catalog)
    _catalog_commands(catalog, load)
    case = group.commands.get("case")
    if not isinstance(case, click.Group):
        case = click.Group("case", help="Cases (办件): file, list, show and move them through their states.")
        group.add_command(case)
    _case_commands(case, role, load, prepare)
    if role != "county":
        _evaluate_command(group, load)
    if role != "village":
        _rectify_command(group, load)
    _ledger_commands(group, role, load)
    _stats_commands(group, load)
    if role == "county":
        _county_commands(group, load)


# --- catalog ---------------------------------------------------------------------------------------------------


def _catalog_commands(catalog: click.Group, load: Loader) -> None:
    @catalog.command(name="list", help="List the items in the catalog (在用 only unless --all).")
    @data_option
    @click.option("--all", "show_all", is_flag=True, help="also suspended (暂停) and cancelled (取消) items")
    @click.option(
        "--level", type=click.Choice(["县", "乡", "村"]), default=None, help="only items handled at this level"
    )
    @json_option
    @handle_errors
    def catalog_list(data_dir: str, show_all: bool, level: str | None, as_json: bool) -> None:
        items = read(load(data_dir), lambda conn: views.catalog(conn, show_all=show_all, level=level))
        emit(
            as_json,
            items,
            lambda: (
                f"共 {len(items)} 个事项\n"
                + _table(
                    items,
                    [
                        ("task_code", "实施编码"),
                        ("name", "事项名称"),
                        ("level", "层级"),
                        ("village_mode", "村级方式"),
                        ("case_type", "办件类型"),
                        ("promised_days", "承诺时限"),
                        ("state", "状态"),
                        ("version", "版本"),
                    ],
                )
            ),
        )

    @catalog.command(name="show", help="Show one item in full: conditions, materials, time limits, fees, contacts.")
    @data_option
    @click.argument("item")
    @click.option("--version", type=int, default=None, help="the item as of this release version")
    @json_option
    @handle_errors
    def catalog_show(data_dir: str, item: str, version: int | None, as_json: bool) -> None:
        node = load(data_dir)
        with node.open_store() as store:
            body = (
                commands.find_item(store.conn, item)
                if version is None
                else commands.catalog_item(store.conn, item, version)
            )
        emit(as_json, body, lambda: _item_text(body))


def _item_text(i: dict[str, Any]) -> str:
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
    fees = i.get("fees") or []
    lines.append(
        "  收费: "
        + ("；".join(f"{f['name']} {f.get('standard_fen', 0) / 100:.2f} 元" for f in fees) if fees else "不收费")
    )
    for key, label in (
        ("phone", "咨询电话"),
        ("supervise_phone", "监督电话"),
        ("address", "办理地点"),
        ("hours", "办理时间"),
    ):
        if i.get(key):
            lines.append(f"  {label}: {i[key]}")
    return "\n".join(lines)


# --- cases -----------------------------------------------------------------------------------------------------


def _case_commands(
    case: click.Group, role: str, load: Loader, prepare: Callable[[LocalNode, bool], None] | None
) -> None:
    if role != "county" and "new" not in case.commands:

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
                prepare(node, offline)
            (cmd,) = run(
                node,
                lambda conn, actor: commands.new_cases(conn, actor, data if many else [data], now_ms=now_ms()),
                person,
            )
            made = cmd.result["cases"]
            emit(
                as_json,
                made if many else made[0],
                "\n".join(
                    f"已登记办件 {c['local_no']}（{STATE_LABELS[c['state']]}，{c['case_id']}），待上传。" for c in made
                ),
            )

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
        rows = read(
            load(data_dir),
            lambda conn: views.list_cases(conn, village=village, state=state, item=item, limit=limit, today=today()),
        )
        emit(
            as_json,
            rows,
            lambda: (
                f"共 {len(rows)} 件\n"
                + _table(
                    rows,
                    [
                        ("local_no", "本地编号"),
                        ("official_no", "办件编号"),
                        ("item_name", "事项"),
                        ("state_label", "状态"),
                        ("promise_date", "承诺办结日期"),
                        ("remaining_days", "剩余工作日"),
                        ("clock", "时限状态"),
                    ],
                )
            ),
        )

    @case.command(
        name="show", help="Show one case: applicant, materials, events, conflicts, deadline, cards, evaluations."
    )
    @data_option
    @click.argument("ref")
    @json_option
    @handle_errors
    def case_show(data_dir: str, ref: str, as_json: bool) -> None:
        node = load(data_dir)
        detail = read(node, lambda conn: views.show_case(conn, ref, today=today(), opener=_opener(node)))
        emit(as_json, detail, lambda: _case_text(detail))

    @case.command(name="conflicts", help="List every event kept as a conflict (concurrent, incompatible decisions).")
    @data_option
    @json_option
    @handle_errors
    def case_conflicts(data_dir: str, as_json: bool) -> None:
        rows = read(load(data_dir), views.conflicts)
        emit(
            as_json,
            {"rule": CONFLICT_RULE, "conflicts": rows},
            lambda: (
                f"共 {len(rows)} 个冲突事件。规则: {CONFLICT_RULE}\n"
                + _table(
                    rows,
                    [
                        ("local_no", "本地编号"),
                        ("at", "时间"),
                        ("author", "作者"),
                        ("action_label", "操作"),
                        ("state_label", "当时状态"),
                        ("conflict", "原因"),
                    ],
                )
            ),
        )

    actions = [a for a, spec in ACTIONS.items() if any(_role_name(role) in roles for roles in spec.sources.values())]

    @case.command(
        name="transition", help="Move a case on: " + ", ".join(f"{a} ({ACTION_LABELS[a]})" for a in actions) + "."
    )
    @data_option
    @click.argument("ref")
    @click.argument("action", type=click.Choice(actions))
    @click.option("--reason", default=None, help="why (required for 补正, 不予受理, 挂起, 撤回, 作废)")
    @click.option("--result", default=None, help="办结: the result (default 准予办理)")
    @click.option("--kind", default=None, type=click.Choice(["挂起", "特别程序"]), help="suspend: 挂起 or 特别程序")
    @click.option("--material", "materials", multiple=True, help="submit/supplement: a material now received (repeat)")
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
        person: str | None,
        as_json: bool,
    ) -> None:
        node = load(data_dir)
        data = {"reason": reason, "result": result, "kind": kind, "materials": list(materials)}
        (cmd,) = run(
            node, lambda conn, actor: commands.transition(conn, actor, ref, action, data, now_ms=now_ms()), person
        )
        r = cmd.result
        emit(as_json, r, f"办件 {r['local_no']}: {STATE_LABELS[r['from']]} → {ACTION_LABELS[action]}，已记录，待同步。")


def _role_name(node_role: str) -> str:
    return {"village": "agent", "township": "clerk", "county": "county"}[node_role]


def _opener(node: LocalNode) -> Callable[[bytes, bytes], bytes] | None:
    sealer = getattr(node, "sealer", None)
    return sealer.open if sealer is not None else None


def _case_text(d: dict[str, Any]) -> str:
    a = d.get("applicant") or {}
    lines = [
        f"办件 {d['local_no']}  办件编号 {d.get('official_no') or '（县级接收后赋号）'}",
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
    lines.append("  办理过程:")
    for ev in d.get("events", []):
        mark = f"  ⚠ 冲突: {ev['conflict']}" if ev.get("conflict") else ""
        lines.append(f"    {ev.get('at', '')} {ev.get('action_label', ev.get('action'))} ({ev.get('author')}){mark}")
    if d.get("conflicts"):
        lines.append(f"  冲突规则: {d.get('conflict_rule', '')}")
    for c in d.get("cards", []):
        lines.append(f"  {c.get('level')} {c.get('reason', '')}" + ("（已撤销）" if c.get("revoked_ms") else ""))
    return "\n".join(lines)


def _evaluate_command(group: click.Group, load: Loader) -> None:
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
    @click.option(
        "--stage", type=click.Choice(commands.STAGES), default="办结", show_default=True, help="the stage evaluated"
    )
    @click.option(
        "--channel", type=click.Choice(commands.CHANNELS), default=None, help="现场/代办/网上 (default by node)"
    )
    @click.option("--target-type", type=click.Choice(commands.TARGETS), default=None, help="事项/窗口/人员/代办点")
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
        node = load(data_dir)
        data = {
            "case": ref,
            "level": level,
            "stage": stage,
            "channel": channel,
            "target_type": target_type,
            "target_name": target_name,
            "comment": comment,
        }
        (cmd,) = run(node, lambda conn, actor: commands.evaluate(conn, actor, data, now_ms=now_ms()))
        r = cmd.result
        emit(
            as_json,
            r,
            f"已记录评价 {commands.LEVEL_LABELS[level]}"
            + ("；差评已转整改" if r["rectification"] else "")
            + f"（{r['evaluation_id']}）",
        )


def _rectify_command(group: click.Group, load: Loader) -> None:
    @group.command(
        name="rectify",
        help="A 差评's rectification (整改): assign an owner, record the 回访, record the rating of the fix.",
    )
    @data_option
    @click.argument("evaluation_id")
    @click.argument("step", type=click.Choice(["assign", "followup", "rate"]))
    @click.option("--owner", default=None, help="assign: who fixes it (整改责任人)")
    @click.option(
        "--deadline-days", type=int, default=None, help="assign: working days to fix it (default from settings)"
    )
    @click.option("--note", default=None, help="followup: what the 回访 found")
    @click.option("--level", type=click.IntRange(1, 5), default=None, help="rate: the applicant's rating of the fix")
    @json_option
    @handle_errors
    def rectify(
        data_dir: str,
        evaluation_id: str,
        step: str,
        owner: str | None,
        deadline_days: int | None,
        note: str | None,
        level: int | None,
        as_json: bool,
    ) -> None:
        node = load(data_dir)
        data = {"owner": owner, "deadline_days": deadline_days, "note": note, "level": level}
        (cmd,) = run(
            node, lambda conn, actor: commands.rectify(conn, actor, evaluation_id, step, data, now_ms=now_ms())
        )
        emit(as_json, cmd.result, f"整改记录已更新: {step}")

    @group.command(name="rectifications", help="List rectifications of 差评 with their deadline and state.")
    @data_option
    @json_option
    @handle_errors
    def rectifications(data_dir: str, as_json: bool) -> None:
        rows = read(load(data_dir), lambda conn: views.rectifications(conn, today=today()))
        emit(
            as_json,
            rows,
            lambda: _table(
                [{k: _yes(v) for k, v in r.items()} for r in rows],
                [
                    ("evaluation_id", "评价"),
                    ("owner", "责任人"),
                    ("deadline_date", "整改期限"),
                    ("state", "状态"),
                    ("overdue", "逾期"),
                ],
            ),
        )


# --- ledger, roster, statistics ----------------------------------------------------------------------------


def export_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """DATA, PATH, --month, --village, --format and --json, with the one error translation."""
    for deco in reversed(
        (
            data_option,
            click.argument("path", type=click.Path(dir_okay=False)),
            click.option("--month", default=None, help="YYYY-MM"),
            click.option("--village", default=None, help="only this village"),
            click.option(
                "--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None, help="default: from the file name"
            ),
            json_option,
            handle_errors,
        )
    ):
        fn = deco(fn)
    return fn


def _fmt_for(path: Path, fmt: str | None) -> str:
    return fmt or path.suffix.lstrip(".").lower() or "xlsx"


def _ledger_commands(group: click.Group, role: str, load: Loader) -> None:
    ledger = click.Group("ledger", help="代办台账: one row per proxy request, as the township asks for it every month.")
    group.add_command(ledger)

    @ledger.command(name="show", help="Show the ledger (代办台账), with overdue rows flagged.")
    @data_option
    @click.option("--month", default=None, help="YYYY-MM")
    @click.option("--village", default=None, help="only this village")
    @json_option
    @handle_errors
    def ledger_show(data_dir: str, month: str | None, village: str | None, as_json: bool) -> None:
        node = load(data_dir)
        rows = read(
            node, lambda conn: views.ledger(conn, village=village, month=month, today=today(), opener=_opener(node))
        )
        emit(
            as_json,
            rows,
            lambda: _table(
                [{k: _yes(v) for k, v in r.items()} for r in rows],
                [(k, k) for k in ("序号", "日期", "村民姓名", "事项", "报送乡镇期限", "报送日期", "状态", "逾期")],
            ),
        )

    @ledger.command(name="export", help="Export the ledger to Excel (.xlsx) or CSV, in the printed layout.")
    @export_options
    def ledger_export(
        data_dir: str, path: str, month: str | None, village: str | None, fmt: str | None, as_json: bool
    ) -> None:
        node = load(data_dir)
        with node.open_store() as store:
            n = exports.export_ledger(
                store.conn,
                Path(path),
                _fmt_for(Path(path), fmt),
                village=village,
                month=month,
                today=today(),
                opener=_opener(node),
            )
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
            node = load(data_dir)
            (cmd,) = run(node, lambda conn, actor: commands.duty(conn, actor, day, agent, substitute, now_ms=now_ms()))
            emit(as_json, cmd.result, f"{day} 值班: {agent}" + (f"，替岗: {substitute}" if substitute else ""))

    @roster.command(name="export", help="Export the duty roster to Excel (.xlsx) or CSV.")
    @export_options
    def roster_export(
        data_dir: str, path: str, month: str | None, village: str | None, fmt: str | None, as_json: bool
    ) -> None:
        n = read(
            load(data_dir),
            lambda conn: exports.export_roster(
                conn, Path(path), _fmt_for(Path(path), fmt), village=village, month=month
            ),
        )
        emit(as_json, {"path": path, "rows": n}, f"已导出值班表 {n} 行到 {path}")


def _period(month: str | None) -> tuple[date, date] | None:
    if not month:
        return None
    try:
        start = datetime.strptime(month + "-01", "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{month!r}: use YYYY-MM") from None
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, end - timedelta(days=1)


def _stats_text(rows: list[dict[str, Any]]) -> str:
    columns, flat = stats.flat_rows(rows)
    return _table(flat, list(columns))


def _yes(value: Any) -> Any:
    return "是" if value is True else "" if value is False else value


def _stats_commands(group: click.Group, load: Loader) -> None:
    st = click.Group("stats", help="Statistics: 按时办结率, 满意率, cases by state, overdue, average handling days.")
    group.add_command(st)
    by_choice = click.Choice(["county", "township", "village", "item", "month"])

    @st.command(name="show", help="Show statistics grouped by county, township, village, item or month.")
    @data_option
    @click.option("--by", "group_by", type=by_choice, default="township", show_default=True, help="grouping")
    @click.option("--month", default=None, help="only this month (YYYY-MM)")
    @json_option
    @handle_errors
    def stats_show(data_dir: str, group_by: str, month: str | None, as_json: bool) -> None:
        rows = read(
            load(data_dir), lambda conn: stats.statistics(conn, group_by=group_by, period=_period(month), today=today())
        )
        emit(as_json, rows, lambda: _stats_text(rows))

    @st.command(name="export", help="Export statistics to Excel (.xlsx) or CSV.")
    @data_option
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--by", "group_by", type=by_choice, default="township", show_default=True, help="grouping")
    @click.option("--month", default=None, help="only this month (YYYY-MM)")
    @click.option(
        "--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None, help="default: from the file name"
    )
    @json_option
    @handle_errors
    def stats_export(
        data_dir: str, path: str, group_by: str, month: str | None, fmt: str | None, as_json: bool
    ) -> None:
        node = load(data_dir)
        with node.open_store() as store:
            n = exports.export_statistics(
                store.conn,
                Path(path),
                _fmt_for(Path(path), fmt),
                group_by=group_by,
                period=_period(month),
                today=today(),
            )
        emit(as_json, {"path": path, "rows": n}, f"已导出统计 {n} 行到 {path}")


# --- county: 电子监察, settings -----------------------------------------------------------------------------


def _county_commands(group: click.Group, load: Loader) -> None:
    cards = click.Group("cards", help="电子监察: 黄牌/红牌 on cases near or past their promised date.")
    group.add_command(cards)

    @cards.command(
        name="scan", help="Issue a 黄牌 or 红牌 to every open case that has reached the threshold and has none yet."
    )
    @data_option
    @json_option
    @handle_errors
    def cards_scan(data_dir: str, as_json: bool) -> None:
        node = load(data_dir)
        due = read(node, lambda conn: views.cards_due(conn, today=today()))
        issued = []
        for case_id, level, reason in due:

            def card(conn: Any, actor: Actor, c: str = case_id, lv: str = level, r: str = reason) -> Command:
                return commands.issue_card(conn, actor, c, lv, r, now_ms=now_ms())

            (cmd,) = run(node, card)
            issued.append(cmd.result)
        emit(as_json, issued, f"已发出 {len(issued)} 张牌")

    @cards.command(name="list", help="List cards (issued and revoked).")
    @data_option
    @json_option
    @handle_errors
    def cards_list(data_dir: str, as_json: bool) -> None:
        rows = read(load(data_dir), views.cards)
        emit(
            as_json,
            rows,
            lambda: _table(
                rows,
                [
                    ("card_id", "牌号"),
                    ("local_no", "办件"),
                    ("level", "牌级"),
                    ("reason", "原因"),
                    ("revoke_reason", "撤销原因"),
                ],
            ),
        )

    @cards.command(name="revoke", help="Revoke a card, with the reason (e.g. the delay was a 特别程序).")
    @data_option
    @click.argument("card_id")
    @click.option("--reason", required=True, help="why the card is revoked")
    @json_option
    @handle_errors
    def cards_revoke(data_dir: str, card_id: str, reason: str, as_json: bool) -> None:
        node = load(data_dir)
        (cmd,) = run(node, lambda conn, actor: commands.revoke_card(conn, actor, card_id, reason, now_ms=now_ms()))
        emit(as_json, cmd.result, f"已撤销 {card_id}")

    settings = click.Group(
        "settings", help="County-wide settings that sync down: clock thresholds, rectification days, PII purge rule."
    )
    group.add_command(settings)

    @settings.command(name="show", help="Show the settings in force.")
    @data_option
    @json_option
    @handle_errors
    def settings_show(data_dir: str, as_json: bool) -> None:
        values = read(load(data_dir), commands.settings)
        emit(as_json, values, lambda: "\n".join(f"{k} = {v}    # {commands.SETTINGS[k][3]}" for k, v in values.items()))

    @settings.command(name="set", help="Change one setting (it reaches every node at its next sync).")
    @data_option
    @click.argument("name", type=click.Choice(list(commands.SETTINGS)))
    @click.argument("value", type=int)
    @json_option
    @handle_errors
    def settings_set(data_dir: str, name: str, value: int, as_json: bool) -> None:
        node = load(data_dir)
        (cmd,) = run(node, lambda conn, actor: commands.setting(conn, actor, name, value, now_ms=now_ms()))
        emit(as_json, cmd.result, f"{name} = {value}，将随同步下发")


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
