"""The county's review of quarantined batches (`Store.decide_quarantined`, docs/protocol.md §5.6): released
into the feed as if received, or refused and kept out of it; idempotent, one transaction, and a crash at any
step leaves the store as it was before or as it is after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync_protocol.entries import Record
from sync_protocol.errors import StoreError
from sync_protocol.membership import KIND_REVOKE
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import REFUSED, RELEASED, Store
from sync_protocol.verify import Status

from .network import Network, build_network, distribute_membership, sync_link


def case(i: int) -> dict[str, object]:
    return {"case_id": f"c{i}", "n": i}


def revoked_and_written_on(net: Network) -> Store:
    """v11 files 2 cases (at the county), is revoked there, then writes 3 more in two commits. The county
    quarantines the first batch (3..3, id 1) and, when the laptop sends again from 3, the whole run (3..5, id 2):
    a later batch would be a gap."""
    county, t, v = net.county, net.nodes["t1"], net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", case(i), 10 + i) for i in range(2)])
    sync_link(v, t)
    sync_link(t, county)
    seq, digest = county.store.vector()["v11/up"]
    body = {"node": "v11", "last_valid": {"v11/up": {"seq": seq, "hash": digest.hex()}}, "reason": "笔记本丢失"}
    county.store.append(county.key, "county/*", [Record(KIND_REVOKE, "v11", body, 20)])
    v.store.append(v.key, "v11/up", [Record("case.new", "c3", case(3), 30)])
    v.store.append(v.key, "v11/up", [Record("case.new", "c4", case(4), 31), Record("case.new", "c5", case(5), 32)])
    for rng in (Range("v11/up", 3, 3), Range("v11/up", 3, 5)):
        (o,) = county.store.receive(v.store.read_batch(rng)).outcomes
        assert o.status is Status.QUARANTINED
    return county.store


@pytest.fixture()
def net(tmp_path: Path) -> Network:
    n = build_network(tmp_path / "net", townships=1, villages_per_township=1)
    distribute_membership(n)
    return n


def test_release_applies_the_batch_as_if_received_and_runs_the_fold(net: Network) -> None:
    store = revoked_and_written_on(net)
    audited: list[int] = []
    assert [q["decision"] for q in store.quarantined()] == [None, None]
    assert store.decide_quarantined(1, RELEASED, "核实为本人补录", also=lambda: audited.append(1)) is True
    assert store.vector()["v11/up"][0] == 3
    assert ("v11/up", 3) in net.county.applied  # folded like any received entry
    assert [e.value for e in store.entries("v11/up", 3)] == [case(3)]
    (q1, q2) = store.quarantined()
    assert (q1["decision"], q1["decision_reason"], q2["decision"]) == (RELEASED, "核实为本人补录", None)
    assert [q["id"] for q in store.quarantined(waiting_only=True)] == [2]
    assert audited == [1]
    # again: nothing changes, the caller's audit row is not written twice
    assert store.decide_quarantined(1, RELEASED, "再点一次", also=lambda: audited.append(2)) is False
    assert audited == [1] and store.quarantined()[0]["decision_reason"] == "核实为本人补录"
    store.decide_quarantined(2, RELEASED, "核实")  # overlaps what is held: only 4..5 are new
    assert store.vector()["v11/up"][0] == 5
    assert [e.value for e in store.entries("v11/up", 3)] == [case(3), case(4), case(5)]
    assert store.head("v11/up") is not None and store.head("v11/up").seq == 5  # type: ignore[union-attr]
    # the same batch delivered again is a duplicate now, and the decision stays
    (o,) = store.receive(net.nodes["v11"].store.read_batch(Range("v11/up", 4, 5))).outcomes
    assert o.status is Status.DUPLICATE


def test_a_batch_already_held_is_released_with_nothing_to_add(net: Network) -> None:
    store = revoked_and_written_on(net)
    store.decide_quarantined(2, RELEASED, "核实")
    n = store.count("entries")
    assert store.decide_quarantined(1, RELEASED, "核实") is True
    assert store.count("entries") == n and store.quarantined(waiting_only=True) == []


def test_a_second_history_cannot_be_released_over_the_first(net: Network, tmp_path: Path) -> None:
    store = revoked_and_written_on(net)
    v = net.nodes["v11"]
    other = Store(tmp_path / "other.sqlite")  # the revoked key signs another seq 3
    other.set_trust(store.trust)
    for feed, end in (("county/*", store.vector()["county/*"][0]), ("v11/up", 2)):
        other.receive(
            store.read_batch(Range(feed, 1, end)) if feed != "v11/up" else v.store.read_batch(Range(feed, 1, 2))
        )
    other.append(v.key, "v11/up", [Record("case.new", "c3-other", case(33), 40)])
    (o,) = store.receive(other.read_batch(Range("v11/up", 3, 3))).outcomes
    assert o.status is Status.QUARANTINED
    store.decide_quarantined(1, RELEASED, "核实")
    before = store.vector()
    with pytest.raises(StoreError, match="不一致，不能放行"):
        store.decide_quarantined(3, RELEASED, "核实")
    assert store.vector() == before and store.quarantined()[2]["decision"] is None
    assert store.decide_quarantined(3, REFUSED, "另一份历史") is True


def test_refuse_keeps_it_recorded_and_out_of_the_state(net: Network) -> None:
    store = revoked_and_written_on(net)
    before = (store.vector(), store.count("entries"), list(net.county.applied))
    assert store.decide_quarantined(1, REFUSED, "被盗后写入") is True
    assert (store.vector(), store.count("entries"), list(net.county.applied)) == before
    assert store.quarantined()[0]["decision"] == REFUSED and store.count("quarantine") == 2
    assert store.decide_quarantined(1, REFUSED, "again") is False
    with pytest.raises(StoreError, match="已经拒收，不能再改"):
        store.decide_quarantined(1, RELEASED, "改主意")
    # delivered again: still quarantined under the same record, still refused
    store.receive(net.nodes["v11"].store.read_batch(Range("v11/up", 3, 3)))
    assert store.count("quarantine") == 2 and store.quarantined()[0]["decision"] == REFUSED
    # batch 2 starts where the feed stops: it can still be released
    assert store.decide_quarantined(2, RELEASED, "核实") is True
    assert store.vector()["v11/up"][0] == 5


def test_bad_input_is_refused_and_changes_nothing(net: Network) -> None:
    store = revoked_and_written_on(net)
    with pytest.raises(StoreError, match="没有编号为 99 的隔离批次"):
        store.decide_quarantined(99, RELEASED, "x")
    with pytest.raises(StoreError, match="请写明"):
        store.decide_quarantined(1, RELEASED, "  ")

    def audit_fails() -> None:
        raise RuntimeError("the audit row could not be written")

    with pytest.raises(RuntimeError):
        store.decide_quarantined(1, RELEASED, "审计失败", also=audit_fails)
    assert store.vector()["v11/up"][0] == 2 and store.quarantined()[0]["decision"] is None


CRASH = """
import sys
from sync_protocol.sqlite_store import RELEASED, Store
store = Store(sys.argv[1])
store.decide_quarantined(1, RELEASED, "核实")
print("done")
"""


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_kill_at_any_step_leaves_before_or_after(net: Network, tmp_path: Path, n: int) -> None:
    revoked_and_written_on(net)
    path = tmp_path / "net" / "county.sqlite"
    net.close()
    env = {**os.environ, "SANJI_FAULT": f"quarantine:{n}"}
    done = subprocess.run([sys.executable, "-c", CRASH, str(path)], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "done" not in done.stdout  # killed at the nth step
    with Store(path) as after:
        (q1, _) = after.quarantined()
        held = after.vector()["v11/up"][0]
        if n < 3:  # killed inside the transaction: as before
            assert (held, q1["decision"], after.entries("v11/up", 3)) == (2, None, [])
        else:  # killed after the commit: all of it
            assert (held, q1["decision"]) == (3, RELEASED)
        assert after.decide_quarantined(1, RELEASED, "核实") is (n < 3)  # and it can be finished
        assert after.vector()["v11/up"][0] == 3
