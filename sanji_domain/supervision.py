"""督办 (supervision notices): the county tells a township to act on a case or on its window; the
township's clerk acknowledges (签收) it; the county sees the state.

| kind                | key       | written by, in feed                                                    |
|---------------------|-----------|------------------------------------------------------------------------|
| supervision.notice  | notice_id | county, `<root>/<T>`: the township it is addressed to (and no one else) |
| supervision.ack     | notice_id | township, its own `T/up`, only for a notice addressed to it             |

The holding rule carries `<root>/<T>` to township T alone (not to its villages,
not to other townships) and `T/up` to the county, so the notice reaches the
township's inbox and the ack comes back with the ordinary syncs. Who may write
which is derived from the feed's author and the membership, never from the body
(`sanji_domain.claims`): a notice in any other feed, or naming another township
than its feed's audience, and an ack by anyone but the notice's township, are
kept as rejects (`fold_rejects`) and change nothing. An ack may be folded before
its notice (a restored store refolding feeds in another order): it is kept and
checked when the notice arrives, so every order gives the same tables.

A notice's state is 待签收 until its township's first ack, then 已签收 (who, when,
the note). The tables are `supervision_notices` and `supervision_acks`.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from sync_protocol.entries import Entry, Record

from . import claims, kinds, places
from .commands import CST, Actor, Command, _text, load_case, stamps, uuid7
from .errors import NotFoundError, TransitionError, ValidationError
from .views import to_local_datetime

PENDING, ACKNOWLEDGED = "待签收", "已签收"
STATES = (PENDING, ACKNOWLEDGED)


# --- claims (the fold's rules) ---------------------------------------------------------------------------


def notice_refusal(places_: claims.Places, e: Entry) -> str | None:
    """Why a `supervision.notice` (already known to be the county's) is refused; None: it is not."""
    audience = e.feed.split("/", 1)[1] if "/" in e.feed else ""
    place = places_(audience)
    if place.role != claims.TOWNSHIP:
        return (
            f"督办通知只能写在发给乡镇的县级 feed 中，{e.feed} 不是 (a supervision notice travels in the county's "
            "feed to one township)"
        )
    if e.value.get("township") != audience:
        return claims._disagrees("township", e.value.get("township"), place, audience)
    return None


def ack_refusal(places_: claims.Places, e: Entry) -> str | None:
    """Why a `supervision.ack` is refused whatever its notice (None: it may count)."""
    return claims._own_up_feed(e, places_.author(e), (claims.TOWNSHIP,), "督办签收 (supervision.ack) ")


def not_addressee(author: str, notice_id: str, township: str) -> str:
    return (
        f"{author} 不能签收督办 {notice_id}：该督办发给 {township} "
        "(only the township a supervision notice is addressed to acknowledges it)"
    )


def fold_notices(conn: Any, entries: list[Entry], places_: claims.Places) -> list[tuple[str, int, str, str, str]]:
    """Fold county notices; refuse the acks folded earlier that came from another township. Returns rejects."""
    rejects, rows = [], []
    for e in entries:
        why = notice_refusal(places_, e)
        if why is not None:
            rejects.append((e.feed, e.seq, e.kind, e.key, why))
            continue
        v = e.value
        rows.append(
            (
                e.key,
                v["township"],
                v.get("case_id"),
                v.get("window"),
                v["reason"],
                v["at_ms"],
                v.get("by"),
                e.feed,
                e.seq,
            )
        )
    conn.executemany(
        "INSERT OR IGNORE INTO supervision_notices (notice_id, township, case_id, window, reason, issued_ms, "
        "issued_by, feed, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    for notice_id, township, *_ in rows:
        wrong = conn.execute(
            "SELECT feed, seq, author FROM supervision_acks WHERE notice_id = ? AND author != ?", (notice_id, township)
        ).fetchall()
        for feed, seq, author in wrong:
            rejects.append((feed, seq, kinds.SUPERVISION_ACK, notice_id, not_addressee(author, notice_id, township)))
        conn.execute("DELETE FROM supervision_acks WHERE notice_id = ? AND author != ?", (notice_id, township))
    return rejects


def fold_acks(conn: Any, entries: list[Entry], places_: claims.Places) -> list[tuple[str, int, str, str, str]]:
    """Fold townships' acks; an ack of a notice addressed elsewhere is a reject. Returns rejects."""
    rejects, rows = [], []
    for e in entries:
        author = claims.author_of(e)
        why = ack_refusal(places_, e)
        if why is None:
            row = conn.execute("SELECT township FROM supervision_notices WHERE notice_id = ?", (e.key,)).fetchone()
            if row is not None and row[0] != author:
                why = not_addressee(author, e.key, row[0])
        if why is not None:
            rejects.append((e.feed, e.seq, e.kind, e.key, why))
            continue
        v = e.value
        rows.append((e.feed, e.seq, e.key, author, v["at_ms"], v.get("by"), v.get("note")))
    conn.executemany(
        "INSERT OR IGNORE INTO supervision_acks (feed, seq, notice_id, author, acked_ms, acked_by, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return rejects


# --- commands --------------------------------------------------------------------------------------------


def _township(conn: Any, ref: str) -> str:
    """A township by node id or display name."""
    rows = conn.execute(
        "SELECT node FROM nodes WHERE role = 'township' AND revoked = 0 AND (node = ? OR name = ?)", (ref, ref)
    ).fetchall()
    if len(rows) != 1:
        raise NotFoundError(
            f"找不到乡镇 {ref} (no such township)" if not rows else f"有多个乡镇叫 {ref} (ambiguous name)",
            hint="用 county-server nodes 查看乡镇的编号和名称 (see `county-server nodes`)",
        )
    return str(rows[0][0])


def supervise(conn: Any, actor: Actor, *, case: str | None, window: str | None, reason: str, now_ms: int) -> Command:
    """A 督办 to the township concerned: about one case (its township: the window's, or its village's
    parent) or about one township's window in general."""
    if actor.node_role != claims.COUNTY:
        raise TransitionError("督办由县级发出 (only the county sends a supervision notice)")
    if (case is None) == (window is None):
        raise ValidationError(
            "请指定一个办件或一个乡镇窗口 (name either a case or a window)",
            hint="county-server supervise 办件编号 --reason …，或 --window 乡镇 --reason …",
        )
    body: dict[str, Any] = {"at_ms": now_ms, "by": actor.person or actor.node}
    if case is not None:
        row = load_case(conn, case)
        if not row["township"]:
            raise ValidationError(f"办件 {case} 没有所属乡镇 (the case has no township)")
        body |= {"case_id": row["case_id"], "township": row["township"]}
    else:
        township = _township(conn, str(window))
        body |= {"township": township, "window": places.name_of(conn, township)}
    notice_id = uuid7(now_ms)
    body |= {"notice_id": notice_id, "reason": _text(reason, "督办事由", required=True)}
    feed = f"{actor.root}/{body['township']}"
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(feed, [Record(kinds.SUPERVISION_NOTICE, notice_id, body, hlc)], body)


def acknowledge(conn: Any, actor: Actor, notice_id: str, note: str | None, *, now_ms: int) -> Command:
    """签收: the township's clerk acknowledges a notice addressed to this township, once."""
    if actor.node_role != claims.TOWNSHIP:
        raise TransitionError("督办由乡镇签收 (a township acknowledges a supervision notice)")
    row = conn.execute("SELECT township FROM supervision_notices WHERE notice_id = ?", (notice_id,)).fetchone()
    if row is None:
        raise NotFoundError(
            f"没有督办 {notice_id} (no such notice)", hint="用 supervision inbox 查看；若刚发出，请先同步"
        )
    if row[0] != actor.node:
        raise TransitionError(not_addressee(actor.node, notice_id, row[0]))
    if conn.execute("SELECT 1 FROM supervision_acks WHERE notice_id = ?", (notice_id,)).fetchone():
        raise TransitionError(f"督办 {notice_id} 已签收 (already acknowledged)")
    body = {
        "at_ms": now_ms,
        "by": _text(actor.person, "签收人", limit=50) or actor.node,
        "note": _text(note, "签收说明", limit=2000),
        "notice_id": notice_id,
    }
    feed = f"{actor.node}/up"
    (hlc,) = stamps(conn, feed, now_ms, 1)
    return Command(feed, [Record(kinds.SUPERVISION_ACK, notice_id, body, hlc)], body)


# --- views -----------------------------------------------------------------------------------------------


def notices(
    conn: Any, *, township: str | None = None, state: str | None = None, tz: tzinfo = CST
) -> list[dict[str, Any]]:
    """Every notice held (a township holds only its own), newest first, with names and its state:
    待签收, or 已签收 with who acknowledged it, when and the note (the township's first ack)."""
    if state is not None and state not in STATES:
        raise ValidationError(f"未知的督办状态 {state!r} (unknown state)", hint="待签收 或 已签收")
    cur = conn.execute(
        "SELECT n.*, c.local_no, c.official_no, c.item_name, c.village, a.acked_ms, a.acked_by, a.note "
        "FROM supervision_notices n LEFT JOIN cases c ON c.case_id = n.case_id "
        "LEFT JOIN supervision_acks a ON a.rowid = (SELECT rowid FROM supervision_acks x "
        "WHERE x.notice_id = n.notice_id ORDER BY x.acked_ms, x.feed, x.seq LIMIT 1) "
        + ("WHERE n.township = ? " if township else "")
        + "ORDER BY n.issued_ms DESC, n.notice_id",
        (township,) if township else (),
    )
    cols = [c[0] for c in cur.description]
    known = places.names(conn)

    def stamp(ms: int | None) -> str | None:
        return None if ms is None else to_local_datetime(ms, tz).strftime("%Y-%m-%d %H:%M")

    out = []
    for r in (dict(zip(cols, row, strict=True)) for row in cur.fetchall()):
        r["state"] = ACKNOWLEDGED if r["acked_ms"] is not None else PENDING
        if state is not None and r["state"] != state:
            continue
        r["township_name"] = places.label(known, r["township"])
        r["village_name"] = places.label(known, r["village"])
        r["case_no"] = r["official_no"] or r["local_no"]
        r["subject"] = f"办件 {r['case_no'] or r['case_id']}" if r["case_id"] else f"{r['township_name']}窗口"
        r["issued_at"], r["acked_at"] = stamp(r["issued_ms"]), stamp(r["acked_ms"])
        out.append(r)
    return out
