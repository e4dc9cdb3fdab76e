"""A restored laptop's fork, resolved from the county's pages in headless Chromium (issue 13, point 8).

Real processes: the county (serving its pages), one township and one village. The village files cases that
reach the county; its laptop is then restored from a copy taken before them and files offline: the fork is
found at the township and reported to the county. The administrator signs in, sees 分叉 on 节点与登记, opens
梅花村's page (the evidence: the entries on each branch), writes a reason and clicks 裁决; after the next syncs
the offline cases are at the county (checked in the county's database). The administrator also enrols a new
village from the form and gets the enrolment sheet. Screenshots: the node list, the node page, the sheet.

Then a village goes quiet: 石门村 is enrolled (its one contact) and its laptop stays off. A week later —
the county, the township and 梅花村's laptop run with their clocks moved 7 days ahead by libfaketime (the
Debian package `faketime`; the clock is the only thing mocked) — 梅花村 syncs as usual and 石门村 shows as
静默 on the county's 对账 page, alone under 只看静默. Every request stays on 127.0.0.1.
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Iterator
from io import BytesIO
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from ..e2e.cluster import Cluster, wait_for
from .helpers import pdf_text, screenshot

ITEM = "城乡居民医保参保登记"
ADMIN = ("周县长", "admin1", "admin1-pass-2026")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("county-fork"))
    c.county()
    c.env["ADMIN_PASSWORD"] = ADMIN[2]
    c.run("county", "account", "add", "--name", ADMIN[0], "--login", ADMIN[1], "--role", "admin",
          "--password-env", "ADMIN_PASSWORD")  # fmt: skip
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "3600")  # syncs up only when the test says so
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def county_cases(c: Cluster) -> set[str]:
    """The case ids of 梅花村 in the county's database."""
    with c.store("county") as store:
        return {r[0] for r in store.conn.execute("SELECT case_id FROM cases WHERE author = 'v11'")}


def up(c: Cluster) -> None:
    c.run("v11", "sync", check=False)
    c.run("t1", "sync")


def test_a_restored_laptops_fork_is_resolved_from_the_node_page(page: Page, cluster: Cluster) -> None:
    c = cluster
    copy = c.root / "v11-copy"
    shutil.copytree(c.nodes["v11"].data, copy)  # the old copy, taken before the cases below
    c.new_cases("v11", 3, ITEM)
    up(c)
    assert len(county_cases(c)) == 3
    shutil.rmtree(c.nodes["v11"].data)
    shutil.copytree(copy, c.nodes["v11"].data)
    offline = c.new_cases("v11", 2, ITEM, "--offline")
    assert c.run("v11", "sync", check=False).returncode == 2  # the township found the fork
    c.run("t1", "sync")  # … and reports it to the county

    base = c.nodes["county"].url or ""
    page.goto(base + "/login")
    page.fill("input[name=login]", ADMIN[1])
    page.fill("input[name=password]", ADMIN[2])
    page.click("button[type=submit]")
    page.click("nav.mainnav >> text=节点与登记")
    row = page.locator("table.nodes tr", has_text="梅花村")
    expect(row.locator(".badge.red")).to_have_text("分叉 1")
    screenshot(page, "county-nodes")
    row.locator("a", has_text="梅花村").click()
    expect(page.locator("h1")).to_contain_text("梅花村")
    fork = page.locator(".fork")
    expect(fork).to_contain_text("待裁决")
    expect(fork).to_contain_text("城关镇便民服务中心发现")
    expect(fork.locator("h3").first).to_contain_text("共 3 条")  # the county's branch: the 3 cases
    expect(fork.locator("h3").nth(1)).to_contain_text("共 2 条")  # the other: the 2 offline ones
    screenshot(page, "county-node-fork")
    fork.locator("input[name=reason]").fill("笔记本从旧备份恢复后离线登记")
    fork.locator("button", has_text="裁决").click()
    expect(page.locator(".flash.success")).to_contain_text("已裁决分叉")
    expect(page.locator(".fork")).to_contain_text("已裁决")
    expect(page.locator("table.audit")).to_contain_text("裁决分叉")
    expect(page.locator("table.audit")).to_contain_text("笔记本从旧备份恢复后离线登记")

    def settled() -> bool:  # the decision goes down through the township; the re-filed cases come back up
        c.run("t1", "sync")
        c.run("v11", "sync", check=False)
        c.run("t1", "sync")
        return len(county_cases(c)) == 5

    wait_for(settled, "the 2 offline cases at the county", step=0.2)
    ids = county_cases(c)  # in the county's database: 5 cases of 梅花村, the offline ones among them
    assert len(ids) == 5 and {x["case_id"] for x in offline} <= ids

    # an IT officer enrols the next village from the form and prints the sheet
    page.click("nav.mainnav >> text=节点与登记")
    page.select_option("select[name=role]", "village")
    page.fill("input[name=name]", "新桥村")
    page.fill("input[name=division]", "430321101202")
    page.select_option("select[name=parent]", "t1")
    page.click("text=签发令牌并打印登记单")
    expect(page.locator("h1")).to_contain_text("节点登记单")
    expect(page.locator(".command")).to_contain_text("village-agent init")
    assert page.locator(".sheet svg").count() == 1
    screenshot(page, "county-enrol-sheet")
    printed = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    assert len(PdfReader(BytesIO(printed)).pages) == 1  # one A4 sheet
    text = "".join(pdf_text(printed).split())
    assert "节点登记单" in text and "新桥村" in text and "village-agentinit" in text
    assert "令牌只显示这一次" not in text and "打印" not in text.replace(
        "打印登记单", ""
    )  # the screen notes never print


