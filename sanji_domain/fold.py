"""The deterministic fold: feed entries → domain tables, in the append's transaction.

`DomainFold` is the store's fold hook. Records written by one author (catalog,
calendar, settings, cards, roster) fold in feed order; a case's state is
recomputed from *all* its events each time one arrives (`states.fold_case`),
so the tables depend on which entries a node holds, never on the order in
which they arrived. Every insert is batched (`executemany`): the county folds
tens of thousands of cases in the sync hot path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
import sqlite_utils

from sync_protocol.entries import Entry
from sync_protocol.membership import KIND_MEMBER, KIND_NAME, KIND_REVOKE, PROTOCOL_KINDS

from . import claims, contacts, kinds
from .states import NODE_ROLE_ACTOR, SUBMITTED, Event, acting_role, fold_case

Reject = tuple[str, int, str, str, str]  # (feed, seq, kind, key, reason): a row of `fold_rejects`


class Sealer(Protocol):
    def seal(self, plain: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _author(feed: str) -> str:
    return feed.split("/", 1)[0]


@dataclass
class DomainFold:
    """The fold hook for every node; a village passes its `sealer` so personal data is sealed at rest."""

    sealer: Sealer | None = None

    def __call__(self, db: sqlite_utils.Database, entries: list[Entry]) -> None:
        conn = db.conn
        by_kind: dict[str, list[Entry]] = defaultdict(list)
        rejects: list[Reject] = []
        root = None
        for e in entries:
            if e.kind not in _SHAPES:
                continue
            if e.kind in _COUNTY_ONLY:
                if root is None:
                    row = conn.execute("SELECT node FROM nodes WHERE role = 'county'").fetchone()
                    root = row[0] if row else _author(e.feed) if e.feed.endswith("/*") else ""
                if _author(e.feed) != root:
                    rejects.append(
                        (e.feed, e.seq, e.kind, e.key, f"只有县级能写 {e.kind} (only the county writes {e.kind})")
                    )
                    continue
                if e.kind in PROTOCOL_KINDS and e.feed != f"{root}/*":
                    rejects.append((e.feed, e.seq, e.kind, e.key, f"only the county's public feed carries {e.kind}"))
                    continue
            why = _malformed(e)
            if why:
                rejects.append((e.feed, e.seq, e.kind, e.key, why))
                continue
            by_kind[e.kind].append(e)
        _reject(conn, rejects)
        membership = [e for kind in PROTOCOL_KINDS for e in by_kind.get(kind, ())]
        if membership:
            self._members(conn, sorted(membership, key=lambda e: e.seq))  # one feed: in feed order
        # claims follow keys: who an entry speaks for comes from its feed's author and the membership (above)
        places = claims.Places(conn)
        if kinds.CATALOG_ITEM in by_kind or kinds.CATALOG_RELEASE in by_kind:
            self._catalog(conn, by_kind.get(kinds.CATALOG_ITEM, []), by_kind.get(kinds.CATALOG_RELEASE, []))
        if kinds.CALENDAR_DAY in by_kind:
            conn.executemany(
                "INSERT INTO calendar_days (day, kind, name, seq) VALUES (?, ?, ?, ?) ON CONFLICT (day) DO UPDATE "
                "SET kind = excluded.kind, name = excluded.name, seq = excluded.seq WHERE excluded.seq > seq",
                [(e.key, e.value["kind"], e.value.get("name"), e.seq) for e in by_kind[kinds.CALENDAR_DAY]],
            )
        if kinds.SETTING in by_kind:
            conn.executemany(
                "INSERT INTO settings (key, value, seq) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value, seq = excluded.seq WHERE excluded.seq > seq",
                [(e.key, _dumps(e.value.get("value")), e.seq) for e in by_kind[kinds.SETTING]],
            )
        touched: set[str] = set()
        if kinds.CASE_NEW in by_kind:
            touched |= self._new_cases(conn, by_kind[kinds.CASE_NEW], places)
        if kinds.CASE_EVENT in by_kind:
            touched |= self._events(conn, by_kind[kinds.CASE_EVENT])
        if kinds.CASE_NUMBER in by_kind:
            numbers = [(e.key, e.value["official_no"]) for e in by_kind[kinds.CASE_NUMBER]]
            # kept whether or not the case is here yet: a number pulled before its case.new (another feed
            # came first, e.g. a restored laptop recovering its own feed) is applied when the case arrives
            conn.executemany(
                "INSERT INTO case_numbers (case_id, official_no) VALUES (?, ?) "
                "ON CONFLICT (case_id) DO UPDATE SET official_no = excluded.official_no",
                numbers,
            )
            conn.executemany("UPDATE cases SET official_no = ? WHERE case_id = ?", [(n, c) for c, n in numbers])
        if touched:
            refold_cases(conn, touched)
        if kinds.EVALUATION in by_kind:
            self._evaluations(conn, by_kind[kinds.EVALUATION], places)
        if kinds.RECTIFICATION in by_kind:
            self._rectification_steps(conn, by_kind[kinds.RECTIFICATION], places)
        if kinds.CARD_ISSUE in by_kind:
            conn.executemany(
                "INSERT OR IGNORE INTO cards (card_id, case_id, level, issued_ms, issued_by, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (e.key, v["case_id"], v["level"], v["at_ms"], v.get("by"), v.get("reason"))
                    for e in by_kind[kinds.CARD_ISSUE]
                    for v in (e.value,)
                ],
            )
        if kinds.CARD_REVOKE in by_kind:
            conn.executemany(
                "UPDATE cards SET revoked_ms = ?, revoked_by = ?, revoke_reason = ? "
                "WHERE card_id = ? AND revoked_ms IS NULL",
                [(e.value["at_ms"], e.value.get("by"), e.value["reason"], e.key) for e in by_kind[kinds.CARD_REVOKE]],
            )
        if kinds.ROSTER in by_kind:
            days = _admitted(conn, by_kind[kinds.ROSTER], lambda e: claims.roster(places, e))
            conn.executemany(
                "INSERT INTO roster (village, day, agent, substitute, hlc) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (village, day) DO UPDATE SET agent = excluded.agent, substitute = excluded.substitute, "
                "hlc = excluded.hlc WHERE excluded.hlc >= hlc",
                [(_author(e.feed), e.value["day"], e.value["agent"], e.value.get("substitute"), e.hlc) for e in days],
            )

        if kinds.SUPERVISION_NOTICE in by_kind or kinds.SUPERVISION_ACK in by_kind:
            from . import supervision  # it builds commands, which import this module

            if kinds.SUPERVISION_NOTICE in by_kind:
                _reject(conn, supervision.fold_notices(conn, by_kind[kinds.SUPERVISION_NOTICE], places))
            if kinds.SUPERVISION_ACK in by_kind:
                _reject(conn, supervision.fold_acks(conn, by_kind[kinds.SUPERVISION_ACK], places))

        if kinds.NODE_CONTACT in by_kind:  # after membership: a report is checked against the tree
            _reject(conn, contacts.fold_contacts(conn, by_kind[kinds.NODE_CONTACT]))

    # --- membership -----------------------------------------------------------------------------------------

    @staticmethod
    def _members(conn: Any, entries: list[Entry]) -> None:
        for e in entries:
            v = e.value
            if e.kind == KIND_MEMBER:
                conn.execute(
                    "INSERT INTO nodes (node, role, parent, division, name) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (node) DO UPDATE SET role = excluded.role, parent = excluded.parent, "
                    "division = excluded.division, name = excluded.name, revoked = 0",
                    (v["node"], v["role"], v.get("parent"), v.get("division"), v.get("name")),
                )
            elif e.kind == KIND_NAME:
                conn.execute("UPDATE nodes SET name = ? WHERE node = ?", (v["name"], v["node"]))
            else:
                conn.execute("UPDATE nodes SET revoked = 1 WHERE node = ?", (v["node"],))

    # --- catalog ----------------------------------------------------------------------------------------------

    @staticmethod
    def _catalog(conn: Any, items: list[Entry], releases: list[Entry]) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO catalog_item_versions (task_code, version, body) VALUES (?, ?, ?)",
            [(e.key, e.value["version"], e.body.decode()) for e in items],
        )
        conn.executemany(
            "INSERT INTO catalog_items (task_code, version, state, name, level, village_mode, case_type, legal_days, "
            "promised_days, allow_pledge, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_code) "
            "DO UPDATE SET version = excluded.version, state = excluded.state, name = excluded.name, "
            "level = excluded.level, village_mode = excluded.village_mode, case_type = excluded.case_type, "
            "legal_days = excluded.legal_days, promised_days = excluded.promised_days, "
            "allow_pledge = excluded.allow_pledge, body = excluded.body WHERE excluded.version >= version",
            [
                (
                    e.key,
                    v["version"],
                    v.get("state", "在用"),
                    v["name"],
                    v.get("level"),
                    v.get("village_mode"),
                    v.get("case_type"),
                    v.get("legal_days"),
                    v.get("promised_days"),
                    int(bool(v.get("allow_pledge"))),
                    e.body.decode(),
                )
                for e in items
                for v in (e.value,)
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO catalog_releases (version, released_ms, source, count, body) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    e.value["version"],
                    e.value.get("released_ms"),
                    e.value.get("source"),
                    e.value.get("count"),
                    e.body.decode(),
                )
                for e in releases
            ],
        )

    # --- cases -----------------------------------------------------------------------------------------------

    def _new_cases(self, conn: Any, entries: list[Entry], places: claims.Places) -> set[str]:
        owners, replaced = _case_owners(conn, entries, places)
        if replaced:
            # a claim that ranks first arrived after another took the id: the other's row goes (its entry is
            # now a reject), with the county case a 转报 of it opened; the owner's row is folded below
            for cid in replaced & {e.key for e, _ in owners}:
                conn.execute("DELETE FROM cases WHERE case_id = ? OR origin_case_id = ?", (cid, cid))
                conn.execute("DELETE FROM case_pii WHERE case_id = ?", (cid,))
        rows, pii = [], []
        for e, place in owners:
            v = e.value
            item = v.get("item") or {}
            agent = v.get("agent") or {}
            # the case row keeps the body for the views; where personal data is sealed (a village laptop)
            # it keeps the body without the applicant, elsewhere the entry's own bytes (the entry holds
            # them in the clear there anyway, and the views read the applicant from case_pii only)
            if self.sealer is None:
                body = e.body.decode()
            else:
                body = _dumps({k: x for k, x in v.items() if k != "applicant"})
            rows.append(
                (
                    e.key,
                    v.get("local_no"),
                    v.get("level") or item.get("level"),
                    place.node,
                    place.village,
                    place.township,
                    e.feed,
                    e.seq,
                    item.get("task_code", ""),
                    item.get("version"),
                    item.get("name"),
                    item.get("case_type"),
                    int(item.get("promised_days") or 0),
                    v.get("state", SUBMITTED),
                    v.get("state", SUBMITTED),
                    int(bool(v.get("pledge"))),
                    agent.get("name"),
                    agent.get("proxy_no"),
                    claims.CASE_CHANNEL[place.role or ""],
                    int(v.get("filed_ms") or 0),
                    body,
                )
            )
            applicant = v.get("applicant")
            if applicant is not None:
                pii.append((e.key, *self._seal_pii(e.key, applicant)))
        conn.executemany(
            "INSERT OR IGNORE INTO cases (case_id, local_no, level, author, village, township, feed, seq, item_code, "
            "item_version, item_name, case_type, promised_days, initial_state, state, pledge, agent_name, proxy_no, "
            "channel, filed_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if pii:
            conn.executemany("INSERT OR IGNORE INTO case_pii (case_id, data, sealed) VALUES (?, ?, ?)", pii)
        # evaluations that arrived before the case they name (or named a case whose owner changed) take the
        # case's place and item now, if their author may evaluate it
        recheck = set(replaced)
        if conn.execute("SELECT 1 FROM evaluations WHERE item_code IS NULL AND case_id IS NOT NULL LIMIT 1").fetchone():
            recheck |= {r[0] for r in rows}
        if recheck:
            _recheck_evaluations(conn, [r for r in rows if r[0] in recheck], places)
        # events that arrived before their case (another feed came first), or on a case whose owner changed
        ids = [e.key for e, _ in owners]
        early: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            # numbers that arrived before their case (sanji_domain.schema m004_case_numbers)
            conn.execute(
                "UPDATE cases SET official_no = (SELECT n.official_no FROM case_numbers n WHERE n.case_id = "
                f"cases.case_id) WHERE case_id IN (SELECT case_id FROM case_numbers WHERE case_id IN ({marks}))",
                chunk,
            )
            early |= {
                r[0]
                for r in conn.execute(f"SELECT DISTINCT case_id FROM case_events WHERE case_id IN ({marks})", chunk)
            }
        return early | replaced

    def _seal_pii(self, case_id: str, applicant: Any) -> tuple[bytes, int]:
        plain = orjson.dumps(applicant, option=orjson.OPT_SORT_KEYS)
        if self.sealer is None:
            return plain, 0
        return self.sealer.seal(plain, case_pii_aad(case_id)), 1

    @staticmethod
    def _events(conn: Any, entries: list[Entry]) -> set[str]:
        roles = _roles(conn, {_author(e.feed) for e in entries})
        conn.executemany(
            "INSERT OR IGNORE INTO case_events (feed, seq, case_id, hlc, author, role, action, at_ms, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.feed,
                    e.seq,
                    e.key,
                    e.hlc,
                    _author(e.feed),
                    roles.get(_author(e.feed), "unknown"),
                    e.value["action"],
                    int(e.value.get("at_ms") or e.hlc // 1000),
                    e.body.decode(),
                )
                for e in entries
            ],
        )
        return {e.key for e in entries}

    # --- 好差评 ------------------------------------------------------------------------------------------------

    @staticmethod
    def _evaluations(conn: Any, entries: list[Entry], places: claims.Places) -> None:
        rows, opened, rejects = [], [], []
        for e in entries:
            why = claims.evaluation(places, e)
            v, place = e.value, places.author(e)
            case = conn.execute(
                "SELECT village, township, item_code FROM cases WHERE case_id = ?", (v.get("case_id"),)
            ).fetchone()
            if why is None and case is not None and not claims.may_evaluate(place, case[0], case[1]):
                why = claims.not_evaluable(place, v["case_id"])
            if why is not None:
                rejects.append((e.feed, e.seq, e.kind, e.key, why))
                continue
            # the case's place and item; no case (yet): the author's place, and the case fills in the item
            village, township, item = case if case is not None else (place.village, place.township, None)
            rows.append(
                (
                    e.key,
                    v.get("case_id"),
                    v["level"],
                    v.get("channel"),
                    v.get("stage"),
                    v.get("target_type"),
                    v.get("target_name"),
                    v.get("comment"),
                    v["at_ms"],
                    place.node,
                    village,
                    township,
                    item,
                    e.feed,
                    e.seq,
                )
            )
            if v["level"] <= kinds.BAD_LEVEL_MAX:
                opened.append((e.key, v["at_ms"], int(v.get("rectify_days") or kinds.DEFAULT_RECTIFY_DAYS)))
        _reject(conn, rejects)
        conn.executemany(
            "INSERT OR IGNORE INTO evaluations (evaluation_id, case_id, level, channel, stage, target_type, target_name, "
            "comment, at_ms, author, village, township, item_code, feed, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO rectifications (evaluation_id, opened_ms, deadline_days, state) VALUES (?, ?, ?, '待整改')",
            opened,
        )
        refold_rectifications(conn, {r[0] for r in opened})

    @staticmethod
    def _rectification_steps(conn: Any, entries: list[Entry], places: claims.Places) -> None:
        steps = _admitted(conn, entries, lambda e: claims.rectification(places, e))
        conn.executemany(
            "INSERT OR IGNORE INTO rectification_steps (feed, seq, evaluation_id, hlc, author, step, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.feed, e.seq, e.key, e.hlc, _author(e.feed), e.value["step"], e.body.decode()) for e in steps],
        )
        refold_rectifications(conn, {e.key for e in steps})


def _reject(conn: Any, rejects: Iterable[Reject]) -> None:
    """Signed and stored, but not something the domain may fold: listed, never applied, never blocking sync."""
    conn.executemany(
        "INSERT OR IGNORE INTO fold_rejects (feed, seq, kind, key, reason) VALUES (?, ?, ?, ?, ?)", list(rejects)
    )


def _admitted(conn: Any, entries: list[Entry], refusal: Callable[[Entry], str | None]) -> list[Entry]:
    """The entries `refusal` finds nothing against; the others go to `fold_rejects` with its reason."""
    out, rejects = [], []
    for e in entries:
        why = refusal(e)
        if why is None:
            out.append(e)
        else:
            rejects.append((e.feed, e.seq, e.kind, e.key, why))
    _reject(conn, rejects)
    return out


def _case_owners(
    conn: Any, entries: list[Entry], places: claims.Places
) -> tuple[list[tuple[Entry, claims.Place]], set[str]]:
    """The `case.new` entries that own their case id (claims.owner_rank), and the ids whose row they take over.

    Every other claim on an owned id is a reject, whichever arrived first: the result depends only on the
    entries held, never on their arrival order."""
    owners: dict[str, tuple[Entry, claims.Place]] = {}
    replaced: set[str] = set()
    rejects: list[Reject] = []
    held_rows = case_rows(conn, "author, feed, seq, origin_case_id", list({e.key for e in entries}))
    for e in entries:
        place, why = claims.case_new(places, e)
        if why is not None:
            rejects.append((e.feed, e.seq, e.kind, e.key, why))
            continue
        rank = claims.owner_rank(place.role, e.feed, e.seq)
        held = owners.get(e.key)
        if held is not None:
            other = held[0]
            if claims.owner_rank(held[1].role, other.feed, other.seq) < rank:
                rejects.append((e.feed, e.seq, e.kind, e.key, claims.CASE_TAKEN))
                continue
            rejects.append((other.feed, other.seq, other.kind, other.key, claims.CASE_TAKEN))
        else:
            row = held_rows.get(e.key)
            if row is not None:
                author, feed, seq, origin = row
                if origin is not None:  # the county case a 转报 opened: a filed case keeps its id, whenever it came
                    replaced.update((e.key, origin))
                    owners[e.key] = (e, place)
                    continue
                if (feed, seq) == (e.feed, e.seq):
                    continue  # this very entry, folded already
                if claims.owner_rank(places(author).role, feed, seq) < rank:
                    rejects.append((e.feed, e.seq, e.kind, e.key, claims.CASE_TAKEN))
                    continue
                rejects.append((feed, seq, kinds.CASE_NEW, e.key, claims.CASE_TAKEN))
                replaced.add(e.key)
        owners[e.key] = (e, place)
    _reject(conn, rejects)
    return list(owners.values()), replaced


def case_rows(conn: Any, columns: str, case_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """{case_id: (columns…)} of the cases held among `case_ids`, 500 ids a query."""
    out: dict[str, tuple[Any, ...]] = {}
    for i in range(0, len(case_ids), 500):
        chunk = case_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            (r[0], r[1:])
            for r in conn.execute(f"SELECT case_id, {columns} FROM cases WHERE case_id IN ({marks})", chunk)
        )
    return out


def _recheck_evaluations(conn: Any, rows: list[tuple[Any, ...]], places: claims.Places) -> None:
    """Evaluations of these (new or re-owned) case rows: take the case's place and item, or are refused."""
    keep, drop, rejects = [], [], []
    for r in rows:
        case_id, village, township, item = r[0], r[4], r[5], r[8]
        for eid, author, feed, seq in conn.execute(
            "SELECT evaluation_id, author, feed, seq FROM evaluations WHERE case_id = ?", (case_id,)
        ).fetchall():
            place = places(author)
            if claims.may_evaluate(place, village, township) or feed is None:
                keep.append((village, township, item, eid))
            else:
                drop.append((eid,))
                rejects.append((feed, seq, kinds.EVALUATION, eid, claims.not_evaluable(place, case_id)))
    conn.executemany("UPDATE evaluations SET village = ?, township = ?, item_code = ? WHERE evaluation_id = ?", keep)
    if drop:
        conn.executemany(
            "DELETE FROM fold_rejects WHERE (feed, seq) IN "
            "(SELECT feed, seq FROM rectification_steps WHERE evaluation_id = ?)",
            drop,
        )
        conn.executemany("DELETE FROM rectifications WHERE evaluation_id = ?", drop)
        conn.executemany("DELETE FROM evaluations WHERE evaluation_id = ?", drop)
        _reject(conn, rejects)


