"""The township window in headless Chromium, against real processes: county and township serving, two
village laptops that filed cases and synced them up.

A clerk signs in, finds a village's case in 待办, asks for 补齐补正 with two materials ticked and a
reason, prints the 补齐补正通知书; accepts and completes another case and prints the 办结通知书; the
statistics page shows every village by name. Every main page is screenshot as `township-…`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..e2e.cluster import PASSPHRASE_ENV, Cluster, Node
from .conftest import pdf_of, screenshot

TOWNSHIP = ("t1", "430321101000", "城关镇便民服务中心")
VILLAGES = (("v11", "430321101201", "梅花村"), ("v12", "430321101202", "桃源村"), ("v13", "430321101203", "石门村"))
ELDER = "高龄津贴申请"
LOW_INCOME = "农村低保申请"
HEAD = ("王芳", "wangfang", "wangfang-2026")
CLERK = ("李明", "liming", "liming-2026!")


def enrol(c: Cluster, node: str, role: str, division: str, parent: str, parent_url: str, name: str) -> Node:
    """As `Cluster.enrol`, with the display name people read (梅花村), given at the county."""
    token = c.json("county", "enroll", "--role", role, "--division", division, "--parent", parent,
                   "--node-id", node, "--name", name)["token"]  # fmt: skip
    n = c.nodes[node] = Node(node, role, c.root / node)
    extra: tuple[str, ...] = ()
    if role == "village":
        c.env.setdefault(PASSPHRASE_ENV, "代办员的口令-test")
        extra = ("--passphrase-env", PASSPHRASE_ENV)
    c.run(n, "init", "--parent", parent_url, "--token", token, *extra)
    return n


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    c = Cluster(tmp_path_factory.mktemp("township-browser"))
    c.county()
    county = c.start("county")
    node, division, name = TOWNSHIP
    enrol(c, node, "township", division, "county", county.url or "", name)
    for person, login, password in (HEAD, CLERK):
        c.env["CLERK_PASSWORD"] = password
        role = "head" if login == HEAD[1] else "clerk"
        c.run(
            node, "clerk", "add", "--name", person, "--login", login, "--role", role, "--password-env", "CLERK_PASSWORD"
        )
    c.start(node, "--sync-interval", "1", "--max-backoff", "2")
    for v, vdiv, vname in VILLAGES:
        enrol(c, v, "village", vdiv, node, c.nodes[node].url or "", vname)
    filed = {
        "v11": c.new_cases("v11", 2, ELDER, "--offline"),
        "v12": c.new_cases("v12", 1, LOW_INCOME, "--offline"),
    }
    for v in filed:
        c.json(v, "sync")
    yield c, filed
    c.close()


def sign_in(page: Page, base: str, who: tuple[str, str, str] = CLERK, shot: str | None = None) -> None:
    page.goto(f"{base}/login")
    if shot:
        screenshot(page, shot)
    page.get_by_label("登录名").fill(who[1])
    page.get_by_label("密码").fill(who[2])
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name=re.compile("^待办"))).to_be_visible()


def open_case(page: Page, base: str, local_no: str) -> None:
    page.goto(f"{base}/")
    page.locator("table.cases tr", has_text=local_no).locator("a.caselink").click()
    expect(page.locator(".subtitle")).to_contain_text(local_no)


def test_a_clerk_asks_for_supplement_and_prints_the_notice(page: Page, cluster: tuple[Cluster, dict[str, Any]]) -> None:
    c, filed = cluster
    base = c.nodes["t1"].url or ""
    page.goto(f"{base}/login")
    page.get_by_label("登录名").fill(CLERK[1])
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.locator(".flash.error")).to_contain_text("登录名或密码不对")
    screenshot(page, "township-login-wrong")
    sign_in(page, base, shot="township-login")
    inbox = page.locator("table.cases")
    for case in filed["v11"]:
        expect(inbox).to_contain_text(case["local_no"])
    expect(inbox).to_contain_text("梅花村")
    expect(inbox).to_contain_text("桃源村")
    assert "v11" not in inbox.inner_text()
    screenshot(page, "township-inbox")

    target = filed["v11"][0]["local_no"]
    open_case(page, base, target)
    screenshot(page, "township-case")
    form = page.locator("form.act-request_supplement")
    form.get_by_label("居民身份证", exact=True).check()
    form.get_by_label("居民户口簿", exact=True).check()
    form.get_by_label("说明（要怎样补正）").fill("身份证复印件不清晰，户口簿缺本人页")
    form.get_by_role("button", name="补齐补正").click()
    expect(page.locator(".flash.success")).to_contain_text("已补齐补正")
    expect(page.locator(".timeline")).to_contain_text("李明")
    screenshot(page, "township-case-supplement")
    link = page.get_by_role("link", name="打印补齐补正通知书")
    url = base + (link.get_attribute("href") or "")
    link.click()
    expect(page.locator("body")).to_contain_text("补齐补正通知书")
    screenshot(page, "township-notice-supplement")
    pdf = pdf_of(page, url)
    assert pdf.pages == 1
    assert "身份证复印件不清晰" in pdf.compact
    asked = pdf.compact.split("一次性告知如下", 1)[1].split("补正要求", 1)[0]  # the table of materials asked for
    assert "居民身份证" in asked and "居民户口簿" in asked


def test_a_clerk_accepts_and_completes_a_case(page: Page, cluster: tuple[Cluster, dict[str, Any]]) -> None:
    c, filed = cluster
    base = c.nodes["t1"].url or ""
    sign_in(page, base)
    target = filed["v12"][0]["local_no"]
    open_case(page, base, target)
    page.locator("form.act-accept").get_by_role("button", name="受理").click()
    expect(page.locator(".flash.success")).to_contain_text("已受理")
    expect(page.get_by_role("link", name="打印受理通知书")).to_be_visible()
    page.locator("form.act-complete").get_by_label("办理结果").fill("准予纳入农村低保")
    page.locator("form.act-complete").get_by_role("button", name="办结").click()
    expect(page.locator(".flash.success")).to_contain_text("已办结")
    expect(page.locator(".casehead")).to_contain_text("已办结")
    screenshot(page, "township-case-completed")
    page.get_by_role("link", name="打印办结通知书").click()
    expect(page.locator("body")).to_contain_text("准予纳入农村低保")
    screenshot(page, "township-notice-complete")
    events = c.json("t1", "case", "show", target)["events"]
    assert [(e["action"], e["by"]) for e in events] == [("accept", "李明"), ("complete", "李明")]


def test_every_main_page_by_name(page: Page, cluster: tuple[Cluster, dict[str, Any]]) -> None:
    c, _ = cluster
    base = c.nodes["t1"].url or ""
    sign_in(page, base, HEAD)
    page.goto(f"{base}/stats")
    table = page.locator("table.stats").first
    for _, _, name in VILLAGES:
        expect(table).to_contain_text(name)
    expect(page.locator("svg.chart").first).to_be_visible()
    screenshot(page, "township-stats")
    page.goto(f"{base}/villages")
    for _, _, name in VILLAGES:
        expect(page.locator("table.villages")).to_contain_text(name)
    screenshot(page, "township-villages")
    for path, shot, heading in (
        ("/cases", "township-cases", "办件查询"),
        ("/progress", "township-progress", "进度查询"),
        ("/staff", "township-staff", "人员管理"),
        ("/my-post", "township-mypost", "我的岗位"),
        ("/sync", "township-sync", "同步"),
        ("/walkin", "township-walkin", "窗口收件"),
        (f"/walkin?item={LOW_INCOME}", "township-walkin-form", "窗口收件"),
    ):
        page.goto(base + path)
        expect(page.locator("main h1")).to_contain_text(heading)
        screenshot(page, shot)
