"""Headless Chromium for the page tests: launch, request recording, screenshots, PDFs, a served app.

The browser is the system's Chromium (Debian package `chromium`, or the
program named by SANJI_CHROMIUM) driven by Playwright for Python; nothing is
downloaded (no `playwright install`). Chinese glyphs need `fonts-noto-cjk`;
PDF text is read with `pdftotext` (poppler-utils) because pypdf returns CJK
radicals for common characters in Chromium's PDFs (民 comes back as U+2EA0 ⺠,
人 as U+2F08 ⼈, 门 as U+2ED4 ⻔), while poppler maps them back.

Nothing a test loads may leave this machine. Every request a page's context
makes is recorded and checked (`offsite`), and the browser's proxy is a
loopback port that refuses connections, with loopback hosts bypassing it, so a
request to any other host fails (net::ERR_PROXY_CONNECTION_FAILED) instead of
reaching the network.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, ViewportSize
from pypdf import PdfReader
from waitress.server import create_server

from ..guarded import running

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PACKAGES = ("chromium", "fonts-noto-cjk", "poppler-utils", "faketime")
INSTALL_COMMAND = "sudo apt-get install -y --no-install-recommends " + " ".join(SYSTEM_PACKAGES)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HARMLESS_SCHEMES = frozenset({"about", "data", "blob"})
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}


class BrowserSetupError(RuntimeError):
    """A program the browser tests need is missing; the message names the install command."""


def find_chromium() -> str:
    """The Chromium to drive: $SANJI_CHROMIUM if set, else `chromium` on PATH."""
    named = os.environ.get("SANJI_CHROMIUM")
    if named:
        found = shutil.which(named)
        if found is None:
            raise BrowserSetupError(f"SANJI_CHROMIUM={named!r} is not an executable program; fix or unset it.")
        return found
    found = shutil.which("chromium")
    if found is None:
        raise BrowserSetupError(
            "浏览器测试需要 Chromium，但找不到 chromium 程序。请运行："
            f"{INSTALL_COMMAND}\n"
            f"The browser tests need Chromium and no `chromium` is on PATH. Run: {INSTALL_COMMAND}\n"
            "(or set SANJI_CHROMIUM to a Chromium or Chrome executable)."
        )
    return found


def check_cjk_fonts() -> None:
    """Raise unless fontconfig knows a Chinese font (where there is no fontconfig, as on Windows, trust the OS)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return
    done = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False, timeout=60)
    if not done.stdout.strip():
        raise BrowserSetupError(
            f"没有中文字体，截图和 PDF 里的汉字会显示成方框。请运行：{INSTALL_COMMAND}\n"
            f"No Chinese font is installed; screenshots and PDFs would show boxes. Run: {INSTALL_COMMAND}"
        )


def launch_options(executable: str, proxy: str) -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch`."""
    geteuid = getattr(os, "geteuid", None)  # absent on Windows
    as_root = geteuid is not None and geteuid() == 0
    return {
        "executable_path": executable,
        "headless": True,
        # Chromium's sandbox refuses to run as root. (Playwright passes --no-sandbox already unless
        # chromium_sandbox=True; saying it here keeps root working if that default changes.)
        "args": ["--no-sandbox"] if as_root else [],
        # Loopback goes direct, everything else meets the dead end. Naming the loopback hosts matters:
        # without them Playwright adds Chromium's "<-loopback>" rule and sends 127.0.0.1 through the proxy too.
        "proxy": {"server": proxy, "bypass": "localhost,127.0.0.1,[::1]"},
    }


@contextmanager
def dead_end_proxy() -> Iterator[str]:
    """A proxy URL on a loopback port that is bound but never listens: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def is_local(url: str) -> bool:
    """True when loading `url` stays on this machine (loopback host, or about:/data:/blob:)."""
    parts = urlsplit(url)
    if parts.scheme in HARMLESS_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS


def offsite(urls: Iterable[str]) -> list[str]:
    """The URLs that would leave this machine, in the order they were requested."""
    return [u for u in urls if not is_local(u)]


def new_page(browser: Browser) -> Page:
    """A page in a fresh context (1366×768, zh-CN, downloads accepted) that records its requests.

    Every URL the context requests is appended to `page.sanji_requests`.
    Close it with `page.context.close()`.
    """
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", accept_downloads=True)
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.sanji_requests = seen  # type: ignore[attr-defined]
    return page


def wait_for_fonts(page: Page) -> None:
    """Wait until the page's web fonts are loaded, so glyphs are drawn in their final font."""
    page.evaluate("document.fonts.ready.then(() => true)")


def screenshots_dir() -> Path:
    """$SANJI_SCREENSHOTS, or artifacts/screenshots/ at the repository root."""
    return Path(os.environ.get("SANJI_SCREENSHOTS") or REPO / "artifacts" / "screenshots")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of `page` as NAME.png in the screenshots folder and return its path."""
    path = screenshots_dir() / (name if name.endswith(".png") else f"{name}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    wait_for_fonts(page)
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class PdfInfo:
    """A printed page: page count, extracted text, first page's (width, height) in points, the PDF."""

    pages: int
    text: str
    size: tuple[float, float] = (0.0, 0.0)
    data: bytes = field(repr=False, default=b"")

    @property
    def compact(self) -> str:
        """The text without any whitespace, for phrases that a line break may split."""
        return "".join(self.text.split())


def pdf_text(data: bytes) -> str:
    """The text of a PDF, extracted by poppler's pdftotext."""
    program = shutil.which("pdftotext")
    if program is None:
        raise BrowserSetupError(
            f"读取 PDF 文字需要 pdftotext（poppler-utils）。请运行：{INSTALL_COMMAND}\n"
            f"Reading PDF text needs pdftotext (poppler-utils). Run: {INSTALL_COMMAND}"
        )
    done = subprocess.run(
        [program, "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"pdftotext failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8")


def pdf_of(page: Page, url: str) -> PdfInfo:
    """Open `url` in `page`, print it to PDF as Chromium does (A4 unless the page's CSS says otherwise)."""
    response = page.goto(url)
    if response is not None and response.status >= 400:
        raise AssertionError(f"GET {url} answered {response.status}, not a page to print")
    wait_for_fonts(page)
    data = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    reader = PdfReader(BytesIO(data))
    box = reader.pages[0].mediabox
    return PdfInfo(len(reader.pages), pdf_text(data), (float(box.width), float(box.height)), data)


@contextmanager
def serve_wsgi(app: Any, *, threads: int = 4) -> Iterator[str]:
    """Serve a WSGI app with waitress on 127.0.0.1 (a free port) in a thread; yields its base URL.

    Close the browser contexts using it first. Shutting down closes every
    socket from inside the serving thread, so no request is cut mid-poll.
    """
    server: Any = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="sanji-test")
    with running(server) as base:
        yield base
