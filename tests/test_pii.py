"""Personal data at rest on the village laptop: key file, sealed store, purge after the county's receipt."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from sanji_domain.applicant import check_applicant
from sanji_domain.errors import ValidationError
from sanji_domain.pii import (
    MAGIC,
    SEAL_OVERHEAD,
    PurgeRule,
    ScryptParams,
    Sealer,
    change_passphrase,
    create_key_file,
    due_for_purge,
    open_key_file,
)
from sync_protocol import routing
from sync_protocol.entries import Record
from sync_protocol.errors import KeyFileError, StoreError
from sync_protocol.planning import Range
from sync_protocol.sqlite_store import Store

from .network import Network, Node, exchange

FAST = ScryptParams(n=2**4)  # tests only: a laptop uses the default n=2**15
PASSPHRASE = "梅花村代办员的口令"
APPLICANT = check_applicant(
    {"name": "王秀英", "id_number": "430321195501011236", "phone": "13807345678", "address": "湘潭县梅花村3组17号"}
)
PII = [APPLICANT["name"], APPLICANT["id_number"], APPLICANT["phone"], APPLICANT["address"]]


def cases(start: int, n: int) -> list[Record]:
    return [
        Record(
            "case.new",
            f"c{i}",
            {"applicant": APPLICANT, "case_id": f"c{i}", "item": "高龄津贴申请", "local_no": f"V-{i}"},
            100 + i,
        )
        for i in range(start, start + n)
    ]


def open_sealed(path: Path, sealer: Sealer) -> Store:
    return Store(path, seal=sealer)


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return create_key_file(tmp_path / "laptop" / "pii.key", PASSPHRASE, kdf=FAST)


@pytest.fixture
def laptop(net: Network, sealer: Sealer, tmp_path: Path) -> Node:
    """v11's laptop with a sealed store, holding what its township sent it (received into the sealed store)."""
    twin = net.nodes["v11"]
    store = open_sealed(tmp_path / "laptop" / "v11.sqlite", sealer)
    store.set_trust(twin.store.trust)
    store.set_node("v11")
    node = Node("v11", twin.role, twin.parent, twin.division, twin.key, store)
    t1 = net.nodes["t1"]
    assert all(v.ok for v in exchange(t1, node, t1.store.directory()))
    assert store.vector() == twin.store.vector()
    yield node
    store.close()


def raw_files(folder: Path, stem: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob(stem + "*")))


def test_personal_data_never_reaches_the_disk_in_clear(net: Network, laptop: Node, tmp_path: Path) -> None:
    laptop.store.append(laptop.key, "v11/up", cases(1, 3))
    net.nodes["v11"].store.append(laptop.key, "v11/up", cases(1, 3))
    folder = tmp_path / "laptop"
    for _ in range(2):  # in the WAL while open; in the main file after the checkpoint on close
        raw = raw_files(folder, "v11.sqlite")
        assert raw and not [p for p in PII if p.encode() in raw]
        laptop.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # the same entries in the unsealed store are there in clear: the search above can find them
    assert all(p.encode() in raw_files(tmp_path / "net", "v11.sqlite") for p in PII)
    assert laptop.store.conn.execute("SELECT value FROM meta WHERE key = 'sealed'").fetchone()[0] == "aes-256-gcm/1"
    assert all(body[:1] == MAGIC for (body,) in laptop.store.conn.execute("SELECT body FROM entries"))


def test_the_wire_is_unchanged(net: Network, laptop: Node) -> None:
    plain = net.nodes["v11"]
    for start, n in ((1, 2), (3, 3)):
        laptop.store.append(laptop.key, "v11/up", cases(start, n))
        plain.store.append(plain.key, "v11/up", cases(start, n))
    assert laptop.store.vector() == plain.store.vector()
    for rng in (Range("v11/up", 1, 2), Range("v11/up", 3, 5), Range("v11/up", 1, 5), Range("county/*", 1, 7)):
        assert laptop.store.read_batch(rng) == plain.store.read_batch(rng)
    got, want = laptop.store.entries("v11/up"), plain.store.entries("v11/up")
    assert [(e.seq, e.prev, e.hash, e.body, e.value) for e in got] == [
        (e.seq, e.prev, e.hash, e.body, e.value) for e in want
    ]
    assert got[0].value["applicant"] == APPLICANT
    assert laptop.store.directory().get("v11") == plain.store.directory().get("v11")
    assert laptop.store.membership() == plain.store.membership()

    def bundle(node: Node) -> bytes:
        out = io.BytesIO()
        wanted = lambda feed: routing.may_push("v11", "t1", feed, node.store.directory())  # noqa: E731
        node.store.export_bundle(out, key=node.key, source="v11", theirs={}, wanted=wanted, created=1, target="t1")
        return out.getvalue()

    assert bundle(laptop) == bundle(plain)


