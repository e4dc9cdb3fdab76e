"""督办 over real stores (domain fold, holding rule, verification): the county's notice reaches the
township's inbox and no one else's, the clerk's 签收 comes back, the county shows 已签收; a village or
another township cannot write or acknowledge one (a reject is recorded, the state does not change)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sanji_domain import commands, rejects, supervision
from sanji_domain.commands import Actor
from sanji_domain.errors import NotFoundError, TransitionError, ValidationError
from sanji_domain.fold import DomainFold
from sanji_domain.schema import domain_migrations
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store, Trust
from tests.network import Node, exchange
from tests.test_views_stats import ELDER, at, id_number, item

COUNTY = "430321"
SPECS = [  # node, role, parent, division, name
    ("county", "county", None, COUNTY + "000000", "示范县"),
    ("t1", "township", "county", COUNTY + "101000", "城关镇便民服务中心"),
    ("t2", "township", "county", COUNTY + "102000", "西渡镇便民服务中心"),
    ("v11", "village", "t1", COUNTY + "101201", "梅花村"),
]
KEYS = {n: SigningKey.from_seed(hashlib.sha256(f"supervision-test:{n}".encode()).digest()) for n, *_ in SPECS}
ACTORS = {
    n: Actor(n, role, div, parent, "county", person=person)
    for (n, role, parent, div, _), person in zip(SPECS, ("县监察员", "张窗口", "李窗口", "王代办"), strict=True)
}


class Net:
    def __init__(self, tmp: Path) -> None:
        self.nodes: dict[str, Node] = {}
        for node_id, role, parent, division, _ in SPECS:
            store = Store(tmp / f"{node_id}.sqlite", fold=DomainFold())
            domain_migrations.apply(store.db)
            store.set_trust(Trust(COUNTY, "county", KEYS["county"].public.hex))
            store.set_node(node_id)
            self.nodes[node_id] = Node(node_id, role, parent, division, KEYS[node_id], store)
        members = [
            Record(
                KIND_MEMBER,
                n,
                {"division": d, "name": name, "node": n, "parent": p, "pubkey": KEYS[n].public.hex, "role": r},
                1,
            )
            for n, r, p, d, name in SPECS
        ]
        county = self.nodes["county"]
        county.store.append(county.key, "county/*", members)
        county.store.append(
            county.key, "county/*", [Record("catalog.item", ELDER, item(ELDER, "高龄津贴申请", "乡"), 2)]
        )
        self.sync("t1", "t2", "v11")

    def conn(self, node: str) -> Any:
        return self.nodes[node].store.conn

    def run(self, cmd: commands.Command) -> commands.Command:
        author = cmd.feed.split("/")[0]
        self.nodes[author].store.append(KEYS[author], cmd.feed, cmd.records)
        return cmd

    def forge(self, author: str, feed: str, kind: str, key: str, body: dict[str, Any]) -> None:
        """An entry the commands would refuse, signed by its author all the same."""
        store = self.nodes[author].store
        (hlc,) = commands.stamps(store.conn, feed, at("2026-11-20", 12), 1)
        store.append(KEYS[author], feed, [Record(kind, key, body, hlc)])

    def sync(self, *nodes: str) -> None:
        """Each node's session with its parent (up, then down), in the order given; the village via t1."""
        for n in nodes:
            node = self.nodes[n]
            parent = self.nodes[str(node.parent)]
            exchange(node, parent, parent.store.directory())
            if parent.parent is not None:  # carry a village's feed on up, and the county's down to t1
                grand = self.nodes[parent.parent]
                exchange(parent, grand, grand.store.directory())
                exchange(grand, parent, grand.store.directory())
            exchange(parent, node, parent.store.directory())

    def close(self) -> None:
        for n in self.nodes.values():
            n.store.close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path)
    yield n
    n.close()