_STR, _INT, _DICT = (str,), (int,), (dict,)
# kind -> required body fields and their types; a body that lacks one is rejected by the fold, not applied
_SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    KIND_MEMBER: {"node": _STR, "role": _STR},
    KIND_REVOKE: {"node": _STR},
    KIND_NAME: {"node": _STR, "name": _STR},
    kinds.CATALOG_ITEM: {"name": _STR, "version": _INT},
    kinds.CATALOG_RELEASE: {"version": _INT},
    kinds.CALENDAR_DAY: {"kind": _STR},
    kinds.SETTING: {},
    kinds.CASE_NEW: {"item": _DICT},
    kinds.CASE_EVENT: {"action": _STR},
    kinds.CASE_NUMBER: {"official_no": _STR},
    kinds.EVALUATION: {"level": _INT, "at_ms": _INT},
    kinds.RECTIFICATION: {"step": _STR},
    kinds.CARD_ISSUE: {"case_id": _STR, "level": _STR, "at_ms": _INT},
    kinds.CARD_REVOKE: {"reason": _STR, "at_ms": _INT},
    kinds.ROSTER: {"day": _STR, "agent": _STR},
    kinds.NODE_CONTACT: {"node": _STR, **dict.fromkeys(contacts.FIELDS, _INT)},
    kinds.SUPERVISION_NOTICE: {"township": _STR, "reason": _STR, "at_ms": _INT},
    kinds.SUPERVISION_ACK: {"at_ms": _INT},
}
_COUNTY_ONLY = frozenset(
    {
        KIND_MEMBER,
        KIND_REVOKE,
        KIND_NAME,
        kinds.CATALOG_ITEM,
        kinds.CATALOG_RELEASE,
        kinds.CALENDAR_DAY,
        kinds.SETTING,
        kinds.CASE_NUMBER,
        kinds.CARD_ISSUE,
        kinds.CARD_REVOKE,
        kinds.SUPERVISION_NOTICE,
    }
)