def test_a_sealed_store_syncs_both_ways(net: Network, laptop: Node, tmp_path: Path) -> None:
    t1 = net.nodes["t1"]
    laptop.store.append(laptop.key, "v11/up", cases(1, 4))
    assert all(v.ok for v in exchange(laptop, t1, t1.store.directory()))
    assert [e.hash for e in t1.store.entries("v11/up")] == [e.hash for e in laptop.store.entries("v11/up")]
    # a laptop restored from nothing gets its own feed back from the township, sealed as it lands
    fresh = Node(
        "v11", "village", "t1", laptop.division, laptop.key, open_sealed(tmp_path / "fresh.sqlite", laptop.store.seal)
    )
    with fresh.store:
        fresh.store.set_trust(laptop.store.trust)
        fresh.store.set_node("v11")
        assert all(v.ok for v in exchange(t1, fresh, t1.store.directory()))
        assert fresh.store.vector() == laptop.store.vector()
        assert fresh.store.entries("v11/up", 4, 4)[0].value["applicant"] == APPLICANT
        # and a bundle imports into a sealed store through the same path
        out = io.BytesIO()
        laptop.store.append(laptop.key, "v11/up", cases(5, 1))
        laptop.store.export_bundle(
            out, key=laptop.key, source="v11", theirs=fresh.store.vector(), wanted=lambda f: f == "v11/up", created=1
        )
        out.seek(0)
        assert [v.ok for v in fresh.store.import_bundle(out)] == [True]
        assert fresh.store.vector() == laptop.store.vector()


def test_a_sealed_value_does_not_open_in_another_row(laptop: Node) -> None:
    laptop.store.append(laptop.key, "v11/up", cases(1, 2))
    conn = laptop.store.conn
    one, two = (b for (b,) in conn.execute("SELECT body FROM entries WHERE feed = 'v11/up' ORDER BY seq"))
    with conn:
        conn.execute("UPDATE entries SET body = ? WHERE feed = 'v11/up' AND seq = 1", (two,))
        conn.execute("UPDATE entries SET body = ? WHERE feed = 'v11/up' AND seq = 2", (one,))
    with pytest.raises(StoreError, match=r"v11/up#1 .*无法解密.*moved"):
        laptop.store.read_batch(Range("v11/up", 1, 2))


def test_opening_needs_the_right_key(laptop: Node, tmp_path: Path) -> None:
    path = tmp_path / "laptop" / "v11.sqlite"
    laptop.store.append(laptop.key, "v11/up", cases(1, 1))
    with pytest.raises(StoreError, match="encrypted: give the agent's passphrase") as info:
        Store(path)
    assert info.value.hint
    other = create_key_file(tmp_path / "other.key", PASSPHRASE, kdf=FAST)  # the same passphrase, another data key
    with pytest.raises(StoreError, match="does not open this database"):
        Store(path, seal=other)
    with Store(path, seal=open_key_file(tmp_path / "laptop" / "pii.key", PASSPHRASE)) as again:
        assert again.entries("v11/up")[0].value["applicant"] == APPLICANT


def test_an_unsealed_store_with_data_is_not_sealed_in_place(net: Network, sealer: Sealer, tmp_path: Path) -> None:
    path = tmp_path / "net" / "v11.sqlite"
    with pytest.raises(StoreError, match="unencrypted entries"):
        Store(path, seal=sealer)
    with Store(path) as s:  # refused without a change: it still opens as before
        assert s.conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'sealed'").fetchone()[0] == 0
    with Store(tmp_path / "empty.sqlite") as s:
        pass
    with Store(tmp_path / "empty.sqlite", seal=sealer):  # an empty one is sealed from now on
        pass
    with pytest.raises(StoreError, match="encrypted"):
        Store(tmp_path / "empty.sqlite")


