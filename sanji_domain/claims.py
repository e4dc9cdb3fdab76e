"""Claims follow keys: who may write which kind, and which body fields must agree with the author.

A signature proves who wrote an entry (the author of its feed), nothing more.
Everything the domain attributes to a place (the village and township of a
case, its channel, who evaluated what, whose roster a day is, who may take a
rectification step) is derived here from the authoring feed and the
membership (the `nodes` table, folded from the county's `node.member`
entries), never taken from the body. A body field that names a place is only
allowed when it agrees with what the membership says; an entry that claims
otherwise is kept (it is signed and part of its feed), recorded in
`fold_rejects` with the reason, and changes no state.

| kind                 | author (role, feed)                         | body fields that must agree                          |
|----------------------|---------------------------------------------|------------------------------------------------------|
| case.new             | village or township, its own `A/up`          | `village`, `township`, `channel` (代办/窗口), `case_id` = key, `state` DRAFT/SUBMITTED |
| evaluation.new       | village or township, its own `A/up`          | `channel`, `target_type` (代办点: a village itself; 窗口: a township), `target_name` of a 代办点, `evaluation_id` = key, the case (the author's own) |
| rectification.step   | the evaluation's township (`T/up`) or the county | (the evaluation's township, from the evaluation)   |
| roster.duty          | village, its own `V/up`                      | key = `<village>:<day>`                              |
| supervision.notice   | county, `<root>/<T>` for a township T        | `township` = T (sanji_domain.supervision)             |
| supervision.ack      | township, its own `T/up`                     | the notice it names is addressed to the author        |

A case id belongs to one `case.new`. When two name the same id, the **owner**
is the claim that comes first in the order (village before township, then
feed id, then seq); the others are rejects. The order depends only on the
entries, never on when they arrived, and the one node that can learn a
village's case id before the county does (its township, which relays the
village's feed) ranks below the village: a township cannot take a village's
case. A village never holds a township's up feed, so it cannot learn the id of
a window case to claim it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync_protocol.entries import Entry

from .states import DRAFT, SUBMITTED

VILLAGE, TOWNSHIP, COUNTY = "village", "township", "county"
CASE_CHANNEL = {VILLAGE: "代办", TOWNSHIP: "窗口"}  # the channel of a case follows from who filed it
EVALUATION_CHANNELS = {VILLAGE: ("代办", "网上"), TOWNSHIP: ("现场", "网上")}
TARGET_ROLE = {"代办点": VILLAGE, "窗口": TOWNSHIP}  # 事项 and 人员: either
ROLE_LABELS = {VILLAGE: "村代办点", TOWNSHIP: "乡镇", COUNTY: "县级"}


@dataclass(frozen=True)
class Place:
    """A node as the membership knows it: its role, and the village and township it stands for."""

    node: str
    role: str | None  # None: not enrolled here
    village: str | None
    township: str | None

    @property
    def label(self) -> str:
        return f"{ROLE_LABELS.get(self.role or '', '未登记节点')} {self.node}"


class Places:
    """Memoised `Place` lookups for one fold call (the membership of the call is folded first)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._memo: dict[str, Place] = {}

    def __call__(self, node: str) -> Place:
        found = self._memo.get(node)
        if found is None:
            row = self.conn.execute("SELECT role, parent FROM nodes WHERE node = ?", (node,)).fetchone()
            role, parent = row if row is not None else (None, None)
            if role == VILLAGE:
                found = Place(node, role, node, parent)
            else:
                found = Place(node, role, None, node if role == TOWNSHIP else None)
            self._memo[node] = found
        return found

    def author(self, e: Entry) -> Place:
        return self(author_of(e))


def author_of(e: Entry) -> str:
    return e.feed.split("/", 1)[0]


def _disagrees(field: str, claimed: Any, place: Place, want: Any) -> str:
    return (
        f"{field} 与作者的登记身份不符：写的是 {claimed!r}，{place.label} 只能写 {want!r} "
        f"({field} does not agree with the author's membership)"
    )


def _own_up_feed(e: Entry, place: Place, roles: tuple[str, ...], what: str) -> str | None:
    if place.role not in roles:
        who = "、".join(ROLE_LABELS[r] for r in roles)
        return f"{what}只能由{who}写，{place.label} 不能写 (only a {'/'.join(roles)} writes {e.kind})"
    if e.feed != f"{place.node}/up":
        return f"{what}只能写在作者自己的上行 feed {place.node}/up 中 ({e.kind} travels in its author's up feed)"
    return None