def _malformed(e: Entry) -> str | None:
    v = e.value
    if not isinstance(v, dict):
        return "body is not an object"
    for name, types in _SHAPES[e.kind].items():
        if not isinstance(v.get(name), types) or isinstance(v.get(name), bool):
            return f"field {name!r} missing or not {types[0].__name__}"
    if e.kind == kinds.EVALUATION and not 1 <= v["level"] <= 5:
        return "level is not 1-5"
    if e.kind == kinds.CASE_NEW and not isinstance(v["item"].get("task_code", ""), str):
        return "item.task_code is not text"
    return None


def case_pii_aad(case_id: str) -> bytes:
    return f"case_pii/{case_id}".encode()


def _roles(conn: Any, authors: Iterable[str]) -> dict[str, str]:
    out = {}
    for a in authors:
        row = conn.execute("SELECT role FROM nodes WHERE node = ?", (a,)).fetchone()
        if row:
            out[a] = NODE_ROLE_ACTOR.get(row[0], row[0])
    return out


def _case_events(conn: Any, case_id: str) -> list[Event]:
    rows = conn.execute(
        "SELECT feed, seq, hlc, author, role, action, at_ms, body FROM case_events WHERE case_id = ?", (case_id,)
    ).fetchall()
    return [
        Event(case_id, action, role, author, feed, seq, hlc, at_ms, orjson.loads(body))
        for feed, seq, hlc, author, role, action, at_ms, body in rows
    ]


