"""The county administrator runs the catalog in headless Chromium, against real county, township and village processes.

She logs in at the county and releases the first catalog from a JSON file
(48 items added, published on confirmation). She uploads a one-row file in
全量替换 mode and sees the preview say in red how many items it would cancel,
while nothing is published; she discards it. She uploads the same kind of file
in 增量 mode, sees the one change field by field, confirms, and the release
reaches the village laptop through the township by the nodes' own sync jobs,
with every other item as it was. Then the release history, the diff of the
two releases and the printable 办事指南 (one A4 page). Screenshots of the
list, the previews, the diff and the 办事指南 are saved; every request stays
on 127.0.0.1. About 40 s (26 s of it building the three nodes).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ..e2e.cluster import DEMO_CATALOG, DEMO_ITEMS, Cluster, wait_for
from .helpers import pdf_of, screenshot

ADMIN = ("周县长", "zhouxz", "zhouxz-pass-2026")
GAOLING = next(i for i in DEMO_ITEMS if i["name"] == "高龄津贴申请")
N_ITEMS = len(DEMO_ITEMS)
SYNC_WAIT_S = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("county-catalog"))
    c.county(catalog=False)  # the administrator releases the first catalog from the page
    c.env["ADMIN_PASSWORD"] = ADMIN[2]
    c.run("county", "account", "add", "--name", ADMIN[0], "--login", ADMIN[1], "--role", "admin",
          "--password-env", "ADMIN_PASSWORD")  # fmt: skip
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "1", "--max-backoff", "2")
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    c.start("v11", "--no-browser", "--sync-interval", "1", "--max-backoff", "2")
    yield c
    c.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("catalog-files")
    one_row = f"实施编码,承诺时限\n{GAOLING['task_code']},8\n"
    out = {"replace": where / "只有一行.csv", "one": where / "承诺时限.csv"}
    out["replace"].write_text(one_row, encoding="utf-8")
    out["one"].write_text(one_row, encoding="utf-8")
    return out


def releases(c: Cluster, node: str) -> dict[int, str]:
    """version → source of the catalog releases a node has folded, read from its database file."""
    with sqlite3.connect(f"file:{c.nodes[node].data / 'node.sqlite'}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT version, source FROM catalog_releases").fetchall())


def village_items(c: Cluster) -> dict[str, dict[str, object]]:
    with sqlite3.connect(f"file:{c.nodes['v11'].data / 'node.sqlite'}?mode=ro", uri=True) as db:
        return {code: json.loads(body) for code, body in db.execute("SELECT task_code, body FROM catalog_items")}


def sign_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("登录名").fill(ADMIN[1])
    page.get_by_label("密码").fill(ADMIN[2])
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


def upload(page: Page, base: str, path: Path, mode: str) -> None:
    page.goto(base + "/catalog")
    with page.expect_navigation():
        page.get_by_role("link", name="导入事项清单").click()
    page.set_input_files("input[name=file]", str(path))
    page.check(f"input[name=mode][value={mode}]")
    with page.expect_navigation():
        page.get_by_role("button", name="上传并预览").click()
    expect(page.locator("h1")).to_contain_text("导入预览")


def test_the_administrator_imports_previews_confirms_and_the_release_reaches_the_village(
    page: Page, cluster: Cluster, files: dict[str, Path]
) -> None:
    base = cluster.nodes["county"].url or ""
    sign_in(page, base)
    page.goto(base + "/catalog")
    expect(page.locator(".release-now")).to_have_text("尚未发布事项清单。请先导入事项清单文件。")

    # the first catalog, from a JSON file: 48 items added, published on confirmation
    upload(page, base, DEMO_CATALOG, "增量")
    expect(page.locator(".preview-counts .n").first).to_have_text(str(N_ITEMS))
    expect(page.locator("tr.added")).to_have_count(N_ITEMS)
    assert releases(cluster, "county") == {}
    with page.expect_navigation():
        page.get_by_role("button", name="确认发布").click()
    expect(page.locator(".flash.success")).to_contain_text(f"已发布事项清单第 1 版（共 {N_ITEMS} 项）：新增 {N_ITEMS}")
    page.goto(base + "/catalog")
    expect(page.locator(".release-now")).to_contain_text("第 1 版，")
    expect(page.locator("table.catalog tbody tr")).to_have_count(N_ITEMS)
    screenshot(page, "county-catalog-list")

    # 全量替换 with a one-row file: the preview says in red how many it cancels; nothing is published
    upload(page, base, files["replace"], "全量替换")
    cancels = page.locator("#cancel-count")
    expect(cancels).to_have_text(str(N_ITEMS - 1))
    color = cancels.evaluate("e => getComputedStyle(e).color")
    size = float(cancels.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert color == "rgb(176, 0, 32)" and size >= 36, (color, size)  # --red, large
    expect(page.locator(".cancel-warning")).to_contain_text(f"将取消 {N_ITEMS - 1} 项事项")
    expect(page.get_by_role("button", name=f"确认发布（取消 {N_ITEMS - 1} 项）")).to_be_visible()
    screenshot(page, "county-catalog-preview-replace")
    assert set(releases(cluster, "county")) == {1}  # shown, not published
    with page.expect_navigation():
        page.get_by_role("button", name="放弃，不发布").click()
    expect(page.locator(".flash.info")).to_contain_text("已放弃这次导入，未发布任何内容")
    assert set(releases(cluster, "county")) == {1}

    # 增量 with the same one row: only that item changes, field by field; confirm
    upload(page, base, files["one"], "增量")
    expect(page.locator("#cancel-count")).to_have_text("0")
    change = page.locator("table.changes tbody tr")
    expect(change).to_have_count(1)
    expect(change).to_contain_text("高龄津贴申请")
    expect(change.locator("td.old")).to_have_text("10 个工作日")
    expect(change.locator("td.new")).to_have_text("8 个工作日")
    screenshot(page, "county-catalog-preview")
    with page.expect_navigation():
        page.get_by_role("button", name="确认发布").click()
    expect(page.locator(".flash.success")).to_contain_text("已发布事项清单第 2 版（共 48 项）：新增 0，变更 1，取消 0")
    assert releases(cluster, "county")[2] == files["one"].name

    # the release reaches the village laptop through the township, by the nodes' own sync jobs
    wait_for(lambda: 2 in releases(cluster, "v11"), "release 2 to reach the village", timeout=SYNC_WAIT_S)
    items = village_items(cluster)
    assert items[GAOLING["task_code"]]["promised_days"] == 8
    assert len(items) == N_ITEMS and all(i["state"] == "在用" for i in items.values())
    assert [c for c, i in items.items() if i["version"] == 2] == [GAOLING["task_code"]]  # nothing else changed

    # the history, the diff of the two releases, the 办事指南
    page.goto(base + "/catalog/releases")
    expect(page.locator("table.releases tbody tr").first).to_contain_text(ADMIN[0])
    page.select_option("select[name=a]", "1")
    page.select_option("select[name=b]", "2")
    with page.expect_navigation():
        page.get_by_role("button", name="比较这两版").click()
    expect(page.locator("h1")).to_have_text("事项清单第 1 版 → 第 2 版")
    expect(page.locator("table.changes td.new")).to_have_text("8 个工作日")
    screenshot(page, "county-catalog-diff")
    page.goto(base + f"/catalog/item/{GAOLING['task_code']}")
    with page.expect_navigation():
        page.get_by_role("link", name="打印办事指南").click()
    expect(page.locator(".sheet h1")).to_have_text("办事指南")
    screenshot(page, "county-catalog-guide")
    printed = pdf_of(page, page.url)
    assert printed.pages == 1, printed.text
    for shown in ("高龄津贴申请", GAOLING["task_code"], "设定依据", "居民身份证", "承诺办结时限：8个工作日", "不收费"):
        assert shown in printed.compact, shown
