"""Checking batches in worker processes gives exactly the outcome of the sequential path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_protocol.entries import Record
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store
from sync_protocol.verify import Status
from sync_protocol.verify_pool import BUFFER_CAP, MIN_BUFFER, WORKER_NICENESS, VerifyPool, _Buffers

from .network import Network, build_network, distribute_membership, seeded_key


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifyPool]:
    with VerifyPool(2) as p:
        yield p


def batches_for(net: Network) -> list[bytes]:
    """Village batches, one of them corrupted, and a membership change half-way."""
    v = net.nodes["v11"]
    for c in range(6):
        v.store.append(
            v.key, "v11/up", [Record("case.new", f"c{c}-{i}", {"办件": "生育登记", "n": i}, 10 + c) for i in range(50)]
        )
    out = [v.store.read_batch(Range("v11/up", 50 * c + 1, 50 * c + 50)) for c in range(6)]
    bad = bytearray(out[3])
    bad[-200] ^= 0x01  # a flipped bit in the last entry's body
    out[3] = bytes(bad)
    county = net.county
    t3 = {
        "division": "430321103000",
        "node": "t3",
        "parent": "county",
        "pubkey": seeded_key("t3").public.hex,
        "role": "township",
    }
    county.store.append(county.key, "county/*", [Record(KIND_MEMBER, "t3", t3, 50)])
    out.insert(2, county.store.read_batch(Range("county/*", 8, 8)))
    out.append(out[0])  # a duplicate
    return out


def state(net: Network, node: str) -> tuple[object, ...]:
    s = net.nodes[node].store
    return (s.vector(), s.count("entries"), s.count("quarantine"), sorted(net.nodes[node].applied))


def test_pool_and_sequential_paths_agree(tmp_path: Path, pool: VerifyPool) -> None:
    a, b = build_network(tmp_path / "a"), build_network(tmp_path / "b")
    for net in (a, b):
        distribute_membership(net)
    wire_a, wire_b = batches_for(a), batches_for(b)
    assert wire_a == wire_b  # fixed keys, fixed clocks: byte-identical inputs
    seq = [a.nodes["t1"].store.receive(x) for x in wire_a]
    par = b.nodes["t1"].store.receive_many(wire_b, pool)
    summary = lambda vs: [[(o.status, o.first, o.last, o.reason) for o in v.outcomes] for v in vs]  # noqa: E731
    assert summary(seq) == summary(par)
    statuses = [o.status for v in par for o in v.outcomes]
    assert Status.REJECTED in statuses and Status.GAP in statuses and Status.DUPLICATE in statuses
    assert "t3" in b.nodes["t1"].store.directory()
    assert state(a, "t1") == state(b, "t1")
    a.close()
    b.close()


@pytest.mark.parametrize("in_memory", [True, False])
def test_batches_of_a_node_enrolled_in_the_same_push_are_checked_again(
    pool: VerifyPool, tmp_path: Path, in_memory: bool
) -> None:
    net = build_network(None if in_memory else tmp_path)
    distribute_membership(net)
    county, t1 = net.county, net.nodes["t1"]
    v13_key = seeded_key("v13")
    body = {"division": "430321101203", "node": "v13", "parent": "t1", "pubkey": v13_key.public.hex, "role": "village"}
    county.store.append(county.key, "county/*", [Record(KIND_MEMBER, "v13", body, 60)])
    county.store.set_node("county")
    # the new village writes before t1 has heard of it; its batch comes in the same push as its membership
    scratch = Store(None)
    scratch.set_trust(county.store.trust)
    scratch.receive(county.store.read_batch(Range("county/*", 1, 8)))
    scratch.append(v13_key, "v13/up", [Record("case.new", "c1", {"办件": "生育登记"}, 61)])
    wire = [county.store.read_batch(Range("county/*", 8, 8)), scratch.read_batch(Range("v13/up", 1, 1))]
    verdicts = t1.store.receive_many(wire, pool)
    assert [o.status for v in verdicts for o in v.outcomes] == [Status.ACCEPTED, Status.ACCEPTED]
    assert t1.store.vector()["v13/up"][0] == 1
    scratch.close()
    net.close()


def _shared_segments() -> set[str]:
    shm = Path("/dev/shm")
    return {p.name for p in shm.iterdir()} if shm.is_dir() else set()


def test_batches_travel_by_shared_memory_or_by_pipe_with_the_same_outcome(tmp_path: Path) -> None:
    """The pipe is the fallback when shared memory cannot be had; results must not depend on the road."""
    before = _shared_segments()
    nets = [build_network(tmp_path / name) for name in ("shm", "pipe")]
    for net in nets:
        distribute_membership(net)
    outcomes = []
    for net, cap in zip(nets, (BUFFER_CAP, 0), strict=True):
        with VerifyPool(2) as p:
            p._buffers = _Buffers(cap)  # cap 0: no buffer may be made, every batch goes by pipe
            wire = batches_for(net)
            verdicts = net.nodes["t1"].store.receive_many(wire, p)
            outcomes.append([[(o.status, o.first, o.last, o.reason) for o in v.outcomes] for v in verdicts])
            assert (len(p._buffers._all) > 0) == (cap > 0)
        net.close()
    assert outcomes[0] == outcomes[1]
    assert _shared_segments() <= before  # every buffer unlinked when the pool closed


def test_a_check_left_part_way_leaves_its_buffers_usable(tmp_path: Path) -> None:
    net = build_network(tmp_path)
    distribute_membership(net)
    wire = batches_for(net)
    membership = net.nodes["t1"].store.membership()
    with VerifyPool(2) as p:
        first = p.check(wire, membership, window=4)
        next(first)
        first.close()  # the caller stopped reading: batches still in flight must not poison reused buffers
        again = list(p.check(wire, membership))
        assert [c.error is None for c in again] == [True, True, True, True, False, True, True, True]
        big = wire[0] + b"\x00" * (MIN_BUFFER + 1)  # too big for the buffers made so far: a bigger one is made
        (checked,) = p.check([big], membership)
        assert checked.error is not None and "stray bytes" in checked.error.message
        assert max(b.size for b in p._buffers._all) > MIN_BUFFER
    net.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_workers_run_below_the_writer() -> None:
    """The in-order writer is the serial step: the workers must not squeeze it on a small PC."""
    with VerifyPool(2) as p:
        p.warm_up()
        workers = list(p._executor._processes)
        assert len(workers) == 2
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert all(os.getpriority(os.PRIO_PROCESS, pid) >= min(mine + WORKER_NICENESS, 19) for pid in workers)
