"""The case fold is deterministic: any arrival order that keeps each feed's order gives the same tables.

Three authors (the village agent in v1/up, the township clerk in t1/v1, the
county in c/v1) write events on the same cases concurrently; every node folds
them as they arrive, in whatever interleaving and batching the links produce.
All nodes must agree on every case's state, clock facts and conflicts, and
every event that could not apply must be listed as a conflict, never lost.
"""

from __future__ import annotations

import hashlib

import orjson
import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from sanji_domain import kinds
from sanji_domain.fold import DomainFold
from sanji_domain.schema import domain_migrations
from sanji_domain.states import ACTIONS, CONFLICT_RULE, SUBMITTED, Event, fold_case
from sync_protocol.entries import Entry
from sync_protocol.membership import KIND_MEMBER

CASES = ("case-a", "case-b")
FEEDS = {"agent": "v1/up", "clerk": "t1/v1", "county": "c/v1"}
ACTIONS_BY_ROLE = {
    role: sorted(a for a, spec in ACTIONS.items() if any(role in r for r in spec.sources.values())) for role in FEEDS
}


def entry(feed: str, seq: int, kind: str, key: str, value: dict, hlc: int) -> Entry:
    body = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return Entry(feed, seq, b"", hlc, kind, key, body, hashlib.sha256(body).digest(), value)


def fresh_db() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    domain_migrations.apply(db)
    fold = DomainFold()
    members = [
        entry("c/*", i + 1, KIND_MEMBER, n, {"node": n, "role": r, "parent": p, "division": d}, i)
        for i, (n, r, p, d) in enumerate(
            [
                ("c", "county", None, "430321000000"),
                ("t1", "township", "c", "430321105000"),
                ("v1", "village", "t1", "430321105201"),
            ]
        )
    ]
    fold(db, members)
    return db


def build_feeds(script: list[tuple[str, int, str, int]]) -> dict[str, list[Entry]]:
    """The three feeds: the village's starts with the cases, then each author's events in its own order."""
    feeds: dict[str, list[Entry]] = {f: [] for f in FEEDS.values()}
    for i, cid in enumerate(CASES):
        body = {
            "case_id": cid,
            "filed_ms": 1_000 + i,
            "item": {"task_code": "T1", "promised_days": 5},
            "local_no": f"430321105201-20261121-{i + 1}",
            "state": SUBMITTED,
            "village": "v1",
            "township": "t1",
        }
        feeds["v1/up"].append(entry("v1/up", i + 1, kinds.CASE_NEW, cid, body, 1_000_000 + i))
    for role, case_i, action, hlc in script:
        feed = FEEDS[role]
        cid = CASES[case_i]
        body = {"action": action, "at_ms": hlc // 1000, "case_id": cid, "reason": "原因", "linked_case_id": f"{cid}-县"}
        feeds[feed].append(entry(feed, len(feeds[feed]) + 1, kinds.CASE_EVENT, cid, body, hlc))
    return feeds


def fold_in_order(feeds: dict[str, list[Entry]], order: list[str], cuts: list[int]) -> sqlite_utils.Database:
    """Deliver entries feed by feed in `order`, batching consecutive arrivals of one feed as a link would."""
    db, fold = fresh_db(), DomainFold()
    pos = {f: 0 for f in feeds}
    pending: list[Entry] = []
    for i, feed in enumerate(order):
        e = feeds[feed][pos[feed]]
        pos[feed] += 1
        if pending and (pending[-1].feed != feed or i in cuts):
            with db.conn:
                fold(db, pending)
            pending = []
        pending.append(e)
    if pending:
        with db.conn:
            fold(db, pending)
    return db


def snapshot(db: sqlite_utils.Database) -> tuple[list[tuple], list[tuple]]:
    cases = db.execute(
        "SELECT case_id, state, accepted_ms, completed_ms, closed_ms, pauses, conflicts, linked_case_id, result "
        "FROM cases ORDER BY case_id"
    ).fetchall()
    events = db.execute("SELECT feed, seq, before, after, conflict FROM case_events ORDER BY feed, seq").fetchall()
    return cases, events


event = st.tuples(
    st.sampled_from(sorted(FEEDS)),
    st.integers(0, len(CASES) - 1),
    st.data(),
    st.integers(2_000_000, 2_000_040),  # few distinct stamps: ties between authors happen often
)


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[str, int, str, int]]:
    out = []
    for role, case_i, data, hlc in draw(st.lists(event, min_size=1, max_size=14)):
        out.append((role, case_i, data.draw(st.sampled_from(ACTIONS_BY_ROLE[role])), hlc))
    return out


