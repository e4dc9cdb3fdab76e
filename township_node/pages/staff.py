"""人员管理 (中心负责人 only): add clerk accounts, reset a password, disable or enable an account
(`sanji_node.web.accounts_page`)."""

from __future__ import annotations

from sanji_node.web.accounts_page import accounts_blueprint

from .. import clerks
from .common import local, now

bp = accounts_blueprint(
    "staff", "/staff", clerks.BOOK, local, now, template="township/staff.html", default_role=clerks.CLERK
)
