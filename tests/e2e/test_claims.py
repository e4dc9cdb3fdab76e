"""Issue 12, reproduction 1 with real processes: a township cannot replace a village's case at the county.

The village's case reaches the township by a real sync; before forwarding, the
township signs its own `case.new` with the same case id and another applicant
into its own up feed (what its key can do), then syncs up by hand. The county
keeps the village's case and applicant, and `county-server case conflicts`
shows the township's entry as a reject, by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sanji_domain import kinds
from sanji_node.child import ChildNode
from sync_protocol.entries import Record

from .cluster import PLACE_NAMES, Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("claims"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "3600")  # forwards only when told (township-node sync)
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def test_a_township_cannot_replace_a_villages_case_at_the_county(cluster: Cluster) -> None:
    c = cluster
    (filed,) = c.new_cases("v11", 1, "高龄津贴申请", "--offline")
    c.run("v11", "sync")
    township = ChildNode.load(c.nodes["t1"].data)
    with township.open_store() as store:
        (original,) = [e for e in store.entries("v11/up") if e.kind == kinds.CASE_NEW]
        forged = {**original.value, "applicant": {**original.value["applicant"], "name": "冒名顶替"},
                  "channel": "窗口", "township": "t1", "village": None}  # fmt: skip
        hlc = max((e.hlc for e in store.entries("t1/up")), default=original.hlc) + 1
        store.append(township.key, "t1/up", [Record(kinds.CASE_NEW, original.key, forged, hlc)])
    c.run("t1", "sync")
    county = c.store("county")
    try:
        row = county.conn.execute(
            "SELECT c.author, c.village, c.channel, p.data FROM cases c JOIN case_pii p USING (case_id) "
            "WHERE case_id = ?",
            (filed["case_id"],),
        ).fetchone()
        refused = county.conn.execute("SELECT feed, kind, key FROM fold_rejects").fetchall()
    finally:
        county.close()
    assert row[:3] == ("v11", "v11", "代办")
    assert json.loads(row[3])["name"] == original.value["applicant"]["name"] != "冒名顶替"
    assert refused == [("t1/up", kinds.CASE_NEW, filed["case_id"])]
    # what the county officer reads: the reject, by name, beside the case that holds the id
    text = c.run("county", "case", "conflicts").stdout
    (line,) = [ln for ln in text.splitlines() if filed["case_id"] in ln]
    assert line.split()[2:7] == [PLACE_NAMES["t1"], "办件登记", filed["case_id"], filed["local_no"], PLACE_NAMES["v11"]]
    # and where the officer looks at the nodes: the township is flagged, the village is not
    counts = {r["node"]: r["rejects"] for r in c.json("county", "nodes")["nodes"]}
    assert (counts["t1"], counts["v11"]) == (1, 0)