def refold_cases(conn: Any, case_ids: Iterable[str]) -> None:
    """Recompute state, clock facts and conflicts of these cases (and their linked/origin cases)."""
    pending = set(case_ids)
    done: set[str] = set()
    while pending:
        case_id = pending.pop()
        done.add(case_id)
        row = conn.execute(
            "SELECT initial_state, origin_case_id, linked_case_id, village, township, "
            "json_extract(body, '$.item.village_mode') FROM cases WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        if row is None:
            continue  # events before the case: folded when the case arrives
        initial, origin, linked, village, township, mode = row
        # only the case's own village agent and its own township act on it (a county may act on any);
        # the agent handles a 村受理村办结 item as a window would
        events = [
            replace(ev, role=acting_role(ev.role, mode))
            if _may_act(ev, village, township)
            else replace(ev, role=f"{ev.role}@{ev.author}")
            for ev in _case_events(conn, case_id)
        ]
        linked_applied: list[Event] = []
        if linked:
            lrow = conn.execute("SELECT initial_state FROM cases WHERE case_id = ?", (linked,)).fetchone()
            if lrow is not None:
                lstate = fold_case(lrow[0], _case_events(conn, linked))
                linked_applied = [a.event for a in lstate.history if a.conflict is None]
        cs = fold_case(initial, events, linked=linked_applied)
        handled = [a.event.at_ms for a in cs.history if a.conflict is None and a.event.role != "agent"]
        conn.execute(
            "UPDATE cases SET state = ?, accepted_ms = ?, completed_ms = ?, delivered_ms = ?, closed_ms = ?, "
            "first_handled_ms = ?, pauses = ?, result = ?, conflicts = ?, linked_case_id = ? WHERE case_id = ?",
            (
                cs.state,
                cs.accepted_ms,
                cs.completed_ms,
                cs.delivered_ms,
                cs.closed_ms,
                min(handled) if handled else None,
                _dumps(cs.pauses),
                cs.result,
                len(cs.conflicts),
                cs.linked_case_id,
                case_id,
            ),
        )
        conn.executemany(
            "UPDATE case_events SET before = ?, after = ?, conflict = ? WHERE feed = ? AND seq = ?",
            [
                (a.before, a.after, a.conflict, a.event.feed, a.event.seq)
                for a in cs.history
                if a.event.case_id == case_id
            ],
        )
        if cs.linked_case_id != linked:
            # the 转报 that applies changed (a later-arriving event made it a conflict, or made it legal):
            # the linked county case exists exactly when the forward applies, whatever the arrival order
            if linked:
                conn.execute("DELETE FROM cases WHERE case_id = ? AND origin_case_id = ?", (linked, case_id))
            if cs.linked_case_id:
                forwarded = [a.event.at_ms for a in cs.history if a.conflict is None and a.event.action == "forward"]
                _open_linked_case(conn, case_id, cs.linked_case_id, forwarded[-1])
                pending.add(cs.linked_case_id)
            pending.add(case_id)  # fold again with the linked case's events (or without them)
            done.discard(case_id)
        if origin and origin not in done:
            pending.add(origin)


def _may_act(ev: Event, village: str | None, township: str | None) -> bool:
    if ev.role == "agent":
        return ev.author == village
    if ev.role == "clerk":
        return ev.author == township
    return ev.role == "county"


def _open_linked_case(conn: Any, origin: str, linked: str, forwarded_ms: int) -> None:
    """The county case a 转报 names: same item and applicant, handled at the county level."""
    # a case filed with that id (a case.new) keeps it: a 转报 never takes another case's id (_case_owners)
    conn.execute(
        "INSERT OR IGNORE INTO cases (case_id, local_no, official_no, origin_case_id, level, author, village, township, "
        "feed, seq, item_code, item_version, item_name, case_type, promised_days, initial_state, state, pledge, "
        "agent_name, proxy_no, channel, filed_ms, body) "
        "SELECT ?, local_no || '-县', NULL, case_id, '县', author, village, township, feed, seq, item_code, item_version, "
        "item_name, case_type, promised_days, ?, ?, pledge, agent_name, proxy_no, '转报', "
        "?, body FROM cases WHERE case_id = ?",
        (linked, SUBMITTED, SUBMITTED, forwarded_ms, origin),
    )


def refold_rectifications(conn: Any, evaluation_ids: Iterable[str]) -> None:
    """整改: assign (owner, deadline) → 整改中; followup (回访) → 已回访; close (result) or rate (整改评价) → 已办结;
    in (hlc, author, seq) order.

    Only the evaluation's township and the county take steps (claims.may_rectify); another's step is a reject."""
    places = claims.Places(conn)
    for eid in evaluation_ids:
        if conn.execute("SELECT 1 FROM rectifications WHERE evaluation_id = ?", (eid,)).fetchone() is None:
            continue
        where = conn.execute("SELECT township FROM evaluations WHERE evaluation_id = ?", (eid,)).fetchone()
        township = where[0] if where else None
        rows = conn.execute(
            "SELECT step, body, author, feed, seq FROM rectification_steps WHERE evaluation_id = ? "
            "ORDER BY hlc, author, feed, seq",
            (eid,),
        ).fetchall()
        steps, refused = [], []
        for step, body, author, feed, seq in rows:
            if claims.may_rectify(places(author), township):
                steps.append((step, body))
                conn.execute("DELETE FROM fold_rejects WHERE feed = ? AND seq = ?", (feed, seq))
            else:
                refused.append(
                    (feed, seq, kinds.RECTIFICATION, eid, claims.not_rectifiable(places(author), eid, township))
                )
        _reject(conn, refused)
        owner = followup_ms = note = level = rated_ms = deadline = None
        state = "待整改"
        for step, body in steps:
            v = orjson.loads(body)
            if step == "assign":
                owner, deadline = v.get("owner"), v.get("deadline_days")
                state = "整改中" if state == "待整改" else state
            elif step == "followup":
                followup_ms, note = v.get("at_ms"), v.get("note")
                state = "已回访" if state in ("待整改", "整改中") else state
            elif step == "rate":
                level, rated_ms = v.get("level"), v.get("at_ms")
                state = "已办结"
            elif step == "close":  # 办结 with the result (views.rectifications reads it from the steps)
                if v.get("level") is not None:
                    level, rated_ms = v.get("level"), v.get("at_ms")
                state = "已办结"
        conn.execute(
            "UPDATE rectifications SET owner = ?, followup_ms = ?, followup_note = ?, fix_level = ?, fix_rated_ms = ?, "
            "state = ?, deadline_days = COALESCE(?, deadline_days) WHERE evaluation_id = ?",
            (owner, followup_ms, note, level, rated_ms, state, deadline, eid),
        )


def refold_all(db: sqlite_utils.Database, fold: DomainFold, entries: Sequence[Entry]) -> None:
    """Fold entries that were stored before the domain tables existed (an upgrade)."""
    by_feed: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_feed[e.feed].append(e)
    # the county's public feed first: membership, catalog and calendar are what the others refer to
    for feed in sorted(by_feed, key=lambda f: (not f.endswith("/*"), f)):
        fold(db, by_feed[feed])
