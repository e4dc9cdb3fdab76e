"""The county's page accounts: 管理员 (admin: may change data) and 监察员 (inspector: reads everything).

Kept in the county's own database (`accounts` table), never synced; the rules
(hashed passwords, login locks, the last 管理员 kept) are `sanji_node.accounts`.
"""

from __future__ import annotations

from sanji_node.accounts import AccountBook

ADMIN, INSPECTOR = "admin", "inspector"
ROLES = {ADMIN: "管理员", INSPECTOR: "监察员"}
BOOK = AccountBook(
    roles=ROLES, lead=ADMIN, table="accounts", migrations_name="sanji.county.accounts", who_resets="县级管理员"
)
EVERYONE = (ADMIN, INSPECTOR)  # pages that only read
WRITERS = (ADMIN,)  # every action that changes data
