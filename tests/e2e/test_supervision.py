"""电子监察 and 督办 with real processes: the county server's scheduled card scan issues a card by
itself and a scan by hand then issues nothing twice; a 督办 sent from the county CLI reaches the
township's inbox through the township's own syncs, its 签收 comes back, and the county shows 已签收."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.reliability import report

from .cluster import Cluster, wait_for

pytestmark = pytest.mark.long  # ~45 s of process starts and CLI runs: the long run only (scripts/reliability.sh)


@pytest.fixture(scope="module")
def county_t1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("supervision"))
    c.county()
    c.run("county", "settings", "set", "warn_days", "30")  # every accepted 承诺件 is at 预警 at once
    county = c.start("county", "--card-scan-interval", "1")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def test_scheduled_scan_and_a_supervision_notice_round_trip(county_t1: Cluster) -> None:
    c = county_t1
    started = time.monotonic()
    (case,) = c.new_cases("v11", 1, "老年优待证办理", "--offline")  # 乡, 5 working days
    no = case["local_no"]
    c.json("v11", "sync")
    c.run("t1", "case", "transition", no, "accept", "--person", "王窗口")

    def carded() -> list[dict[str, object]]:
        return [r for r in c.json("county", "cards", "list") if r["local_no"] == no]

    (card,) = wait_for(carded, "the county server's scheduled scan to card the accepted case")
    assert card["level"] == "预警"
    assert c.json("county", "cards", "scan") == []  # by hand, beside the server's scan: nothing twice
    assert len(carded()) == 1

    notice = c.json("county", "supervise", no, "--reason", "请加快办理", "--person", "县监察员")
    nid = notice["notice_id"]
    assert notice["township"] == "t1"

    def inbox() -> list[dict[str, object]]:
        return [r for r in c.json("t1", "supervision", "inbox") if r["notice_id"] == nid]

    (row,) = wait_for(inbox, "the 督办 to reach the township's inbox")
    assert (row["state"], row["case_id"], row["township_name"]) == ("待签收", case["case_id"], "城关镇便民服务中心")
    assert row["case_no"] in (no, card_no(c, no))  # the county's 办件编号 once numbered, else the local number
    c.run("t1", "supervision", "ack", nid, "--note", "已催办", "--person", "王窗口")

    def acknowledged() -> list[dict[str, object]]:
        return c.json("county", "supervision", "list", "--state", "已签收")

    (done,) = wait_for(acknowledged, "the 签收 to come back to the county")
    assert (done["notice_id"], done["acked_by"], done["note"]) == (nid, "王窗口", "已催办")
    report.record("supervision_e2e", round_trip_s=round(time.monotonic() - started, 1), cards=1, notices=1)


def card_no(c: Cluster, local_no: str) -> str | None:
    (row,) = [r for r in c.json("county", "case", "list") if r["local_no"] == local_no]
    return row["official_no"]
