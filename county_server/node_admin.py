"""The county administrator's actions on nodes (节点与登记), one function each, called by the CLI and the pages.

Enrolment tokens (issue, re-send, cancel, the list with each one's status), a
node's revocation and new name, the decision on a fork (`fork.resolve`), the
release or refusal of a quarantined batch, and the acknowledgement of a
conflict. Each function takes the county's store, `who` (an account, or
`audit.CLI_ACTOR` for the command line) and `now_ms`, checks its input with a
message in Chinese, and writes its change and one audit row (target_kind
"node", the node's id) in one transaction: signed entries through
`Store.append(precondition=…)`, the quarantine decision through
`Store.decide_quarantined(also=…)`, the county's own tables in `db.atomic()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sanji_domain import contacts as domain_contacts
from sanji_domain.errors import NotFoundError, ValidationError
from sanji_node.web.site import fmt_ms
from sync_protocol.entries import Record
from sync_protocol.errors import StoreError, SyncError
from sync_protocol.forks import KIND_FORK_RESOLVE, resolution_body
from sync_protocol.keys import SigningKey
from sync_protocol.membership import COUNTY, KIND_NAME, KIND_REVOKE, MAX_NAME_CHARS, TOWNSHIP, VILLAGE, check_name
from sync_protocol.sqlite_store import REFUSED, RELEASED, Store

from . import audit, tokens

ROLE_NAMES = {COUNTY: "县", TOWNSHIP: "乡镇", VILLAGE: "村"}
PROGRAMS = {TOWNSHIP: "township-node", VILLAGE: "village-agent"}
TOKEN_STATES = {"unused": "未使用", "used": "已使用", "expired": "已过期", "cancelled": "已作废"}
DECISIONS = {RELEASED: "已放行", REFUSED: "已拒收"}
_DIVISION = re.compile(r"[0-9]{12}")

ack_migrations = Migrations("sanji.county.conflict_acks")


@ack_migrations()
def m001_conflict_acks(db: sqlite_utils.Database) -> None:
    # the county's note on a conflict or a refused entry (feed, seq): its own record, never synced
    db.execute(
        "CREATE TABLE conflict_acks (feed TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL, "
        "who_login TEXT NOT NULL, who_name TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (feed, seq))"
    )


@ack_migrations()
def m002_conflict_index(db: sqlite_utils.Database) -> None:
    # the node list counts unacknowledged conflicts on every request: read them from a small partial index
    db.execute("CREATE INDEX IF NOT EXISTS case_events_conflicts ON case_events (feed, seq) WHERE conflict IS NOT NULL")


def migrate(db: sqlite_utils.Database) -> None:
    ack_migrations.apply(db)


def _record(
    store: Store, who: dict[str, Any], action: str, node: str, now_ms: int, reason: str, details: dict[str, Any]
) -> None:
    audit.record(store.db, who=who, action=action, at_ms=now_ms, target_kind="node", target=node, reason=reason,
                 details=details)  # fmt: skip


def need_reason(text: str, what: str = "原因") -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError(f"请填写{what}：每一项操作都记入操作日志，写明为什么 (a {what} is required)")
    if len(text) > 200:
        raise ValidationError(f"{what}最多 200 个字，现在有 {len(text)} 个字")
    return text


# -- enrolment tokens ------------------------------------------------------------------------------


def checked_name(name: str, missing: str) -> str:
    """A node's display name, stripped and checked, with messages an administrator reads."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(missing)
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(f"名称最多 {MAX_NAME_CHARS} 个字，现在有 {len(name)} 个字")
    try:
        check_name(name)
    except SyncError as e:
        raise ValidationError(f"名称里有不能用的字符 ({e.message})") from e
    return name