def test_key_file_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "pii.key"
    sealer = create_key_file(path, PASSPHRASE, kdf=FAST)
    sealed = sealer.seal("王秀英".encode(), b"v11/up#1")
    doc = json.loads(path.read_text())
    assert {k: doc["kdf"][k] for k in ("name", "n", "r", "p")} == {"name": "scrypt", "n": 16, "r": 8, "p": 1}
    assert doc["v"] == 1 and PASSPHRASE not in path.read_text()
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError, match="口令不对") as info:
        open_key_file(path, "不是这个口令啊")
    assert info.value.hint
    with pytest.raises(KeyFileError, match="已存在"):
        create_key_file(path, PASSPHRASE, kdf=FAST)
    with pytest.raises(KeyFileError, match="至少 8"):
        create_key_file(tmp_path / "short.key", "1234567", kdf=FAST)

    change_passphrase(path, PASSPHRASE, "新口令新口令新口令")
    with pytest.raises(KeyFileError, match="口令不对"):
        open_key_file(path, PASSPHRASE)
    with pytest.raises(KeyFileError, match="口令不对"):
        change_passphrase(path, PASSPHRASE, "又一个新口令新口令")
    assert open_key_file(path, "新口令新口令新口令").open(sealed, b"v11/up#1") == "王秀英".encode()
    assert json.loads(path.read_text())["kdf"]["salt"] != doc["kdf"]["salt"]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "已损坏"),
        ('{"type": "something else"}', "已损坏"),
        ('{"type": "sanji-pii-key", "v": 2}', "版本"),
        ('{"type": "sanji-pii-key", "v": 1, "kdf": {"name": "scrypt", "n": 3, "r": 8, "p": 1}}', "scrypt 参数"),
        ('{"type": "sanji-pii-key", "v": 1, "kdf": {"name": "argon2"}}', "不支持"),
        ('{"type": "sanji-pii-key", "v": 1, "kdf": {"name": "scrypt", "n": 16, "r": 8, "p": 1}}', "已损坏"),
    ],
)
def test_damaged_key_files(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "pii.key").write_text(text)
    with pytest.raises(KeyFileError, match=match):
        open_key_file(tmp_path / "pii.key", PASSPHRASE)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="找不到"):
        open_key_file(tmp_path / "pii.key", PASSPHRASE)


def test_change_passphrase_keeps_the_store_readable(laptop: Node, tmp_path: Path) -> None:
    laptop.store.append(laptop.key, "v11/up", cases(1, 2))
    key = tmp_path / "laptop" / "pii.key"
    change_passphrase(key, PASSPHRASE, "换了一个更长的口令")
    with Store(tmp_path / "laptop" / "v11.sqlite", seal=open_key_file(key, "换了一个更长的口令")) as s:
        assert [e.value["case_id"] for e in s.entries("v11/up")] == ["c1", "c2"]


def test_sealed_values() -> None:
    s = Sealer(bytes(32))
    a, b = s.seal(b"x", b"v11/up#1"), s.seal(b"x", b"v11/up#1")
    assert a != b and a[:1] == MAGIC and len(a) == 1 + SEAL_OVERHEAD
    assert s.open(a, b"v11/up#1") == b"x"
    with pytest.raises(StoreError, match="v11/up#2"):
        s.open(a, b"v11/up#2")
    with pytest.raises(StoreError, match="不是加密格式"):
        s.open(b'{"plain":1}', b"v11/up#1")
    with pytest.raises(StoreError, match="无法解密"):
        Sealer(bytes([1]) * 32).open(a, b"v11/up#1")
    assert "key" in repr(s) and "00" not in repr(s)


# -- purge ----------------------------------------------------------------------------


def purge_setup(node: Node) -> None:
    for i in range(1, 4):  # one commit (and signed head) per case
        node.store.append(node.key, "v11/up", cases(i, 1))


