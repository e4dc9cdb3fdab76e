"""Issue 3 acceptance, with real processes: one county, two townships, three villages on 127.0.0.1."""

from __future__ import annotations

import os
import time

import requests

from sync_protocol import session
from sync_protocol.auth import sign_request
from sync_protocol.batches import decode_batch, encode_page
from sync_protocol.bundle import iter_bundle
from sync_protocol.errors import AuthorizationError
from sync_protocol.http_client import ParentClient
from sync_protocol.keys import PublicKey, SigningKey
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store

from .cluster import PASSPHRASE_ENV, Cluster, wait_for
from .conftest import VILLAGES, catalog_file


def store_of(c: Cluster, name: str) -> Store:
    return c.store(name)


def count(c: Cluster, name: str, feed: str, kind: str | None = None) -> int:
    with store_of(c, name) as s:
        q = "SELECT COUNT(*) FROM entries WHERE feed = ?" + (" AND kind = ?" if kind else "")
        return int(s.conn.execute(q, (feed, kind) if kind else (feed,)).fetchone()[0])


def sync_village(c: Cluster, name: str) -> dict:
    return c.json(name, "sync")


def test_catalog_of_200_items_reaches_every_village(three_tier: Cluster) -> None:
    c = three_tier
    path = catalog_file(c.root / "catalog200.json", 200)
    c.run("county", "catalog", "import", str(path), "--replace", "--yes")  # 全量替换: the demo items go
    with store_of(c, "county") as s:
        county_head = s.vector()["county/*"]
        root = PublicKey.from_hex(s.trust.root_key)
    for t in ("t1", "t2"):
        wait_for(lambda t=t: count(c, t, "county/*", "catalog.item") >= 200, f"{t} to pull the catalog")
    for v in VILLAGES:
        sync_village(c, v)
        with store_of(c, v) as s:
            assert s.vector()["county/*"] == county_head
            head = s.head("county/*")
            assert head is not None
            head.verify(root)  # the village holds the county's own signature over the catalog
            # the release in force: the 200 items of the file (the demo items it left out are cancelled, 取消)
            items = dict(s.conn.execute("SELECT state, COUNT(*) FROM catalog_items GROUP BY state").fetchall())
            assert items["在用"] == 200


def test_300_offline_cases_reach_the_county_exactly_once(three_tier: Cluster) -> None:
    c = three_tier
    made = {}
    for v in VILLAGES:
        made[v] = c.new_cases(v, 100, "高龄津贴申请", "--offline")
        assert len(made[v]) == 100
    for v in VILLAGES:
        report = sync_village(c, v)
        assert report["pushed_entries"] == 100
    for v in VILLAGES:
        wait_for(lambda v=v: count(c, "county", f"{v}/up", "case.new") >= 100, f"{v}'s cases at the county")
    with store_of(c, "county") as county:
        for v in VILLAGES:
            with store_of(c, v) as village:
                mine = {e.seq: (e.key, e.hash) for e in village.entries(f"{v}/up")}
                theirs = {e.seq: (e.key, e.hash) for e in county.entries(f"{v}/up")}
                assert theirs == mine  # every case, byte-identical (same content hash), once
            assert {m["case_id"] for m in made[v]} == {k for k, _ in theirs.values()}
        total = county.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT key) FROM entries WHERE kind = 'case.new'"
        ).fetchone()
        assert tuple(total) == (300, 300)
    # the county's receipts travel back down: 县级已接收 for every case
    for v in VILLAGES:

        def receipted(v: str = v) -> bool:
            sync_village(c, v)
            s = c.json(v, "status")
            return all(x["receipted_by_county"] and x["held_by_parent"] for x in s["cases"]) and len(s["cases"]) == 100

        wait_for(receipted, f"county receipts at {v}", step=0.5)
    text = c.run("v11", "status").stdout
    assert "县级已接收" in text and "已送达乡镇" in text and "待上传: 0 条" in text


def test_a_noop_sync_is_one_request(three_tier: Cluster) -> None:
    c = three_tier
    sync_village(c, "v12")
    report = sync_village(c, "v12")
    if not report["noop"]:  # a receipt may have arrived at the township in between
        report = sync_village(c, "v12")
    assert report["noop"] is True
    assert report["requests"] == 1


def _client(c: Cluster, village: str, url: str) -> ParentClient:
    key = SigningKey.from_pem((c.nodes[village].data / "node.key").read_bytes(), c.env[PASSPHRASE_ENV].encode())
    return ParentClient(url, key=key, node_id=village, county="430321", parent="t1", attempts=1)


def test_a_village_cannot_push_another_villages_feed(three_tier: Cluster) -> None:
    c = three_tier
    t1_url = c.nodes["t1"].url or ""
    with store_of(c, "v11") as v11:
        v11_head = v11.vector()["v11/up"]
        page = encode_page([v11.read_batch(Range("v11/up", 1, v11_head[0]))])
    with store_of(c, "t1") as t1:
        before = t1.vector().get("v11/up")
    client = _client(c, "v12", t1_url)
    try:
        client.push(page)
        raise AssertionError("the push was accepted")
    except AuthorizationError as e:
        assert "v12 may not push feed v11/up" in e.message
    resp = requests.post(t1_url + "/api/v1/sync/push", data=b"x", headers={"X-Sanji-Node": "v12"}, timeout=10)
    assert resp.status_code == 403 and resp.json()["code"] == "not_allowed"
    with store_of(c, "t1") as t1:
        assert t1.vector().get("v11/up") == before
    assert v11_head[0] >= 3