def check_enrolment(
    store: Store, *, role: str, division: str, parent: str, name: str, node: str | None = None
) -> tuple[str, str]:
    """The name and division a new token would carry, checked with messages an administrator reads."""
    name = checked_name(name, "请填写名称，例如 梅花村 或 城关镇便民服务中心 (a display name is required)")
    if role not in (TOWNSHIP, VILLAGE):
        raise ValidationError("只能登记乡镇或村 (a token enrols a township or a village)")
    division = (division or "").strip()
    county = store.county
    if not _DIVISION.fullmatch(division):
        raise ValidationError(f"区划代码应为 12 位数字（统计用区划代码），例如 {county}105201；现在是 {division!r}")
    if division[:6] != county:
        raise ValidationError(f"区划代码 {division} 不属于本县：前 6 位应为 {county}")
    town, village = division[6:9], division[9:]
    directory = store.directory()
    if role == TOWNSHIP:
        if not "001" <= town <= "399" or village != "000":
            raise ValidationError(
                f"乡镇的区划代码 {division} 不对：第 7–9 位是乡镇（001–399），最后 3 位应为 000，例如 {county}105000"
            )
        if parent != directory.root:
            raise ValidationError("乡镇的上级是县")
    else:
        p = directory.get(parent)
        if p is None or p.role != TOWNSHIP or p.revocation is not None:
            raise ValidationError("请选择村所属的乡镇（已登记、未吊销的乡镇）")
        if town == "000" or village == "000":
            raise ValidationError(f"村的区划代码 {division} 不对：第 7–9 位是乡镇，第 10–12 位是村，都不能为 000")
        if division[:9] != p.division[:9]:
            raise ValidationError(
                f"村的区划代码 {division} 不在所选乡镇 {directory.name_of(parent)} 之下：前 9 位应为 {p.division[:9]}"
            )
    for m in directory:
        if m.division == division and m.revocation is None:
            raise ValidationError(f"区划代码 {division} 已登记给 {directory.name_of(m.node)}，每个节点的区划代码不同")
        if m.node == (node or division):
            raise ValidationError(f"节点 {directory.name_of(m.node)}（{m.node}）已经登记过；换机请另起节点编号")
    return name, division


@dataclass(frozen=True)
class Sheet:
    """What the enrolment sheet prints: the token (only now: the county keeps a hash of its secret)."""

    token: str
    token_id: str
    node: str
    name: str
    role: str
    division: str
    parent: str
    parent_name: str
    expires_ms: int
    command: str


def issue_token(
    store: Store,
    *,
    who: dict[str, Any],
    now_ms: int,
    role: str,
    division: str,
    parent: str | None,
    name: str | None,
    ttl_ms: int,
    random_bytes: bytes,
    node: str | None = None,
    action: str = "token.issue",
    reason: str = "",
) -> Sheet:
    """A one-time token for a new township or village (checked as if it enrolled now), audited."""
    parent = parent or store.trust.root_node
    if ttl_ms <= 0:
        raise ValidationError("有效期应大于 0")
    name, division = check_enrolment(store, role=role, division=division, parent=parent,
                                     name=name if name is not None else (node or division), node=node)  # fmt: skip
    with store.db.atomic():
        try:
            issued = tokens.issue(store, role=role, division=division, parent=parent, node=node, now_ms=now_ms,
                                  ttl_ms=ttl_ms, random_bytes=random_bytes, name=name)  # fmt: skip
        except SyncError as e:
            if "unused token" in e.message:
                raise ValidationError(
                    f"{name} 已有一张未使用的登记令牌，请用它登记，或在令牌列表里“重发”（旧令牌作废）"
                ) from e
            raise
        _record(store, who, action, issued.node, now_ms, reason, {"令牌": issued.token.token_id,
                "区划代码": division, "有效期至": fmt_ms(issued.expires_ms)})  # fmt: skip
    return sheet_of(store, issued)