@pytest.mark.parametrize("sealed", [True, False])
def test_purge_keeps_the_chain_and_drops_the_bodies(net: Network, laptop: Node, tmp_path: Path, sealed: bool) -> None:
    node = laptop if sealed else net.nodes["v11"]
    store = node.store
    purge_setup(node)
    before = (store.vector(), store.head("v11/up"), [e.hash for e in store.entries("v11/up")])
    assert store.purge_bodies("v11/up", [2, 1, 1], "county receipt + 30 days") == 2
    got = store.entries("v11/up")
    assert [(e.body, e.value is None) for e in got[:2]] == [(b"", True), (b"", True)]
    assert got[2].value["case_id"] == "c3"
    assert (store.vector(), store.head("v11/up"), [e.hash for e in got]) == before
    for rng in (Range("v11/up", 1, 1), Range("v11/up", 1, 3), Range("v11/up", 2, 3)):
        with pytest.raises(StoreError, match=r"purged from this laptop.*county holds it"):
            store.read_batch(rng)
    assert store.read_batch(Range("v11/up", 3, 3))  # what is left still travels
    assert [(p["seq"], p["reason"]) for p in store.purged("v11/up")] == [
        (1, "county receipt + 30 days"),
        (2, "county receipt + 30 days"),
    ]
    assert store.purge_bodies("v11/up", [1, 2], "again") == 0  # a no-op
    assert [p["reason"] for p in store.purged()] == ["county receipt + 30 days"] * 2
    assert store.purge_bodies("v11/up", [], "nothing") == 0
    # the plain bytes are gone from the files too, not just unreachable
    folder, stem = (tmp_path / "laptop", "v11.sqlite") if sealed else (tmp_path / "net", "v11.sqlite")
    store.purge_bodies("v11/up", [3], "all of them")
    assert APPLICANT["name"].encode() not in raw_files(folder, stem)


def test_purge_refuses_what_it_must_not_drop(laptop: Node) -> None:
    purge_setup(laptop)
    store = laptop.store
    with pytest.raises(StoreError, match=r"1\.\.3"):
        store.purge_bodies("v11/up", [3, 4], "beyond the head")
    with pytest.raises(StoreError, match=r"1\.\.2"):
        store.purge_bodies("v11/up", [3], "beyond the receipt", bound=2)
    with pytest.raises(StoreError, match=r"1\.\.3"):
        store.purge_bodies("v11/up", [0], "before the start")
    with pytest.raises(StoreError, match=r"1\.\.0"):
        store.purge_bodies("v11/nothing", [1], "no such feed")
    with pytest.raises(StoreError, match="never purged"):
        store.purge_bodies("county/*", [1], "membership")
    with pytest.raises(StoreError, match="say why"):
        store.purge_bodies("v11/up", [1], " ")
    assert store.purged() == [] and all(e.value for e in store.entries("v11/up"))


def test_purge_rule_and_what_is_due() -> None:
    day = 86_400_000
    now = 100 * day
    cases_ = [
        ("c3", "v11/up", 3, now - 30 * day),  # exactly 30 days ago
        ("c1", "v11/up", 1, now - 31 * day),
        ("c2", "v11/up", 2, now - 29 * day),
        ("c4", "v11/up", 4, None),  # not receipted by the county
    ]
    rule = PurgeRule()
    assert (rule.enabled, rule.after_days) == (True, 30)
    assert [c[0] for c in due_for_purge(cases_, rule, now)] == ["c1", "c3"]
    assert [c[0] for c in due_for_purge(cases_, PurgeRule(after_days=0), now)] == ["c1", "c2", "c3"]
    assert due_for_purge(cases_, PurgeRule(enabled=False), now) == []
    assert "30 天" in rule.describe() and "立即" in PurgeRule(after_days=0).describe()
    assert "不清除" in PurgeRule(enabled=False).describe()
    assert PurgeRule.from_settings({"pii_purge": 0, "pii_purge_days": 7}) == PurgeRule(False, 7)
    assert PurgeRule.from_settings({}) == PurgeRule()
    with pytest.raises(ValidationError, match="0–3650"):
        PurgeRule(after_days=-1)
