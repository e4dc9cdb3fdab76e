"""The village agent's pages in headless Chromium, against real processes: a county, a township, a village.

The village's `serve` runs as the agent's laptop runs it: enrolled with a
passphrase, unlocked at start by the passphrase variable (as the demo does),
so sync runs at once, while the pages still ask the agent to log in. Every
request the browser makes must stay on 127.0.0.1 (the `page` fixture fails
the test otherwise). Screenshots of every main page go to
artifacts/screenshots/village-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from playwright.sync_api import Page, expect

from sanji_domain.commands import CST
from sanji_domain.demo import DemoPeople

from ..e2e.cluster import PASSPHRASE_ENV, Cluster
from .helpers import pdf_of, screenshot

AGENT = "李建国"
ITEM = "高龄津贴申请"  # 村受理乡办结; the agent finds it by typing 高龄
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A county and a township serving, and the village 梅花村 serving its pages (no fallback to the county)."""
    c = Cluster(tmp_path_factory.mktemp("village-browser"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    c.start("v11", "--no-browser", "--sync-interval", "2", "--max-backoff", "3")
    yield c
    c.close()


@pytest.fixture
def url(cluster: Cluster) -> str:
    return cluster.nodes["v11"].url or ""


def log_in(page: Page, url: str, cluster: Cluster) -> None:
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("input[name=name]", AGENT)
    page.fill("input[name=passphrase]", cluster.env[PASSPHRASE_ENV])
    with page.expect_navigation():
        page.click("button:has-text('登录')")
    expect(page.locator("h1")).to_have_text("今天的工作")


def case_count(url: str) -> int:
    return len(requests.get(url + "/api/v1/status", timeout=10).json()["cases"])


def test_the_agent_logs_in_finds_an_item_files_a_case_and_prints_the_receipt(
    page: Page, url: str, cluster: Cluster
) -> None:
    page.goto(url + "/")
    screenshot(page, "village-login")
    page.fill("input[name=name]", AGENT)
    page.fill("input[name=passphrase]", "这不是口令啊啊啊")
    with page.expect_navigation():
        page.click("button:has-text('登录')")
    expect(page.locator(".field.has-error .error")).to_have_text("口令不对")
    screenshot(page, "village-login-wrong")
    log_in(page, url, cluster)
    screenshot(page, "village-home")

    page.click("nav.mainnav >> text=办事指南")
    page.fill("input[name=q]", "高龄")
    with page.expect_navigation():
        page.click("button:has-text('查找')")
    expect(page.locator(".results")).to_contain_text(ITEM)
    screenshot(page, "village-guide")
    with page.expect_navigation():
        page.click(f".results a.name:has-text('{ITEM}')")
    expect(page.locator("h1")).to_have_text(ITEM)
    expect(page.locator("body")).to_contain_text("不收费")
    screenshot(page, "village-item")

    with page.expect_navigation():
        page.click("a:has-text('新建代办') >> nth=-1")
    expect(page.locator("h1")).to_contain_text(ITEM)
    person = DemoPeople(seed=2026).applicant()
    page.fill("input[name=applicant_name]", person["name"])
    page.fill("input[name=id_number]", person["id_number"])
    page.fill("input[name=phone]", person["phone"])
    page.fill("input[name=address]", person["address"])
    for box in page.locator("ul.materials input[type=checkbox]").all():
        box.check()
    page.check("input[name=home_visit][value=是]")
    page.fill("input[name=proxy_no]", "WT-430321-00077")
    screenshot(page, "village-intake")
    before = case_count(url)
    with page.expect_navigation():
        page.click("button:has-text('确认收件')")
    expect(page.locator("section.filed h1")).to_have_text("收件成功")
    code = page.locator("section.filed .querycode").inner_text()
    assert re.fullmatch(r"\d{6}", code)
    assert case_count(url) == before + 1
    screenshot(page, "village-case-filed")
    assert person["name"] not in page.url and person["id_number"] not in page.url

    receipt = page.locator("a:has-text('打印收件凭证')").first.get_attribute("href") or ""
    assert re.fullmatch(r"/print/case/[0-9a-f-]{36}/receipt", receipt)
    page.goto(url + receipt)
    expect(page.locator("body")).to_contain_text("收件凭证")
    expect(page.locator("body")).to_contain_text(code)
    screenshot(page, "village-receipt")
    pdf = pdf_of(page, url + receipt)
    assert pdf.pages == 1 and "收件凭证" in pdf.compact and code in pdf.compact

    for name, path in (("cases", "/cases?state="), ("ledger", "/ledger"), ("roster", "/roster"), ("sync", "/sync")):
        page.goto(url + path)
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, f"village-{name}")
    page.goto(url + "/cases?state=")
    with page.expect_navigation():
        page.click("table.list a:has-text('查看') >> nth=0")
    screenshot(page, "village-case")


def test_a_wrong_check_digit_is_shown_beside_the_field_live_and_after_submit(
    page: Page, url: str, cluster: Cluster
) -> None:
    log_in(page, url, cluster)
    page.goto(url + "/cases/new")
    page.select_option("select[name=item]", label="老年优待证办理")
    with page.expect_navigation():
        page.click("button:has-text('选定事项')")
    good = DemoPeople(seed=7).id_number(min_age=61)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    page.fill("input[name=applicant_name]", "赵桂英")
    page.fill("input[name=id_number]", bad)
    live = page.locator("[data-id-field] [data-live-error]")
    expect(live).to_be_visible()
    expect(live).to_contain_text("校验位错误")
    expect(page.locator("[data-id-field]")).to_have_class(re.compile("has-error"))
    screenshot(page, "village-intake-live-error")
    page.fill("input[name=id_number]", good)
    page.locator("input[name=id_number]").blur()
    expect(live).to_be_hidden()  # the right number clears the message as it is typed

    page.fill("input[name=id_number]", bad)
    page.fill("input[name=phone]", "13807345678")
    for box in page.locator("ul.materials input[type=checkbox]").all():
        box.check()
    before = case_count(url)
    with page.expect_navigation():
        page.click("button:has-text('确认收件')")
    server = page.locator("[data-id-field] [data-server-error]")
    expect(server).to_contain_text("校验位错误")
    expect(page.locator("input[name=id_number]")).to_have_value(bad)
    expect(page.locator("input[name=applicant_name]")).to_have_value("赵桂英")
    assert case_count(url) == before
    screenshot(page, "village-intake-server-error")


def test_with_the_township_stopped_every_page_loads_and_sync_says_so(page: Page, url: str, cluster: Cluster) -> None:
    log_in(page, url, cluster)
    port = (cluster.nodes["t1"].url or "").rsplit(":", 1)[1]
    cluster.stop("t1")
    try:
        page.goto(url + "/sync")
        with page.expect_navigation():
            page.click("button:has-text('立即同步')")
        expect(page.locator("body")).to_contain_text("联系不上乡镇", timeout=EXPECT_TIMEOUT_MS)
        next_text = page.locator("section.card.warn strong").inner_text()
        when = datetime.strptime(next_text, "%Y-%m-%d %H:%M").replace(tzinfo=CST)
        assert abs((when - datetime.now(CST)).total_seconds()) < 600
        expect(page.locator("dl.sync-facts")).to_contain_text("乡镇没有应答")
        screenshot(page, "village-sync-unreachable")
        for path in ("/", "/guide", "/guide?q=gljt", "/cases/new", "/cases?state=", "/ledger", "/roster", "/sync"):
            response = page.goto(url + path)
            assert response is not None and response.status == 200, path
            expect(page.locator("nav.mainnav")).to_be_visible()
        expect(page.locator("body")).to_contain_text("联系不上乡镇")
        page.goto(url + "/")
        expect(page.locator(".syncline")).to_contain_text("联系不上乡镇")
        screenshot(page, "village-home-offline")
    finally:
        cluster.start("t1", "--port", port, "--sync-interval", "1", "--max-backoff", "2")
    # the township is back at its address: the next attempt (or 立即同步) reaches it again
    page.goto(url + "/sync")
    with page.expect_navigation():
        page.click("button:has-text('立即同步')")
    expect(page.locator("body")).to_contain_text("乡镇联系正常", timeout=EXPECT_TIMEOUT_MS)
