"""`fork.resolve` (docs/protocol.md §8.7): the county's decision on a fork, its strict body check, the freeze
lifted where the copy holds the canonical entry, and the laptop's re-issue without duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanji_domain.schema import domain_migrations
from sanji_node import resolve, state
from sanji_node.state import node_migrations
from sync_protocol.entries import Record
from sync_protocol.errors import ProtocolError, SyncError
from sync_protocol.forks import KIND_FORK_RESOLVE, check_resolution, resolution_body
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status

from .network import Network, build_network, distribute_membership, sync_link


def event(case_id: str, n: int) -> dict[str, object]:
    return {"action": "submit", "at_ms": 1_000 + n, "case_id": case_id, "n": n}


def forked(tmp_path: Path) -> tuple[Network, Store]:
    """v11 wrote e1..e3 and synced up to the county; a restored copy (before e2) wrote x2, x3: forked at t1."""
    net = build_network(tmp_path)
    distribute_membership(net)
    v, t, county = net.nodes["v11"], net.nodes["t1"], net.county
    v.store.append(v.key, "v11/up", [Record("case.event", "a", event("a", 1), 10)])
    restored = Store(tmp_path / "restored.sqlite")
    restored.set_trust(county.store.trust)
    restored.set_node("v11")
    node_migrations.apply(restored.db)
    domain_migrations.apply(restored.db)
    for feed in ("county/*", "v11/up"):
        restored.receive(v.store.read_batch(Range(feed, 1, v.store.vector()[feed][0])))
    v.store.append(
        v.key, "v11/up", [Record("case.event", "b", event("b", 2), 11), Record("case.event", "c", event("c", 3), 12)]
    )
    sync_link(v, t)
    sync_link(t, county)
    # the restored copy writes on: "b" again with the same content, and "x" that exists only here
    restored.append(
        v.key, "v11/up", [Record("case.event", "b", event("b", 2), 20), Record("case.event", "x", event("x", 9), 21)]
    )
    verdict = t.store.receive(restored.read_batch(Range("v11/up", 2, 3)))
    assert [o.status for o in verdict.outcomes] == [Status.FORK] and "v11/up" in t.store.frozen_feeds()
    return net, restored


def decide(net: Network, reason: str = "笔记本从旧备份恢复") -> None:
    county = net.county
    seq, digest = county.store.vector()["v11/up"]
    county.store.append(
        county.key,
        "county/v11",
        [Record(KIND_FORK_RESOLVE, "v11/up", resolution_body("v11", "v11/up", seq, digest, reason), 30)],
    )


def test_the_body_is_checked_strictly(net: Network) -> None:
    d = net.county.store.directory()
    good = resolution_body("v11", "v11/up", 3, b"\x01" * 32, "恢复")
    assert check_resolution(good, feed="county/v11", directory=d).seq == 3
    bad = [
        ({**good, "extra": 1}, "county/v11", "exactly"),
        ({k: v for k, v in good.items() if k != "reason"}, "county/v11", "exactly"),
        (good, "county/v12", "written only in county/v11"),
        (good, "county/*", "written only in county/v11"),
        ({**good, "node": "county"}, "county/county", "not an enrolled township or village"),
        ({**good, "node": "v99"}, "county/v99", "not an enrolled"),
        ({**good, "feed": "v12/up"}, "county/v11", "does not write"),
        ({**good, "canonical": {"hash": "01" * 32, "seq": 0}}, "county/v11", "seq ≥ 1"),
        ({**good, "canonical": {"hash": "AB" * 32, "seq": 1}}, "county/v11", "hex"),
        ({**good, "canonical": {"hash": "01" * 32, "seq": True}}, "county/v11", "seq ≥ 1"),
        ({**good, "reason": " "}, "county/v11", "reason"),
    ]
    for body, feed, match in bad:
        with pytest.raises(ProtocolError, match=match):
            check_resolution(body, feed=feed, directory=d)


def test_only_the_county_writes_a_decision(net: Network) -> None:
    t, county = net.nodes["t1"], net.county
    body = resolution_body("v11", "v11/up", 1, b"\x01" * 32, "恢复")
    with pytest.raises(SyncError, match="written only in county/v11"):  # a township, in the feed it addresses to v11
        t.store.append(t.key, "t1/v11", [Record(KIND_FORK_RESOLVE, "v11/up", body, 1)])
    with pytest.raises(SyncError, match="written only in county/v11"):  # the county, in the wrong feed
        county.store.append(county.key, "county/*", [Record(KIND_FORK_RESOLVE, "v11/up", body, 1)])
    assert "t1/v11" not in t.store.vector()


def test_a_decision_lifts_the_freeze_where_the_copy_is_canonical(tmp_path: Path) -> None:
    net, restored = forked(tmp_path)
    v, t, county = net.nodes["v11"], net.nodes["t1"], net.county
    decide(net)
    sync_link(t, county)
    assert t.store.frozen_feeds() == {}
    (fork,) = t.store.forks()
    assert fork["resolved_seq"] == 3  # the evidence stays, marked resolved
    # the other branch, delivered again, is refused as a fork but no longer freezes the feed
    verdict = t.store.receive(restored.read_batch(Range("v11/up", 2, 3)))
    assert [o.status for o in verdict.outcomes] == [Status.FORK] and t.store.frozen_feeds() == {}
    # the author's continuation of the canonical branch is an ordinary new entry
    v.store.append(v.key, "v11/up", [Record("case.event", "d", event("d", 4), 40)])
    sync_link(v, t)
    assert t.store.vector()["v11/up"][0] == 4
    # the restored copy (the other branch) keeps its feed frozen: the decision names a hash it does not hold
    restored.conn.execute("UPDATE feeds SET frozen = 1, frozen_reason = 'fork' WHERE feed = 'v11/up'")
    restored.conn.commit()
    restored.receive(county.store.read_batch(Range("county/v11", 1, 1)))
    assert "v11/up" in restored.frozen_feeds() and resolve.decided_own_forks(restored, "v11") == ["v11/up"]
    restored.close()
    net.close()


def test_the_laptop_reissues_only_what_the_canonical_branch_lacks(tmp_path: Path) -> None:
    net, restored = forked(tmp_path)
    v, t, county = net.nodes["v11"], net.nodes["t1"], net.county
    decide(net)
    sync_link(t, county)
    # as long as the parent's copy: not frozen here, but a sync found it diverged (sanji_node.syncer)
    state.set_state(restored, forked_feeds="v11/up")
    restored.conn.execute("INSERT INTO ack_marks (feed, seq) VALUES ('v11/up', 1)")  # the parent held seq 1, our hash
    restored.conn.commit()
    assert resolve.decided_own_forks(restored, "v11") == []  # no decision yet
    restored.receive(county.store.read_batch(Range("county/v11", 1, 1)))
    assert restored.frozen_feeds() == {} and resolve.decided_own_forks(restored, "v11") == ["v11/up"]
    assert resolve.set_aside(restored, "v11", "v11/up") == 2
    assert restored.vector()["v11/up"][0] == 1 and restored.frozen_feeds() == {}
    assert resolve.pending(restored) == 2  # set aside, not yet re-issued: `case new` refuses until a sync
    restored.receive(t.store.read_batch(Range("v11/up", 2, 3)))  # the canonical branch: a plain continuation now
    assert resolve.decided_own_forks(restored, "v11") == []  # taken
    assert resolve.reissue(restored, v.key, "430321101201", 50) == 1  # "b" is on the canonical branch already
    (new,) = restored.entries("v11/up", 4)
    assert (
        new.key == "x"
        and new.value["reissue_of"]
        == restored.conn.execute("SELECT hex(hash) FROM fork_stash WHERE key = 'x'").fetchone()[0].lower()
    )
    assert {r["key"]: (r["skipped"], r["reissued_seq"]) for r in resolve.stash_view(restored)} == {
        "b": (1, None),
        "x": (0, 4),
    }
    # a re-issue is a normal entry upstream, whatever its reissue_of names
    verdict = t.store.receive(restored.read_batch(Range("v11/up", 4, 4)))
    assert [o.status for o in verdict.outcomes] == [Status.ACCEPTED]
    restored.append(v.key, "v11/up", [Record("case.event", "y", {**event("y", 5), "reissue_of": "00" * 32}, 60)])
    verdict = t.store.receive(restored.read_batch(Range("v11/up", 5, 5)))
    assert [o.status for o in verdict.outcomes] == [Status.ACCEPTED]
    assert resolve.reissue(restored, v.key, "430321101201", 70) == 0  # done once
    assert resolve.pending(restored) == 0
    restored.close()
    net.close()
