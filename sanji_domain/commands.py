"""Validated commands: what a user asks for → entries to append (or a clear refusal).

Each command reads the folded tables through the connection it is given,
checks the request against the catalog, the case state machine and the
actor's role, and returns the feed and the `Record`s to append; nothing is
written here. The node edge appends them in one commit, and the fold turns
them into table rows in the same transaction.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson

from sync_protocol.entries import Record
from sync_protocol.hlc import tick

from . import claims, kinds
from .applicant import check_applicant
from .errors import NotFoundError, TransitionError, ValidationError
from .fold import case_rows
from .states import (
    ACTIONS,
    AGENT,
    CLERK,
    COUNTY,
    DRAFT,
    FORWARDED,
    NODE_ROLE_ACTOR,
    STATE_LABELS,
    SUBMITTED,
    acting_role,
    allowed,
)

CHANNELS = ("现场", "代办", "网上")
STAGES = ("受理", "办结")
TARGETS = ("事项", "窗口", "人员", "代办点")
LEVEL_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
SUSPEND_KINDS = ("挂起", "特别程序")


CST = timezone(timedelta(hours=8), "CST")  # China Standard Time: days and numbers never depend on the machine's zone


def local_day(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, CST).strftime("%Y%m%d")


@dataclass(frozen=True)
class Actor:
    """Who runs a command: this node, its role in the tree, and the county's root node id."""

    node: str
    node_role: str  # county | township | village
    division: str
    parent: str | None
    root: str
    person: str | None = None  # the clerk's or agent's name, recorded on events

    @property
    def role(self) -> str:
        return NODE_ROLE_ACTOR[self.node_role]


@dataclass
class Command:
    feed: str
    records: list[Record]
    result: dict[str, Any]


