"""Claims follow keys (issue 12, point 1): attribution comes from the authoring feed and the membership.

A county store on tmp_path holds the membership of one county, two townships
(城关镇 with villages 梅花村 and 新桥村, 石桥乡 with 荷塘村) and one item.
Legit entries are built by the real commands; hostile ones are what a node's
own key can sign: the same command's body, edited, appended to the author's
own feed. The entries then reach fresh county databases through the real
fold, in both arrival orders, and the tables must be the same.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from sanji_domain import commands, kinds, rejects, stats, views
from sanji_domain.claims import CASE_TAKEN
from sanji_domain.commands import Actor
from sanji_domain.errors import ValidationError
from sanji_domain.fold import DomainFold
from sanji_domain.schema import domain_migrations
from sanji_node.state import RECEIPT_FORGED, node_fold, node_migrations
from sync_protocol.entries import Entry, Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store, Trust

from .test_views_stats import at, id_number, item

COUNTY = "430321"
ELDER = "11430321MB0000000001"
NODES = {  # node: (role, division, parent, name)
    "county": ("county", COUNTY + "000000", None, "示范县"),
    "chengguan": ("township", COUNTY + "105000", "county", "城关镇便民服务中心"),
    "shiqiao": ("township", COUNTY + "106000", "county", "石桥乡便民服务中心"),
    "meihua": ("village", COUNTY + "105201", "chengguan", "梅花村"),
    "xinqiao": ("village", COUNTY + "105202", "chengguan", "新桥村"),
    "hetang": ("village", COUNTY + "106201", "shiqiao", "荷塘村"),
}
KEYS = {n: SigningKey.from_seed(hashlib.sha256(f"claims:{n}".encode()).digest()) for n in NODES}
ACTORS = {n: Actor(n, r, d, p, "county", person="经办人") for n, (r, d, p, _) in NODES.items()}
NOV = (date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 11, 20)


_folds = node_fold(DomainFold())  # the node's folds, as a county runs them (rejects and conflicts logged)


def open_county(path: Path) -> Store:
    store = Store(path, fold=_folds)
    node_migrations.apply(store.db)
    domain_migrations.apply(store.db)
    store.set_trust(Trust(COUNTY, "county", KEYS["county"].public.hex))
    members = [
        Record(
            KIND_MEMBER,
            n,
            {"division": d, "node": n, "parent": p, "pubkey": KEYS[n].public.hex, "role": r, "name": m},
            1,
        )
        for n, (r, d, p, m) in NODES.items()
    ]
    store.append(KEYS["county"], "county/*", members)
    store.append(KEYS["county"], "county/*", [Record("catalog.item", ELDER, item(ELDER, "高龄津贴申请", "乡"), 2)])
    return store


class World:
    """Every node's entries, written on one store (each signed by its own author's key)."""

    def __init__(self, store: Store) -> None:
        self.store, self.conn = store, store.conn
        self.rng = random.Random(12)

    def run(self, cmd: commands.Command) -> commands.Command:
        self.store.append(KEYS[cmd.feed.split("/")[0]], cmd.feed, cmd.records)
        return cmd

    def file(self, node: str, name: str, when: int) -> dict[str, Any]:
        request = {
            "item": ELDER,
            "applicant": {"name": name, "id_number": id_number(self.rng), "phone": "13907345678"},
            "materials": ["居民身份证", "户口簿"],
        }
        cmd = self.run(commands.new_cases(self.conn, ACTORS[node], [request], now_ms=when))
        return dict(cmd.records[0].body)

    def forge(self, author: str, kind: str, key: str, body: dict[str, Any], when: int) -> None:
        """What `author`'s own key can sign: any body, in its own up feed."""
        feed = f"{author}/up"
        (hlc,) = commands.stamps(self.conn, feed, when, 1)
        self.store.append(KEYS[author], feed, [Record(kind, key, body, hlc)])

    def feed(self, feed: str) -> list[Entry]:
        return list(self.store.entries(feed))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = open_county(tmp_path / "county.sqlite")
    yield World(store)
    store.close()


def refold(world: World, tmp_path: Path, feeds: list[str], name: str) -> Store:
    """A fresh county that receives the feeds in this order (each one whole, as one township push would)."""
    store = open_county(tmp_path / f"{name}.sqlite")
    for feed in feeds:
        entries = world.feed(feed)
        with store.db.atomic():  # one transaction per feed, as an apply is
            _folds(store.db, entries)
    return store