def week_ahead() -> dict[str, str]:
    """The environment that runs a program with its clock 7 days ahead (libfaketime, from Debian's faketime)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail(
            "需要 libfaketime（Debian 包 faketime）来把时钟拨快一周。请运行：apt-get install -y faketime\n"
            "libfaketime is needed (Debian package faketime): apt-get install -y faketime",
            pytrace=False,
        )
    return {"LD_PRELOAD": found[0], "FAKETIME": "+7d", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_a_village_gone_quiet_shows_as_silent_a_week_later(page: Page, cluster: Cluster) -> None:
    c = cluster
    ahead = week_ahead()
    c.enrol("v13", "village", "430321101203", "t1", c.nodes["t1"].url or "")  # its one contact; then it stays off
    c.run("t1", "sync")
    for name in ("county", "t1"):  # a week later: both servers run again, on the same ports, 7 days ahead
        port = str(urlsplit(c.nodes[name].url or "").port)
        c.stop(name)
        c.start(name, "--port", port, *(("--sync-interval", "3600") if name == "t1" else ()), env=ahead)
    c.run("v11", "sync", env=ahead)  # 梅花村 syncs as every day
    c.run("t1", "sync", env=ahead)  # … and its township goes up to the county

    base = c.nodes["county"].url or ""
    page.goto(base + "/?silent=1")  # the session of a week ago has locked itself: sign in again
    page.fill("input[name=login]", ADMIN[1])
    page.fill("input[name=password]", ADMIN[2])
    page.click("button[type=submit]")
    quiet = page.locator("table tr", has_text="石门村")
    expect(quiet.locator(".badge.red")).to_contain_text("静默")
    expect(page.locator("table")).not_to_contain_text("梅花村")  # only the silent ones under 只看静默
    page.goto(base + "/")
    expect(page.locator("table tr.silent", has_text="石门村")).to_have_count(1)
    expect(page.locator("table tr.silent", has_text="梅花村")).to_have_count(0)
    expect(page.locator("table tr.silent", has_text="城关镇便民服务中心")).to_have_count(0)
    screenshot(page, "county-recon-silent")
    page.click("text=上报完整性")
    expect(page.locator("h1")).to_contain_text("完整性")
    screenshot(page, "county-completeness")
    page.click("nav.mainnav >> text=操作日志")  # the fork decision of the test above, with its reason
    expect(page.locator("table.audit")).to_contain_text("笔记本从旧备份恢复后离线登记")
    screenshot(page, "county-audit")
    page.click("nav.mainnav >> text=账号")
    expect(page.locator("table")).to_contain_text(ADMIN[0])
    screenshot(page, "county-accounts")
