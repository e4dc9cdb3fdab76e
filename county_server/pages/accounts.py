"""账号 (管理员 only): add administrators and inspectors, reset a password, disable or enable an account;
each change is written to the audit log (`sanji_node.web.accounts_page`)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from sanji_node.web.accounts_page import accounts_blueprint

from .. import accounts
from .common import local, now, record


def _audit(db: sqlite_utils.Database, action: str, account: dict[str, Any], details: dict[str, Any]) -> None:
    record(db, action, target_kind="account", target=account["login"], details={"name": account["name"], **details})


bp = accounts_blueprint(
    "accounts",
    "/accounts",
    accounts.BOOK,
    local,
    now,
    template="county/accounts.html",
    default_role=accounts.INSPECTOR,
    changed=_audit,
)
