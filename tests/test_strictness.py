"""Edge cases a second implementation might get wrong: each must be refused, or bounded."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from sync_protocol import canonical
from sync_protocol.batches import decode_batch, encode_batch
from sync_protocol.bundle import iter_bundle
from sync_protocol.entries import Record, encode_header, genesis_hash
from sync_protocol.errors import ProtocolError, SyncError
from sync_protocol.heads import decode_head, sign_head
from sync_protocol.membership import KIND_MEMBER, KIND_REVOKE, Directory
from sync_protocol.planning import Range, cut_range, vector_from_wire
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status

from .network import COUNTY_CODE, Network, seeded_key


def test_version_true_is_not_version_1() -> None:
    head = sign_head(seeded_key("v11"), COUNTY_CODE, "v11/up", 1, bytes(32)).encode()
    with pytest.raises(ProtocolError, match="version"):
        decode_head(head.replace(b'"v":1', b'"v":true'))
    batch = encode_batch("v11/up", 1, bytes(32), [(1, "case.new", "k", b"{}")], head)
    (mlen,) = struct.unpack_from(">I", batch, 4)
    meta = batch[8 : 8 + mlen].replace(b'"v":1}', b'"v":true}')
    with pytest.raises(ProtocolError, match="batch version True"):
        decode_batch(batch[:4] + struct.pack(">I", len(meta)) + meta + batch[8 + mlen :])


def test_upper_case_hex_is_refused() -> None:
    head = sign_head(seeded_key("v11"), COUNTY_CODE, "v11/up", 1, bytes.fromhex("ab" * 32)).encode()
    with pytest.raises(ProtocolError, match="lower-case hex"):
        decode_head(head.replace(b"ab" * 32, b"AB" * 32))
    with pytest.raises(ProtocolError, match="lower-case hex"):
        vector_from_wire({"v11/up": [1, "AB" * 32]})


def test_division_codes_are_ascii_digits_and_unique() -> None:
    d = Directory(COUNTY_CODE, "county", seeded_key("county").public)
    d.apply(
        KIND_MEMBER,
        {
            "division": COUNTY_CODE + "000000",
            "node": "county",
            "parent": None,
            "pubkey": seeded_key("county").public.hex,
            "role": "county",
        },
    )
    t = {
        "division": "430321101000",
        "node": "t1",
        "parent": "county",
        "pubkey": seeded_key("t1").public.hex,
        "role": "township",
    }
    d.apply(KIND_MEMBER, t)
    with pytest.raises(ProtocolError, match="12 digits"):
        d.apply(KIND_MEMBER, {**t, "node": "t2", "division": "430321102００0"})
    with pytest.raises(ProtocolError, match="already belongs to node t1"):
        d.apply(KIND_MEMBER, {**t, "node": "t2", "pubkey": seeded_key("t2").public.hex})
    with pytest.raises(ProtocolError, match="does not write"):
        d.apply(KIND_REVOKE, {"node": "t1", "last_valid": {"t2/up": {"seq": 1, "hash": "00" * 32}}, "reason": "x"})
    with pytest.raises(ProtocolError, match="hex"):
        d.apply(KIND_REVOKE, {"node": "t1", "last_valid": {"t1/up": {"seq": 1, "hash": "zz"}}, "reason": "x"})


@pytest.mark.parametrize(("key", "phrase"), [("\n\u0301", "NFC"), ("\ud800", "not valid Unicode"), ("e\u0301", "NFC")])
def test_header_keys_are_canonical_as_written(key: str, phrase: str) -> None:
    with pytest.raises(ProtocolError, match=phrase):
        encode_header("v11/up", 1, bytes(32), 1, "case.new", key)


def test_header_spelling_equals_canonical_encoding() -> None:
    for key in ["", "c1", "办件-001", 'quote"and\\slash', "tab\there", "\x01"]:
        prev = genesis_hash(COUNTY_CODE, "v11/up")
        obj = {
            "feed": "v11/up",
            "hlc": 1_790_000_000_000_123,
            "key": key,
            "kind": "case.new",
            "prev": prev.hex(),
            "seq": 42,
            "v": 1,
        }
        assert encode_header("v11/up", 42, prev, 1_790_000_000_000_123, "case.new", key) == canonical.encode(obj)


def test_batches_never_exceed_the_entry_limit() -> None:
    commits = [(s, 10) for s in range(1, 25_001)]
    batches = cut_range(Range("v11/up", 1, 25_000), commits, 1 << 30, max_entries=10_000)
    assert [b.count for b in batches] == [10_000, 10_000, 5_000]
    with pytest.raises(ProtocolError, match="more than 3 entries"):
        cut_range(Range("v11/up", 1, 5), [(5, 10)], 1 << 30, max_entries=3)


def test_one_commit_is_bounded(net: Network) -> None:
    v = net.nodes["v11"]
    with pytest.raises(ProtocolError, match="at most 10000 entries"):
        v.store.append(v.key, "v11/up", [Record("case.new", str(i), {}, 1) for i in range(10_001)])
    with pytest.raises(ProtocolError, match=r"at most .* bytes"):
        v.store.append(v.key, "v11/up", [Record("case.new", str(i), {"t": "x" * 200_000}, 1) for i in range(100)])
    assert "v11/up" not in v.store.vector()


def test_fork_records_are_consistent_and_idempotent(net: Network, tmp_path: Path) -> None:
    t, v = net.nodes["t1"], net.nodes["v11"]
    twin = Store(tmp_path / "twin.sqlite")  # the same laptop, restored from an old backup
    twin.set_trust(t.store.trust)
    twin.receive(net.county.store.read_batch(Range("county/*", 1, 7)))
    for store, key in ((v.store, "a"), (twin, "a")):
        store.append(v.key, "v11/up", [Record("case.new", key, {"n": 1}, 1)])
    twin.append(v.key, "v11/up", [Record("case.new", "b", {"n": 2}, 2)])
    v.store.append(v.key, "v11/up", [Record("case.new", "c", {"n": 3}, 3)])
    v.store.append(v.key, "v11/up", [Record("case.new", "d", {"n": 4}, 4)])
    assert t.store.receive(twin.read_batch(Range("v11/up", 1, 2))).ok
    b_hash, c_hash = twin.vector()["v11/up"][1], v.store.entries("v11/up", 2, 2)[0].hash
    # the overlap (seq 2 differs) and the chain (seq 3's prev differs) name the same fork, once
    for rng in (Range("v11/up", 2, 2), Range("v11/up", 3, 3), Range("v11/up", 2, 3), Range("v11/up", 3, 3)):
        verdict = t.store.receive(v.store.read_batch(rng))
        assert [o.status for o in verdict.outcomes] == [Status.FORK]
        assert (verdict.outcomes[0].fork_at, verdict.outcomes[0].local_hash, verdict.outcomes[0].remote_hash) == (
            2,
            b_hash,
            c_hash,
        )
    forks = t.store.forks()
    assert [(f["feed"], f["seq"], f["local_hash"], f["remote_hash"]) for f in forks] == [("v11/up", 2, b_hash, c_hash)]
    assert t.store.vector()["v11/up"] == twin.vector()["v11/up"]
    twin.close()


def test_quarantine_records_are_idempotent(net: Network) -> None:
    t, v = net.nodes["t1"], net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", "a", {"n": 1}, 1)])
    t.store.conn.execute("INSERT INTO feeds (feed, seq, hash, frozen) VALUES ('v11/up', 0, x'', 1)")
    t.store.conn.commit()
    for _ in range(3):
        assert [o.status for o in t.store.receive(v.store.read_batch(Range("v11/up", 1, 1))).outcomes] == [
            Status.QUARANTINED
        ]
    assert len(t.store.quarantined()) == 1


def test_bundle_header_records_the_vector_it_was_cut_against(net: Network) -> None:
    v, t = net.nodes["v11"], net.nodes["t1"]
    v.store.append(v.key, "v11/up", [Record("case.new", "a", {"n": 1}, 1)])
    theirs = t.store.vector()
    buf = io.BytesIO()
    v.store.export_bundle(
        buf, key=v.key, source="v11", theirs=theirs, wanted=lambda f: f == "v11/up" or f == "county/*", created=5
    )
    buf.seek(0)
    header = next(iter_bundle(buf))
    assert header.vector == {f: s for f, s in theirs.items() if f in ("v11/up", "county/*")}
    assert "v11/up" not in header.vector  # the township had none of it


def test_errors_keep_their_hint_across_processes() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(ProtocolError("bad", hint="do this")))
    assert isinstance(e, SyncError) and e.hint == "do this" and str(e) == "bad (do this)"
