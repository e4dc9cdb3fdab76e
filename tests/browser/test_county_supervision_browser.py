"""督办 through the pages of two tiers, in headless Chromium, against a real county and township process.

The township's window files and accepts a case (李明) and records a 差评 (command line, as the window
would); the county administrator scans from 电子监察 (立即扫描) until the case shows carded, opens it and
sends a 督办 from its page; the township's own sync job brings it down; the clerk (an account made with
`township-node clerk add`) sees it in the box on 待办 and reads it (已阅) with a reply; the sync job takes
the acknowledgement up, and the county's case page shows 已阅 with the clerk's name and reply. The county
then assigns the 差评's rectification from 好差评. Screenshots: monitor-county, monitor-case,
monitor-township-inbox, ratings-county. Every request either browser makes stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from ..e2e.cluster import Cluster
from .helpers import new_page, offsite, screenshot

ADMIN = ("周县长", "zhouxian", "zhouxian-2026!")
CLERK = ("李明", "liming", "liming-2026!")
ITEM = "老年优待证办理"  # 乡, 5 working days
REASON = "请说明进度，两个工作日内办结"
REPLY = "已联系申请人，明天办结"
SYNC_WAIT_S = 40.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, str]]]:
    c = Cluster(tmp_path_factory.mktemp("county-supervision"))
    c.county()
    c.run("county", "settings", "set", "warn_days", "30")  # an accepted 承诺件 is at 预警 at once
    c.env["ADMIN_PASSWORD"], c.env["CLERK_PASSWORD"] = ADMIN[2], CLERK[2]
    c.run("county", "account", "add", "--name", ADMIN[0], "--login", ADMIN[1], "--role", "admin",
          "--password-env", "ADMIN_PASSWORD")  # fmt: skip
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.run("t1", "clerk", "add", "--name", CLERK[0], "--login", CLERK[1], "--role", "clerk",
          "--password-env", "CLERK_PASSWORD")  # fmt: skip
    filed = c.run("t1", "case", "new", "--output-json", "--json", "-", input=json.dumps(c.cases(1, ITEM)))
    (case,) = json.loads(filed.stdout)
    c.run("t1", "case", "transition", case["local_no"], "accept", "--person", CLERK[0])
    c.run("t1", "evaluate", case["local_no"], "--level", "1", "--comment", "窗口让我跑了三趟")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    yield c, case
    c.close()


@pytest.fixture
def clerk_page(browser: Browser) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    seen = list(page.sanji_requests)  # type: ignore[attr-defined]
    page.context.close()
    assert not offsite(seen), f"the clerk's browser left this machine: {offsite(seen)}"


def until(page: Page, act: Callable[[], object], ready: Callable[[], bool], what: str) -> None:
    """Do `act` (a reload, a click) until `ready()`: the change has to come through the nodes' sync jobs."""
    end = time.monotonic() + SYNC_WAIT_S
    while True:
        act()
        if ready():
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {SYNC_WAIT_S:.0f} s waiting for {what}")
        time.sleep(0.5)


def sign_in(page: Page, url: str, login: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("登录名").fill(login)
    page.get_by_label("密码").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


def test_a_supervision_notice_from_the_county_is_read_at_the_township_and_shows_as_read(
    page: Page, clerk_page: Page, cluster: tuple[Cluster, dict[str, str]]
) -> None:
    c, case = cluster
    county, township = c.nodes["county"].url or "", c.nodes["t1"].url or ""
    sign_in(page, county, ADMIN[1], ADMIN[2])

    # 电子监察: scan now until the township's sync has brought the accepted case up and it is carded
    page.goto(county + "/monitor")
    row = page.locator("table.monitor-cases tr", has_text=case["local_no"])

    def scan() -> None:
        with page.expect_navigation():
            page.get_by_role("button", name="立即扫描").click()

    until(page, scan, lambda: row.count() == 1, "the case to reach the county and be carded")
    expect(row).to_contain_text("城关镇便民服务中心")
    expect(row).to_contain_text("（乡镇窗口）")
    expect(row).to_contain_text(CLERK[0])
    expect(row).to_contain_text("预警")
    expect(page.locator(".scanbox")).to_contain_text("立即扫描（页面），周县长")
    screenshot(page, "monitor-county")

    # the case's page: facts, history, the card; the 督办 goes out
    with page.expect_navigation():
        row.get_by_role("link").click()
    expect(page.locator("dl.facts")).to_contain_text(case["local_no"])
    page.get_by_label("督办事由").fill(REASON)
    with page.expect_navigation():
        page.get_by_role("button", name="发出督办").click()
    expect(page.locator(".flash.success")).to_contain_text("督办已发出")
    notice = page.locator("table.notices tr", has_text=REASON)
    # 已发出, or already 已送达乡镇 if the township's sync job (every second) said it holds it since
    expect(notice).to_contain_text(re.compile("已发出|已送达乡镇"))
    case_url = page.url

    # the clerk sees it on 待办 once the township's sync job has brought it down, and reads it
    sign_in(clerk_page, township, CLERK[1], CLERK[2])
    box = clerk_page.locator("section.supervision-box")
    until(clerk_page, lambda: clerk_page.goto(township + "/"), lambda: box.count() == 1, "the 督办 to reach 待办")
    expect(box).to_contain_text(REASON)
    expect(box).to_contain_text(ADMIN[0])
    screenshot(clerk_page, "monitor-township-inbox")
    box.get_by_label("回复县级（可不填）").fill(REPLY)
    with clerk_page.expect_navigation():
        box.get_by_role("button", name="已阅").click()
    expect(clerk_page.locator(".flash.success")).to_contain_text("已阅")
    expect(clerk_page.locator("section.supervision-box")).to_have_count(0)

    # the acknowledgement goes up with the next sync: the county shows 已阅, the clerk's name and reply
    until(page, lambda: page.goto(case_url), lambda: "已阅" in notice.inner_text(), "the 已阅 to reach the county")
    expect(notice).to_contain_text(f"{CLERK[0]}，")
    expect(notice).to_contain_text(REPLY)
    screenshot(page, "monitor-case")

    # 好差评: the window's 差评 is listed with its case and comment; the county assigns it
    page.goto(county + "/ratings")
    rect = page.locator("table.rectifications tbody tr", has_text="窗口让我跑了三趟")
    until(page, lambda: page.goto(county + "/ratings"), lambda: rect.count() == 1, "the 差评 to reach the county")
    expect(rect).to_contain_text(ITEM)
    rect.locator("summary", has_text="指派").click()
    rect.get_by_label("整改责任人").fill("王主任")
    with page.expect_navigation():
        rect.get_by_role("button", name="指派").click()
    expect(page.locator(".flash.success")).to_contain_text("已指派 王主任 整改")
    expect(page.locator("table.rectifications tbody tr", has_text="窗口让我跑了三趟")).to_contain_text("整改中")
    screenshot(page, "ratings-county")