def file_case(net: Net) -> str:
    """梅花村 files a case; the township accepts it; both reach the county."""
    request = {
        "item": ELDER,
        "applicant": {"name": "刘一妹", "id_number": id_number(__import__("random").Random(3)), "phone": "13912345678"},
        "agent": {"proxy_no": "WT-1"},
        "materials": ["居民身份证", "户口簿"],
    }
    cmd = net.run(commands.new_cases(net.conn("v11"), ACTORS["v11"], [request], now_ms=at("2026-11-02", 9)))
    local_no = str(cmd.result["cases"][0]["local_no"])
    net.sync("v11")
    net.run(commands.transition(net.conn("t1"), ACTORS["t1"], local_no, "accept", {}, now_ms=at("2026-11-02", 15)))
    net.sync("t1")
    return local_no


def states(net: Net, node: str) -> dict[str, str]:
    return {r["notice_id"]: r["state"] for r in supervision.notices(net.conn(node))}


def test_a_notice_reaches_the_townships_inbox_and_the_ack_comes_back(net: Net) -> None:
    local_no = file_case(net)
    about_case = net.run(
        supervision.supervise(
            net.conn("county"),
            ACTORS["county"],
            case=local_no,
            window=None,
            reason="超期未办结，请于本周内办结",
            now_ms=at("2026-11-20", 9),
        )
    )
    about_window = net.run(
        supervision.supervise(
            net.conn("county"),
            ACTORS["county"],
            case=None,
            window="城关镇便民服务中心",
            reason="窗口排队过长",
            now_ms=at("2026-11-20", 10),
        )
    )
    n1, n2 = about_case.result["notice_id"], about_window.result["notice_id"]
    assert about_case.feed == about_window.feed == "county/t1"
    assert states(net, "county") == {n1: "待签收", n2: "待签收"}
    net.sync("t1", "t2", "v11")
    inbox = supervision.notices(net.conn("t1"), township="t1")
    assert [(r["notice_id"], r["state"]) for r in inbox] == [(n2, "待签收"), (n1, "待签收")]
    assert inbox[1]["case_no"] == local_no and inbox[1]["village_name"] == "梅花村"
    assert inbox[1]["subject"] == f"办件 {local_no}" and inbox[0]["subject"] == "城关镇便民服务中心窗口"
    assert inbox[0]["township_name"] == "城关镇便民服务中心" and inbox[0]["issued_by"] == "县监察员"
    assert states(net, "t2") == {} and states(net, "v11") == {}  # the holding rule: t1 only

    net.run(supervision.acknowledge(net.conn("t1"), ACTORS["t1"], n1, "已催办，明日办结", now_ms=at("2026-11-20", 14)))
    assert states(net, "t1")[n1] == "已签收"
    assert states(net, "county")[n1] == "待签收"  # until the township syncs
    net.sync("t1")
    (row,) = supervision.notices(net.conn("county"), state="已签收")
    assert (row["notice_id"], row["acked_by"], row["note"], row["acked_at"]) == (
        n1,
        "张窗口",
        "已催办，明日办结",
        "2026-11-20 14:00",
    )
    assert [r["notice_id"] for r in supervision.notices(net.conn("county"), state="待签收")] == [n2]
    with pytest.raises(TransitionError, match="已签收"):
        supervision.acknowledge(net.conn("t1"), ACTORS["t1"], n1, None, now_ms=at("2026-11-20", 15))


