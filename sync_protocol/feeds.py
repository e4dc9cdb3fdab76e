"""Node ids and feed ids.

A feed is named `author/audience`, written only by its author:

- `author/*`  — for everyone below the author (the county's catalog, PKI …);
- `author/up` — for the author's ancestors (cases logged in a village …);
- `author/N`  — for node N and, as relays, N's ancestors (decisions, status).

Node ids are 1–64 characters of `a-z 0-9 _ -`, starting with a letter or
digit; `up` is reserved. A 12-digit division code is a valid node id.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .errors import ProtocolError

PUBLIC = "*"
UP = "up"
RESERVED_IDS = frozenset({UP})
_NODE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_node_id(node_id: object, what: str = "node id") -> str:
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id) or node_id in RESERVED_IDS:
        raise ProtocolError(
            f"{what} {node_id!r} is not valid",
            hint="use 1–64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit ('up' is reserved)",
        )
    return node_id


@dataclass(frozen=True, order=True)
class FeedId:
    author: str
    audience: str

    def __post_init__(self) -> None:
        check_node_id(self.author, "feed author")
        if self.audience not in (PUBLIC, UP):
            check_node_id(self.audience, "feed audience")
        if self.audience == self.author:
            raise ProtocolError(f"feed {self} addresses its own author", hint="use author/up or author/*")

    def __str__(self) -> str:
        return f"{self.author}/{self.audience}"

    @property
    def is_public(self) -> bool:
        return self.audience == PUBLIC

    @property
    def is_up(self) -> bool:
        return self.audience == UP

    @property
    def target(self) -> str | None:
        """The addressed node for `author/N` feeds, else None."""
        return None if self.audience in (PUBLIC, UP) else self.audience


def parse_feed(text: object) -> FeedId:
    if not isinstance(text, str) or text.count("/") != 1:
        raise ProtocolError(f"feed id {text!r} is not of the form author/audience")
    author, audience = text.split("/")
    return FeedId(author, audience)


@functools.lru_cache(maxsize=65536)
def feed_of(text: str) -> FeedId:
    """`parse_feed`, memoised for the hot path (feed ids repeat in every entry)."""
    return parse_feed(text)
