"""Every printed notice through headless Chromium: exactly one A4 page, the right names and numbers, no node ids.

The village's and the township's notices are served (waitress, 127.0.0.1) by
the small page app of tests/test_notices.py over the same real nodes and cases;
each notice is printed to PDF as Chromium prints it and screenshot on screen.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from sanji_node.actions import cases, catalog

from ..test_notices import (
    COUNTY_NAME,
    HOUSE,
    LONG_REASON,
    REJECT_REASON,
    TOWNSHIP_NAME,
    VILLAGE_NAME,
    World,
    _month,
    build_world,
    make_app,
)
from .conftest import pdf_of, screenshot, serve_wsgi

STATION = "梅花村便民服务站"
APPEAL = "如不服本决定，可在收到本通知书之日起六十日内依法申请行政复议，或者在六个月内依法向人民法院提起行政诉讼。"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, str]]:
    """The world, the village's notices URL and the township's."""
    with (
        build_world(tmp_path_factory.mktemp("notices-pdf")) as world,
        serve_wsgi(make_app(world.vws, STATION)) as village_url,
        serve_wsgi(make_app(world.tws, TOWNSHIP_NAME)) as township_url,
    ):
        yield world, village_url, township_url


def login(page: Page, base: str, who: str) -> None:
    page.goto(f"{base}/login?as={who}")


def check_one_page(page: Page, url: str, shot: str, *expected: str, landscape: bool = False, pages: int = 1) -> str:
    """Print `url` to PDF: `pages` A4 page(s) (0: any number) holding every `expected` text and no node id;
    save a screenshot."""
    pdf = pdf_of(page, url)
    page.goto(url)
    screenshot(page, shot)  # first, so a failing page can be looked at
    if os.environ.get("SANJI_NOTICE_PDFS"):  # a folder to keep the PDFs in, to look at them
        Path(os.environ["SANJI_NOTICE_PDFS"], f"{shot}.pdf").write_bytes(pdf.data)
    assert pdf.pages == pages or not pages, f"{shot}: {pdf.pages} pages"
    width, height = pdf.size
    if landscape:
        width, height = height, width
    assert abs(width - 595) < 2 and abs(height - 842) < 2, (
        f"{shot}: not A4 {'landscape' if landscape else 'portrait'} ({pdf.size})"
    )
    for text in expected:
        assert "".join(text.split()) in pdf.compact, f"{shot}: {text!r} not in the PDF:\n{pdf.text}"
    for node_id in ("meihua", "chengguan"):
        assert node_id not in pdf.text, f"{shot}: node id {node_id} printed"
    return pdf.compact


CASE_NOTICES = [
    # (kind, case, where it is printed, what else must be on it)
    ("receipt", "王秀英", "village", ("容缺受理承诺", "进度查询", "0731-57822465")),
    ("accept", "李桂兰", "village", ("决定予以受理", "承诺办结日期", "县民政局")),
    (
        "supplement",
        "张伟",
        "village",
        ("一次性告知", "请补交本人社会保障卡复印件，于12月10日前交村代办员。", "办理时限暂停计算"),
    ),
    ("reject", "刘芳", "village", ("申请人未满80周岁，不符合高龄津贴申领条件。", APPEAL)),
    ("complete", "陈强", "township", ("准予发放高龄津贴，每月200元", "领取方式")),
    ("deliver", "杨丽", "village", ("送达回执", "代办员送达", "受送达人")),
]


@pytest.mark.parametrize(("kind", "name", "where", "extra"), CASE_NOTICES, ids=[k for k, *_ in CASE_NOTICES])
def test_each_notice_prints_on_one_page(
    served: tuple[World, str, str], page: Page, kind: str, name: str, where: str, extra: tuple[str, ...]
) -> None:
    world, village_url, township_url = served
    ws, base, centre = (
        (world.vws, village_url, STATION) if where == "village" else (world.tws, township_url, TOWNSHIP_NAME)
    )
    login(page, base, "李建国" if where == "village" else "张窗口")
    case = cases.show_case(ws, world.id(name))
    text = check_one_page(
        page,
        f"{base}/print/case/{case['case_id']}/{kind}",
        f"notice-{kind}",
        COUNTY_NAME,
        centre,
        case["number"],
        case["item_name"],
        name,
        *extra,
    )
    if kind == "receipt":
        assert "查询码" in text and case["query_code"] in text
    assert world.cases[name]["id_number"] not in text  # the 身份证号 is masked


def test_the_fullest_notices_still_fit_one_page(served: tuple[World, str, str], page: Page) -> None:
    """8 materials with long names, a long 补正 reason and a long 不予受理 reason: still one sheet each."""
    world, village_url, _ = served
    login(page, village_url, "李建国")
    full = cases.show_case(world.vws, world.id("吴静"))
    assert sum(1 for m in full["materials"] if m["received"]) == 8
    for kind in ("receipt", "accept", "supplement", "complete", "deliver"):
        check_one_page(page, f"{village_url}/print/case/{full['case_id']}/{kind}", f"notice-full-{kind}", HOUSE)
    lacking = cases.show_case(world.vws, world.id("赵军"))
    check_one_page(
        page,
        f"{village_url}/print/case/{lacking['case_id']}/supplement",
        "notice-long-supplement",
        LONG_REASON,
        *[m["name"] for m in lacking["materials"] if not m["received"] and m["required"]],
    )
    check_one_page(
        page, f"{village_url}/print/case/{lacking['case_id']}/reject", "notice-long-reject", REJECT_REASON, APPEAL
    )


def test_item_guide_prints_on_one_page(served: tuple[World, str, str], page: Page) -> None:
    world, village_url, _ = served
    login(page, village_url, "李建国")
    item: dict[str, Any] = catalog.show_item(world.vws, HOUSE)
    assert len(item["material_rows"]) == 8
    check_one_page(
        page,
        f"{village_url}/print/item/{item['task_code']}",
        "notice-item-guide",
        "一次性告知单",
        COUNTY_NAME,
        STATION,
        HOUSE,
        "不收费",
        item["phone"],
        *[m["name"] for m in item["material_rows"]],
    )


def test_ledger_prints_landscape_with_the_villages_name(served: tuple[World, str, str], page: Page) -> None:
    """The ledger is a list, not a notice: it may run onto a second sheet, with its header row repeated."""
    world, village_url, township_url = served
    month = _month()
    login(page, village_url, "李建国")
    names = [n for n in world.cases if n != "孙霞"]  # the window case is not a proxy case
    url = f"{village_url}/print/ledger?month={month}"
    text = check_one_page(page, url, "notice-ledger", f"{VILLAGE_NAME}代办台账", *names, landscape=True, pages=0)
    assert "孙霞" not in text
    pdf = pdf_of(page, url)
    assert pdf.pages <= 2  # ten proxy cases, some with long results
    assert pdf.compact.count("身份证号") == pdf.pages  # the header row repeats on every sheet
    check_one_page(
        page, f"{village_url}/print/roster?month={month}", "notice-roster", f"{VILLAGE_NAME}便民服务站值班表", "王代办"
    )
    login(page, township_url, "张窗口")
    url = f"{township_url}/print/ledger?month={month}"
    check_one_page(page, url, "notice-township-ledger", f"{VILLAGE_NAME}代办台账", landscape=True, pages=0)
