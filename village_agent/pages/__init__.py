"""The village agent's pages (村便民服务站), one blueprint per area.

    auth      登录 / 退出: the agent's name and the passphrase that unlocks the laptop
    home      首页: today's work at a glance
    guide     办事指南: find an item, read it, print the 一次性告知单
    intake    新建代办: the shared case form (`sanji_node.web.case_form`)
    cases     我的办件 and 办件详情: search, history, 补正, 村办结, 送达, 好差评
    ledger    代办台账 (screen, print, Excel)
    roster    值班表 (screen, print, Excel, set the duty)
    sync      同步: the truth about the link to the township, 立即同步, USB bundles

Every view is thin: it parses a form, calls one function of
`sanji_node.actions`, and renders or redirects with a flash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, jsonify, render_template, request

from sanji_node.web import NavItem, Site, init_pages
from sanji_node.web.notices import register_notices

from . import auth, cases, guide, home, intake, ledger, roster, sync
from .common import centre_name, place_names

if TYPE_CHECKING:
    from ..app import Village

NAV = [
    NavItem("home.index", "首页"),
    NavItem("guide.index", "办事指南"),
    NavItem("intake.index", "新建代办"),
    NavItem("cases.index", "我的办件"),
    NavItem("ledger.index", "代办台账"),
    NavItem("roster.index", "值班表"),
    NavItem("sync.index", "同步"),
]


def register_pages(app: Flask, village: Village) -> None:
    init_pages(
        app,
        Site(
            title="村便民服务站",
            data_path=village.data.path,
            county_name=lambda: village.config.county_name,
            centre_name=lambda: centre_name(village),
            nav=NAV,
            idle_minutes=village.idle_minutes,
            login_endpoint="auth.login",
            place_names=lambda: place_names(village),
            workspace=lambda: village.workspace,
        ),
    )
    for bp in (auth.bp, home.bp, guide.bp, intake.bp, cases.bp, ledger.bp, roster.bp, sync.bp):
        app.register_blueprint(bp)
    register_notices(app)
    app.register_blueprint(Blueprint("village", __name__, static_folder="../static", static_url_path="/static/village"))

    @app.errorhandler(404)
    def not_found(_e: Exception) -> Any:
        # a script (curl, requests) gets the JSON answer the local API always gave; a browser gets a page
        if request.path.startswith("/api/") or "text/html" not in request.headers.get("Accept", ""):
            return jsonify({"code": "not_found", "message": "no such route", "hint": "see docs/http-api.md"}), 404
        return render_template(
            "sanji/error.html", status=404, message="没有这个页面。请从上方菜单进入。(no such page)", hint=None
        ), 404
