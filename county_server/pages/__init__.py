"""The county administrator's pages (县政务服务中心), served beside the sync API.

`init_county_pages(app, node)` adds to the county's Flask app (the one
`create_app` builds for the sync API):

- the shared page core (`sanji_node.web.init_pages`: layout, sessions that
  idle out, CSRF, Chinese error pages, print styles);
- one blueprint per area: `auth` (登录), `recon` (对账, the home page),
  `nodes` (节点与登记), `catalog` (事项清单), `monitor` (电子监察, 督办),
  `stats` (统计, 通报), `ratings` (好差评整改), `accounts` (账号, 管理员 only),
  `audit` (操作日志);
- a check on every page request that the signed-in account still exists and
  is active.

Two roles: 管理员 (admin) may change data; 监察员 (inspector) reads every page
and changes nothing. Every action that changes data is recorded in the audit
log (`county_server.audit`) with who, when and why.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from sanji_domain import places
from sanji_node.web import NavItem, Site, init_pages
from sanji_node.web.accounts_page import guard_accounts
from sanji_node.web.notices import register_notices
from sanji_node.workspace import Workspace, now_ms

from ..accounts import ADMIN, BOOK
from ..node import CountyNode
from .common import County, local

NAV = [
    NavItem("recon.index", "对账"),
    NavItem("nodes.index", "节点与登记"),
    NavItem("catalog.index", "事项清单"),
    NavItem("monitor.index", "电子监察"),
    NavItem("stats.index", "统计"),
    NavItem("ratings.index", "好差评"),
    NavItem("accounts.index", "账号", (ADMIN,)),
    NavItem("audit.index", "操作日志"),
]


def init_county_pages(
    app: Flask, node: CountyNode, *, idle_minutes: int = 30, clock_ms: Callable[[], int] = now_ms
) -> County:
    """Open the county's workspace, then mount the pages on `app`."""
    ws = Workspace(node)
    county = County(ws, clock_ms, node)
    app.extensions["county"] = county

    def names() -> dict[str, str]:
        return ws.read(places.names)

    init_pages(
        app,
        Site(
            title="县政务服务中心",
            data_path=node.data.path,
            county_name=lambda: node.config.county_name or names().get(node.config.root_node, ""),
            centre_name=lambda: "县政务服务中心",
            nav=NAV,
            idle_minutes=idle_minutes,
            login_endpoint="auth.login",
            place_names=names,
            workspace=lambda: ws,
        ),
    )
    register_notices(app)
    from . import accounts as accounts_page
    from . import audit, auth, catalog, monitor, nodes, ratings, recon, stats

    for module in (auth, recon, nodes, catalog, monitor, stats, ratings, accounts_page, audit):
        app.register_blueprint(module.bp)
    guard_accounts(app, BOOK, local)
    return county
