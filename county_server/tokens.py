"""One-time enrolment tokens, issued by the county administrator (ARCHITECTURE §3).

Only a hash of each token's secret is stored. A token names the role, the
division code, the parent, the node id and the display name (梅花村) it
enrols, expires, and can be redeemed once: redeeming it appends the
`node.member` entry to the county's public feed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from sync_protocol.enrolment import EnrolRequest, Token, secret_hash
from sync_protocol.entries import Record
from sync_protocol.errors import AuthorizationError, ProtocolError
from sync_protocol.feeds import check_node_id
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER, TOWNSHIP, VILLAGE, check_name
from sync_protocol.sqlite_store import Store

token_migrations = Migrations("sanji.county.tokens")


@token_migrations()
def m001_tokens(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE tokens (token_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, role TEXT NOT NULL, "
        "division TEXT NOT NULL, parent TEXT NOT NULL, node TEXT NOT NULL, created_ms INTEGER NOT NULL, "
        "expires_ms INTEGER NOT NULL, used_ms INTEGER, used_by TEXT)"
    )


@token_migrations()
def m002_token_names(db: sqlite_utils.Database) -> None:
    # the display name the membership will carry; NULL for tokens issued before names (the node id is shown)
    db.execute("ALTER TABLE tokens ADD COLUMN name TEXT")


@token_migrations()
def m003_token_cancelled(db: sqlite_utils.Database) -> None:
    # when an unused token was cancelled (作废, or replaced by a re-sent one); NULL: never cancelled
    db.execute("ALTER TABLE tokens ADD COLUMN cancelled_ms INTEGER")


@dataclass(frozen=True)
class Issued:
    token: Token
    role: str
    division: str
    parent: str
    node: str
    expires_ms: int
    name: str


def issue(
    store: Store,
    *,
    role: str,
    division: str,
    parent: str,
    node: str | None,
    now_ms: int,
    ttl_ms: int,
    random_bytes: bytes,
    name: str | None = None,
) -> Issued:
    """A new token; checked against the directory as if the node enrolled now. `name` defaults to the node id."""
    if role not in (TOWNSHIP, VILLAGE):
        raise ProtocolError(f"tokens enrol a township or a village, not {role!r}")
    node_id = check_node_id(node or division)
    display = check_name(node_id if name is None else name)
    directory = store.directory()
    probe = {
        "division": division,
        "name": display,
        "node": node_id,
        "parent": parent,
        "pubkey": directory.root_key.hex,
        "role": role,
    }
    directory.member_from_body(probe)  # raises if the role, parent or division code is wrong
    if store.conn.execute(
        "SELECT 1 FROM tokens WHERE node = ? AND used_ms IS NULL AND expires_ms > ?", (node_id, now_ms)
    ).fetchone():
        raise ProtocolError(f"an unused token for {node_id} already exists", hint="use it, or wait until it expires")
    token = Token.new(store.county, node_id, directory.root_key, random_bytes)
    with store.db.atomic():
        store.conn.execute(
            "INSERT INTO tokens (token_id, secret_hash, role, division, parent, node, name, created_ms, expires_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token.token_id,
                secret_hash(token.secret),
                role,
                division,
                parent,
                node_id,
                display,
                now_ms,
                now_ms + ttl_ms,
            ),
        )
    return Issued(token, role, division, parent, node_id, now_ms + ttl_ms, display)


def redeem(store: Store, key: SigningKey, request: EnrolRequest, *, now_ms: int) -> dict[str, Any]:
    """Check the token and the proof, then enrol the node. Returns the membership it got."""
    t = request.token
    if t.county != store.county:
        raise AuthorizationError(f"this token is for county {t.county}, not {store.county}")
    row = store.conn.execute(
        "SELECT secret_hash, role, division, parent, node, name, expires_ms, used_ms FROM tokens WHERE token_id = ?",
        (t.token_id,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row[0], secret_hash(t.secret)):
        raise AuthorizationError("unknown enrolment token", hint="check the token, or ask the county for a new one")
    _, role, division, parent, node, name, expires_ms, used_ms = row
    if used_ms is not None:
        pub = request.verify()
        member = store.directory().get(node)
        if member is not None and member.key.raw == pub.raw and member.revocation is None:
            # the same new node asking again (its first answer was lost): answer again
            return member.body()
        raise AuthorizationError("this enrolment token has already been used", hint="ask the county for a new one")
    if now_ms > expires_ms:
        raise AuthorizationError("this enrolment token has expired", hint="ask the county for a new one")
    if request.node != node:
        raise AuthorizationError(f"this token enrols node {node}, not {request.node}")
    pub = request.verify()
    body = {"division": division, "node": node, "parent": parent, "pubkey": pub.hex, "role": role}
    if name:  # tokens issued before names existed enrol without one
        body["name"] = name
    store.directory().member_from_body(body)
    with store.db.atomic():
        claimed = store.conn.execute(
            "UPDATE tokens SET used_ms = ?, used_by = ? WHERE token_id = ? AND used_ms IS NULL",
            (now_ms, pub.hex, t.token_id),
        ).rowcount
    if claimed != 1:
        raise AuthorizationError("this enrolment token has already been used", hint="ask the county for a new one")
    try:
        store.append(key, f"{store.trust.root_node}/*", [Record(KIND_MEMBER, node, body, now_ms * 1000)])
    except BaseException:
        with store.db.atomic():
            store.conn.execute("UPDATE tokens SET used_ms = NULL, used_by = NULL WHERE token_id = ?", (t.token_id,))
        raise
    return body


def cancel(store: Store, token_id: str, *, now_ms: int) -> None:
    """Make an unused token unusable (expired now)."""
    with store.db.atomic():
        row = store.conn.execute(
            "SELECT used_ms, expires_ms FROM tokens WHERE token_id = ?", (token_id.upper(),)
        ).fetchone()
        if row is None:
            raise ProtocolError(f"no token {token_id!r}", hint="see `county-server tokens`")
        if row[0] is not None:
            raise ProtocolError(
                f"token {token_id} was already used; revoke the node instead", hint="county-server revoke NODE"
            )
        store.conn.execute(
            "UPDATE tokens SET expires_ms = ?, cancelled_ms = COALESCE(cancelled_ms, ?) WHERE token_id = ?",
            (min(row[1], now_ms), now_ms, token_id.upper()),
        )


def list_tokens(store: Store) -> list[dict[str, Any]]:
    return list(
        store.db.query(
            "SELECT token_id, role, division, parent, node, COALESCE(name, node) AS name, created_ms, expires_ms, "
            "used_ms, used_by, cancelled_ms FROM tokens ORDER BY created_ms"
        )
    )
