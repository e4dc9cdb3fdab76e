"""The county's 统计 page and monthly 通报 in headless Chromium: 20 townships and their villages (some
with no case) are all shown by name beside visible SVG charts, and the 通报 prints on exactly one A4
page. The county's data directory holds signed entries folded by the real store; the pages are served
by waitress on 127.0.0.1."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from county_server.app import create_app
from sanji_domain.commands import CST

from ..test_county_stats_pages import PASSWORD, County, Places, build_county
from .conftest import pdf_of, screenshot, serve_wsgi

TOWNSHIPS = (
    "城关镇 白沙镇 清水乡 金桥镇 石门镇 桃花江镇 龙潭乡 青山镇 马迹塘镇 大栗港镇 "
    "松木塘镇 灰山港镇 沾溪镇 羞女峰乡 鸬鹚渡镇 修山镇 三堂街镇 浮邱山乡 牛田镇 高桥乡"
).split()
VILLAGE_WORDS = "梅花 桃源 新桥 石门 杨柳 枫树 竹山 荷塘 红旗 团结 和平 长乐 永安 向阳 东风 双江".split()
PLACES: Places = {
    f"t{i:02d}": (
        name,
        [(f"v{i:02d}{j}", f"{VILLAGE_WORDS[(i + j) % 16]}{'村' if j < 2 else '社区'}") for j in range(3)],
    )
    for i, name in enumerate(TOWNSHIPS)
}
EMPTY_TOWNSHIP = "高桥乡"


def script(c: County) -> None:
    """Cases in October and November 2026 everywhere except 高桥乡 and every third village."""
    rng = random.Random(2026)
    for name, villages in PLACES.values():
        if name == EMPTY_TOWNSHIP:
            continue
        for v, _ in villages[:2]:
            for _ in range(rng.randrange(1, 3)):
                filed = date(2026, 10, 12) + timedelta(days=rng.randrange(0, 40))
                if filed.weekday() >= 5:
                    filed -= timedelta(days=2)
                done = filed + timedelta(days=rng.choice([0, 0, 1, 3, 20]))
                c.case(v, filed.isoformat(), accept=filed.isoformat(), complete=done.isoformat())
        if rng.random() < 0.5:
            cid = c.case(villages[0][0], "2026-11-18", accept="2026-11-18")
            c.card(cid, rng.choice(["黄牌", "红牌"]), "2026-11-27")
            c.evaluate(villages[0][0], cid, rng.randint(1, 5), "2026-11-20")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = build_county(tmp_path_factory.mktemp("county-stats-browser") / "c", PLACES, script)
    now = int(datetime.combine(date(2026, 12, 3), time(9), CST).timestamp() * 1000)
    app = create_app(path, clock_ms=lambda: now)
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.extensions["county"].ws.close()


def login(page: Page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=login]", "admin1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_every_township_and_village_by_name_with_charts_and_a_one_page_bulletin(page: Page, base: str) -> None:
    login(page, base)
    page.goto(f"{base}/stats?period=2026-11")
    shot = screenshot(page, "county-stats")
    text = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
    for township, villages in PLACES.values():
        assert township in text, township
        for _, village in villages:
            assert village in text, village
    assert "t01" not in text and "v011" not in text  # names, never node ids
    bars, trend = page.locator("svg.chart.bars").first, page.locator("svg.chart.lines").first
    for chart in (bars, trend):
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 150
    assert page.locator("svg.chart.bars rect.bar-ontime").count() == len(PLACES) - 1  # all but 高桥乡 have a rate
    bars.screenshot(path=str(shot.with_name("county-stats-chart.png")))

    pdf = pdf_of(page, f"{base}/stats/bulletin?month=2026-11")
    screenshot(page, "county-bulletin")
    if os.environ.get("SANJI_NOTICE_PDFS"):  # a folder to keep the PDF in, to look at it
        Path(os.environ["SANJI_NOTICE_PDFS"], "county-bulletin.pdf").write_bytes(pdf.data)
    assert pdf.pages == 1, f"the 通报 printed on {pdf.pages} pages"
    width, height = pdf.size
    assert abs(width - 595) < 2 and abs(height - 842) < 2, pdf.size  # A4 portrait
    assert "示范县政务服务月度通报（2026年11月）" in pdf.compact
    for township in TOWNSHIPS:
        assert township in pdf.compact, township
    assert "按时办结率最高" in pdf.compact and "红黄牌" in pdf.compact
