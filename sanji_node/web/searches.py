"""Search texts kept in the server process, not in the URL or the cookie.

A search by a villager's name or 身份证号 is personal data. The page posts
it, the server keeps it here under a random token, the signed session cookie
carries only the token, and the list page reads the text back. The newest
`limit` searches are kept (one per browser session in practice); signing out
forgets the session's search, and a restart forgets them all.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from flask import current_app, session

SEARCH_KEY = "case_search"
MAX_SEARCHES = 64


class SearchMemory:
    def __init__(self, limit: int = MAX_SEARCHES) -> None:
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def keep(self, token: str | None, text: str) -> str:
        """Keep `text` (under `token` if it is one of ours, else a new one); returns the token."""
        with self._lock:
            key = token if token is not None and token in self._texts else secrets.token_urlsafe(16)
            self._texts[key] = text
            self._texts.move_to_end(key)
            while len(self._texts) > self._limit:
                self._texts.popitem(last=False)
            return key

    def forget(self, token: str | None) -> None:
        with self._lock:
            self._texts.pop(token or "", None)

    def text(self, token: str | None) -> str:
        with self._lock:
            return self._texts.get(token or "", "")

    # the current browser session's search
    def remember(self, text: str) -> None:
        session[SEARCH_KEY] = self.keep(session.get(SEARCH_KEY), text)

    def recall(self) -> str:
        return self.text(session.get(SEARCH_KEY))

    def drop(self) -> None:
        self.forget(session.pop(SEARCH_KEY, None))


def searches() -> SearchMemory:
    """The app's search memory (made by `init_pages`)."""
    memory: SearchMemory = current_app.extensions["sanji_searches"]
    return memory
