"""`fork.evidence` (docs/protocol.md §8.8): a township reports the fork it found on a village's feed, and the
county records it after the township's next sync, checked like any batch, refused when its claims are false."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from sanji_node.fork_reports import report_forks
from sync_protocol.entries import Record
from sync_protocol.errors import ProtocolError, SyncError
from sync_protocol.evidence import PART_BYTES, check_fork, check_part, evidence_bodies

from .network import Network, sync_link
from .test_fork_resolution import decide, forked


def county_forks(net: Network) -> list[dict]:
    return [f for f in net.county.store.forks() if f["feed"] == "v11/up"]


def test_the_township_reports_and_the_county_records_the_fork_after_one_sync(tmp_path: Path) -> None:
    net, _ = forked(tmp_path)
    t, county = net.nodes["t1"], net.county
    assert county_forks(net) == [] and "v11/up" not in county.store.frozen_feeds()
    assert report_forks(t.store, t.key, "t1", 5_000) == 1
    assert report_forks(t.store, t.key, "t1", 5_001) == 0  # each batch once
    sync_link(t, county)
    (f,) = county_forks(net)
    (at_township,) = [x for x in t.store.forks() if x["feed"] == "v11/up"]
    assert f["reported_by"] == "t1" and f["seq"] == at_township["seq"] == 2
    assert f["remote_hash"] == at_township["remote_hash"] and f["local_hash"] == at_township["local_hash"]
    assert f["remote_last_seq"] == 3 and f["detected_at"] == int(at_township["detected_at"] * 1000) / 1000
    assert f["resolved_seq"] is None
    assert "v11/up" not in county.store.frozen_feeds()  # a report does not freeze the county's copy
    assert county.store.refused_fork_reports() == []
    decide(net)  # the county's decision settles the reported fork too
    (f,) = county_forks(net)
    assert f["resolved_seq"] == county.store.vector()["v11/up"][0]


def test_a_report_after_the_decision_is_recorded_as_settled(tmp_path: Path) -> None:
    net, _ = forked(tmp_path)
    t, county = net.nodes["t1"], net.county
    decide(net)
    report_forks(t.store, t.key, "t1", 5_000)
    sync_link(t, county)
    (f,) = county_forks(net)
    assert f["resolved_seq"] == county.store.vector()["v11/up"][0]


def test_a_big_batch_travels_in_parts(tmp_path: Path) -> None:
    net, _ = forked(tmp_path)
    t = net.nodes["t1"]
    (row,) = t.store.unreported_fork_batches()
    big = row["batch"] * (PART_BYTES // len(row["batch"]) * 2 + 1)  # not a valid batch: the parts only
    bodies = evidence_bodies(
        feed="v11/up", fork_at=2, found_ms=1, local_hash=row["local_hash"], held=row["held"], batch=big
    )
    assert len(bodies) == 3 and [b["batch"]["part"] for b in bodies] == [0, 1, 2]
    d = t.store.directory()
    parts = [check_part(b, writer="t1", directory=d) for b in bodies]
    assert b"".join(p.data for p in parts) == big
    with pytest.raises(ProtocolError, match=r"SJB1|batch"):
        check_fork(parts, county=net.county.store.county, directory=d)
    with pytest.raises(ProtocolError, match="belong together"):
        check_fork(parts[:2], county=net.county.store.county, directory=d)


def claims(net: Network) -> dict:
    t = net.nodes["t1"]
    (row,) = t.store.unreported_fork_batches()
    (body,) = evidence_bodies(
        feed=row["feed"], fork_at=row["fork_at"], found_ms=1, local_hash=row["local_hash"], held=row["held"],
        batch=row["batch"],
    )  # fmt: skip
    return body


def test_false_claims_are_refused_and_change_nothing(tmp_path: Path) -> None:
    net, _ = forked(tmp_path)
    body = claims(net)
    d = net.county.store.directory()
    county = net.county.store.county
    good = check_fork([check_part(body, writer="t1", directory=d)], county=county, directory=d)
    assert good.fork_at == 2 and good.first == 2 and good.last == 3
    with pytest.raises(ProtocolError, match="own children"):
        check_part(body, writer="t2", directory=d)  # another township may not report on v11
    with pytest.raises(ProtocolError, match="own children"):
        check_part(body, writer="v12", directory=d)
    with pytest.raises(ProtocolError, match="exactly"):
        check_part({**body, "extra": 1}, writer="t1", directory=d)
    part = check_part({**body, "local_hash": good.remote_hash.hex()}, writer="t1", directory=d)
    with pytest.raises(ProtocolError, match="no fork"):
        check_fork([part], county=county, directory=d)
    with pytest.raises(ProtocolError, match="cover"):
        check_fork([check_part({**body, "fork_at": 9}, writer="t1", directory=d)], county=county, directory=d)
    data = bytearray(base64.b64decode(body["batch"]["data"]))
    data[-5] ^= 1  # a bit of the signature flipped: the sha256 is made to match, the signature is not
    tampered = {
        **body,
        "batch": {
            **body["batch"],
            "data": base64.b64encode(bytes(data)).decode(),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    }
    with pytest.raises(SyncError):
        check_fork([check_part(tampered, writer="t1", directory=d)], county=county, directory=d)


def test_a_false_report_written_by_a_township_is_kept_as_refused_at_the_county(tmp_path: Path) -> None:
    net, _ = forked(tmp_path)
    t, county = net.nodes["t1"], net.county
    body = claims(net)
    lie = {**body, "fork_at": 9}  # signed by t1, but the batch does not cover it
    t.store.append(t.key, "t1/up", [Record("fork.evidence", "v11/up", lie, 6_000)])
    sync_link(t, county)
    assert county_forks(net) == []
    (refused,) = county.store.refused_fork_reports()
    assert refused["reported_in"] == "t1/up" and "cover" in refused["reason"]
    assert county.store.vector()["t1/up"] == t.store.vector()["t1/up"]  # the township's feed still arrives
