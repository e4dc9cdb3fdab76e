"""`init_pages`: wire the shared page machinery into a node's Flask app."""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

from sanji_domain.commands import CST
from sync_protocol import files
from sync_protocol.errors import SyncError
from sync_protocol.http_api import BUSY_RETRY_AFTER_S, busy_response, error_response, internal_error_response, is_busy

from ..workspace import Workspace
from . import qr
from .searches import SearchMemory

log = logging.getLogger("sanji.pages")

SECRET_FILE = "web.secret"
API_PREFIX = "/api/"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGNED_API = "sync_api"  # the blueprint of the signed sync API: its requests carry a node's signature instead


@dataclass
class NavItem:
    endpoint: str
    label: str
    roles: tuple[str, ...] = ()  # empty: everyone signed in


@dataclass
class Site:
    """What the shared layout needs to know about one node's pages."""

    title: str  # e.g. 村便民服务站 / 乡镇便民服务中心
    data_path: Path  # the node's data directory (the session secret lives there)
    county_name: Callable[[], str]
    centre_name: Callable[[], str]  # this node's display name
    nav: list[NavItem] = field(default_factory=list)
    idle_minutes: int = 30
    login_endpoint: str = "auth.login"
    place_names: Callable[[], dict[str, str]] = dict  # node id -> display name
    workspace: Callable[[], Workspace | None] = lambda: None  # None while locked (a village before login)


def _secret(path: Path) -> bytes:
    """The session-signing secret, made once and kept owner-only in the data directory."""
    f = path / SECRET_FILE
    if f.exists():
        return f.read_bytes()
    value = secrets.token_bytes(32)
    files.write_atomic(f, value)
    return value


