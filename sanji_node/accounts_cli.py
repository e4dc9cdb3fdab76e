"""The account commands of a node with pages (`township-node clerk …`, `county-server account …`).

`add_account_commands(main, name, book, open_db, …)` adds one click group with
`add`, `list`, `passwd`, `disable` and `enable`; the node passes its
`AccountBook` and how to open its database with the account tables migrated.
Passwords are asked for without echo or read from the variable named by
`--password-env`, never taken from the command line.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager

import click
import sqlite_utils

from sanji_domain.errors import ValidationError

from .accounts import AccountBook, check_login, check_name, check_password
from .cli import data_option, emit, fmt_ms, handle_errors, json_option, now_ms

OpenDb = Callable[[str], AbstractContextManager[sqlite_utils.Database]]


def cells(*columns: tuple[str, int]) -> str:
    """Columns padded to display widths (a Chinese character takes two)."""
    out = []
    for text, width in columns:
        used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
        out.append(text + " " * max(1, width - used) if width else text)
    return "".join(out).rstrip()


def read_password(password_env: str | None, *, prompt: str) -> str:
    """From the environment variable named by --password-env, or asked for without echo (never from argv)."""
    if password_env:
        value = os.environ.get(password_env, "")
        if not value:
            raise ValidationError(
                f"${password_env} is empty or not set", hint="set it to the password, or leave out --password-env"
            )
        return value
    typed: str = click.prompt(prompt, hide_input=True, confirmation_prompt="再输一次 (repeat)")
    return typed


password_env_option = click.option(
    "--password-env",
    default=None,
    metavar="VAR",
    help="read the password from this environment variable (scripts); otherwise it is asked for, hidden",
)
login_option = click.option("--login", required=True, help="the account's login name, e.g. wangfang")


def add_account_commands(
    main: click.Group,
    name: str,
    book: AccountBook,
    open_db: OpenDb,
    *,
    help: str,
    default_role: str,
    role_help: str,
) -> click.Group:
    """Add the `name` group of account commands to `main`."""
    first = f"还没有账号。用 {name} add --role {book.lead} 创建{book.roles[book.lead]}账号。"

    @main.group(name=name, help=help)
    def group() -> None:
        pass

    @group.command(name="add", help="Add an account; its password is asked for (hidden) or read from --password-env.")
    @data_option
    @click.option("--name", "display_name", required=True, help="the name people see and records keep, e.g. 王芳")
    @login_option
    @click.option(
        "--role", type=click.Choice(list(book.roles)), default=default_role, show_default=True, help=role_help
    )
    @password_env_option
    @json_option
    @handle_errors
    def add(data_dir: str, display_name: str, login: str, role: str, password_env: str | None, as_json: bool) -> None:
        check_name(display_name)
        check_login(login)
        password = check_password(read_password(password_env, prompt="密码 (password)"), login.strip().lower())
        with open_db(data_dir) as db:
            made = book.add(db, name=display_name, login=login, role=role, password=password, now_ms=now_ms())
        emit(as_json, made, f"已添加{made['role_label']} {made['name']}（登录名 {made['login']}）。")

    @group.command(name="list", help="List the accounts: login name, name, role, active or disabled, last login.")
    @data_option
    @json_option
    @handle_errors
    def list_accounts(data_dir: str, as_json: bool) -> None:
        with open_db(data_dir) as db:
            rows = book.list(db)

        def text() -> str:
            if not rows:
                return first
            lines = [cells(("登录名", 16), ("姓名", 10), ("岗位", 12), ("状态", 8), ("最近登录", 0))]
            for r in rows:
                lines.append(
                    cells(
                        (r["login"], 16),
                        (r["name"], 10),
                        (r["role_label"], 12),
                        ("在用" if r["active"] else "已停用", 8),
                        (fmt_ms(r["last_login_ms"]), 0),
                    )
                )
            return "\n".join(lines)

        emit(as_json, rows, text)

    @group.command(name="passwd", help="Set a new password for an account (asked for, hidden; or --password-env).")
    @data_option
    @login_option
    @password_env_option
    @json_option
    @handle_errors
    def passwd(data_dir: str, login: str, password_env: str | None, as_json: bool) -> None:
        with open_db(data_dir) as db:
            who = book.find(db, check_login(login))
        password = check_password(read_password(password_env, prompt="新密码 (new password)"), who["login"])
        with open_db(data_dir) as db:
            who = book.set_password(db, who["login"], password, now_ms=now_ms())
        emit(as_json, who, f"已重设 {who['name']}（{who['login']}）的密码。")

    @group.command(name="disable", help="Disable an account: it can no longer sign in, and its open sessions end.")
    @data_option
    @login_option
    @json_option
    @handle_errors
    def disable(data_dir: str, login: str, as_json: bool) -> None:
        with open_db(data_dir) as db:
            who = book.set_active(db, check_login(login), False, now_ms=now_ms())
        emit(as_json, who, f"已停用 {who['name']}（{who['login']}）的账号。")

    @group.command(name="enable", help="Enable a disabled account again.")
    @data_option
    @login_option
    @json_option
    @handle_errors
    def enable(data_dir: str, login: str, as_json: bool) -> None:
        with open_db(data_dir) as db:
            who = book.set_active(db, check_login(login), True, now_ms=now_ms())
        emit(as_json, who, f"已启用 {who['name']}（{who['login']}）的账号。")

    return group
