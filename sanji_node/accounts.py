"""Page accounts of one node (a township's clerks, the county's administrators), and how they sign in.

An `AccountBook` describes one node's accounts: its roles (the "lead" role
manages the others), the table they live in, and who to ask
when a password is forgotten. The accounts belong to that node alone: they
live in its own database in tables of their own migration set, are never
written to a feed, so they never sync, and no other node ever sees them.

- Passwords are hashed with werkzeug's default KDF (scrypt, salted); the
  plain password is never stored, logged or taken from a command line.
- A login name that fails `LOCK_AFTER` times in a row is refused for a while
  (one minute, doubling up to `LOCK_MAX_MS`), whether or not the name exists,
  so guessing is slow and the answer never tells which names exist.
- Display names are unique: state changes record the person's name.
- The last active account of the lead role cannot be disabled.

Every method takes the database (`sqlite_utils.Database`) and, where time
matters, `now_ms`: the caller passes the clock.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations
from werkzeug.security import check_password_hash, generate_password_hash

from sanji_domain.errors import DomainError, NotFoundError, ValidationError

MIN_PASSWORD = 8
LOCK_AFTER = 5  # failures in a row before a login name is locked
LOCK_BASE_MS = 60_000  # the first lock; each further failure doubles it
LOCK_MAX_MS = 15 * 60_000
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
_PUBLIC = ("clerk_id", "login", "name", "role", "active", "created_ms", "changed_ms", "last_login_ms")
_COLUMNS = ", ".join(_PUBLIC)


class LoginError(DomainError):
    """Wrong login name or password, or a login name locked after repeated failures."""

    http_status = 401
    code = "login_failed"


def check_login(login: Any) -> str:
    text = str(login or "").strip().lower()
    if not _LOGIN.fullmatch(text):
        raise ValidationError(
            "登录名须为 2–32 个小写字母、数字或 . _ - (login name: 2-32 lowercase letters, digits, . _ -)",
            hint="例如姓名拼音：wangfang",
        )
    return text


def check_name(name: Any) -> str:
    text = unicodedata.normalize("NFC", str(name or "").strip())
    if not 1 <= len(text) <= 20 or any(unicodedata.category(c).startswith("C") for c in text):
        raise ValidationError("姓名须为 1–20 个字 (display name: 1-20 characters)")
    return text


def check_password(password: Any, login: str | None = None) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(f"密码至少 {MIN_PASSWORD} 位 (at least {MIN_PASSWORD} characters)")
    if login and password.strip().lower() == login:
        raise ValidationError("密码不能与登录名相同 (the password may not be the login name)")
    return password


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """A hash to check against when the login name is unknown: the answer takes as long either way."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash("sanji-no-such-account"))
    return _DUMMY_HASH[0]


