"""One case through the pages of two tiers, in headless Chromium, against real county, township and village processes.

The agent (代办员) logs in on the village laptop, finds the item by part of its
name, files the case with the materials checklist and prints the 收件凭证; the
township clerk sees it in 待办 and asks for 补齐补正 with a reason; the agent
sees the request with its reason and the material asked for, and answers it;
the clerk accepts and completes the case; the agent sees 办结, records 送达 and
the villager's evaluation; the township's statistics count it. Nothing is done
on a command line: the only links between the two browsers are the nodes' own
sync jobs. Every request either browser makes stays on 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from sanji_domain.demo import DemoPeople

from ..e2e.cluster import PASSPHRASE_ENV, Cluster
from .helpers import new_page, offsite, pdf_of, screenshot

AGENT = "周桂兰"
CLERK = ("李明", "liming", "liming-2026!")
ITEM = "高龄津贴申请"
ASKED = "居民户口簿"
SYNC_WAIT_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("three-tier-flow"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.env["CLERK_PASSWORD"] = CLERK[2]
    c.run("t1", "clerk", "add", "--name", CLERK[0], "--login", CLERK[1], "--role", "clerk",
          "--password-env", "CLERK_PASSWORD")  # fmt: skip
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    c.enrol("v12", "village", "430321101202", "t1", c.nodes["t1"].url or "")  # a village with no case yet
    c.start("v11", "--no-browser", "--sync-interval", "1", "--max-backoff", "2")
    yield c
    c.close()


@pytest.fixture
def clerk_page(browser: Browser) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    seen = list(page.sanji_requests)  # type: ignore[attr-defined]
    page.context.close()
    assert not offsite(seen), f"the clerk's browser left this machine: {offsite(seen)}"


def reload_until(page: Page, url: str, ready: Callable[[Page], bool], what: str) -> None:
    """Reload `url` until `ready(page)`: the change has to come through the nodes' sync jobs."""
    end = time.monotonic() + SYNC_WAIT_S
    while True:
        page.goto(url)
        if ready(page):
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {SYNC_WAIT_S:.0f} s waiting for {what}")
        time.sleep(0.5)


