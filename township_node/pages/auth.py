"""登录 / 退出: a clerk signs in with their login name and password (`sanji_node.web.login`)."""

from __future__ import annotations

from sanji_node.web.login import login_blueprint

from .. import clerks
from .common import local, now

bp = login_blueprint(clerks.BOOK, local, now, home="inbox.index", template="township/login.html")