def sheet_of(store: Store, issued: tokens.Issued) -> Sheet:
    program = PROGRAMS[issued.role]
    parent_where = "县级服务器" if issued.role == TOWNSHIP else "乡镇服务器"
    command = f"{program} init --data <数据目录> --parent <{parent_where}地址> --token {issued.token}"
    return Sheet(str(issued.token), issued.token.token_id, issued.node, issued.name, issued.role, issued.division,
                 issued.parent, store.directory().name_of(issued.parent), issued.expires_ms, command)  # fmt: skip


def token_state(row: dict[str, Any], now_ms: int) -> str:
    if row["used_ms"]:
        return "used"
    if row.get("cancelled_ms"):
        return "cancelled"
    return "expired" if row["expires_ms"] <= now_ms else "unused"


def token_rows(store: Store, now_ms: int, node: str | None = None) -> list[dict[str, Any]]:
    """The tokens issued, newest first, each with its state and, once used, the node it enrolled."""
    directory = store.directory()
    rows = [r for r in tokens.list_tokens(store) if node is None or r["node"] == node]
    for r in rows:
        r["state"] = token_state(r, now_ms)
        r["state_label"] = TOKEN_STATES[r["state"]]
        r["role_label"] = ROLE_NAMES.get(r["role"], r["role"])
        r["parent_name"] = directory.name_of(r["parent"])
        r["enrolled"] = directory.get(r["node"]) is not None
    rows.sort(key=lambda r: -r["created_ms"])
    seen: set[str] = set()
    for r in rows:  # the newest token of a node not yet enrolled can be re-sent
        r["resend"] = r["node"] not in seen and not r["enrolled"]
        seen.add(r["node"])
    return rows


def cancel_token(store: Store, token_id: str, *, who: dict[str, Any], now_ms: int, reason: str = "") -> str:
    """Make an unused token unusable; returns the node it was for."""
    row = store.conn.execute("SELECT node FROM tokens WHERE token_id = ?", (token_id.upper(),)).fetchone()
    if row is None:
        raise NotFoundError(f"没有编号为 {token_id} 的登记令牌", hint="见令牌列表（county-server tokens）")
    with store.db.atomic():
        try:
            tokens.cancel(store, token_id, now_ms=now_ms)
        except SyncError as e:
            raise ValidationError(f"令牌 {token_id.upper()} 已经用过，不能作废；如需停用该节点，请吊销节点") from e
        _record(store, who, "token.cancel", row[0], now_ms, reason, {"令牌": token_id.upper()})
    return str(row[0])


def resend_token(
    store: Store, node: str, *, who: dict[str, Any], now_ms: int, ttl_ms: int, random_bytes: bytes, reason: str = ""
) -> Sheet:
    """A fresh token for a node not yet enrolled (same name, division and parent); its unused ones are cancelled."""
    last = store.conn.execute(
        "SELECT role, division, parent, COALESCE(name, node) FROM tokens WHERE node = ? ORDER BY created_ms DESC",
        (node,),
    ).fetchone()
    if last is None:
        raise NotFoundError(f"没有给 {node} 签发过登记令牌")
    if store.directory().get(node) is not None:
        raise ValidationError(f"{store.directory().name_of(node)} 已经登记，不需要再发令牌")
    role, division, parent, name = last
    with store.db.atomic():
        store.conn.execute(
            "UPDATE tokens SET expires_ms = MIN(expires_ms, ?), cancelled_ms = ? "
            "WHERE node = ? AND used_ms IS NULL AND expires_ms > ?",
            (now_ms, now_ms, node, now_ms),
        )
        return issue_token(store, who=who, now_ms=now_ms, role=role, division=division, parent=parent, name=name,
                           ttl_ms=ttl_ms, random_bytes=random_bytes, node=node, action="token.resend",
                           reason=reason)  # fmt: skip


# -- membership --------------------------------------------------------------------------------------


def _member(store: Store, node: str) -> Any:
    m = store.directory().get(node)
    if m is None or m.role == COUNTY:
        raise NotFoundError(f"本县没有登记乡镇或村节点 {node}", hint="见“节点与登记”或 county-server nodes")
    return m


