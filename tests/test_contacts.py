"""Each village's last contact, carried up by its township (`node.contact`), and the backlog's base.

Real SQLite stores with the domain fold; the township's reports reach the
county through the real planning, framing, verification and apply code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sanji_domain import contacts as domain_contacts
from sanji_domain import kinds
from sanji_domain.fold import DomainFold
from sanji_domain.schema import domain_migrations
from sanji_node import contacts, state
from sync_protocol import routing, session
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record
from sync_protocol.membership import COUNTY, KIND_MEMBER, TOWNSHIP, VILLAGE
from sync_protocol.planning import digest
from sync_protocol.sqlite_store import Store, Trust

from .network import COUNTY_CODE, seeded_key

NODES = [
    ("county", COUNTY, None, COUNTY_CODE + "000000"),
    ("t1", TOWNSHIP, "county", COUNTY_CODE + "101000"),
    ("t2", TOWNSHIP, "county", COUNTY_CODE + "102000"),
    ("v11", VILLAGE, "t1", COUNTY_CODE + "101201"),
    ("v21", VILLAGE, "t2", COUNTY_CODE + "102201"),
]
KEYS = {n: seeded_key(n) for n, *_ in NODES}
MINUTE = 60_000


def open_node(path: Path, node: str) -> Store:
    store = Store(path / f"{node}.sqlite", fold=DomainFold())
    state.node_migrations.apply(store.db)
    domain_migrations.apply(store.db)
    store.set_trust(Trust(COUNTY_CODE, "county", KEYS["county"].public.hex))
    store.set_node(node)
    return store


def carry(src: Store, src_id: str, dst: Store, dst_id: str) -> None:
    """What `dst` lacks of `src`, by the holding rule, through the real verification and apply path."""
    directory = src.directory()
    wanted = lambda f: routing.may_push(src_id, dst_id, f, directory)  # noqa: E731
    for page in src.plan(dst.vector(), wanted):
        dst.receive_page(encode_page([src.read_batch(r) for r in page]))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, Store]]:
    out = {n: open_node(tmp_path, n) for n, *_ in NODES}
    members = [
        Record(
            KIND_MEMBER,
            n,
            {"division": d, "node": n, "parent": p, "pubkey": KEYS[n].public.hex, "role": r},
            1,
        )
        for n, r, p, d in NODES
    ]
    out["county"].append(KEYS["county"], "county/*", members)
    for t in ("t1", "t2"):
        carry(out["county"], "county", out[t], t)
    yield out
    for s in out.values():
        s.close()


def report(store: Store, township: str, body: dict[str, int | str], hlc: int) -> None:
    store.append(KEYS[township], f"{township}/up", [Record(kinds.NODE_CONTACT, str(body["node"]), body, hlc)])


def figures(node: str, last_seen_ms: int, waiting: int = 0) -> dict[str, int | str]:
    return {
        "node": node,
        "last_seen_ms": last_seen_ms,
        "waiting": waiting,
        "forks": 0,
        "quarantined": 0,
        "backlog": 0,
        "oldest_unsent_hlc": 0,
    }


def test_a_township_reports_on_its_own_villages_and_the_newest_report_wins(stores: dict[str, Store]) -> None:
    county, t1 = stores["county"], stores["t1"]
    report(t1, "t1", figures("v11", 5 * MINUTE, waiting=10), 6 * MINUTE * 1000)
    carry(t1, "t1", county, "county")
    got = domain_contacts.reported(county.conn)["v11"]
    assert got == {
        "township": "t1",
        "last_seen_ms": 5 * MINUTE,
        "waiting": 10,
        "forks": 0,
        "quarantined": 0,
        "backlog": 0,
        "oldest_unsent_hlc": 0,
        "reported_ms": 6 * MINUTE,
    }
    report(t1, "t1", figures("v11", 20 * MINUTE), 21 * MINUTE * 1000)
    carry(t1, "t1", county, "county")
    assert domain_contacts.reported(county.conn)["v11"]["waiting"] == 0
    assert county.conn.execute("SELECT COUNT(*) FROM fold_rejects").fetchone()[0] == 0


def test_a_report_about_another_townships_village_is_a_reject_and_changes_nothing(stores: dict[str, Store]) -> None:
    county, t1, t2 = stores["county"], stores["t1"], stores["t2"]
    report(t2, "t2", figures("v21", 5 * MINUTE), 6 * MINUTE * 1000)
    report(t1, "t1", figures("v21", 9 * MINUTE, waiting=99), 10 * MINUTE * 1000)  # not t1's village
    report(t1, "t1", figures("t2", 9 * MINUTE), 10 * MINUTE * 1000 + 1)  # not a village at all
    for t in ("t1", "t2"):
        carry(stores[t], t, county, "county")
    assert domain_contacts.reported(county.conn) == {
        "v21": {
            "township": "t2",
            "last_seen_ms": 5 * MINUTE,
            "waiting": 0,
            "forks": 0,
            "quarantined": 0,
            "backlog": 0,
            "oldest_unsent_hlc": 0,
            "reported_ms": 6 * MINUTE,
        }
    }
    rejects = county.conn.execute("SELECT feed, seq, kind, reason FROM fold_rejects ORDER BY seq").fetchall()
    assert [(f, s, k) for f, s, k, _ in rejects] == [("t1/up", 1, kinds.NODE_CONTACT), ("t1/up", 2, kinds.NODE_CONTACT)]
    assert "t1 may report only on its own villages" in rejects[0][3]


def test_a_malformed_report_is_a_reject(stores: dict[str, Store]) -> None:
    county, t1 = stores["county"], stores["t1"]
    report(t1, "t1", {**figures("v11", MINUTE), "waiting": -1}, 2 * MINUTE * 1000)
    report(t1, "t1", {"node": "v11", "last_seen_ms": MINUTE}, 3 * MINUTE * 1000)
    carry(t1, "t1", county, "county")
    assert domain_contacts.reported(county.conn) == {}
    assert county.conn.execute("SELECT COUNT(*) FROM fold_rejects").fetchone()[0] == 2


def test_the_township_writes_a_report_only_when_a_figure_changed(stores: dict[str, Store]) -> None:
    t1 = stores["t1"]
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", 1000 * MINUTE) == 0  # no village ever seen
    state.record_peer(t1, "v11", "hello", 1000 * MINUTE)
    up = t1.vector().get("v11/up", (0, b""))[0]
    state.record_own_heads(t1, "v11", {"v11/up": (up + 10, b"\x01" * 32)}, 1000 * MINUTE)
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", 1001 * MINUTE) == 1
    assert domain_contacts.reported(t1.conn)["v11"]["waiting"] == 10
    # quiet: the same figures, a later contact within the step: nothing written
    state.record_peer(t1, "v11", "hello", 1002 * MINUTE)
    before = t1.vector()["t1/up"][0]
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", 1003 * MINUTE) == 0
    assert t1.vector()["t1/up"][0] == before
    # a contact one step later is reported once
    later = 1000 * MINUTE + contacts.CONTACT_STEP_MS
    state.record_peer(t1, "v11", "hello", later)
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", later + 1) == 1
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", later + 2) == 0
    # the laptop's entries arrive: waiting drops to 0, which is a change
    state.record_own_heads(t1, "v11", {"v11/up": (up, b"")}, later + 3)
    assert contacts.report_contacts(t1, KEYS["t1"], "t1", later + 4) == 1
    assert domain_contacts.reported(t1.conn)["v11"]["waiting"] == 0


def test_a_child_never_reports_heads_of_feeds_it_does_not_write(stores: dict[str, Store]) -> None:
    t1 = stores["t1"]
    state.record_peer(t1, "v11", "hello", MINUTE)
    state.record_own_heads(t1, "v11", {"v11/up": (3, b"\x01" * 32), "v12/up": (500, b"\x01" * 32)}, MINUTE)
    assert state.waiting_on(t1, "v11") == (3, MINUTE)
    assert state.waiting_on(t1, "v21") is None  # never said


def test_hello_carries_the_childs_own_heads_and_stays_readable_without_them() -> None:
    vector = {"v11/up": (7, b"\x02" * 32), "county/*": (3, b"\x03" * 32), "t1/*": (1, b"\x04" * 32)}
    hello = session.Hello.of(vector, lambda f: True, "v11")
    assert hello.own == {"v11/up": (7, b"\x02" * 32)}
    assert session.Hello.decode(hello.encode()) == hello
    old = session.Hello.of(vector, lambda f: True)  # a child that predates the field
    assert b"own" not in old.encode()
    assert session.Hello.decode(old.encode()) == old
    assert old.digest == hello.digest == digest(vector)


def test_a_matching_hello_clears_the_backlog(stores: dict[str, Store]) -> None:
    """The backlog counts from what the child last said it holds; a matching hello says: all of it."""
    county = stores["county"]
    directory = county.directory()
    shared = session.shared("t1", "county", directory)
    state.record_peer_vector(county, "t1", {})
    assert state.backlog(county, "t1", lambda f: routing.should_hold("t1", f, directory))[0] > 0
    held = {f: v for f, v in county.vector().items() if shared(f)}
    reply = session.answer_hello(session.Hello.of(held, shared, "t1"), county.vector(), shared, "t1")
    assert reply.match
    state.record_peer_vector(county, "t1", held)  # what the sync API does on a match
    assert state.backlog(county, "t1", lambda f: routing.should_hold("t1", f, directory)) == (0, None)


def test_the_county_shows_the_newer_of_its_own_contact_and_the_townships_report(stores: dict[str, Store]) -> None:
    county, t1 = stores["county"], stores["t1"]
    body = {**figures("v11", 50 * MINUTE, waiting=4), "forks": 1, "quarantined": 3, "backlog": 7}
    report(t1, "t1", body, 51 * MINUTE * 1000)
    carry(t1, "t1", county, "county")
    view = contacts.contact_view(county, "v11", domain_contacts.reported(county.conn))
    assert view == {
        "contact_via": "township",
        "last_contact_ms": 50 * MINUTE,
        "waiting_up": 4,
        "waiting_reported_ms": 51 * MINUTE,
        "forks_count": 1,
        "quarantined_entries": 3,
        "relayed_backlog": 7,
        "relayed_oldest_unsent_hlc": None,
    }
    # the village falls back to the county later: the county's own contact is the newer news
    state.record_peer(county, "v11", "hello", 60 * MINUTE)
    state.record_own_heads(county, "v11", {}, 60 * MINUTE)
    view = contacts.contact_view(county, "v11", domain_contacts.reported(county.conn))
    assert (view["contact_via"], view["last_contact_ms"], view["waiting_up"]) == ("direct", 60 * MINUTE, 0)
    assert (view["forks_count"], view["quarantined_entries"]) == (1, 3)  # still as the township last saw them