def tables(store: Store) -> tuple[list[Any], ...]:
    conn = store.conn
    return (
        conn.execute(
            "SELECT case_id, author, village, township, channel, feed, seq, state FROM cases ORDER BY 1"
        ).fetchall(),
        conn.execute("SELECT case_id, data FROM case_pii ORDER BY 1").fetchall(),
        conn.execute("SELECT feed, seq, kind, key, reason FROM fold_rejects ORDER BY 1, 2").fetchall(),
        conn.execute(
            "SELECT evaluation_id, author, village, township, item_code FROM evaluations ORDER BY 1"
        ).fetchall(),
        conn.execute("SELECT evaluation_id, state, owner FROM rectifications ORDER BY 1").fetchall(),
        conn.execute("SELECT feed, seq, conflict FROM case_events ORDER BY 1, 2").fetchall(),
    )


def applicant(store: Store, case_id: str) -> str:
    (data,) = store.conn.execute("SELECT data FROM case_pii WHERE case_id = ?", (case_id,)).fetchone()
    return str(orjson.loads(data)["name"])


def reject_of(store: Store, feed: str) -> list[tuple[str, str, str]]:
    return store.conn.execute("SELECT kind, key, reason FROM fold_rejects WHERE feed = ?", (feed,)).fetchall()


# --- reproduction 1: a township replaced a village's case ----------------------------------------------------


def test_reproduction_1_a_township_cannot_take_a_villages_case_id(world: World, tmp_path: Path) -> None:
    """The township copies the village's case id into its own case.new with another applicant: whatever
    arrives first, the county keeps the village's case and lists the township's entry as a reject."""
    case = world.file("meihua", "王秀英", at("2026-11-02", 9))
    world.run(
        commands.transition(world.conn, ACTORS["chengguan"], case["local_no"], "accept", now_ms=at("2026-11-02", 10))
    )
    fake = {**case, "applicant": {**case["applicant"], "name": "冒名者"}, "village": None, "township": "chengguan",
            "channel": "窗口"}  # fmt: skip
    world.forge("chengguan", kinds.CASE_NEW, case["case_id"], fake, at("2026-11-02", 11))
    results = []
    for name, order in (
        ("village-first", ["meihua/up", "chengguan/meihua", "chengguan/up"]),
        ("township-first", ["chengguan/up", "meihua/up", "chengguan/meihua"]),
        ("events-first", ["chengguan/meihua", "chengguan/up", "meihua/up"]),
    ):
        county = refold(world, tmp_path, order, name)
        row = county.conn.execute(
            "SELECT author, village, township, channel, state FROM cases WHERE case_id = ?", (case["case_id"],)
        ).fetchone()
        assert row == ("meihua", "meihua", "chengguan", "代办", "ACCEPTED"), name
        assert applicant(county, case["case_id"]) == "王秀英", name
        assert reject_of(county, "chengguan/up") == [(kinds.CASE_NEW, case["case_id"], CASE_TAKEN)], name
        # visible at the county, by name: who tried, which case holds the id, and who filed it
        (shown,) = rejects.listed(county.conn)
        assert (shown["author_name"], shown["kind_label"], shown["local_no"], shown["owner_name"]) == (
            "城关镇便民服务中心",
            "办件登记",
            case["local_no"],
            "梅花村",
        )
        results.append(tables(county))
        county.close()
    assert results[0] == results[1] == results[2]


