"""Who is signed in to a node's pages, and the role checks every view makes.

The user lives in the signed session cookie as a small dict:
{"id", "name", "role", "role_label"}; it holds no personal data of villagers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, redirect, render_template, request, session, url_for

from .searches import searches
from .site import safe_next

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> dict[str, Any] | None:
    user = session.get("user")
    return user if isinstance(user, dict) else None


def sign_in(user: dict[str, Any]) -> None:
    """Start a fresh session for `user` (a new session id: no fixation)."""
    session.clear()
    session["user"] = user
    session["seen"] = int(time.time())
    session.permanent = False


def sign_out() -> None:
    searches().drop()  # a search text is personal data: it goes with the session
    session.clear()


def require(*roles: str) -> Callable[[F], F]:
    """The view needs a signed-in user, with one of `roles` if any are given."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                site = current_app.extensions["sanji_site"]
                return redirect(url_for(site.login_endpoint, next=safe_next(request.full_path)))
            if roles and user.get("role") not in roles:
                return (
                    render_template(
                        "sanji/error.html",
                        status=403,
                        message="您的账号没有这项权限。(your role may not do this)",
                        hint="请找中心负责人",
                    ),
                    403,
                )
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