def test_a_village_or_another_township_cannot_write_or_acknowledge_a_notice(net: Net) -> None:
    cmd = net.run(
        supervision.supervise(
            net.conn("county"), ACTORS["county"], case=None, window="t1", reason="督办", now_ms=at("2026-11-20", 9)
        )
    )
    notice = cmd.result["notice_id"]
    net.sync("t1", "t2", "v11")
    # the commands refuse them
    with pytest.raises(NotFoundError):  # t2 never holds t1's notices
        supervision.acknowledge(net.conn("t2"), ACTORS["t2"], notice, None, now_ms=at("2026-11-20", 10))
    with pytest.raises(TransitionError):
        supervision.supervise(net.conn("t1"), ACTORS["t1"], case=None, window="t1", reason="x", now_ms=1)
    with pytest.raises(TransitionError):
        supervision.acknowledge(net.conn("v11"), ACTORS["v11"], notice, None, now_ms=1)
    with pytest.raises(ValidationError):
        supervision.supervise(net.conn("county"), ACTORS["county"], case=None, window=None, reason="x", now_ms=1)
    with pytest.raises(NotFoundError):
        supervision.supervise(net.conn("county"), ACTORS["county"], case=None, window="v11", reason="x", now_ms=1)
    # signed entries that say so anyway are kept as rejects and change nothing
    ack = {"at_ms": at("2026-11-20", 10), "by": "冒名", "notice_id": notice}
    net.forge("t2", "t2/up", supervision.kinds.SUPERVISION_ACK, notice, ack)
    net.forge("v11", "v11/up", supervision.kinds.SUPERVISION_ACK, notice, ack)
    fake = {"at_ms": 1, "reason": "假督办", "township": "t1", "notice_id": "fake"}
    net.forge("v11", "v11/up", supervision.kinds.SUPERVISION_NOTICE, "fake", fake)
    net.forge("t1", "t1/up", supervision.kinds.SUPERVISION_NOTICE, "fake2", {**fake, "notice_id": "fake2"})
    net.forge("county", "county/t2", supervision.kinds.SUPERVISION_NOTICE, "misaddressed", fake)
    net.sync("t2", "v11", "t1")
    assert states(net, "county") == {notice: "待签收"}
    assert states(net, "t1") == {notice: "待签收"}
    refused = {(r["feed"], r["kind"]) for r in rejects.listed(net.conn("county"))}
    assert refused == {
        ("t2/up", "supervision.ack"),
        ("v11/up", "supervision.ack"),
        ("v11/up", "supervision.notice"),
        ("t1/up", "supervision.notice"),
        ("county/t2", "supervision.notice"),
    }
    assert {r["kind_label"] for r in rejects.listed(net.conn("county"))} == {"督办", "督办签收"}
    # the township's own ack still counts
    net.run(supervision.acknowledge(net.conn("t1"), ACTORS["t1"], notice, "收到", now_ms=at("2026-11-20", 16)))
    net.sync("t1")
    assert states(net, "county") == {notice: "已签收"}


def test_an_ack_folded_before_its_notice_is_checked_when_the_notice_arrives(tmp_path: Path, net: Net) -> None:
    """Refold the county's entries with every feed in another order: the same notices, acks and rejects."""
    notice = net.run(
        supervision.supervise(
            net.conn("county"), ACTORS["county"], case=None, window="t1", reason="督办", now_ms=at("2026-11-20", 9)
        )
    ).result["notice_id"]
    net.sync("t1", "t2")
    ack = {"at_ms": at("2026-11-20", 10), "by": "冒名", "notice_id": notice}
    net.forge("t2", "t2/up", supervision.kinds.SUPERVISION_ACK, notice, ack)
    net.run(supervision.acknowledge(net.conn("t1"), ACTORS["t1"], notice, "收到", now_ms=at("2026-11-20", 11)))
    net.sync("t2", "t1")
    county = net.nodes["county"].store
    feeds = [r[0] for r in county.conn.execute("SELECT DISTINCT feed FROM entries")]
    entries = [e for f in feeds for e in county.entries(f)]
    fresh = Store(tmp_path / "refold.sqlite", fold=DomainFold())
    domain_migrations.apply(fresh.db)
    fold = DomainFold()
    members = [e for e in entries if e.feed == "county/*"]
    rest = sorted((e for e in entries if e.feed != "county/*"), key=lambda e: (e.feed != "t2/up", e.feed, e.seq))
    fold(fresh.db, members)
    for e in rest:  # t2's forged ack first, before the notice it names
        fold(fresh.db, [e])
    tables = ("supervision_notices", "supervision_acks")
    for t in tables:
        assert (
            fresh.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            == county.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
        )
    want = county.conn.execute("SELECT feed, seq, kind FROM fold_rejects ORDER BY 1, 2").fetchall()
    assert fresh.conn.execute("SELECT feed, seq, kind FROM fold_rejects ORDER BY 1, 2").fetchall() == want
    assert [r[0] for r in want] == ["t2/up"]
    fresh.close()