def test_a_forward_never_takes_a_filed_cases_id_whatever_the_order(world: World, tmp_path: Path) -> None:
    """A 转报 names its linked county case; the village sees that id in chengguan/meihua. A case.new filed with
    it keeps it in both arrival orders (the county case is not opened over it); a 转报 naming a case the
    village filed earlier links to it and never erases it."""
    case = world.file("meihua", "李桂兰", at("2026-11-02", 9))
    other = world.file("meihua", "王秀英", at("2026-11-02", 9))
    for action in ("accept", "forward"):
        world.run(
            commands.transition(world.conn, ACTORS["chengguan"], case["local_no"], action, now_ms=at("2026-11-02", 10))
        )
    linked = world.conn.execute("SELECT linked_case_id FROM cases WHERE case_id = ?", (case["case_id"],)).fetchone()[0]
    world.forge("meihua", kinds.CASE_NEW, linked, {**case, "case_id": linked, "local_no": "X-1"}, at("2026-11-02", 11))
    accept = commands.transition(
        world.conn, ACTORS["chengguan"], other["local_no"], "accept", now_ms=at("2026-11-02", 12)
    )
    world.run(accept)
    forward = {"action": "forward", "at_ms": at("2026-11-02", 13), "case_id": other["case_id"],
               "linked_case_id": case["case_id"]}  # fmt: skip
    (hlc,) = commands.stamps(world.conn, "chengguan/meihua", at("2026-11-02", 13), 1)
    world.store.append(
        KEYS["chengguan"], "chengguan/meihua", [Record(kinds.CASE_EVENT, other["case_id"], forward, hlc)]
    )
    results = []
    for name, order in (
        ("claim-first", ["meihua/up", "chengguan/meihua"]),
        ("forward-first", ["chengguan/meihua", "meihua/up"]),
    ):
        county = refold(world, tmp_path, order, name)
        held = county.conn.execute("SELECT origin_case_id, author, channel FROM cases WHERE case_id = ?", (linked,))
        assert held.fetchone() == (None, "meihua", "代办"), name
        assert applicant(county, case["case_id"]) == "李桂兰", name  # the case a forward named is still there
        row = county.conn.execute("SELECT state, origin_case_id FROM cases WHERE case_id = ?", (case["case_id"],))
        assert row.fetchone() == ("FORWARDED", None), name
        results.append(tables(county))
        county.close()
    assert results[0] == results[1]


def test_a_second_case_new_in_the_same_feed_is_a_reject_not_a_replacement(world: World) -> None:
    case = world.file("meihua", "王秀英", at("2026-11-02", 9))
    world.forge(
        "meihua", kinds.CASE_NEW, case["case_id"], {**case, "applicant": {"name": "别人"}}, at("2026-11-02", 10)
    )
    assert applicant(world.store, case["case_id"]) == "王秀英"
    assert reject_of(world.store, "meihua/up") == [(kinds.CASE_NEW, case["case_id"], CASE_TAKEN)]


# --- reproduction 2: attribution from body fields ---------------------------------------------------------------


def test_reproduction_2_a_township_case_claiming_a_village_is_refused(world: World) -> None:
    """`village: "meihua", channel: "代办"` in the township's own feed: not one of meihua's cases, anywhere."""
    before = {r["group"]: r["filed"] for r in stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)}
    window = world.file("chengguan", "孙霞", at("2026-11-03", 9))  # a legit walk-in
    claim = {**window, "case_id": "forged-1", "village": "meihua", "channel": "代办"}
    world.forge("chengguan", kinds.CASE_NEW, "forged-1", claim, at("2026-11-03", 10))
    assert world.conn.execute("SELECT 1 FROM cases WHERE case_id = 'forged-1'").fetchone() is None
    ((kind, key, reason),) = reject_of(world.store, "chengguan/up")
    assert (kind, key) == (kinds.CASE_NEW, "forged-1") and "village" in reason and "'meihua'" in reason
    after = {r["group"]: r["filed"] for r in stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY)}
    assert after == before  # meihua's count did not move
    row = world.conn.execute("SELECT village, township, channel FROM cases WHERE case_id = ?", (window["case_id"],))
    assert row.fetchone() == (None, "chengguan", "窗口")


def test_reproduction_2_a_village_case_claiming_another_village_is_refused(world: World) -> None:
    legit = world.file("meihua", "王秀英", at("2026-11-03", 9))
    world.forge(
        "meihua",
        kinds.CASE_NEW,
        "forged-2",
        {**legit, "case_id": "forged-2", "village": "xinqiao"},
        at("2026-11-03", 10),
    )
    world.forge(
        "meihua",
        kinds.CASE_NEW,
        "forged-3",
        {**legit, "case_id": "forged-3", "township": "shiqiao"},
        at("2026-11-03", 11),
    )
    world.forge(
        "meihua",
        kinds.CASE_NEW,
        "forged-4",
        {**legit, "case_id": "forged-4", "state": "COMPLETED"},
        at("2026-11-03", 12),
    )
    assert world.conn.execute("SELECT case_id FROM cases").fetchall() == [(legit["case_id"],)]
    reasons = {key: reason for _, key, reason in reject_of(world.store, "meihua/up")}
    assert set(reasons) == {"forged-2", "forged-3", "forged-4"}
    assert "新桥村" not in reasons["forged-2"] and "'xinqiao'" in reasons["forged-2"]
    shown = {r["key"]: r for r in rejects.listed(world.conn)}
    assert shown["forged-2"]["author_name"] == "梅花村" and "新桥村" in shown["forged-2"]["reason"]  # names, not ids