@dataclass(frozen=True)
class AccountBook:
    """One node's page accounts: `roles` maps a role to its Chinese label; `lead` manages the others."""

    roles: dict[str, str]
    lead: str
    table: str  # e.g. clerks (a township), accounts (the county)
    migrations_name: str
    who_resets: str  # whom to ask for a new password, e.g. 中心负责人
    migrations: Migrations = field(init=False, compare=False)

    def __post_init__(self) -> None:
        migrations = Migrations(self.migrations_name)
        table = self.table

        @migrations(name=f"m001_{table}")  # a township's first set was named m001_clerks
        def m001_accounts(db: sqlite_utils.Database) -> None:
            db.execute(
                f"CREATE TABLE {table} (clerk_id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE, "
                "name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
                "active INTEGER NOT NULL DEFAULT 1, created_ms INTEGER NOT NULL, changed_ms INTEGER NOT NULL, "
                "last_login_ms INTEGER)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS login_attempts (login TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
                "locked_until_ms INTEGER NOT NULL DEFAULT 0, last_ms INTEGER NOT NULL)"
            )

        object.__setattr__(self, "migrations", migrations)

    def migrate(self, db: sqlite_utils.Database) -> None:
        """Create or update the account tables (idempotent)."""
        self.migrations.apply(db)

    def _public(self, row: Any) -> dict[str, Any]:
        out = dict(zip(_PUBLIC, row, strict=True))
        out["active"] = bool(out["active"])
        out["role_label"] = self.roles.get(out["role"], out["role"])
        return out

    def check_role(self, role: Any) -> str:
        if role not in self.roles:
            choices = " / ".join(f"{k} ({v})" for k, v in self.roles.items())
            raise ValidationError(f"角色须为 {choices} (unknown role {role!r})")
        return str(role)

    def add(
        self, db: sqlite_utils.Database, *, name: str, login: str, role: str, password: str, now_ms: int
    ) -> dict[str, Any]:
        """A new account; the login name and the display name must both be new here."""
        name, login, role = check_name(name), check_login(login), self.check_role(role)
        check_password(password, login)
        with db.atomic():
            if db.execute(f"SELECT 1 FROM {self.table} WHERE login = ?", (login,)).fetchone():
                raise ValidationError(f"登录名 {login} 已有人使用 (login name taken)", hint="换一个登录名")
            if db.execute(f"SELECT 1 FROM {self.table} WHERE name = ?", (name,)).fetchone():
                raise ValidationError(
                    f"已有名为「{name}」的账号 (display name taken)",
                    hint="记录按姓名记下经办人，同名请加以区分，如 王芳(二)",
                )
            cur = db.execute(
                f"INSERT INTO {self.table} (login, name, role, password_hash, active, created_ms, changed_ms) "
                "VALUES (?, ?, ?, ?, 1, ?, ?)",
                (login, name, role, generate_password_hash(password), now_ms, now_ms),
            )
            account_id = cur.lastrowid
        found = self.get(db, int(account_id or 0))
        assert found is not None
        return found

    def list(self, db: sqlite_utils.Database, *, active_only: bool = False) -> list[dict[str, Any]]:
        """Every account (active ones first, the lead role first, then by name); never the password hash."""
        where = " WHERE active = 1" if active_only else ""
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM {self.table}{where} ORDER BY active DESC, role = ? DESC, name", (self.lead,)
        ).fetchall()
        return [self._public(r) for r in rows]

    def get(self, db: sqlite_utils.Database, account_id: int) -> dict[str, Any] | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM {self.table} WHERE clerk_id = ?", (account_id,)).fetchone()
        return self._public(row) if row else None

    def find(self, db: sqlite_utils.Database, ref: str | int) -> dict[str, Any]:
        """An account by id or login name."""
        if isinstance(ref, int) or str(ref).isdigit():
            found = self.get(db, int(ref))
        else:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM {self.table} WHERE login = ?", (str(ref).strip().lower(),)
            ).fetchone()
            found = self._public(row) if row else None
        if found is None:
            raise NotFoundError(f"没有登录名为 {ref} 的账号 (no such account)", hint="查看账号列表")
        return found

    def set_password(self, db: sqlite_utils.Database, ref: str | int, password: str, *, now_ms: int) -> dict[str, Any]:
        """A new password (reset by the lead role, or changed by its owner); also lifts a login lock."""
        account = self.find(db, ref)
        check_password(password, account["login"])
        with db.atomic():
            db.execute(
                f"UPDATE {self.table} SET password_hash = ?, changed_ms = ? WHERE clerk_id = ?",
                (generate_password_hash(password), now_ms, account["clerk_id"]),
            )
            db.execute("DELETE FROM login_attempts WHERE login = ?", (account["login"],))
        return self.find(db, account["clerk_id"])

    def change_own_password(
        self, db: sqlite_utils.Database, account_id: int, old: str, new: str, *, now_ms: int
    ) -> dict[str, Any]:
        """Someone changes their own password: the old one must be right."""
        row = db.execute(
            f"SELECT password_hash FROM {self.table} WHERE clerk_id = ? AND active = 1", (account_id,)
        ).fetchone()
        if row is None or not check_password_hash(row[0], old or ""):
            raise ValidationError("原密码不对 (the current password is wrong)")
        return self.set_password(db, account_id, new, now_ms=now_ms)

    def set_active(self, db: sqlite_utils.Database, ref: str | int, active: bool, *, now_ms: int) -> dict[str, Any]:
        """Disable (停用) or enable (启用) an account; the last active account of the lead role stays."""
        account = self.find(db, ref)
        with db.atomic():
            if not active and account["role"] == self.lead and account["active"]:
                leads = db.execute(
                    f"SELECT COUNT(*) FROM {self.table} WHERE role = ? AND active = 1", (self.lead,)
                ).fetchone()[0]
                if leads <= 1:
                    label = self.roles[self.lead]
                    raise ValidationError(
                        f"{account['name']} 是唯一在用的{label}，不能停用 (the last active {self.lead})",
                        hint=f"先添加另一位{label}",
                    )
            db.execute(
                f"UPDATE {self.table} SET active = ?, changed_ms = ? WHERE clerk_id = ?",
                (int(active), now_ms, account["clerk_id"]),
            )
        return self.find(db, account["clerk_id"])

    def count(self, db: sqlite_utils.Database) -> int:
        return int(db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def authenticate(self, db: sqlite_utils.Database, login: str, password: str, *, now_ms: int) -> dict[str, Any]:
        """The account for a right login name and password; `LoginError` (in Chinese) otherwise."""
        name = str(login or "").strip().lower()[:64]
        if not name or not password:
            raise LoginError("请输入登录名和密码 (enter your login name and password)")
        ask = f"忘记密码请找{self.who_resets}重设"
        attempt = db.execute("SELECT failures, locked_until_ms FROM login_attempts WHERE login = ?", (name,)).fetchone()
        if attempt and attempt[1] > now_ms:
            minutes = max(1, -(-(attempt[1] - now_ms) // 60_000))
            raise LoginError(
                f"这个登录名连续输错 {attempt[0]} 次，已暂时锁定，请 {minutes} 分钟后再试。"
                "(locked after repeated failures)",
                hint=ask,
            )
        row = db.execute(f"SELECT {_COLUMNS}, password_hash FROM {self.table} WHERE login = ?", (name,)).fetchone()
        ok = check_password_hash(row[-1] if row else _dummy_hash(), password)
        if not ok or row is None or not row[4]:
            failures = (attempt[0] if attempt else 0) + 1
            lock = 0
            if failures >= LOCK_AFTER:
                lock = now_ms + min(LOCK_MAX_MS, LOCK_BASE_MS << (failures - LOCK_AFTER))
            with db.atomic():
                db.execute(
                    "INSERT INTO login_attempts (login, failures, locked_until_ms, last_ms) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (login) DO UPDATE SET failures = excluded.failures, "
                    "locked_until_ms = excluded.locked_until_ms, last_ms = excluded.last_ms",
                    (name, failures, lock, now_ms),
                )
            if ok and row is not None:  # the right password for a disabled account
                raise LoginError("这个账号已停用 (the account is disabled)", hint=f"请找{self.who_resets}")
            left = LOCK_AFTER - failures
            raise LoginError(
                "登录名或密码不对，请重新输入。(wrong login name or password)"
                + (f" 再错 {left} 次将暂时锁定。" if 0 < left < LOCK_AFTER - 1 else ""),
                hint=ask if failures >= 2 else None,
            )
        with db.atomic():
            db.execute("DELETE FROM login_attempts WHERE login = ?", (name,))
            db.execute(f"UPDATE {self.table} SET last_login_ms = ? WHERE login = ?", (now_ms, name))
        return self._public(row[:-1])


def session_user(account: dict[str, Any]) -> dict[str, Any]:
    """What the signed session keeps about a signed-in person (no password, no villager's data)."""
    return {
        "id": account["clerk_id"],
        "login": account["login"],
        "name": account["name"],
        "role": account["role"],
        "role_label": account["role_label"],
    }
