"""The 督办 and 电子监察 commands as people use them (click's CliRunner on real data directories):
`county-server supervise`, `supervision list`, `cards overdue` at the county; `township-node supervision
inbox` and `supervision ack` at the township; the entries travel between the two stores by the real
planning and verification code (tests/network.exchange)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from county_server.app import open_county_store
from county_server.cli import main as county_cli
from sanji_node.child import ChildNode
from sanji_node.config import DataDir, NodeConfig
from sync_protocol.entries import Record
from sync_protocol.membership import KIND_MEMBER
from tests.network import exchange
from tests.test_domain_cli import COUNTY, ELDER_REQUIRED, KEYS, NODES, build_node, file_elder, invoke, ok
from township_node.cli import main as township_cli


def build_county(path: Path) -> Path:
    data = DataDir(path)
    data.create()
    data.save_key(KEYS["county"], None)
    data.save(NodeConfig("county", "county", COUNTY, "county", KEYS["county"].public.hex, COUNTY + "000000"))
    with open_county_store(data) as store:
        members = [
            {"division": d, "node": n, "parent": p, "role": r, "name": name, "pubkey": KEYS[n].public.hex}
            for n, (r, d, p, name) in NODES.items()
        ]
        store.append(KEYS["county"], "county/*", [Record(KIND_MEMBER, m["node"], m, 1) for m in members])
    return path


def carry(src: Path, dst: Path, src_node: str, dst_node: str) -> None:
    """What `src` holds that `dst` should hold, through the real planning, framing and verification."""
    a = open_county_store(DataDir(src)) if src_node == "county" else ChildNode.load(src).open_store()
    b = open_county_store(DataDir(dst)) if dst_node == "county" else ChildNode.load(dst).open_store()
    try:
        directory = (a if src_node == "county" else b).directory()
        exchange(SimpleNamespace(node_id=src_node, store=a), SimpleNamespace(node_id=dst_node, store=b), directory)
    finally:
        a.close()
        b.close()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    return str(build_county(tmp_path / "county")), str(build_node(tmp_path / "t1", "t1"))


def test_supervise_inbox_ack_and_list(pair: tuple[str, str]) -> None:
    county, township = pair
    no = file_elder(township, *(a for m in ELDER_REQUIRED for a in ("--material", m)))
    ok(township_cli, township, "case", "transition", no, "accept", "--person", "王窗口")
    carry(Path(township), Path(county), "t1", "county")

    sent = json.loads(
        ok(county_cli, county, "supervise", no, "--reason", "请加快办理", "--person", "县监察员", "--json")
    )
    window = ok(county_cli, county, "supervise", "--window", "城关镇便民服务中心", "--reason", "窗口排队过长")
    assert "已发出督办" in window
    listed = json.loads(ok(county_cli, county, "supervision", "list", "--json"))
    assert {(r["subject"], r["state"]) for r in listed} == {
        (f"办件 {no}", "待签收"),
        ("城关镇便民服务中心窗口", "待签收"),
    }
    both = invoke(county_cli, county, "supervise", no, "--window", "t1", "--reason", "x")
    assert both.exit_code == 2 and "请指定一个办件或一个乡镇窗口" in both.output and "Traceback" not in both.output

    carry(Path(county), Path(township), "county", "t1")
    inbox = ok(township_cli, township, "supervision", "inbox")
    assert "请加快办理" in inbox and "待签收" in inbox and "城关镇便民服务中心" in inbox
    nid = sent["notice_id"]
    done = ok(township_cli, township, "supervision", "ack", nid, "--note", "已催办", "--person", "王窗口")
    assert f"已签收督办 {nid}" in done
    again = invoke(township_cli, township, "supervision", "ack", nid)
    assert again.exit_code == 2 and "已签收" in again.output
    missing = invoke(township_cli, township, "supervision", "ack", "no-such-notice")
    assert missing.exit_code == 2 and "没有督办" in missing.output

    carry(Path(township), Path(county), "t1", "county")
    (row,) = json.loads(ok(county_cli, county, "supervision", "list", "--state", "已签收", "--json"))
    assert (row["notice_id"], row["acked_by"], row["note"]) == (nid, "王窗口", "已催办")
    assert "待签收" in ok(county_cli, county, "supervision", "list", "--state", "待签收")


def test_cards_overdue_prints_totals_by_name(pair: tuple[str, str]) -> None:
    county, township = pair
    no = file_elder(township, *(a for m in ELDER_REQUIRED for a in ("--material", m)))
    ok(township_cli, township, "case", "transition", no, "accept", "--person", "王窗口")
    carry(Path(township), Path(county), "t1", "county")
    ok(county_cli, county, "settings", "set", "warn_days", "30")  # accepted today, 10 days: 预警 at once
    issued = json.loads(ok(county_cli, county, "cards", "scan", "--json"))
    assert [c["level"] for c in issued] == ["预警"]
    out = json.loads(ok(county_cli, county, "cards", "overdue", "--json"))
    assert out["all"]["cases"] == 1 and out["all"]["预警"] == 1 and out["all"]["overdue"] == 0
    (r,) = out["rows"]
    assert (r["township_name"], r["village_name"], r["item_name"], r["clerk"]) == (
        "城关镇便民服务中心",
        "（乡镇窗口）",
        "高龄津贴申请",
        "王窗口",
    )
    text = ok(county_cli, county, "cards", "overdue", "--by", "clerk")
    assert "受理人" in text and "王窗口" in text and "城关镇便民服务中心" in text  # names, not node ids
