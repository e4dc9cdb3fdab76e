"""Issue 11 acceptance 5: backlog figures the county can trust (real processes).

After quiet no-op syncs every node shows a backlog of 0 at the county, and
quiet syncs write nothing new. A village whose link is cut right after its
hello, with 10 cases not yet pushed, shows 10 waiting on the laptop at the
county after its township's next sync: the hello is a real signed request from
the village's key to the real township process, and nothing is pushed after it.
"""

from __future__ import annotations

from typing import Any

import pytest

from sanji_node.child import ChildNode
from sync_protocol import session

from .cluster import PASSPHRASE_ENV, Cluster, wait_for

VILLAGES = ("v11", "v12", "v21")
ITEM = "城乡居民医保参保登记"


def nodes(c: Cluster) -> dict[str, dict[str, Any]]:
    return {r["node"]: r for r in c.json("county", "nodes")["nodes"]}


def up_heads(c: Cluster) -> dict[str, int]:
    with c.store("county") as s:
        return {f: seq for f, (seq, _) in s.vector().items() if f.endswith("/up")}


def test_quiet_syncs_show_no_backlog_and_a_cut_village_shows_what_waits(
    three_tier: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = three_tier
    for v in VILLAGES:
        c.new_cases(v, 2, ITEM, "--offline")
        c.run(v, "sync")

    def quiet() -> bool:
        for v in VILLAGES:  # the county's numbers and receipts come down; then nothing more
            c.run(v, "sync")
        rows = nodes(c)
        return all(rows[n]["backlog"] == 0 for n in ("t1", "t2", *VILLAGES)) and all(
            rows[v]["contact_via"] == "township" and rows[v]["waiting_up"] == 0 for v in VILLAGES
        )

    wait_for(quiet, "every node's backlog at 0 after quiet syncs", step=0.5)
    rows = nodes(c)
    assert all(rows[n]["oldest_unsent_hlc"] is None for n in ("t1", "t2", *VILLAGES))

    # quiet syncs write nothing: no new contact report, the backlog stays 0
    before = up_heads(c)
    seen = {t: rows[t]["last_seen_ms"] for t in ("t1", "t2")}
    for v in VILLAGES:
        assert c.json(v, "sync")["noop"]
    wait_for(
        lambda: all(nodes(c)[t]["last_seen_ms"] > seen[t] + 2000 for t in ("t1", "t2")),
        "two more township syncs",
        step=0.5,
    )
    assert up_heads(c) == before
    assert all(r["backlog"] in (0, None) for r in nodes(c).values())

    # 梅花村's neighbour 新桥村 files 10 cases offline; its link drops right after its hello
    c.new_cases("v12", 10, ITEM, "--offline")
    monkeypatch.setenv(PASSPHRASE_ENV, c.env[PASSPHRASE_ENV])
    village = ChildNode.load(c.nodes["v12"].data)
    with village.open_store() as store:
        shared = session.shared("v12", "t1", store.directory())
        hello = session.Hello.of(store.vector(), shared, "v12")
    client = village.client()
    try:
        assert not client.hello(hello).match
    finally:
        client.close()

    def reported() -> dict[str, Any] | None:
        row = nodes(c)["v12"]
        return row if row["waiting_up"] == 10 else None

    row = wait_for(reported, "10 entries waiting on 新桥村's laptop, at the county", step=0.5)
    assert row["contact_via"] == "township" and row["last_contact_ms"] >= seen["t1"]
    text = c.run("county", "nodes").stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("v12 "))
    assert "经乡镇" in line and " 10 " in line
    with c.store("v12") as s:
        assert s.vector()["v12/up"][0] - 2 == 10  # the 10 are on the laptop only
    with c.store("t1") as s:
        assert s.vector()["v12/up"][0] == 2