def fmt_ms(ms: Any, with_time: bool = True) -> str:
    """A time in China time, as people write it: 2026-12-02 14:05 (or the date alone)."""
    if not ms:
        return "—"
    dt = datetime.fromtimestamp(int(ms) / 1000, CST)
    return dt.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def init_pages(app: Flask, site: Site) -> CSRFProtect:
    """Add the shared layout, sessions, CSRF, static files, filters and error pages to `app`."""
    app.secret_key = _secret(site.data_path)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="sanji_session",
        WTF_CSRF_CHECK_DEFAULT=False,  # checked below for pages only: the sync API signs its requests
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which idles out
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    csrf = CSRFProtect(app)
    app.register_blueprint(
        Blueprint(
            "sanji", __name__, template_folder="templates", static_folder="static", static_url_path="/static/sanji"
        )
    )
    app.extensions["sanji_site"] = site
    app.extensions["sanji_searches"] = SearchMemory()

    @app.before_request
    def guard() -> Any:
        api = request.path.startswith(API_PREFIX)
        if request.method not in SAFE_METHODS and request.blueprint != SIGNED_API:
            if cross_origin(api=api):
                log.warning("cross-origin %s %s refused", request.method, request.path)
                if api:
                    return {
                        "code": "not_allowed",
                        "message": "请求来源不对，已拒绝 (cross-origin request refused)",
                        "hint": "从本系统的页面操作；脚本请带 Content-Type: application/json 请求头",
                    }, 403
                return _error_page(403, "请求来源不对：只接受本系统页面提交的表单 (cross-origin request refused)")
            if not api:
                csrf.protect()
        if api or request.path.startswith("/static/"):
            return None
        last = session.get("seen")
        now = int(time.time())
        if session.get("user") and last and now - int(last) > site.idle_minutes * 60:
            app.extensions["sanji_searches"].drop()  # the search text (personal data) goes with the session
            session.clear()
            flash(f"超过 {site.idle_minutes} 分钟未操作，已自动锁定，请重新登录。", "info")
            if request.endpoint != site.login_endpoint:
                return redirect(url_for(site.login_endpoint, next=_safe_next(request.full_path)))
        if session.get("user"):
            session["seen"] = now
        return None

    @app.after_request
    def headers(resp: Any) -> Any:
        if request.path.startswith(API_PREFIX):
            return resp
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault(
            "Referrer-Policy", "same-origin"
        )  # never leaves the site; same-origin POSTs keep their Origin
        if not request.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"  # pages may show personal data
        return resp

    @app.context_processor
    def layout() -> dict[str, Any]:
        user = session.get("user")
        role = user.get("role") if isinstance(user, dict) else None
        nav = [n for n in site.nav if user and (not n.roles or role in n.roles)]
        return {
            "site": site,
            "county_name": _safe(site.county_name),
            "centre_name": _safe(site.centre_name),
            "user": user,
            "nav": nav,
            "now_text": fmt_ms(int(time.time() * 1000)),
        }

    @app.template_filter("place")
    def place(node_id: Any) -> str:
        if not node_id:
            return "—"
        if "sanji_places" not in g:
            g.sanji_places = _safe(site.place_names) or {}
        return str(g.sanji_places.get(node_id, node_id))

    app.add_template_filter(fmt_ms, "when")
    app.add_template_filter(lambda ms: fmt_ms(ms, with_time=False), "day")

    @app.template_filter("qr")
    def qr_filter(text: str) -> Markup:
        return Markup(qr.svg(text))

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError) -> Any:
        return _error_page(
            400, "表单已过期或来源不对，请返回上一页刷新后重新提交。(the form's security token is missing or expired)"
        )

    @app.errorhandler(404)
    def not_found(e: Exception) -> Any:
        if request.path.startswith(API_PREFIX):
            return {"code": "not_found", "message": "no such route", "hint": "see docs/http-api.md"}, 404
        return _error_page(404, "没有这个页面。请从上方菜单进入。(no such page)")

    @app.errorhandler(SyncError)
    def sync_error(e: SyncError) -> Any:
        if is_busy(e):
            return busy(e)
        if request.path.startswith(API_PREFIX):
            return error_response(e)
        return _error_page(400, e.for_people, e.hint)

    @app.errorhandler(500)
    def server_error(e: Exception) -> Any:
        original = getattr(e, "original_exception", None) or e
        if is_busy(original):
            return busy(original)
        if request.path.startswith(API_PREFIX):
            return internal_error_response(original)
        incident = uuid.uuid4().hex[:8]
        log.error("incident %s on %s %s", incident, request.method, request.path, exc_info=original)
        return _error_page(500, f"系统出错了，请稍后重试；如果再次出现，请把事件编号 {incident} 告诉县级管理员。")

    def busy(e: BaseException) -> Any:
        """Another writer holds the database: 503 with Retry-After (JSON for the API, a page for people)."""
        log.warning("database busy on %s %s: %s", request.method, request.path, e)
        if request.path.startswith(API_PREFIX):
            return busy_response()
        resp = make_response(_error_page(503, "系统正忙，请过几秒钟再试一次。(the database is busy)"))
        resp.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return resp

    return csrf


def workspace() -> Workspace:
    """The node's workspace for this request; a locked node (no workspace yet) sends the user to log in."""
    site: Site = current_app.extensions["sanji_site"]
    ws = site.workspace()
    if ws is None:
        abort(redirect(url_for(site.login_endpoint, next=_safe_next(request.full_path))))
    return ws


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # a name that cannot be read must not take the page down
        log.exception("layout value failed")
        return ""


def cross_origin(*, api: bool) -> bool:
    """Whether a state-changing request may have been sent by another site's page (then it is refused).

    The browser's word decides: `Sec-Fetch-Site` other than same-origin/none, or an `Origin` (else `Referer`)
    of another host. A request with none of them comes from an old browser or a script on this machine: a
    page's form is then left to its CSRF token; an API request must say `Content-Type: application/json`,
    which no form can send and no other site's script can send without a CORS preflight, never granted here.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin == "null":  # a privacy setting may hide the origin: trust it only when the browser says same-origin
        return fetch_site != "same-origin"
    source = origin or request.headers.get("Referer")
    if source:
        return urlsplit(source).netloc != request.host
    if fetch_site is not None:
        return False
    return api and request.mimetype != "application/json"


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site may be a redirect target after login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    return target.rstrip("?")


def _error_page(status: int, message: str, hint: str | None = None) -> Any:
    return render_template("sanji/error.html", status=status, message=message, hint=hint), status


safe_next = _safe_next