@settings(max_examples=200, deadline=None)
@given(script=scripts(), data=st.data())
def test_every_interleaving_folds_to_the_same_state(
    script: list[tuple[str, int, str, int]], data: st.DataObject
) -> None:
    feeds = build_feeds(script)
    labels = [f for f, es in feeds.items() for _ in es]
    results = []
    for _node in range(3):  # three nodes, three arrival orders and batchings
        order = data.draw(st.permutations(labels))
        cuts = data.draw(st.lists(st.integers(0, len(labels)), max_size=5))
        results.append(snapshot(fold_in_order(feeds, order, cuts)))
    assert results[0] == results[1] == results[2]
    # and it is the reference fold of the events in (hlc, author, feed, seq) order
    cases, events = results[0]
    for case_id, state, *_ in cases:
        if case_id not in CASES:
            continue  # a linked county case (转报)
        evs = [
            Event(e.key, e.value["action"], role, e.feed.split("/")[0], e.feed, e.seq, e.hlc, e.value["at_ms"], e.value)
            for role, feed in FEEDS.items()
            for e in feeds[feed]
            if e.kind == kinds.CASE_EVENT and e.key == case_id
        ]
        linked = [c for c in cases if c[0] == f"{case_id}-县"]
        if not linked:
            assert fold_case(SUBMITTED, evs).state == state
    # nothing lost: every event is in the table, and each one either applied or is a listed conflict
    n_events = sum(1 for es in feeds.values() for e in es if e.kind == kinds.CASE_EVENT)
    assert len(events) == n_events
    for _feed, _seq, before, after, conflict in events:
        assert before is not None
        assert (conflict is None) or (before == after)


def test_concurrent_withdraw_and_accept_is_a_listed_conflict() -> None:
    """The agent withdraws while the township accepts: the earlier stamp wins, the other is kept as a conflict."""
    script = [("agent", 0, "withdraw", 2_000_005), ("clerk", 0, "accept", 2_000_010)]
    feeds = build_feeds(script)
    for order in (["v1/up", "v1/up", "v1/up", "t1/v1"], ["t1/v1", "v1/up", "v1/up", "v1/up"]):
        db = fold_in_order(feeds, order, [])
        state, conflicts = db.execute("SELECT state, conflicts FROM cases WHERE case_id = 'case-a'").fetchone()
        assert state == "WITHDRAWN"
        assert conflicts == 1
        (reason,) = db.execute("SELECT conflict FROM case_events WHERE action = 'accept'").fetchone()
        assert "已撤回" in reason
    assert "(hlc, author, seq)" in CONFLICT_RULE


def test_forward_links_a_county_case_whose_completion_closes_the_origin() -> None:
    script = [
        ("clerk", 0, "accept", 2_000_001),
        ("clerk", 0, "forward", 2_000_002),
        ("county", 0, "accept", 2_000_003),  # on the origin: not allowed (the county acts on the linked case)
    ]
    feeds = build_feeds(script)
    linked_body = {"action": "complete", "at_ms": 2_000, "case_id": "case-a-县", "result": "准予办理"}
    feeds["c/v1"].append(
        entry("c/v1", 2, kinds.CASE_EVENT, "case-a-县", {**linked_body, "action": "accept"}, 2_000_004)
    )
    feeds["c/v1"].append(entry("c/v1", 3, kinds.CASE_EVENT, "case-a-县", linked_body, 2_000_005))
    for order in (
        ["v1/up", "v1/up", "t1/v1", "t1/v1", "c/v1", "c/v1", "c/v1"],
        ["c/v1", "c/v1", "c/v1", "t1/v1", "t1/v1", "v1/up", "v1/up"],
    ):
        db = fold_in_order(feeds, order, [])
        rows = dict(db.execute("SELECT case_id, state FROM cases").fetchall())
        assert rows == {"case-a": "COMPLETED", "case-a-县": "COMPLETED", "case-b": "SUBMITTED"}
        origin = db.execute("SELECT linked_case_id, result FROM cases WHERE case_id = 'case-a'").fetchone()
        assert origin == ("case-a-县", "准予办理")


def test_malformed_or_unauthorised_entries_are_listed_not_applied() -> None:
    db, fold = fresh_db(), DomainFold()
    bad = [
        entry("v1/up", 1, kinds.CASE_EVENT, "x", {"no_action": 1}, 5),
        entry("v1/up", 2, kinds.CATALOG_ITEM, "T9", {"name": "伪造事项", "version": 99}, 6),
    ]
    with db.conn:
        fold(db, bad)
    assert db.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0] == 0
    reasons = dict(db.execute("SELECT kind, reason FROM fold_rejects").fetchall())
    assert "action" in reasons[kinds.CASE_EVENT]
    assert "only the county" in reasons[kinds.CATALOG_ITEM]


