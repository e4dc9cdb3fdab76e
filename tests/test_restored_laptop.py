"""A laptop restored from an old copy (issue 11): receipts only on the laptop's own branch, the sync's
verdict, Chinese refusals, and 办件编号 whatever order the entries arrive in (the fold, unit level).

End to end with real processes: tests/e2e/test_restored_laptop.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sanji_domain import kinds
from sanji_domain.fold import DomainFold
from sanji_node import branch, state
from sanji_node.syncer import SyncReport
from sync_protocol.entries import Entry, Record
from sync_protocol.errors import SequenceError
from sync_protocol.sqlite_store import frozen_message

from .network import Network
from .test_case_fold_property import entry, fresh_db


def case_new(seq: int, cid: str) -> Entry:
    body = {"case_id": cid, "filed_ms": 1_000 + seq, "item": {"task_code": "T1"}, "local_no": f"v1-20261203-{seq}"}
    body |= {"state": "SUBMITTED", "village": "v1", "township": "t1"}
    return entry("v1/up", seq, kinds.CASE_NEW, cid, body, 1_000_000 + seq)


def case_number(seq: int, cid: str, no: str) -> Entry:
    return entry("c/v1", seq, kinds.CASE_NUMBER, cid, {"case_id": cid, "official_no": no}, 2_000_000 + seq)


def numbers(db) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return dict(db.execute("SELECT case_id, official_no FROM cases ORDER BY case_id").fetchall())


@pytest.mark.parametrize("order", ["case first", "number first", "one batch, number first"])
def test_a_number_is_applied_whatever_the_arrival_order(order: str) -> None:
    db, fold = fresh_db(), DomainFold()
    cases = [case_new(i + 1, f"c{i + 1}") for i in range(3)]
    nums = [case_number(i + 1, f"c{i + 1}", f"43032120261203{i + 1:06d}") for i in range(3)]
    batches = {
        "case first": [cases, nums],
        "number first": [nums[::-1], cases],
        "one batch, number first": [[*nums, *cases]],
    }[order]
    for batch in batches:
        with db.conn:
            fold(db, batch)
    assert numbers(db) == {f"c{i}": f"43032120261203{i:06d}" for i in (1, 2, 3)}


def own_store(net: Network):  # type: ignore[no-untyped-def]
    v = net.nodes["v11"]
    state.node_migrations.apply(v.store.db)
    return v


def test_receipts_count_only_where_the_hash_is_ours(net: Network) -> None:
    v = own_store(net)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", {"i": i}, 10 + i) for i in (1, 2)])
    h2 = v.store.vector()["v11/up"][1]
    state.record_acks(v.store, {"v11/up": (2, h2)}, 1)
    assert branch.held_marks(v.store, "v11") == {"v11/up": 2}
    # the laptop restored from a copy: the parent now says it holds 4, on another branch
    state.record_acks(v.store, {"v11/up": (4, b"\x01" * 32)}, 2)
    v.store.append(v.key, "v11/up", [Record("case.new", f"c{i}", {"i": i}, 10 + i) for i in (3, 4, 5)])
    other = b"\x02" * 32
    with v.store.db.atomic():
        v.store.conn.executemany(
            "INSERT INTO receipt_times (feed, seq, at_ms, hash) VALUES (?, ?, 1, ?)",
            [("v11/up", 2, h2), ("v11/up", 4, other), ("v11/up", 5, None)],  # 5: a receipt kept before hashes
        )
    assert branch.held_marks(v.store, "v11") == {"v11/up": 5}  # the hash-less receipt counts: no fork known
    assert branch.stranded(v.store, "v11") == {}
    with v.store.db.atomic():
        v.store.conn.execute("UPDATE feeds SET frozen = 1, frozen_reason = 'fork' WHERE feed = 'v11/up'")
    assert branch.receipted_marks(v.store, "v11") == {"v11/up": 2}
    assert branch.held_marks(v.store, "v11") == {"v11/up": 2}
    assert branch.stranded(v.store, "v11") == {"v11/up": 3}


def test_a_frozen_feed_refuses_in_chinese_with_what_to_do(net: Network) -> None:
    v = net.nodes["v11"]
    v.store.append(v.key, "v11/up", [Record("case.new", "c1", {"i": 1}, 10)])
    with v.store.db.atomic():
        v.store.conn.execute("UPDATE feeds SET frozen = 1, frozen_reason = 'fork' WHERE feed = 'v11/up'")
    with pytest.raises(SequenceError) as info:
        v.store.append(v.key, "v11/up", [Record("case.new", "c2", {"i": 2}, 11)])
    assert info.value.message == frozen_message("v11/up") and info.value.message.startswith("日志 v11/up")
    assert "县级信息管理员" in (info.value.hint or "") and "不会丢失" in (info.value.hint or "")


def test_a_sync_that_left_entries_stranded_or_held_is_not_a_success() -> None:
    assert SyncReport(pushed_entries=3).ok and SyncReport().problem() == ""
    forked = SyncReport(forked=["v11/up"], stranded=3, held=["v11/up 5..7: fork in v11/up at seq 5"])
    assert not forked.ok
    text = forked.problem()
    assert text.startswith("本机有 3 条数据与乡镇记录不一致（分叉") and "县级信息管理员" in text
    assert "暂扣" not in text  # the fork is said once
    held = SyncReport(held=["v11/up 8..9: v11/up is frozen after a fork; held for review"])
    assert not held.ok and held.problem().startswith("上级暂扣了 1 批数据待审核")
    refused = SyncReport(refused=["v11/up 1..2: bad signature"])
    assert not refused.ok and "被拒收" in refused.problem()


def test_an_upgraded_store_takes_numbers_from_its_entries(tmp_path: Path) -> None:
    """m004_case_numbers: where bodies are in the clear, numbers already stored are kept for late cases."""
    import sqlite_utils

    from sanji_domain.schema import domain_migrations

    db = sqlite_utils.Database(tmp_path / "x.sqlite")
    db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, kind TEXT, key TEXT, body BLOB)")
    db.execute("""INSERT INTO entries (kind, key, body) VALUES ('case.number', 'c9', '{"official_no":"N9"}')""")
    domain_migrations.apply(db)
    assert db.execute("SELECT case_id, official_no FROM case_numbers").fetchall() == [("c9", "N9")]


def test_the_village_pages_show_a_red_card_for_a_forked_laptop() -> None:
    import jinja2

    root = Path(__file__).resolve().parents[1] / "village_agent" / "templates"
    card = jinja2.Environment(loader=jinja2.FileSystemLoader(root), autoescape=True).get_template(
        "village/_fork_card.html"
    )
    assert card.render(view={"forked_own_feeds": []}).strip() == ""
    html = card.render(view={"forked_own_feeds": ["v11/up"], "cases_stranded": 3, "stranded_total": 3})
    assert 'class="card bad fork-card"' in html and "<strong>3</strong> 件办件" in html
    assert "不会丢失" in html and "县级信息管理员" in html