def test_a_replayed_request_is_refused(three_tier: Cluster) -> None:
    c = three_tier
    url = c.nodes["t1"].url or ""
    key = SigningKey.from_pem((c.nodes["v11"].data / "node.key").read_bytes(), c.env[PASSPHRASE_ENV].encode())
    body = session.Hello(bytes(32)).encode()

    headers = sign_request(key, county="430321", node="v11", to="t1", method="POST", path="/api/v1/sync/hello",
                           body=body, now_ms=int(time.time() * 1000), nonce=os.urandom(16))  # fmt: skip
    first = requests.post(url + "/api/v1/sync/hello", data=body, headers=headers, timeout=10)
    assert first.status_code == 200
    again = requests.post(url + "/api/v1/sync/hello", data=body, headers=headers, timeout=10)
    assert again.status_code == 403
    assert "replayed" in again.json()["message"]
    stale = sign_request(key, county="430321", node="v11", to="t1", method="POST", path="/api/v1/sync/hello",
                         body=body, now_ms=int(time.time() * 1000) - 3_600_000, nonce=os.urandom(16))  # fmt: skip
    late = requests.post(url + "/api/v1/sync/hello", data=body, headers=stale, timeout=10)
    assert late.status_code == 403 and "clock" in late.json()["hint"]


def test_bundles_carry_a_village_without_network(three_tier: Cluster) -> None:
    c = three_tier
    c.new_cases("v12", 25, "生育登记", "--offline")
    bundle = c.root / "v12-usb.sjb"
    c.run("v12", "export-bundle", "--to", str(bundle))
    with bundle.open("rb") as f:
        feeds = {decode_batch(item).feed for item in iter_bundle(f) if isinstance(item, bytes)}
    assert feeds == {"v12/up"}  # only what the township lacks: nothing it sent down itself
    # a damaged copy is refused whole, with the file named
    damaged = c.root / "v12-damaged.sjb"
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    damaged.write_bytes(bytes(raw))
    with store_of(c, "t1") as t1:
        before = t1.vector().get("v12/up")
    bad = c.run("t1", "import-bundle", str(damaged), check=False)
    assert bad.returncode == 2
    assert str(damaged) in bad.stderr and (
        "damaged" in bad.stderr or "refused" in bad.stderr or "does not verify" in bad.stderr
    )
    with store_of(c, "t1") as t1:
        assert t1.vector().get("v12/up") == before
    # the good copy moves the data on, as if synced; importing it again changes nothing
    first = c.json("t1", "import-bundle", str(bundle))
    assert first["accepted"] == 25
    again = c.json("t1", "import-bundle", str(bundle))
    assert again["accepted"] == 0
    with store_of(c, "v12") as v12:
        target = v12.vector()["v12/up"][0]
    wait_for(lambda: count(c, "county", "v12/up") >= target, "the bundle's cases at the county")


def test_a_revoked_node_is_refused(three_tier: Cluster) -> None:
    c = three_tier
    c.run("county", "revoke", "v21", "--reason", "笔记本丢失")
    wait_for(lambda: _revoked_at(c, "t2", "v21"), "t2 to learn of the revocation")
    out = c.run("v21", "sync", check=False)
    assert out.returncode == 2
    assert "revoked" in out.stderr
    nodes = c.json("county", "nodes")
    assert [n["revoked"] for n in nodes["nodes"] if n["node"] == "v21"] == [True]


def _revoked_at(c: Cluster, node: str, who: str) -> bool:
    with store_of(c, node) as s:
        m = s.directory().get(who)
        return m is not None and m.revocation is not None


def test_the_village_app_answers_only_on_this_machine(three_tier: Cluster) -> None:
    c = three_tier
    n = c.start("v12")
    try:
        ok = requests.get((n.url or "") + "/api/v1/status", timeout=10)
        assert ok.status_code == 200 and ok.json()["node"] == "v12"
        rebound = requests.get((n.url or "") + "/api/v1/status", headers={"Host": "evil.example:80"}, timeout=10)
        assert rebound.status_code == 403
        assert requests.get((n.url or "") + "/nope", timeout=10).json()["code"] == "not_found"
    finally:
        c.stop("v12")


def test_a_village_enrolled_after_a_big_release_catches_up_in_one_sync(three_tier: Cluster) -> None:
    """A fresh laptop's first sync brings the whole county feed, even when one commit is bigger than a page.

    The 200-item release is one commit of several hundred KB; the pages asked for here are 64 KiB. The
    laptop's own membership entry comes after it, so the session must compare the county feed before it
    knows it is enrolled, and must widen what it compares once its membership arrives.
    """
    c = three_tier
    c.enrol("v13", "village", "430321101203", "t1", c.nodes["t1"].url or "", "--no-sync")
    report = c.json("v13", "sync", "--page-kib", "64")
    assert report["pulled_entries"] > 200
    with store_of(c, "v13") as v13, store_of(c, "t1") as t1:
        assert v13.vector()["county/*"] == t1.vector()["county/*"]
        assert v13.conn.execute("SELECT COUNT(*) FROM catalog_items WHERE state = '在用'").fetchone()[0] == 200
    assert c.json("v13", "sync")["noop"] is True  # nothing left: one request
    c.new_cases("v13", 1, "生育登记", "--offline")  # enrolled, with the catalog: it can file
