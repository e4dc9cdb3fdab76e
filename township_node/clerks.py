"""Clerk accounts of a township centre: 窗口人员 (clerk) and 中心负责人 (head), and how they sign in.

The accounts belong to this township alone (`sanji_node.accounts`: hashed
passwords, login locks, the last 负责人 kept); they live in the township's own
database in the `clerks` table and are never written to a feed. Display names
are unique: each state change records the clerk's name (`by` on the event),
and the A/B 岗 substitution finds a clerk's cases by it.
"""

from __future__ import annotations

from sanji_node.accounts import (
    MIN_PASSWORD,
    AccountBook,
    LoginError,
    check_login,
    check_name,
    check_password,
    session_user,
)

CLERK, HEAD = "clerk", "head"
ROLES = {CLERK: "窗口人员", HEAD: "中心负责人"}
BOOK = AccountBook(
    roles=ROLES, lead=HEAD, table="clerks", migrations_name="sanji.township.clerks", who_resets="中心负责人"
)

migrate = BOOK.migrate
check_role = BOOK.check_role
add = BOOK.add
list_clerks = BOOK.list
get = BOOK.get
find = BOOK.find
set_password = BOOK.set_password
change_own_password = BOOK.change_own_password
set_active = BOOK.set_active
count = BOOK.count
authenticate = BOOK.authenticate

__all__ = [
    "BOOK",
    "CLERK",
    "HEAD",
    "MIN_PASSWORD",
    "ROLES",
    "LoginError",
    "add",
    "authenticate",
    "change_own_password",
    "check_login",
    "check_name",
    "check_password",
    "check_role",
    "count",
    "find",
    "get",
    "list_clerks",
    "migrate",
    "session_user",
    "set_active",
    "set_password",
]