def test_reproduction_2_a_township_cannot_evaluate_as_a_villages_daibandian(world: World) -> None:
    """Two evaluations "as" meihua's 代办点 (5 and 1): both refused, no rectification, no 满意率 for meihua."""
    case = world.file("meihua", "王秀英", at("2026-11-04", 9))
    for i, level in enumerate((5, 1)):
        body = {"at_ms": at("2026-11-05", 9 + i), "case_id": case["case_id"], "channel": "代办", "evaluation_id": f"e{i}",
                "level": level, "stage": "办结", "target_name": "meihua", "target_type": "代办点"}  # fmt: skip
        world.forge("chengguan", kinds.EVALUATION, f"e{i}", body, at("2026-11-05", 9 + i))
    assert world.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 0
    assert world.conn.execute("SELECT COUNT(*) FROM rectifications").fetchone()[0] == 0
    assert [r[1] for r in reject_of(world.store, "chengguan/up")] == ["e0", "e1"]
    (meihua,) = [
        r for r in stats.statistics(world.conn, group_by="village", period=NOV, today=TODAY) if r["group"] == "meihua"
    ]
    assert meihua["evaluations"] == 0
    # each claim alone is refused too: the 代办 channel, a 代办点 target, another village's 代办点 name
    for i, claim in enumerate(
        ({"channel": "代办", "target_type": "窗口"}, {"channel": "现场", "target_type": "代办点"}),
        start=2,
    ):
        body = {"at_ms": at("2026-11-06"), "evaluation_id": f"e{i}", "level": 1, "stage": "办结", **claim}
        world.forge("chengguan", kinds.EVALUATION, f"e{i}", body, at("2026-11-06", i))
    body = {
        "at_ms": at("2026-11-06"),
        "evaluation_id": "e9",
        "level": 1,
        "target_type": "代办点",
        "target_name": "xinqiao",
    }
    world.forge("meihua", kinds.EVALUATION, "e9", body, at("2026-11-06", 12))
    assert world.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 0
    assert len(world.conn.execute("SELECT * FROM fold_rejects WHERE kind = 'evaluation.new'").fetchall()) == 5


def test_an_evaluation_of_another_places_case_is_refused_whenever_the_case_arrives(
    world: World, tmp_path: Path
) -> None:
    """石桥乡 evaluates a 梅花村 case (a 差评): refused if the case is there, and taken back when the case comes
    after it; 城关镇's own evaluation of the same case stands and counts for 梅花村."""
    case = world.file("meihua", "王秀英", at("2026-11-04", 9))
    for author, eid in (("shiqiao", "bad"), ("chengguan", "good")):
        body = {"at_ms": at("2026-11-05"), "case_id": case["case_id"], "channel": "现场", "evaluation_id": eid,
                "level": 1, "stage": "办结", "target_type": "窗口"}  # fmt: skip
        world.forge(author, kinds.EVALUATION, eid, body, at("2026-11-05"))
    world.run(
        commands.rectify(
            world.conn, ACTORS["chengguan"], "good", "assign", {"owner": "张窗口"}, now_ms=at("2026-11-06")
        )
    )
    world.forge("shiqiao", kinds.RECTIFICATION, "good", {"at_ms": at("2026-11-06"), "evaluation_id": "good", "step": "rate", "level": 5},
                at("2026-11-06", 11))  # fmt: skip
    results = []
    for name, order in (
        ("case-first", ["meihua/up", "shiqiao/up", "chengguan/up"]),
        ("case-last", ["shiqiao/up", "chengguan/up", "meihua/up"]),
    ):
        county = refold(world, tmp_path, order, name)
        assert county.conn.execute(
            "SELECT evaluation_id, village, township, item_code FROM evaluations"
        ).fetchall() == [("good", "meihua", "chengguan", ELDER)], name
        assert county.conn.execute("SELECT evaluation_id, state, owner FROM rectifications").fetchall() == [
            ("good", "整改中", "张窗口")
        ], name  # 石桥乡's "rate" did not close 城关镇's rectification
        kinds_refused = sorted(r[0] for r in county.conn.execute("SELECT kind FROM fold_rejects"))
        assert kinds_refused == [kinds.EVALUATION, kinds.RECTIFICATION], name
        results.append(tables(county))
        county.close()
    assert results[0] == results[1]


