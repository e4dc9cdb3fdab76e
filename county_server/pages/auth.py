"""登录 / 退出: a county administrator or inspector signs in (`sanji_node.web.login`)."""

from __future__ import annotations

from sanji_node.web.login import login_blueprint

from .. import accounts
from .common import local, now

bp = login_blueprint(accounts.BOOK, local, now, home="recon.index", template="county/login.html")