# --- hostile claims (issue 12): what a township or a village signs about places it does not stand for ------------

HOSTILE = {
    # the township copies the village's case id into its own feed, with another applicant (reproduction 1)
    "steal": ("t1/up", kinds.CASE_NEW, "case-a", {"case_id": "case-a", "applicant": {"name": "冒名"}, "channel": "窗口",
              "filed_ms": 1, "item": {"task_code": "T1"}, "township": "t1", "village": None}),
    # a window case claiming to be the village's 代办 case (reproduction 2)
    "as-village": ("t1/up", kinds.CASE_NEW, "case-t", {"case_id": "case-t", "channel": "代办", "filed_ms": 2,
                   "item": {"task_code": "T1"}, "township": "t1", "village": "v1"}),
    # the township evaluating "as" the village's 代办点: a 差评 that would open a rectification (reproduction 2)
    "as-daibandian": ("t1/up", kinds.EVALUATION, "e-t", {"at_ms": 3, "case_id": "case-a", "channel": "代办",
                      "evaluation_id": "e-t", "level": 1, "target_name": "v1", "target_type": "代办点"}),
    # the village's own evaluation of its case, and a village case claiming another village
    "own-evaluation": ("v1/up", kinds.EVALUATION, "e-v", {"at_ms": 4, "case_id": "case-b", "evaluation_id": "e-v",
                       "level": 2, "target_type": "代办点"}),
    "other-village": ("v1/up", kinds.CASE_NEW, "case-x", {"case_id": "case-x", "filed_ms": 5,
                      "item": {"task_code": "T1"}, "township": "t1", "village": "v2"}),
}  # fmt: skip


def claims_snapshot(db: sqlite_utils.Database) -> tuple[list[tuple], ...]:
    return (
        *snapshot(db),
        db.execute("SELECT case_id, author, village, township, channel, feed, seq FROM cases ORDER BY 1").fetchall(),
        db.execute("SELECT case_id, data FROM case_pii ORDER BY 1").fetchall(),
        db.execute("SELECT feed, seq, kind, key, reason FROM fold_rejects ORDER BY 1, 2").fetchall(),
        db.execute("SELECT evaluation_id, author, village, township FROM evaluations ORDER BY 1").fetchall(),
        db.execute("SELECT evaluation_id, state FROM rectifications ORDER BY 1").fetchall(),
    )


@settings(max_examples=60, deadline=None)
@given(
    script=scripts(),
    hostile=st.lists(st.sampled_from(sorted(HOSTILE)), min_size=1, unique=True),
    stamps=st.lists(st.integers(0, 3_000_000), min_size=len(HOSTILE), max_size=len(HOSTILE)),
    data=st.data(),
)
def test_hostile_claims_fold_the_same_in_every_order_and_never_win(
    script: list[tuple[str, int, str, int]], hostile: list[str], stamps: list[int], data: st.DataObject
) -> None:
    feeds = build_feeds(script)
    feeds.setdefault("t1/up", [])
    for name, hlc in zip(hostile, stamps, strict=False):  # any stamp: an author may backdate its own entries
        feed, kind, key, value = HOSTILE[name]
        feeds[feed].append(entry(feed, len(feeds[feed]) + 1, kind, key, value, hlc))
    labels = [f for f, es in feeds.items() for _ in es]
    results = []
    for _node in range(3):
        order = data.draw(st.permutations(labels))
        cuts = data.draw(st.lists(st.integers(0, len(labels)), max_size=5))
        results.append(claims_snapshot(fold_in_order(feeds, order, cuts)))
    assert results[0] == results[1] == results[2]
    *_, cases, pii, rejects, evaluations, rectifications = results[0]
    # the village's cases stay the village's, with its applicant; no hostile claim changed any state
    owners = {c[0]: c[1:5] for c in cases if c[0] in ("case-a", "case-b", "case-t", "case-x")}
    assert owners == {cid: ("v1", "v1", "t1", "代办") for cid in CASES}
    assert "冒名" not in str(pii)
    refused = {(r[0], r[3]) for r in rejects}
    for name in hostile:
        feed, kind, key, _ = HOSTILE[name]
        assert ((feed, key) in refused) == (name != "own-evaluation"), name
    assert [e[0] for e in evaluations] == (["e-v"] if "own-evaluation" in hostile else [])
    assert [r[0] for r in rectifications] == (["e-v"] if "own-evaluation" in hostile else [])
