"""The SQLite store adapter: one transaction per batch, idempotent apply, review tables, bundles."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sync_protocol import routing
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record, entry_hash
from sync_protocol.errors import BundleError, ProtocolError, SequenceError, StoreError, SyncError
from sync_protocol.membership import KIND_MEMBER, KIND_REVOKE
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store, Trust
from sync_protocol.verify import Status

from .network import COUNTY_CODE, Network, build_network, distribute_membership, exchange, seeded_key, sync_link


def snapshot(store: Store) -> tuple[object, ...]:
    return (
        store.vector(),
        store.count("entries"),
        store.count("heads"),
        store.count("quarantine"),
        store.count("forks"),
        store.frozen_feeds(),
    )


def case(i: int) -> dict[str, object]:
    return {"case_id": f"c{i}", "item": "高龄津贴申请", "applicant": {"name": "王秀英"}, "n": i}


def test_file_store_uses_wal_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    with Store(path) as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = set(s.db.table_names())
    assert {"entries", "feeds", "heads", "quarantine", "forks", "meta"} <= tables
    with Store(path) as s:  # opening again applies nothing twice
        assert set(s.db.table_names()) == tables


def test_trust_anchor_cannot_change(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as s:
        s.set_trust(Trust(COUNTY_CODE, "county", seeded_key("county").public.hex))
        with pytest.raises(StoreError, match="another county"):
            s.set_trust(Trust("430322", "county", seeded_key("county").public.hex))
    with Store(tmp_path / "b.sqlite") as s, pytest.raises(StoreError, match="no trust anchor"):
        s.directory()


def test_append_checks_author_key_and_feed(net: Network) -> None:
    v = net.nodes["v11"]
    entries, head = v.store.append(
        v.key, "v11/up", [Record("case.new", "c1", case(1), 10), Record("case.new", "c2", case(2), 11)]
    )
    assert [e.seq for e in entries] == [1, 2] and head.seq == 2 and head.hash == entries[-1].hash
    assert entries[1].prev == entries[0].hash
    assert v.applied == [("county/*", i) for i in range(1, 8)] + [("v11/up", 1), ("v11/up", 2)]
    with pytest.raises(ProtocolError, match="not the enrolled key"):
        v.store.append(net.nodes["v12"].key, "v11/up", [Record("case.new", "c3", case(3), 12)])
    with pytest.raises(SyncError, match="public feed"):
        v.store.append(v.key, "v11/*", [Record("note", "x", {}, 1)])
    with pytest.raises(ProtocolError, match="nothing to append"):
        v.store.append(v.key, "v11/up", [])
    with pytest.raises(ProtocolError, match="float"):
        v.store.append(v.key, "v11/up", [Record("case.new", "c3", {"fee": 1.5}, 12)])
    assert v.store.vector()["v11/up"][0] == 2


def test_stored_entries_rebuild_to_their_hashes(net: Network) -> None:
    v = net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(5)])
    for e in v.store.entries("v11/up"):
        assert entry_hash(e.header, e.body) == e.hash
        assert e.value["item"] == "高龄津贴申请"


def test_receiving_twice_changes_nothing(net: Network) -> None:
    v, t = net.nodes["v11"], net.nodes["t1"]
    sync_link(t, net.county)
    sync_link(v, t)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(3)])
    batch = v.store.read_batch(Range("v11/up", 1, 3))
    first = t.store.receive(batch)
    assert [o.status for o in first.outcomes] == [Status.ACCEPTED]
    before, applied = snapshot(t.store), list(t.applied)
    again = t.store.receive(batch)
    assert [o.status for o in again.outcomes] == [Status.DUPLICATE]
    assert snapshot(t.store) == before and t.applied == applied


def test_overlapping_batch_applies_only_what_is_new(net: Network) -> None:
    v, t = net.nodes["v11"], net.nodes["t1"]
    sync_link(t, net.county)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(3)])
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(3, 5)])
    t.store.receive(v.store.read_batch(Range("v11/up", 1, 3)))
    verdict = t.store.receive(v.store.read_batch(Range("v11/up", 1, 5)))
    assert [(o.status, o.first, o.last) for o in verdict.outcomes] == [
        (Status.DUPLICATE, 1, 3),
        (Status.ACCEPTED, 4, 5),
    ]
    assert [s for f, s in t.applied if f == "v11/up"] == [1, 2, 3, 4, 5]


def test_fold_failure_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    net = build_network(tmp_path)
    distribute_membership(net)
    t, v = net.nodes["t1"], net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", "c1", case(1), 10), Record("case.new", "c2", case(2), 11)])
    before = snapshot(t.store)

    def broken_fold(db, entries):  # type: ignore[no-untyped-def]
        db.execute("CREATE TABLE IF NOT EXISTS cases (id TEXT)")
        db.execute("INSERT INTO cases VALUES ('half-done')")
        raise RuntimeError("disk full in the middle of the fold")

    t.store.fold = broken_fold
    with pytest.raises(RuntimeError):
        t.store.receive(v.store.read_batch(Range("v11/up", 1, 2)))
    assert snapshot(t.store) == before
    assert t.store.conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'cases'").fetchone()[0] == 0
    net.close()


def test_invalid_membership_in_a_county_batch_is_refused_whole(net: Network) -> None:
    county, t = net.county, net.nodes["t1"]
    sync_link(t, county)
    before = snapshot(t.store)
    # the county signs a bad membership: the county's own store refuses to append it
    bad = {
        "division": "430321199000",
        "node": "t9",
        "parent": "t1",
        "pubkey": seeded_key("t9").public.hex,
        "role": "township",
    }
    with pytest.raises(ProtocolError, match="parent of a township"):
        county.store.append(county.key, "county/*", [Record(KIND_MEMBER, "t9", bad, 5)])
    assert county.store.vector()["county/*"][0] == 7
    sync_link(t, county)
    assert snapshot(t.store) == before


def test_revoked_author_is_quarantined_after_its_last_valid_seq(net: Network) -> None:
    county, t, v = net.county, net.nodes["t1"], net.nodes["v11"]
    sync_link(t, county)
    sync_link(v, t)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(2)])
    sync_link(v, t)
    sync_link(t, county)
    last = county.store.vector()["v11/up"]
    county.store.append(
        county.key,
        "county/*",
        [
            Record(
                KIND_REVOKE,
                "v11",
                {
                    "node": "v11",
                    "last_valid": {"v11/up": {"seq": last[0], "hash": last[1].hex()}},
                    "reason": "笔记本被盗",
                },
                20,
            )
        ],
    )
    v.store.append(v.key, "v11/up", [Record("case.new", "c9", case(9), 30)])  # the thief writes on
    verdict = county.store.receive(v.store.read_batch(Range("v11/up", 1, 3)))
    assert [o.status for o in verdict.outcomes] == [Status.DUPLICATE, Status.QUARANTINED]
    assert "revoked" in verdict.outcomes[1].reason
    assert county.store.vector()["v11/up"][0] == 2
    rows = county.store.quarantined()
    assert [(r["feed"], r["first_seq"], r["last_seq"]) for r in rows] == [("v11/up", 3, 3)]


def test_fork_freezes_the_feed_and_keeps_both(tmp_path: Path) -> None:
    net = build_network(tmp_path)
    distribute_membership(net)
    t, v = net.nodes["t1"], net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", "c1", case(1), 10)])
    sync_link(v, t)
    # a laptop restored from a backup taken before c1: the same key writes a different seq 1
    restored = Store(tmp_path / "restored.sqlite")
    restored.set_trust(net.county.store.trust)
    restored.receive_page(encode_page([net.county.store.read_batch(Range("county/*", 1, 7))]))
    restored.append(
        v.key, "v11/up", [Record("case.new", "c1-other", case(2), 11), Record("case.new", "c3", case(3), 12)]
    )
    before = t.store.count("entries")
    verdict = t.store.receive(restored.read_batch(Range("v11/up", 1, 2)))
    assert [o.status for o in verdict.outcomes] == [Status.FORK]
    assert t.store.count("entries") == before
    forks = t.store.forks()
    assert len(forks) == 1 and forks[0]["seq"] == 1 and forks[0]["local_hash"] != forks[0]["remote_hash"]
    assert "v11/up" in t.store.frozen_feeds()
    # later entries of the frozen feed are held for review, not applied
    v.store.append(v.key, "v11/up", [Record("case.new", "c4", case(4), 13)])
    verdict = t.store.receive(v.store.read_batch(Range("v11/up", 2, 2)))
    assert [o.status for o in verdict.outcomes] == [Status.QUARANTINED]
    assert t.store.count("entries") == before
    # an author whose own copy of a feed is frozen may not write on it
    v.store.conn.execute("UPDATE feeds SET frozen = 1, frozen_reason = 'fork' WHERE feed = 'v11/up'")
    v.store.conn.commit()
    with pytest.raises(SequenceError, match="frozen"):
        v.store.append(v.key, "v11/up", [Record("case.new", "c5", case(5), 14)])
    restored.close()
    net.close()


def test_a_page_cut_short_keeps_its_whole_batches(net: Network) -> None:
    county, t = net.county, net.nodes["t1"]
    for i in range(3):
        county.append("t1", "decision", f"d{i}", {"决定": "同意", "n": i}, hlc=100 + i)
    sync_link(t, county)
    pages = county.store.plan(t.store.vector(), lambda f: routing.may_push("county", "t1", f, county.store.directory()))
    assert pages == []
    for i in range(3, 6):
        county.append("t1", "decision", f"d{i}", {"决定": "同意", "n": i}, hlc=100 + i)
    batches = [county.store.read_batch(Range("county/t1", s, s)) for s in (4, 5, 6)]
    page = encode_page(batches)
    verdicts = t.store.receive_page(page[: len(page) - 10])
    assert [v.outcomes[0].status for v in verdicts] == [Status.ACCEPTED, Status.ACCEPTED, Status.REJECTED]
    assert "truncated" in verdicts[-1].outcomes[0].reason
    assert t.store.vector()["county/t1"][0] == 5
    exchange(county, t, county.store.directory())
    assert t.store.vector()["county/t1"] == county.store.vector()["county/t1"]


def test_plan_cuts_at_signed_heads_and_bounds_pages(net: Network) -> None:
    v, t = net.nodes["v11"], net.nodes["t1"]
    for c in range(4):
        v.store.append(v.key, "v11/up", [Record("case.new", f"c{c}-{i}", case(i), 10) for i in range(10)])
    pages = v.store.plan(t.store.vector(), lambda f: f == "v11/up", max_batch_bytes=2500, max_page_bytes=3000)
    ranges = [r for p in pages for r in p]
    assert ranges[0].start == 1 and ranges[-1].end == 40
    assert all(r.end % 10 == 0 for r in ranges)  # every batch ends at a commit's signed head
    assert len(pages) > 1


def test_bundle_moves_data_like_a_sync_and_imports_once(net: Network) -> None:
    county, t, v = net.county, net.nodes["t1"], net.nodes["v11"]
    sync_link(t, county)
    sync_link(v, t)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(20)])
    buf = io.BytesIO()
    d = v.store.directory()
    v.store.export_bundle(
        buf,
        key=v.key,
        source="v11",
        theirs=t.store.vector(),
        wanted=lambda f: routing.may_push("v11", "t1", f, d),
        created=1_700_000_000_000,
        target="t1",
    )
    buf.seek(0)
    verdicts = t.store.import_bundle(buf, name="v11-20261121.sjb")
    assert sum(o.last - o.first + 1 for vd in verdicts for o in vd.outcomes if o.status is Status.ACCEPTED) == 20
    before = snapshot(t.store)
    buf.seek(0)
    again = t.store.import_bundle(buf, name="v11-20261121.sjb")
    assert all(o.status is Status.DUPLICATE for vd in again for o in vd.outcomes)
    assert snapshot(t.store) == before
    sync_link(t, county)
    assert county.store.vector()["v11/up"] == v.store.vector()["v11/up"]


def test_bundle_from_a_stranger_or_another_county_is_refused(net: Network, tmp_path: Path) -> None:
    t, v = net.nodes["t1"], net.nodes["v11"]
    sync_link(t, net.county)
    buf = io.BytesIO()
    v.store.export_bundle(
        buf, key=seeded_key("stranger"), source="stranger", theirs={}, wanted=lambda f: False, created=1
    )
    buf.seek(0)
    with pytest.raises(BundleError, match="not enrolled"):
        t.store.import_bundle(buf, name="odd.sjb")
    buf = io.BytesIO()
    v.store.export_bundle(buf, key=net.nodes["v12"].key, source="v11", theirs={}, wanted=lambda f: False, created=1)
    buf.seek(0)
    with pytest.raises(BundleError, match="signature by v11 does not verify"):
        t.store.import_bundle(buf, name="forged.sjb")
    other = Store(tmp_path / "other.sqlite")
    other.set_trust(Trust("430322", "county", seeded_key("county").public.hex))
    other.db.execute("INSERT INTO feeds (feed, seq, hash, frozen) VALUES ('county/*', 0, x'', 0)")
    buf = io.BytesIO()
    from sync_protocol.bundle import BundleWriter

    BundleWriter(buf, key=seeded_key("county"), county="430322", source="county", vector={}, created=1).finish()
    buf.seek(0)
    with pytest.raises(BundleError, match="county 430322"):
        t.store.import_bundle(buf, name="elsewhere.sjb")
    other.close()
