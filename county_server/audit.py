"""The county's audit log (操作日志): who changed what, when and why, from the pages or the command line.

Every action that changes data at the county (a fork decided, a quarantined
batch released or refused, a conflict acknowledged, a token issued, re-sent
or cancelled, a node enrolled, renamed or revoked, a catalog published, an
item edited, a 督办 sent, a rectification assigned or closed, an account
added or disabled) appends one row here in the same place it acts. Rows are
never changed or deleted. The log is the county's own: it never syncs.

`record` takes the database, the actor (an account's login and name, or
`cli` for the command line), the action (a short code, see ACTIONS), what it
acted on (`target_kind`, `target`: e.g. node / meihua), a reason, and a
small dict of details (JSON); it returns the new row's id.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

audit_migrations = Migrations("sanji.county.audit")

ACTIONS = {
    "fork.resolve": "裁决分叉",
    "quarantine.release": "放行隔离批次",
    "quarantine.refuse": "拒收隔离批次",
    "conflict.ack": "确认冲突",
    "token.issue": "签发登记令牌",
    "token.cancel": "作废登记令牌",
    "token.resend": "重发登记令牌",
    "node.rename": "更改节点名称",
    "node.revoke": "吊销节点",
    "catalog.publish": "发布事项清单",
    "catalog.item": "修改事项",
    "catalog.status": "暂停/取消/恢复事项",
    "supervision.notice": "发出督办",
    "card.scan": "电子监察扫描",
    "card.revoke": "撤销红黄牌",
    "rectification.assign": "指派整改",
    "rectification.follow": "跟进整改",
    "rectification.close": "整改办结",
    "account.add": "添加账号",
    "account.password": "重设密码",
    "account.active": "停用/启用账号",
    "settings": "修改设置",
}
CLI_ACTOR = {"login": "cli", "name": "命令行"}


@audit_migrations()
def m001_audit(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE audit_log (audit_id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, who_login TEXT NOT NULL, "
        "who_name TEXT NOT NULL, action TEXT NOT NULL, target_kind TEXT NOT NULL DEFAULT '', "
        "target TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', details TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute("CREATE INDEX audit_target ON audit_log (target_kind, target, at_ms)")
    db.execute("CREATE INDEX audit_at ON audit_log (at_ms)")


def migrate(db: sqlite_utils.Database) -> None:
    audit_migrations.apply(db)


def record(
    db: sqlite_utils.Database,
    *,
    who: dict[str, Any],
    action: str,
    at_ms: int,
    target_kind: str = "",
    target: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Append one row (inside the caller's transaction, if there is one)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    cur = db.execute(
        "INSERT INTO audit_log (at_ms, who_login, who_name, action, target_kind, target, reason, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at_ms,
            str(who.get("login") or ""),
            str(who.get("name") or ""),
            action,
            target_kind,
            target,
            reason,
            json.dumps(details or {}, ensure_ascii=False, sort_keys=True),
        ),
    )
    return int(cur.lastrowid or 0)


def rows(
    db: sqlite_utils.Database,
    *,
    target_kind: str | None = None,
    target: str | None = None,
    action: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first; each row with its action's Chinese label and its details decoded."""
    where, args = [], []
    for column, value in (("target_kind", target_kind), ("target", target), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = "SELECT audit_id, at_ms, who_login, who_name, action, target_kind, target, reason, details FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at_ms DESC, audit_id DESC LIMIT ? OFFSET ?"
    out = []
    for r in db.execute(sql, (*args, limit, offset)).fetchall():
        keys = ("audit_id", "at_ms", "who_login", "who_name", "action", "target_kind", "target", "reason", "details")
        row = dict(zip(keys, r, strict=True))
        row["details"] = json.loads(row["details"] or "{}")
        row["action_label"] = ACTIONS.get(row["action"], row["action"])
        out.append(row)
    return out
