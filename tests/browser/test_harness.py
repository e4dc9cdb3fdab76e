"""The browser harness itself: Chinese pages render, print to one A4 page, and nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, Route

from .helpers import is_local, new_page, offsite, pdf_of, screenshot, serve_wsgi

RECEIPT = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>收件凭证</title>
<style>
  body { font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; margin: 2rem; }
  h1 { font-size: 1.6rem; }
  td, th { border: 1px solid #333; padding: .3rem .6rem; text-align: left; }
  table { border-collapse: collapse; }
  @page { size: A4; margin: 15mm }
  @media print { body { margin: 0; } .no-print { display: none; } }
</style>
</head>
<body>
<h1>梅花村便民服务站 收件凭证</h1>
<table>
  <tr><th>事项</th><td>城乡居民基本养老保险参保登记</td></tr>
  <tr><th>申请人</th><td>张秀英</td></tr>
  <tr><th>收件人</th><td>代办员 李建国</td></tr>
  <tr><th>承诺时限</th><td>5 个工作日</td></tr>
</table>
<p class="no-print">打印本页</p>
</body>
</html>
"""

OFFSITE_IMAGE = "http://203.0.113.1/x.png"  # TEST-NET-3: documentation only, and aborted before it is sent


def make_app() -> Flask:
    app = Flask(__name__)

    @app.get("/receipt")
    def receipt() -> str:
        return RECEIPT

    @app.get("/a5")
    def a5() -> str:
        return RECEIPT.replace("size: A4", "size: A5")

    @app.get("/leaky")
    def leaky() -> str:
        return f'<!doctype html><html lang="zh-CN"><body><p>外链图片</p><img src="{OFFSITE_IMAGE}"></body></html>'

    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_wsgi(make_app()) as url:
        yield url


def test_receipt_renders_screenshots_and_prints_on_one_a4_page(
    page: Page, requests_seen: list[str], base_url: str
) -> None:
    page.goto(f"{base_url}/receipt")
    assert page.locator("h1").inner_text() == "梅花村便民服务站 收件凭证"
    shot = screenshot(page, "harness-receipt")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pdf = pdf_of(page, f"{base_url}/receipt")
    assert pdf.pages == 1
    assert "梅花村便民服务站" in pdf.text and "收件凭证" in pdf.text
    assert "城乡居民基本养老保险参保登记" in pdf.compact
    assert "打印本页" not in pdf.compact  # the print stylesheet applied
    assert pdf.size == pytest.approx((595.92, 842.88), abs=1.5)  # A4 in points

    assert requests_seen == [f"{base_url}/receipt", f"{base_url}/receipt"]


def test_the_page_css_sets_the_paper_size(page: Page, base_url: str) -> None:
    pdf = pdf_of(page, f"{base_url}/a5")
    assert pdf.pages == 1
    assert pdf.size == pytest.approx((419.76, 595.92), abs=1.5)  # A5 in points


def test_recorder_catches_a_request_off_the_machine(browser: Browser, base_url: str) -> None:
    leaky = new_page(browser)
    aborted: list[str] = []

    def abort(route: Route) -> None:
        aborted.append(route.request.url)
        route.abort()

    try:
        leaky.route(lambda url: not is_local(url), abort)
        with leaky.expect_event("requestfailed", lambda r: r.url == OFFSITE_IMAGE):
            leaky.goto(f"{base_url}/leaky")
        seen = leaky.sanji_requests  # type: ignore[attr-defined]
    finally:
        leaky.context.close()
    assert aborted == [OFFSITE_IMAGE]
    assert offsite(seen) == [OFFSITE_IMAGE]
    assert f"{base_url}/leaky" in seen


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("about:blank", True),
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("blob:http://127.0.0.1:8080/6f1c1e55-0000-4000-8000-000000000000", True),
        ("http://127.0.0.1:8080/cases", True),
        ("http://localhost:5000/static/app.css", True),
        ("ws://127.0.0.1:8080/live", True),
        ("http://[::1]:8080/", True),
        ("http://203.0.113.1/x.png", False),
        ("https://cdn.jsdelivr.net/npm/bootstrap.css", False),
        ("http://127.0.0.1.example.com/", False),
        ("http://localhost.example.com/", False),
        ("http://192.168.1.10:8080/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local