def case_new(places: Places, e: Entry) -> tuple[Place, str | None]:
    """The place a `case.new` belongs to (from its author), and why it is refused (None: it is not)."""
    place = places.author(e)
    why = _own_up_feed(e, place, (VILLAGE, TOWNSHIP), "办件登记 (case.new) ")
    if why:
        return place, why
    v = e.value
    for field, want in (
        ("case_id", e.key),
        ("village", place.village),
        ("township", place.township),
        ("channel", CASE_CHANNEL[place.role or ""]),
    ):
        if field in v and v[field] != want:
            return place, _disagrees(field, v[field], place, want)
    if v.get("state", SUBMITTED) not in (DRAFT, SUBMITTED):
        return (
            place,
            f"新办件的状态只能是 DRAFT 或 SUBMITTED，写的是 {v.get('state')!r} (a case starts as a draft or submitted)",
        )
    return place, None


def owner_rank(role: str | None, feed: str, seq: int) -> tuple[int, str, int]:
    """The order in which claims on one case id are ranked: the smallest owns the case."""
    return (0 if role == VILLAGE else 1, feed, seq)


CASE_TAKEN = (
    "同一办件号已有排序在先的登记（村代办点优先，其次按 feed 与序号），本条不生效 "
    "(the case id belongs to a claim that ranks first: a second case.new is a conflict, never a replacement)"
)


def evaluation(places: Places, e: Entry) -> str | None:
    """Why an `evaluation.new` is refused, before its case is looked at (None: it is not)."""
    place = places.author(e)
    why = _own_up_feed(e, place, (VILLAGE, TOWNSHIP), "评价 (evaluation.new) ")
    if why:
        return why
    v = e.value
    if v.get("evaluation_id", e.key) != e.key:
        return _disagrees("evaluation_id", v.get("evaluation_id"), place, e.key)
    channels = EVALUATION_CHANNELS[place.role or ""]
    if "channel" in v and v["channel"] not in channels:
        return _disagrees("channel", v["channel"], place, "/".join(channels))
    target = v.get("target_type")
    if target in TARGET_ROLE and TARGET_ROLE[target] != place.role:
        return (
            f"评价对象「{target}」只能由{ROLE_LABELS[TARGET_ROLE[target]]}评价自己，{place.label} 不能 "
            f"(only a {TARGET_ROLE[target]} records evaluations of its own {target})"
        )
    if target == "代办点" and v.get("target_name") not in (None, place.node):
        return _disagrees("target_name", v.get("target_name"), place, place.node)
    return None


def may_evaluate(place: Place, village: str | None, township: str | None) -> bool:
    """A village evaluates its own cases; a township its window's and its villages' cases."""
    if place.role == VILLAGE:
        return village == place.node
    return place.role == TOWNSHIP and township == place.node


def not_evaluable(place: Place, case_id: str) -> str:
    return (
        f"{place.label} 不能评价办件 {case_id}：它不是本村或本乡镇的办件 (the author may evaluate only its own cases)"
    )


def rectification(places: Places, e: Entry) -> str | None:
    """Why a `rectification.step` is refused whatever its evaluation (None: it may count)."""
    place = places.author(e)
    if place.role == COUNTY:
        return None
    return _own_up_feed(e, place, (TOWNSHIP,), "整改 (rectification.step) ")


def may_rectify(place: Place, township: str | None) -> bool:
    return place.role == COUNTY or (place.role == TOWNSHIP and place.node == township)


def not_rectifiable(place: Place, evaluation_id: str, township: str | None) -> str:
    return (
        f"{place.label} 不能为评价 {evaluation_id} 记整改：整改由该评价所属乡镇 {township} 或县级记录 "
        "(only the evaluation's township or the county records its rectification)"
    )


def roster(places: Places, e: Entry) -> str | None:
    place = places.author(e)
    why = _own_up_feed(e, place, (VILLAGE,), "值班表 (roster.duty) ")
    if why:
        return why
    want = f"{place.node}:{e.value['day']}"
    return None if e.key == want else _disagrees("key", e.key, place, want)