def test_a_roster_or_a_receipt_claimed_by_the_wrong_author_is_refused(world: World) -> None:
    world.forge(
        "chengguan", kinds.ROSTER, "chengguan:2026-11-02", {"day": "2026-11-02", "agent": "冒名"}, at("2026-11-02")
    )
    world.forge("meihua", kinds.ROSTER, "xinqiao:2026-11-02", {"day": "2026-11-02", "agent": "冒名"}, at("2026-11-02"))
    world.run(commands.duty(world.conn, ACTORS["meihua"], "2026-11-03", "李建国", None, now_ms=at("2026-11-02", 11)))
    assert world.conn.execute("SELECT village, day FROM roster").fetchall() == [("meihua", "2026-11-03")]
    # 县级已接收 is the county's word: the township's receipt in its feed to the village is not taken
    receipt = {"feed": "meihua/up", "hash": "00" * 32, "seq": 99}
    (hlc,) = commands.stamps(world.conn, "chengguan/meihua", at("2026-11-02"), 1)
    world.store.append(KEYS["chengguan"], "chengguan/meihua", [Record("sync.receipt", "meihua/up", receipt, hlc)])
    assert world.conn.execute("SELECT COUNT(*) FROM receipt_marks").fetchone()[0] == 0
    assert reject_of(world.store, "chengguan/meihua") == [("sync.receipt", "meihua/up", RECEIPT_FORGED)]


# --- legit flows keep working ---------------------------------------------------------------------------------


def test_legit_flows_keep_their_attribution(world: World) -> None:
    """A village's 代办 case, a township's window case, a township's evaluation of its village's case (现场,
    窗口), a village's own 代办点 evaluation and the township's 整改: all folded, nothing refused."""
    v = world.file("meihua", "王秀英", at("2026-11-02", 9))
    w = world.file("chengguan", "孙霞", at("2026-11-02", 10))
    for node, case, data in (
        ("meihua", v, {}),
        ("chengguan", v, {"target_type": "窗口"}),
        ("chengguan", w, {"level": 2}),
        ("meihua", v, {"target_type": "事项", "channel": "网上"}),
    ):
        world.run(
            commands.evaluate(
                world.conn, ACTORS[node], {"case": case["case_id"], "level": 4, **data}, now_ms=at("2026-11-03")
            )
        )
    eid = world.conn.execute("SELECT evaluation_id FROM evaluations WHERE level = 2").fetchone()[0]
    world.run(
        commands.rectify(world.conn, ACTORS["county"], eid, "followup", {"note": "已回访"}, now_ms=at("2026-11-04"))
    )
    assert world.conn.execute("SELECT COUNT(*) FROM fold_rejects").fetchone()[0] == 0
    rows = world.conn.execute("SELECT author, village, township, channel FROM cases ORDER BY filed_ms").fetchall()
    assert rows == [("meihua", "meihua", "chengguan", "代办"), ("chengguan", None, "chengguan", "窗口")]
    places = world.conn.execute("SELECT author, village, township FROM evaluations ORDER BY rowid").fetchall()
    assert places == [("meihua", "meihua", "chengguan"), ("chengguan", "meihua", "chengguan"),
                      ("chengguan", None, "chengguan"), ("meihua", "meihua", "chengguan")]  # fmt: skip
    assert world.conn.execute("SELECT state FROM rectifications").fetchall() == [("已回访",)]


def test_the_commands_refuse_what_the_fold_would_refuse(world: World) -> None:
    case = world.file("meihua", "王秀英", at("2026-11-02", 9))
    other = world.file("hetang", "赵军", at("2026-11-02", 9))
    for node, data, words in (
        ("chengguan", {"target_type": "代办点"}, "代办点"),
        ("chengguan", {"channel": "代办"}, "渠道"),
        ("meihua", {"target_type": "窗口"}, "窗口"),
        ("meihua", {"target_name": "新桥村"}, "代办点"),
        ("shiqiao", {"case": case["case_id"]}, "不是本村或本乡镇"),
        ("meihua", {"case": other["case_id"]}, "不是本村或本乡镇"),
    ):
        with pytest.raises(ValidationError, match=words):
            commands.evaluate(world.conn, ACTORS[node], {"level": 1, **data}, now_ms=at("2026-11-03"))
    assert views.conflicts(world.conn) == []