def member_name(store: Store, node: str) -> str:
    """The display name of an enrolled township or village (NotFoundError otherwise)."""
    _member(store, node)
    return store.directory().name_of(node)


def revoke(store: Store, key: SigningKey, node: str, reason: str, *, who: dict[str, Any], now_ms: int) -> int:
    """Revoke a node: what the county holds of its feeds now stays; later entries are quarantined."""
    m = _member(store, node)
    reason = need_reason(reason)
    if m.revocation is not None:
        raise ValidationError(f"{store.directory().name_of(node)} 已经吊销（{m.revocation.reason}）")
    last_valid = {f: {"hash": h.hex(), "seq": seq} for f, (seq, h) in store.vector().items() if f.split("/")[0] == node}
    record = Record(KIND_REVOKE, node, {"last_valid": last_valid, "node": node, "reason": reason}, now_ms * 1000)
    store.append(key, f"{store.trust.root_node}/*", [record],
                 precondition=lambda: _record(store, who, "node.revoke", node, now_ms, reason,
                                              {"县级所存日志": len(last_valid)}))  # fmt: skip
    return len(last_valid)


def rename(
    store: Store, key: SigningKey, node: str, name: str, *, who: dict[str, Any], now_ms: int, reason: str = ""
) -> str:
    """A new display name (a `node.name` entry every node receives); returns the old one."""
    m = _member(store, node) if node != store.trust.root_node else store.directory().get(node)
    name = checked_name(name, "请填写新名称")
    old = m.name or node
    if name == m.name:
        raise ValidationError(f"名称已经是 {name}")
    record = Record(KIND_NAME, node, {"name": name, "node": node}, now_ms * 1000)
    store.append(key, f"{store.trust.root_node}/*", [record],
                 precondition=lambda: _record(store, who, "node.rename", node, now_ms, reason, {"原名称": old, "新名称": name}))  # fmt: skip
    return str(old)


# -- forks -------------------------------------------------------------------------------------------


def fork_rows(store: Store) -> list[dict[str, Any]]:
    """Forks recorded here, and forks a township reported for its villages (with no record here yet)."""
    directory = store.directory()
    vector = store.vector()
    rows: list[dict[str, Any]] = []
    for f in store.forks():
        node = f["feed"].split("/")[0]
        rows.append(
            {
                "id": f["id"],
                "node": node,
                "name": directory.name_of(node),
                "feed": f["feed"],
                "seq": f["seq"],
                "detected_at": f["detected_at"],
                "held_seq": vector.get(f["feed"], (0, b""))[0],
                "other_branch_last_seq": f["remote_last_seq"],
                "resolved_seq": f["resolved_seq"],
                "found_by": f["reported_by"] or directory.root,
                "found_by_name": directory.name_of(f["reported_by"] or directory.root),
            }
        )
    seen = {r["node"] for r in rows}
    for node, report in domain_contacts.reported(store.conn).items():
        if node in seen or not report.get("forks"):
            continue
        feed = f"{node}/up"
        m = directory.get(node)
        rows.append(
            {
                "id": None,
                "node": node,
                "name": directory.name_of(node),
                "feed": feed,
                "seq": 0,
                "detected_at": None,
                "held_seq": vector.get(feed, (0, b""))[0],
                "other_branch_last_seq": None,
                "resolved_seq": store.resolved_at(feed) or None,
                "found_by": m.parent if m else None,
                "found_by_name": directory.name_of(m.parent) if m and m.parent else "",
            }
        )
    for r in store.resolutions():  # decided: the report of an open fork is gone, the decision stays listed
        if r["feed"] in {x["feed"] for x in rows}:
            continue
        rows.append(
            {
                "id": None,
                "node": r["node"],
                "name": directory.name_of(r["node"]),
                "feed": r["feed"],
                "seq": 0,
                "detected_at": None,
                "held_seq": vector.get(r["feed"], (0, b""))[0],
                "other_branch_last_seq": None,
                "resolved_seq": r["seq"],
                "found_by": None,
                "found_by_name": "",
            }
        )
    return rows