def test_a_case_goes_from_the_village_through_the_window_and_back(
    page: Page, clerk_page: Page, cluster: Cluster
) -> None:
    village, township = cluster.nodes["v11"].url or "", cluster.nodes["t1"].url or ""

    # the agent logs in and finds the item by part of its name
    page.goto(village + "/")
    page.fill("input[name=name]", AGENT)
    page.fill("input[name=passphrase]", cluster.env[PASSPHRASE_ENV])
    with page.expect_navigation():
        page.click("button:has-text('登录')")
    page.click("nav.mainnav >> text=办事指南")
    page.fill("input[name=q]", "高龄津")
    with page.expect_navigation():
        page.click("button:has-text('查找')")
    with page.expect_navigation():
        page.click(f".results a.name:has-text('{ITEM}')")
    with page.expect_navigation():
        page.click("a:has-text('新建代办') >> nth=-1")

    # files the case with the checklist: every material but the 户口簿 is ticked, then the 户口簿 too
    person = DemoPeople(seed=11).applicant()
    page.fill("input[name=applicant_name]", person["name"])
    page.fill("input[name=id_number]", person["id_number"])
    page.fill("input[name=phone]", person["phone"])
    page.fill("input[name=address]", person["address"])
    for box in page.locator("ul.materials input[type=checkbox]").all():
        box.check()
    with page.expect_navigation():
        page.click("button:has-text('确认收件')")
    expect(page.locator("section.filed h1")).to_have_text("收件成功")
    code = page.locator("section.filed .querycode").inner_text()
    receipt = page.locator("a:has-text('打印收件凭证')").first.get_attribute("href") or ""
    case_id = re.fullmatch(r"/print/case/([0-9a-f-]{36})/receipt", receipt)
    assert case_id, receipt
    case_path = f"/cases/{case_id.group(1)}"
    filed_at = page.url
    with page.expect_navigation():
        page.click("a:has-text('打印收件凭证') >> nth=0")
    expect(page.locator("h1")).to_contain_text("收件凭证")
    with page.expect_navigation():
        page.click("a[data-back]")  # 返回: back to the page the receipt was opened from
    assert page.url == filed_at
    printed = pdf_of(page, village + receipt)
    assert printed.pages == 1 and code in printed.compact and "梅花村" in printed.compact

    # the clerk sees it in 待办, from 梅花村, and asks for 补齐补正 of the 户口簿 with a reason
    clerk_page.goto(township + "/login")
    clerk_page.get_by_label("登录名").fill(CLERK[1])
    clerk_page.get_by_label("密码").fill(CLERK[2])
    clerk_page.get_by_role("button", name="登录").click()
    row = clerk_page.locator("table.cases tr", has_text=person["name"])
    reload_until(clerk_page, township + "/", lambda p: row.count() == 1, "the case to reach the township")
    expect(row).to_contain_text("梅花村")
    expect(row).to_contain_text(ITEM)
    screenshot(clerk_page, "flow-township-inbox")
    row.locator("a.caselink").click()
    asking = clerk_page.locator("form.act-request_supplement")
    asking.get_by_label(ASKED).check()
    asking.get_by_label("说明（要怎样补正）").fill("户口簿复印件看不清，请带原件来")
    asking.get_by_role("button", name="补齐补正").click()
    expect(clerk_page.locator(".flash.success")).to_contain_text("已补齐补正")

    # the agent sees the request, its reason and the material asked for, and answers it
    reload_until(page, village + case_path, lambda p: p.locator("section.card.warn").count() > 0,
                 "the 补正 request to reach the village")  # fmt: skip
    request = page.locator("section.card.warn")
    expect(request).to_contain_text("户口簿复印件看不清，请带原件来")
    expect(request).to_contain_text(f"要补的材料：{ASKED}")
    expect(request).to_contain_text(CLERK[0])
    screenshot(page, "flow-village-supplement-asked")
    request.get_by_label(ASKED).check()
    with page.expect_navigation():
        request.get_by_role("button", name="补正完成，报送乡镇").click()
    expect(page.locator("section.card.warn")).to_have_count(0)

    # the clerk accepts and completes it once the answer has arrived
    case_page = township + f"/case/{case_id.group(1)}"
    reload_until(clerk_page, case_page, lambda p: p.locator("form.act-accept").count() == 1,
                 "the 补正 answer to reach the township")  # fmt: skip
    clerk_page.locator("form.act-accept").get_by_role("button", name="受理").click()
    expect(clerk_page.locator(".flash.success")).to_contain_text("已受理")
    clerk_page.locator("form.act-complete").get_by_label("办理结果").fill("准予发放高龄津贴")
    clerk_page.locator("form.act-complete").get_by_role("button", name="办结").click()
    expect(clerk_page.locator(".casehead")).to_contain_text("已办结")

    # the agent sees 办结 with its result, records 送达 and the villager's evaluation
    reload_until(page, village + case_path, lambda p: p.locator("section.card.good").count() > 0,
                 "办结 to reach the village")  # fmt: skip
    expect(page.locator("section.card.good")).to_contain_text("准予发放高龄津贴")
    page.locator("section.card.good input[name=confirm]").check()
    with page.expect_navigation():
        page.click("button:has-text('登记送达')")
    expect(page.locator("body")).to_contain_text("已送达")
    page.get_by_label("非常满意").first.check()
    with page.expect_navigation():
        page.click("button:has-text('记录评价')")
    expect(page.locator("body")).to_contain_text("非常满意")
    screenshot(page, "flow-village-delivered")
    history = page.locator("body").inner_text()
    for step in ("收件", "补齐补正", "补正完成", "受理", "办结", "送达"):
        assert step in history, step

    # the township's statistics count it: 梅花村 one completion, rated; 新桥村 listed with none
    def counted(p: Page) -> bool:
        rows = [r for r in cluster.json("t1", "stats", "show", "--by", "village") if r.get("label") == "梅花村"]
        return bool(rows) and rows[0]["completions"] == 1 and rows[0]["evaluations"] == 1

    reload_until(clerk_page, township + "/stats", counted, "the 送达 and evaluation to reach the township")
    clerk_page.goto(township + "/stats")
    table = clerk_page.locator("table.stats").first
    expect(table.locator("tr", has_text="梅花村")).to_contain_text("100")
    expect(table).to_contain_text("新桥村")
    screenshot(clerk_page, "flow-township-stats")
    events = cluster.json("t1", "case", "show", case_id.group(1))["events"]
    assert [e["action"] for e in events] == ["request_supplement", "supplement", "accept", "complete", "deliver"]
    assert [e["by"] for e in events] == [CLERK[0], AGENT, CLERK[0], CLERK[0], AGENT]
