"""Fixtures for the page tests: one headless Chromium per session, a fresh recorded page per test.

Every test collected under tests/browser/ carries the `browser` marker, so
`pytest -m "not browser"` leaves them out. A missing Chromium fails these
tests (it does not skip them): the message names the install command.

Fixtures:
    browser        (session) the launched playwright Browser
    page           (function) a new context and page, 1366×768, zh-CN, downloads accepted;
                   errors at teardown if any request went to a host other than 127.0.0.1/localhost/[::1]
                   (about:, data:, blob: are fine)
    requests_seen  (function) the list of URLs `page` requested (also `page.sanji_requests`)

Helpers (from tests.browser.helpers, re-exported here): screenshot(page, name) -> Path,
pdf_of(page, url) -> PdfInfo(pages, text, size, data), serve_wsgi(app) -> base URL, new_page(browser).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .helpers import (
    BrowserSetupError,
    PdfInfo,
    check_cjk_fonts,
    dead_end_proxy,
    find_chromium,
    launch_options,
    new_page,
    offsite,
    pdf_of,
    screenshot,
    serve_wsgi,
)

__all__ = ["PdfInfo", "new_page", "pdf_of", "screenshot", "serve_wsgi"]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        executable = find_chromium()
        check_cjk_fonts()
    except BrowserSetupError as e:
        raise pytest.fail.Exception(str(e), pytrace=False) from None
    with dead_end_proxy() as proxy, sync_playwright() as playwright:
        launched = playwright.chromium.launch(**launch_options(executable, proxy))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    try:
        yield opened
    finally:
        opened.context.close()
    leaked = offsite(opened.sanji_requests)  # type: ignore[attr-defined]
    if leaked:
        pytest.fail(
            "the page requested addresses off this machine (pages must load everything from the node itself):\n  "
            + "\n  ".join(leaked),
            pytrace=False,
        )


@pytest.fixture
def requests_seen(page: Page) -> list[str]:
    seen: list[str] = page.sanji_requests  # type: ignore[attr-defined]
    return seen