def resolve_fork(
    store: Store, key: SigningKey, node: str, reason: str, *, who: dict[str, Any], now_ms: int, feed: str | None = None
) -> tuple[str, int]:
    """The county's decision (issue 11): what the county holds of the feed is the feed; returns (feed, seq)."""
    _member(store, node)
    reason = need_reason(reason)
    if feed is None:
        known = [f["feed"] for f in store.forks() if f["feed"].split("/")[0] == node and f["resolved_seq"] is None]
        feed = known[0] if known else f"{node}/up"
    if feed.split("/")[0] != node:
        raise ValidationError(f"日志 {feed} 不是 {node} 写的")
    held = store.vector().get(feed)
    if held is None or held[0] == 0:
        raise StoreError(
            f"县级没有 {feed} 的任何数据，无法以县级数据为准裁决分叉 (the county holds nothing of {feed})",
            hint="先让该节点的乡镇同步一次，再裁决",
        )
    seq, digest = held
    body = resolution_body(node, feed, seq, digest, reason)
    store.append(key, f"{store.trust.root_node}/{node}", [Record(KIND_FORK_RESOLVE, feed, body, now_ms * 1000)],
                 precondition=lambda: _record(store, who, "fork.resolve", node, now_ms, reason, {"日志": feed, "以此为准": f"第 1–{seq} 条"}))  # fmt: skip
    return feed, seq


# -- quarantine ------------------------------------------------------------------------------------------


def decide_quarantine(store: Store, qid: int, decision: str, reason: str, *, who: dict[str, Any], now_ms: int) -> bool:
    """Release (`released`) or refuse (`refused`) a quarantined batch; False if it was already so decided."""
    reason = need_reason(reason)
    row = store.conn.execute("SELECT feed, first_seq, last_seq FROM quarantine WHERE id = ?", (qid,)).fetchone()
    if row is None:
        raise NotFoundError(f"没有编号为 {qid} 的隔离批次")
    feed, first, last = row
    node = feed.split("/")[0]
    action = "quarantine.release" if decision == RELEASED else "quarantine.refuse"
    return store.decide_quarantined(qid, decision, reason,
                                    also=lambda: _record(store, who, action, node, now_ms, reason, {"批次": qid,
                                                         "日志": feed, "条目": f"第 {first}–{last} 条"}))  # fmt: skip


# -- conflicts -------------------------------------------------------------------------------------------


def acknowledge(store: Store, feed: str, seq: int, note: str, *, who: dict[str, Any], now_ms: int) -> bool:
    """The county's note on a conflict or a refused entry: recorded once (False: already acknowledged)."""
    note = need_reason(note, "说明")
    known = store.conn.execute(
        "SELECT 1 FROM case_events WHERE feed = ? AND seq = ? AND conflict IS NOT NULL "
        "UNION ALL SELECT 1 FROM fold_rejects WHERE feed = ? AND seq = ?",
        (feed, seq, feed, seq),
    ).fetchone()
    if known is None:
        raise NotFoundError(f"{feed} 第 {seq} 条不是冲突或拒收条目")
    node = feed.split("/")[0]
    with store.db.atomic():
        added = store.conn.execute(
            "INSERT OR IGNORE INTO conflict_acks (feed, seq, at_ms, who_login, who_name, note) VALUES (?, ?, ?, ?, ?, ?)",
            (feed, seq, now_ms, str(who.get("login") or ""), str(who.get("name") or ""), note),
        ).rowcount
        if added:
            _record(store, who, "conflict.ack", node, now_ms, note, {"日志": feed, "条目": f"第 {seq} 条"})
    return bool(added)


def acks(store: Store) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["feed"], r["seq"]): r for r in store.db.query("SELECT * FROM conflict_acks")}