def uuid7(now_ms: int, rand: bytes | None = None) -> str:
    """A time-ordered UUID (version 7): inserts in time order, sortable by creation."""
    rand = rand if rand is not None else os.urandom(10)
    value = (now_ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | (int.from_bytes(rand[:2], "big") & 0x0FFF) << 64
    value |= (0b10 << 62) | (int.from_bytes(rand[2:10], "big") & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(value: Any, field: str, *, required: bool = False, limit: int = 2000) -> str | None:
    if value is None or value == "":
        if required:
            raise ValidationError(f"{field} 必填 (required)")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} 必须是文字 (must be text)")
    value = unicodedata.normalize("NFC", value.strip())
    if len(value) > limit:
        raise ValidationError(f"{field} 超过 {limit} 个字 (too long)")
    return str(value)


def _object(text: str | bytes) -> dict[str, Any]:
    """A folded JSON object (a table column the fold wrote)."""
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def last_hlc(conn: Any, feed: str) -> int:
    row = conn.execute("SELECT MAX(hlc) FROM entries WHERE feed = ?", (feed,)).fetchone()
    return int(row[0] or 0)


def stamps(conn: Any, feed: str, now_ms: int, n: int) -> list[int]:
    """n hybrid-clock stamps after the feed's last one (never backwards, even if the wall clock is)."""
    out, last = [], last_hlc(conn, feed)
    for _ in range(n):
        last = tick(last, now_ms)
        out.append(last)
    return out


# --- catalog lookups -----------------------------------------------------------------------------------------


def catalog_item(conn: Any, task_code: str, version: int | None = None) -> dict[str, Any]:
    if version is None:
        row = conn.execute("SELECT body FROM catalog_items WHERE task_code = ?", (task_code,)).fetchone()
    else:
        row = conn.execute(
            "SELECT body FROM catalog_item_versions WHERE task_code = ? AND version = ?", (task_code, version)
        ).fetchone()
    if row is None:
        raise NotFoundError(
            f"事项清单中没有实施编码为 {task_code} 的事项 (no such item)",
            hint="用 catalog list 查看可办事项；若刚发布，请先同步",
        )
    return _object(row[0])


def find_item(conn: Any, ref: str) -> dict[str, Any]:
    """An item by its 实施编码, or by its exact name."""
    row = conn.execute("SELECT body FROM catalog_items WHERE task_code = ?", (ref,)).fetchone()
    if row is None:
        rows = conn.execute("SELECT body FROM catalog_items WHERE name = ? AND state = '在用'", (ref,)).fetchall()
        if len(rows) == 1:
            row = rows[0]
        elif len(rows) > 1:
            raise ValidationError(f"有 {len(rows)} 个名为「{ref}」的事项，请用实施编码 (ambiguous item name)")
    if row is None:
        return catalog_item(conn, ref)
    return _object(row[0])


def check_materials(item: dict[str, Any], given: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The case's materials checklist against the item: (checklist, names of required materials missing)."""
    received: dict[str, dict[str, Any]] = {}
    for m in given or []:
        if isinstance(m, str):
            received[unicodedata.normalize("NFC", m.strip())] = {"received": True}
        elif isinstance(m, dict) and isinstance(m.get("name"), str):
            received[unicodedata.normalize("NFC", m["name"].strip())] = m
        else:
            raise ValidationError(f"材料 {m!r} 无法识别 (give a material name, or an object with name)")
    known = {m["name"] for m in item.get("materials", [])}
    unknown = sorted(set(received) - known)
    if unknown:
        raise ValidationError(
            f"材料「{'、'.join(unknown)}」不在事项「{item['name']}」的材料清单中 (not in the item's list)",
            hint="材料清单: " + "、".join(sorted(known)),
        )
    checklist, missing = [], []
    for m in item.get("materials", []):
        got = received.get(m["name"], {})
        ok = bool(got.get("received", bool(got)))
        checklist.append(
            {
                "name": m["name"],
                "required": bool(m.get("required", True)),
                "received": ok,
                "form": got.get("form", m.get("form", "原件")),
                "copies": int(got.get("copies", m.get("copies", 1)) or 0),
            }
        )
        if m.get("required", True) and not ok:
            missing.append(m["name"])
    return checklist, missing


# --- cases ---------------------------------------------------------------------------------------------------


def case_feed_for_new(actor: Actor) -> str:
    if actor.node_role == "county":
        raise ValidationError("县级不直接收件：办件由村代办点或乡镇窗口登记 (cases are filed at a village or township)")
    return f"{actor.node}/up"


def next_local_numbers(conn: Any, division: str, day: str, n: int) -> list[str]:
    prefix = f"{division}-{day}-"
    start = _last_number(conn, "local_no", prefix)
    return [f"{prefix}{start + i}" for i in range(1, n + 1)]


def _last_number(conn: Any, column: str, prefix: str) -> int:
    """The highest running number after `prefix` in `cases.<column>` (0 if none)."""
    row = conn.execute(
        f"SELECT MAX(CAST(substr({column}, ?) AS INTEGER)) FROM cases WHERE {column} LIKE ? AND origin_case_id IS NULL",
        (len(prefix) + 1, prefix + "%"),
    ).fetchone()
    return int(row[0] or 0)


def new_cases(conn: Any, actor: Actor, requests: list[Any], *, now_ms: int, tz_day: str | None = None) -> Command:
    """收件: validate every request (item, applicant, materials) and build the case entries, all or none."""
    if not requests:
        raise ValidationError("没有要登记的办件 (no case given)")
    feed = case_feed_for_new(actor)
    day = tz_day or local_day(now_ms)
    numbers = next_local_numbers(conn, actor.division, day, len(requests))
    hlcs = stamps(conn, feed, now_ms, len(requests))
    records, made = [], []
    problems: dict[str, list[int]] = {}
    for i, data in enumerate(requests, start=1):
        try:
            body = _case_body(conn, actor, data, now_ms)
        except ValidationError as e:
            problems.setdefault(e.message + (f" ({e.hint})" if e.hint else ""), []).append(i)
            continue
        body["local_no"] = numbers[i - 1]
        records.append(Record(kinds.CASE_NEW, body["case_id"], body, hlcs[i - 1]))
        made.append({"case_id": body["case_id"], "local_no": body["local_no"], "state": body["state"]})
    if problems:
        lines = [f"{_which(rows, len(requests))}: {message}" for message, rows in problems.items()]
        raise ValidationError("未登记任何办件 (nothing was filed):\n  " + "\n  ".join(lines))
    return Command(feed, records, {"cases": made})


def _which(rows: list[int], total: int) -> str:
    """第 3 件, or 第 1、2、5 件, or 第 1–100 件 (共 100 件) for a run: one line per distinct problem."""
    if total == 1:
        return "办件"
    if len(rows) > 3 and rows[-1] - rows[0] == len(rows) - 1:
        return f"第 {rows[0]}–{rows[-1]} 件 (共 {len(rows)} 件)"
    shown = "、".join(str(r) for r in rows[:10]) + (f" 等 {len(rows)} 件" if len(rows) > 10 else "")
    return f"第 {shown} 件"


def _case_body(conn: Any, actor: Actor, data: Any, now_ms: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError("办件必须是 JSON 对象 (a case is a JSON object)", hint='如 {"item": "高龄津贴申请", ...}')
    ref = data.get("item")
    if isinstance(ref, dict):
        ref = ref.get("task_code") or ref.get("name")
    if not isinstance(ref, str) or not ref:
        raise ValidationError("item 必填: 事项的实施编码或名称 (the item's task_code or name)")
    item = find_item(conn, ref)
    if item.get("state", "在用") != "在用":
        raise ValidationError(f"事项「{item['name']}」当前{item['state']}，不能收件 (item is {item['state']})")
    if actor.node_role == "village" and not item.get("village_mode"):
        raise ValidationError(
            f"事项「{item['name']}」不在村级可代办范围 (not handled through a village)",
            hint="请到乡镇或县政务服务中心办理",
        )
    applicant = check_applicant(data.get("applicant") or {}, today=datetime.fromtimestamp(now_ms / 1000, CST).date())
    checklist, missing = check_materials(item, data.get("materials"))
    pledge = bool(data.get("pledge"))
    draft = bool(data.get("draft"))
    if missing and not draft:
        if not (pledge and item.get("allow_pledge")):
            raise ValidationError(
                f"缺少必要材料: {'、'.join(missing)} (required materials missing)",
                hint="补齐材料后再收件；或存为草稿 (draft)"
                + ("；本事项允许容缺受理，可填写承诺 (pledge)" if item.get("allow_pledge") else ""),
            )
    agent = data.get("agent") or {}
    if not isinstance(agent, dict):
        raise ValidationError("agent 必须是对象: {name, proxy_no} (代办员姓名、委托书编号)")
    case_id = uuid7(now_ms)
    return {
        "agent": {
            "name": _text(agent.get("name") or actor.person, "代办员姓名", limit=50),
            "proxy_no": _text(agent.get("proxy_no"), "委托书编号", limit=50),
        },
        "applicant": applicant,
        "case_id": case_id,
        "channel": claims.CASE_CHANNEL[actor.node_role],
        "filed_ms": now_ms,
        "item": {
            "case_type": item.get("case_type"),
            "legal_days": item.get("legal_days", 0),
            "level": item.get("level"),
            "name": item["name"],
            "promised_days": item.get("promised_days", 0),
            "task_code": item["task_code"],
            "version": item.get("version"),
            "village_mode": item.get("village_mode"),
        },
        "materials": checklist,
        "missing": missing,
        "notes": _text(data.get("notes"), "备注"),
        "pledge": bool(pledge and missing),
        "state": DRAFT if draft and missing else SUBMITTED,
        "township": _place(actor)[1],
        "village": _place(actor)[0],
    }


def load_case(conn: Any, ref: str) -> dict[str, Any]:
    """A case by its id, local number or official 办件编号, as the folded row (each an indexed lookup)."""
    for column in ("case_id", "local_no", "official_no"):
        order = " ORDER BY origin_case_id IS NOT NULL" if column == "local_no" else ""
        cur = conn.execute(f"SELECT * FROM cases WHERE {column} = ?{order} LIMIT 1", (ref,))
        row = cur.fetchone()
        if row is not None:
            return dict(zip([c[0] for c in cur.description], row, strict=True))
    raise NotFoundError(f"找不到办件 {ref} (no such case)", hint="用 case list 查看；若刚登记，请先同步")


def case_village_mode(conn: Any, case_id: str) -> str | None:
    """How a village handles the case's item (村受理村办结 / 村受理乡办结 / 村代办), as pinned when filed."""
    row = conn.execute("SELECT body FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    value = _object(row[0]).get("item", {}).get("village_mode") if row else None
    return value if isinstance(value, str) else None


def item_code_of(conn: Any, ref: str) -> str | None:
    """The 实施编码 of an item named by code or exact name; None if there is no such item."""
    try:
        return str(find_item(conn, ref)["task_code"])
    except NotFoundError:
        return None


def current_materials(conn: Any, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's materials checklist: as filed, or as the latest applied 收件/补正 event recorded it."""
    for (body,) in conn.execute(
        "SELECT body FROM case_events WHERE case_id = ? AND conflict IS NULL ORDER BY hlc DESC, author DESC, seq DESC",
        (case["case_id"],),
    ):
        value = _object(body)
        materials = value.get("materials")
        if isinstance(materials, list):
            return materials
    materials = _object(case["body"]).get("materials")
    return materials if isinstance(materials, list) else []


def event_feed(actor: Actor, case: dict[str, Any]) -> str:
    """The feed an actor's event on this case goes to: one the case's holders all hold."""
    if actor.role == AGENT:
        return f"{actor.node}/up"
    target = case["village"] or case["township"]
    if actor.role == CLERK:
        return f"{actor.node}/up" if target == actor.node else f"{actor.node}/{target}"
    return f"{actor.root}/{target}"


def transition(
    conn: Any, actor: Actor, ref: str, action: str, data: dict[str, Any] | None = None, *, now_ms: int
) -> Command:
    """A state change: checked against the role and the case's folded state, written as a `case.event`."""
    data = dict(data or {})
    case = load_case(conn, ref)
    if action in ACTIONS and ACTIONS[action].name in ("complete", "reject", "accept", "start", "suspend", "resume"):
        if actor.role == COUNTY and case["state"] == FORWARDED and case["linked_case_id"]:
            case = load_case(conn, case["linked_case_id"])  # the county acts on the linked county case
    mode = orjson.loads(case["body"]).get("item", {}).get("village_mode")
    role = acting_role(actor.role, mode) if actor.role != AGENT or case["village"] == actor.node else actor.role
    why = allowed(action, case["state"], role)
    if why is not None:
        raise TransitionError(f"办件 {case['local_no']}: {why}", hint=_next_hint(case["state"], role))
    if actor.role == AGENT and case["village"] != actor.node:
        raise TransitionError(f"办件 {case['local_no']} 不是本代办点登记的 (not this village's case)")
    body: dict[str, Any] = {"action": action, "at_ms": now_ms, "case_id": case["case_id"]}
    if actor.person:
        body["by"] = actor.person
    reason = _text(data.get("reason"), "原因 (reason)")
    if ACTIONS[action].needs_reason and not reason:
        raise ValidationError(f"{ACTIONS[action].label}须写明原因 (give --reason)")
    if reason:
        body["reason"] = reason
    if action == "suspend":
        kind = data.get("kind") or "挂起"
        if kind not in SUSPEND_KINDS:
            raise ValidationError(f"挂起类型须为 {'/'.join(SUSPEND_KINDS)}")
        body["kind"] = kind
    if action == "complete":
        body["result"] = _text(data.get("result"), "办理结果 (result)") or "准予办理"
    if action == "forward":
        body["linked_case_id"] = uuid7(now_ms)
    if action == "request_supplement" and data.get("requested"):
        body["requested"] = _requested(conn, case, data["requested"])
    if (action in ("submit", "supplement") and case["state"] == DRAFT) or data.get("materials"):
        item = catalog_item(conn, case["item_code"], case["item_version"])
        # what is held already stays held: the new materials are added to the case's checklist
        held = [m["name"] for m in current_materials(conn, case) if m.get("received")]
        given = [m if isinstance(m, str) else m.get("name") for m in data.get("materials") or []]
        checklist, missing = check_materials(item, list(dict.fromkeys([*held, *given])))
        body["materials"] = checklist
        if missing and action == "submit" and not (case["pledge"] or (data.get("pledge") and item.get("allow_pledge"))):
            raise ValidationError(f"缺少必要材料: {'、'.join(missing)}，不能收件 (required materials missing)")
    feed = event_feed(actor, case)
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(
        feed,
        [Record(kinds.CASE_EVENT, case["case_id"], body, hlc)],
        {
            "case_id": case["case_id"],
            "local_no": case["local_no"],
            "action": action,
            "from": case["state"],
            "to": ACTIONS[action].target,
        },
    )


def _requested(conn: Any, case: dict[str, Any], names: Any) -> list[str]:
    """补齐补正: the materials asked for, each one of the item's materials (一次告知: all named at once)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError("要补齐补正的材料须为材料名称列表 (a list of material names)")
    item = catalog_item(conn, case["item_code"], case["item_version"])
    known = [m["name"] for m in item.get("materials", [])]
    asked = list(dict.fromkeys(unicodedata.normalize("NFC", n.strip()) for n in names if n.strip()))
    unknown = [n for n in asked if n not in known]
    if unknown:
        raise ValidationError(
            f"材料「{'、'.join(unknown)}」不在事项「{item['name']}」的材料清单中 (not in the item's list)",
            hint="材料清单: " + "、".join(known),
        )
    return asked


def _next_hint(state: str, role: str) -> str:
    options = [a.label for a in ACTIONS.values() if role in a.sources.get(state, ())]
    return (
        f"当前「{STATE_LABELS.get(state, state)}」可做: {'、'.join(options)}"
        if options
        else "当前状态下本角色无可做的操作"
    )


def case_number(conn: Any, actor: Actor, case_ids: list[str], *, now_ms: int) -> list[Command]:
    """办件编号: the county numbers the cases it received, per day, in the case's county feed."""
    if actor.role != COUNTY:
        raise TransitionError("只有县级可以赋办件编号 (only the county numbers cases)")
    prefix = f"{actor.division[:6]}{local_day(now_ms)}"
    n = _last_number(conn, "official_no", prefix)
    by_feed: dict[str, list[tuple[str, str]]] = {}
    places = case_rows(conn, "village, township, official_no, origin_case_id", case_ids)  # only what numbering needs
    for cid in case_ids:
        if cid not in places:
            raise NotFoundError(f"找不到办件 {cid} (no such case)")
        village, township, official_no, origin = places[cid]
        if official_no or origin:
            continue
        n += 1
        feed = event_feed(actor, {"village": village, "township": township})
        by_feed.setdefault(feed, []).append((cid, f"{prefix}{n:06d}"))
    out = []
    for feed, pairs in by_feed.items():
        hlcs = stamps(conn, feed, now_ms, len(pairs))
        out.append(
            Command(
                feed,
                [
                    Record(kinds.CASE_NUMBER, cid, {"case_id": cid, "official_no": no}, h)
                    for (cid, no), h in zip(pairs, hlcs, strict=True)
                ],
                {"numbered": [no for _, no in pairs]},
            )
        )
    return out


# --- 好差评 -------------------------------------------------------------------------------------------------


def evaluate(conn: Any, actor: Actor, data: dict[str, Any], *, now_ms: int) -> Command:
    """A five-level evaluation (好差评) at a stage, against a target; a 差评 opens a rectification."""
    level = data.get("level")
    if isinstance(level, str) and level in LEVEL_LABELS.values():
        level = {v: k for k, v in LEVEL_LABELS.items()}[level]
    if type(level) is not int or level not in LEVEL_LABELS:
        raise ValidationError("评价等级须为 1–5 (5 非常满意 … 1 非常不满意)")
    channel = data.get("channel") or ("代办" if actor.node_role == "village" else "现场")
    stage = data.get("stage") or "办结"
    target_type = data.get("target_type") or ("代办点" if actor.node_role == "village" else "窗口")
    for value, allowed_values, name in (
        (channel, CHANNELS, "渠道"),
        (stage, STAGES, "环节"),
        (target_type, TARGETS, "对象"),
    ):
        if value not in allowed_values:
            raise ValidationError(f"评价{name}须为 {'/'.join(allowed_values)} (got {value!r})")
    case = load_case(conn, data["case"]) if data.get("case") else None
    if actor.node_role == "county":
        raise ValidationError("评价由代办点或窗口代为录入 (evaluations are recorded at a village or a window)")
    _check_evaluation_claims(actor, channel, target_type, data.get("target_name"), case)
    feed = f"{actor.node}/up"
    eid = uuid7(now_ms)
    row = conn.execute("SELECT value FROM settings WHERE key = 'rectify_days'").fetchone()
    body = {
        "at_ms": now_ms,
        "case_id": case["case_id"] if case else None,
        "channel": channel,
        "comment": _text(data.get("comment"), "评价内容"),
        "evaluation_id": eid,
        "level": level,
        "rectify_days": int(orjson.loads(row[0])) if row else kinds.DEFAULT_RECTIFY_DAYS,
        "stage": stage,
        "target_name": _text(data.get("target_name"), "评价对象名称", limit=100)
        or (case["item_name"] if case and target_type == "事项" else actor.node),
        "target_type": target_type,
    }
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(
        feed,
        [Record(kinds.EVALUATION, eid, body, hlc)],
        {"evaluation_id": eid, "level": level, "rectification": level <= kinds.BAD_LEVEL_MAX},
    )


def _check_evaluation_claims(
    actor: Actor, channel: str, target_type: str, target_name: Any, case: dict[str, Any] | None
) -> None:
    """What the fold would refuse (sanji_domain.claims), refused here first with what to do instead."""
    here = claims.Place(actor.node, actor.node_role, *_place(actor))
    if channel not in claims.EVALUATION_CHANNELS[actor.node_role]:
        raise ValidationError(
            f"本节点录入的评价渠道只能是 {'/'.join(claims.EVALUATION_CHANNELS[actor.node_role])} (channel {channel!r})",
            hint="代办渠道由村代办点录入，现场渠道由乡镇窗口录入",
        )
    owner = claims.TARGET_ROLE.get(target_type)
    if owner is not None and owner != actor.node_role:
        raise ValidationError(
            f"评价对象「{target_type}」只能由{claims.ROLE_LABELS[owner]}录入 (only a {owner} evaluates its {target_type})",
            hint="选择 事项 或 人员，或由该代办点/窗口录入",
        )
    if target_type == "代办点" and target_name not in (None, "", actor.node):
        raise ValidationError(
            "代办点的评价对象就是本代办点，不能另填名称 (a 代办点 evaluates only itself)", hint="不填评价对象名称"
        )
    if case is not None and not claims.may_evaluate(here, case["village"], case["township"]):
        raise ValidationError(
            f"办件 {case['local_no']} 不是本村或本乡镇的办件，不能在此评价 (not this node's case)",
            hint="由办件所属的代办点或乡镇窗口录入",
        )


def _place(actor: Actor) -> tuple[str | None, str | None]:
    """(village, township) the actor stands for, as the membership says (claims.Places)."""
    if actor.node_role == "village":
        return actor.node, actor.parent
    return None, actor.node if actor.node_role == "township" else None


RECTIFY_STEPS = ("assign", "followup", "close", "rate")


def rectify(conn: Any, actor: Actor, evaluation_id: str, step: str, data: dict[str, Any], *, now_ms: int) -> Command:
    """整改 of a 差评: assign (owner, deadline), followup (回访 note), close (办结 with the result, and the
    applicant's rating of the fix if known), rate (the applicant's rating of the fix, which closes it too).
    Each step names the person who took it (`by`), so the township and the county see who did what."""
    row = conn.execute("SELECT state FROM rectifications WHERE evaluation_id = ?", (evaluation_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"没有评价 {evaluation_id} 的整改记录 (only a 差评 opens a rectification)")
    if row[0] == "已办结":
        raise TransitionError("该整改已办结 (closed)")
    if actor.role == AGENT:
        raise TransitionError("整改由乡镇或县级负责 (township or county)")
    body: dict[str, Any] = {"at_ms": now_ms, "evaluation_id": evaluation_id, "step": step}
    if actor.person:
        body["by"] = _text(actor.person, "经办人", limit=50)
    if step == "assign":
        body["owner"] = _text(data.get("owner"), "整改责任人 (owner)", required=True, limit=50)
        if data.get("deadline_days") is not None:
            days = data["deadline_days"]
            if type(days) is not int or not 1 <= days <= 60:
                raise ValidationError("整改期限须为 1–60 个工作日")
            body["deadline_days"] = days
    elif step == "followup":
        body["note"] = _text(data.get("note"), "回访情况 (note)", required=True)
    elif step == "close":
        body["result"] = _text(data.get("result"), "整改结果 (result)", required=True)
        level = data.get("level")
        if level is not None:
            if type(level) is not int or level not in LEVEL_LABELS:
                raise ValidationError("整改评价须为 1–5")
            body["level"] = level
    elif step == "rate":
        level = data.get("level")
        if type(level) is not int or level not in LEVEL_LABELS:
            raise ValidationError("整改评价须为 1–5")
        body["level"] = level
    else:
        raise ValidationError("整改步骤须为 assign / followup / close / rate")
    if actor.role == CLERK:
        feed = f"{actor.node}/up"
    else:  # the county: in the feed of the township the evaluation belongs to
        where = conn.execute("SELECT township FROM evaluations WHERE evaluation_id = ?", (evaluation_id,)).fetchone()
        feed = f"{actor.root}/{where[0]}" if where and where[0] else f"{actor.root}/*"
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(
        feed, [Record(kinds.RECTIFICATION, evaluation_id, body, hlc)], {"evaluation_id": evaluation_id, "step": step}
    )


# --- 值班表, 电子监察, settings ---------------------------------------------------------------------------


def duty(conn: Any, actor: Actor, day: str, agent: str, substitute: str | None, *, now_ms: int) -> Command:
    """值班表: who is on duty at this village on a day, and the substitute (A/B 岗)."""
    if actor.node_role != "village":
        raise ValidationError("值班表由村代办点登记 (the roster is kept at the village)")
    try:
        date.fromisoformat(day)
    except ValueError as e:
        raise ValidationError(f"日期 {day!r} 格式不对，应为 YYYY-MM-DD") from e
    body = {
        "agent": _text(agent, "值班代办员", required=True, limit=50),
        "day": day,
        "substitute": _text(substitute, "替岗人员", limit=50),
    }
    feed = f"{actor.node}/up"
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(feed, [Record(kinds.ROSTER, f"{actor.node}:{day}", body, hlc)], body)


def case_feed(conn: Any, root: str, ref: str) -> str:
    """The county feed a case's county records travel in: `<root>/<village>`, or `<root>/<township>`."""
    case = load_case(conn, ref)
    return f"{root}/{case['village'] or case['township']}"


def issue_card(conn: Any, actor: Actor, ref: str, level: str, reason: str, *, now_ms: int) -> Command:
    cmd = issue_cards(conn, actor, [(ref, level, reason)], now_ms=now_ms)
    return Command(cmd.feed, cmd.records, cmd.result["cards"][0])


def issue_cards(conn: Any, actor: Actor, cards: list[tuple[str, str, str]], *, now_ms: int) -> Command:
    """(case, level, reason) cards on cases whose county records share one feed: one commit."""
    if actor.role != COUNTY:
        raise TransitionError("红黄牌由县级电子监察发出 (county only)")
    if not cards:
        raise ValidationError("没有要发的牌 (no card given)")
    bodies, feed = [], None
    for ref, level, reason in cards:
        if level not in ("预警", "黄牌", "红牌"):
            raise ValidationError("牌级须为 预警、黄牌 或 红牌 (the level is 预警, 黄牌 or 红牌)")
        case = load_case(conn, ref)
        case_feed_ = f"{actor.root}/{case['village'] or case['township']}"
        if feed not in (None, case_feed_):
            raise ValidationError(f"一次只能给同一 feed 的办件发牌 ({case_feed_} is not {feed})")
        feed = case_feed_
        bodies.append(
            {
                "at_ms": now_ms,
                "by": actor.person or actor.node,
                "case_id": case["case_id"],
                "card_id": uuid7(now_ms),
                "level": level,
                "reason": _text(reason, "原因", required=True),
            }
        )
    assert feed is not None
    hlcs = stamps(conn, feed, now_ms, len(bodies))
    records = [Record(kinds.CARD_ISSUE, b["card_id"], b, hlc) for b, hlc in zip(bodies, hlcs, strict=True)]
    return Command(feed, records, {"cards": bodies})


def revoke_card(conn: Any, actor: Actor, card_id: str, reason: str, *, now_ms: int) -> Command:
    if actor.role != COUNTY:
        raise TransitionError("只有县级可以撤销红黄牌 (county only)")
    row = conn.execute(
        "SELECT c.revoked_ms, k.village, k.township FROM cards c JOIN cases k ON k.case_id = c.case_id WHERE card_id = ?",
        (card_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"没有牌 {card_id} (no such card)")
    if row[0] is not None:
        raise TransitionError("该牌已撤销 (already revoked)")
    feed = f"{actor.root}/{row[1] or row[2]}"
    body = {
        "at_ms": now_ms,
        "by": actor.person or actor.node,
        "card_id": card_id,
        "reason": _text(reason, "撤销原因", required=True),
    }
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(feed, [Record(kinds.CARD_REVOKE, card_id, body, hlc)], body)


SETTINGS = {
    "warn_days": (3, 1, 30, "预警: 剩余工作日不超过"),
    "yellow_days": (1, 0, 10, "黄牌: 剩余工作日不超过"),
    "rectify_days": (kinds.DEFAULT_RECTIFY_DAYS, 1, 60, "差评整改期限 (工作日)"),
    "pii_purge_days": (30, 0, 3650, "县级回执后多少天清除村端个人信息 (0 = 立即)"),
    "pii_purge": (1, 0, 1, "是否清除村端个人信息 (1 是, 0 否)"),
    "day_end": (1730, 1, 2400, "工作日下班时间 (HHMM, 如 1730): 即办件当天此时仍未办结才发牌"),
    "silent_workdays": (3, 1, 60, "静默: 连续多少个工作日没有联系 (对账页标为静默)"),
}


def setting(conn: Any, actor: Actor, name: str, value: int, *, now_ms: int) -> Command:
    if actor.role != COUNTY:
        raise TransitionError("设置由县级统一下发 (county only)")
    if name not in SETTINGS:
        raise ValidationError(f"未知设置 {name!r}", hint="可设: " + ", ".join(SETTINGS))
    _default, lo, hi, label = SETTINGS[name]
    if type(value) is not int or not lo <= value <= hi:
        raise ValidationError(f"{label} 须为 {lo}–{hi} 的整数")
    if name == "day_end" and value % 100 >= 60:
        raise ValidationError(f"下班时间 {value} 不是有效的 HHMM 时刻 (not a time of day)", hint="例如 1730 表示 17:30")
    feed = f"{actor.root}/*"
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(feed, [Record(kinds.SETTING, name, {"name": name, "value": value}, hlc)], {name: value})


def settings(conn: Any) -> dict[str, int]:
    out = {k: v[0] for k, v in SETTINGS.items()}
    for key, value in conn.execute("SELECT key, value FROM settings").fetchall():
        out[key] = orjson.loads(value)
    return out
