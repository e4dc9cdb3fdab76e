"""The township centre's pages (乡镇便民服务中心): the window clerks' screens, served beside the sync API.

`init_township_pages(app, node)` adds to the township's Flask app (the one
`parent_app` builds for the sync API):

- the shared page core (`sanji_node.web.init_pages`: layout, sessions that
  idle out, CSRF, Chinese error pages) and the printed notices
  (`sanji_node.web.notices`);
- one blueprint per area: `auth` (登录), `inbox` (待办), `case` (one case and
  its transitions), `cases` (办件查询), `walkin` (窗口收件), `villages` (村情况),
  `progress` (进度查询), `stats` (统计), `staff` (人员管理, 负责人 only),
  `mypost` (我的岗位: A/B 岗 and one's own password);
- a check on every page request that the signed-in account still exists and
  is active (a 负责人 who disables an account ends its sessions;
  `sanji_node.web.accounts_page.guard_accounts`).

The sync API under /api/ keeps its own node-key authentication: no login, no
CSRF, JSON answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from sanji_domain import places
from sanji_node.actions.sync_status import Schedule, SyncMonitor
from sanji_node.child import ChildNode
from sanji_node.web import NavItem, Site, init_pages
from sanji_node.web.accounts_page import guard_accounts
from sanji_node.web.notices import register_notices
from sanji_node.workspace import LocalNode, Workspace, now_ms

from .. import absences, clerks
from .common import Township, local

NAV = [
    NavItem("inbox.index", "待办"),
    NavItem("supervision.index", "督办"),
    NavItem("walkin.index", "窗口收件"),
    NavItem("cases.index", "办件查询"),
    NavItem("villages.index", "村情况"),
    NavItem("progress.index", "进度查询"),
    NavItem("stats.index", "统计"),
    NavItem("sync.index", "同步"),
    NavItem("staff.index", "人员管理", (clerks.HEAD,)),
    NavItem("mypost.index", "我的岗位"),
]


def _place_names(ws: Workspace) -> Callable[[], dict[str, str]]:
    return lambda: ws.read(places.names)


def init_township_pages(
    app: Flask,
    node: LocalNode,
    *,
    idle_minutes: int = 30,
    clock_ms: Callable[[], int] = now_ms,
    schedule: Schedule | None = None,
    monitor: SyncMonitor | None = None,
) -> Township:
    """Open the workspace (migrating the clerk tables), then mount the pages on `app`."""
    ws = Workspace(node)

    def migrate(_conn: Any) -> None:
        clerks.migrate(ws.store.db)
        absences.migrate(ws.store.db)

    ws.read(migrate)
    township = Township(ws, clock_ms, node if isinstance(node, ChildNode) else None, schedule, monitor)
    app.extensions["township"] = township
    names = _place_names(ws)
    init_pages(
        app,
        Site(
            title="乡镇便民服务中心",
            data_path=node.data.path,
            county_name=lambda: node.config.county_name or names().get(node.config.root_node, ""),
            centre_name=lambda: names().get(node.config.node_id, node.config.node_id),
            nav=NAV,
            idle_minutes=idle_minutes,
            login_endpoint="auth.login",
            place_names=names,
            workspace=lambda: ws,
        ),
    )
    register_notices(app)
    from . import auth, case, cases, inbox, mypost, progress, staff, stats, supervision, sync, villages, walkin

    for module in (auth, inbox, supervision, case, cases, walkin, villages, progress, stats, sync, staff, mypost):
        app.register_blueprint(module.bp)
    guard_accounts(app, clerks.BOOK, local)
    return township
