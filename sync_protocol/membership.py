"""Node membership: the tree of trust rooted at the county (ARCHITECTURE §3).

The county's public feed `county/*` carries two protocol kinds:

- `node.member`  {node, role, parent, division, pubkey}: binds a node id to a
  role, a parent, a 12-digit division code (统计用区划代码) and an Ed25519
  public key. The county's own membership is the first entry of its feed.
- `node.revoke`  {node, last_valid: {feed: {seq, hash}}, reason}: entries of
  the node's feeds after `seq` are quarantined, and a batch whose hash at
  `seq` differs from `hash` is quarantined whole; feeds not named are
  treated as revoked from seq 1.

A node id is enrolled once: a replaced laptop gets a new id. `Directory` is
the deterministic fold of these entries (in feed order; the county's own
`node.member` must come first); every node that holds the same
county feed computes the same directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .canonical import hex_bytes, is_int
from .errors import AuthorizationError, ProtocolError
from .feeds import PUBLIC, UP, FeedId, check_node_id, parse_feed
from .keys import PublicKey

COUNTY, TOWNSHIP, VILLAGE = "county", "township", "village"
ROLES = (COUNTY, TOWNSHIP, VILLAGE)
KIND_MEMBER = "node.member"
KIND_REVOKE = "node.revoke"
_DIVISION = re.compile(r"[0-9]{12}")
_COUNTY_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Revocation:
    last_valid: dict[str, tuple[int, str]]
    reason: str

    def last_valid_seq(self, feed: str) -> int:
        return self.last_valid.get(feed, (0, ""))[0]


@dataclass(frozen=True)
class Member:
    node: str
    role: str
    parent: str | None
    division: str
    key: PublicKey = field(repr=False)
    revocation: Revocation | None = None

    def body(self) -> dict[str, Any]:
        """The `node.member` entry body that enrols this node."""
        return {
            "division": self.division,
            "node": self.node,
            "parent": self.parent,
            "pubkey": self.key.hex,
            "role": self.role,
        }


def check_county_code(code: object) -> str:
    if not isinstance(code, str) or not _COUNTY_CODE.fullmatch(code):
        raise ProtocolError(f"county code {code!r} is not 6 digits", hint="use the GB/T 2260 code, e.g. 430321")
    return code


def check_division(division: object, role: str, county: str, parent_division: str | None) -> str:
    """Check a 12-digit 统计用区划代码 against the role and the parent's code."""
    if not isinstance(division, str) or not _DIVISION.fullmatch(division):
        raise ProtocolError(f"division code {division!r} is not 12 digits", hint="e.g. 430321105201")
    if division[:6] != county:
        raise ProtocolError(f"division code {division} is not in county {county}")
    town, village = division[6:9], division[9:]
    if role == COUNTY and division != county + "000000":
        raise ProtocolError(f"the county's division code must be {county}000000")
    if role == TOWNSHIP and (not "001" <= town <= "399" or village != "000"):
        raise ProtocolError(f"township division code {division} must have a township part 001–399 and end in 000")
    if role == VILLAGE:
        if town == "000" or village == "000":
            raise ProtocolError(f"village division code {division} must name a township and a village")
        if parent_division is not None and division[:9] != parent_division[:9]:
            raise ProtocolError(f"village {division} is not in its township's division {parent_division[:9]}")
    return division


class Directory:
    """Members of one county, folded from its `county/*` feed."""

    def __init__(self, county: str, root_node: str, root_key: PublicKey) -> None:
        self.county = check_county_code(county)
        self.root = check_node_id(root_node)
        self._members: dict[str, Member] = {}
        self._divisions: dict[str, str] = {}
        self._children: dict[str, list[str]] = {}
        self.root_key = root_key

    @property
    def root_feed(self) -> str:
        return f"{self.root}/{PUBLIC}"

    # -- folding --------------------------------------------------------
    def apply(self, kind: str, body: Any) -> None:
        """Fold one `county/*` entry; other kinds are ignored."""
        if kind == KIND_MEMBER:
            self._enrol(body)
        elif kind == KIND_REVOKE:
            self._revoke(body)

    def apply_all(self, items: Iterable[tuple[str, Any]]) -> Directory:
        for kind, body in items:
            self.apply(kind, body)
        return self

    def member_from_body(self, body: Any) -> Member:
        """Validate a `node.member` body against this directory (no change)."""
        if not isinstance(body, dict) or body.keys() != {"division", "node", "parent", "pubkey", "role"}:
            raise ProtocolError("membership must have exactly division, node, parent, pubkey, role")
        node = check_node_id(body["node"])
        role = body["role"]
        if role not in ROLES:
            raise ProtocolError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if node in self._members:
            raise AuthorizationError(f"node {node} is already enrolled", hint="enrol a replacement under a new node id")
        parent = body["parent"]
        parent_division = None
        if role == COUNTY:
            if parent is not None or node != self.root or self._members:
                raise ProtocolError("only the root node is a county, and it has no parent")
        else:
            want = TOWNSHIP if role == VILLAGE else COUNTY
            p = self._members.get(parent) if isinstance(parent, str) else None
            if p is None or p.role != want:
                raise ProtocolError(f"the parent of a {role} must be an enrolled {want}, not {parent!r}")
            if p.revocation is not None:
                raise AuthorizationError(f"parent {parent} is revoked")
            parent_division = p.division
        division = check_division(body["division"], role, self.county, parent_division)
        holder = self._divisions.get(division)
        held = self._members.get(holder) if holder is not None else None
        if held is not None and held.revocation is None and role != COUNTY:  # a revoked node frees its code
            raise ProtocolError(
                f"division code {division} already belongs to node {holder}",
                hint="each node has its own 统计用区划代码",
            )
        key = PublicKey.from_hex(body["pubkey"])
        if role == COUNTY and key.raw != self.root_key.raw:
            raise AuthorizationError("the county membership does not carry the county root key")
        return Member(node, role, parent, division, key)

    def _enrol(self, body: Any) -> None:
        m = self.member_from_body(body)
        self._members[m.node] = m
        self._divisions[m.division] = m.node
        if m.parent is not None:
            self._children.setdefault(m.parent, []).append(m.node)

    def _revoke(self, body: Any) -> None:
        if not isinstance(body, dict) or body.keys() != {"last_valid", "node", "reason"}:
            raise ProtocolError("revocation must have exactly last_valid, node, reason")
        m = self._members.get(body["node"])
        if m is None or m.role == COUNTY:
            raise ProtocolError(f"cannot revoke {body['node']!r}: not an enrolled township or village")
        lv = body["last_valid"]
        if not isinstance(lv, dict) or not isinstance(body["reason"], str):
            raise ProtocolError("revocation last_valid must map feed ids to {seq, hash}")
        points: dict[str, tuple[int, str]] = {}
        for feed, point in lv.items():
            if parse_feed(feed).author != m.node:
                raise ProtocolError(f"revocation of {m.node} names feed {feed}, which {m.node} does not write")
            if (
                not isinstance(point, dict)
                or point.keys() != {"hash", "seq"}
                or not is_int(point["seq"])
                or point["seq"] < 0
            ):
                raise ProtocolError(f"revocation point for {feed} must be {{seq, hash}}")
            if point["seq"]:
                hex_bytes(point["hash"], 32, f"revocation hash for {feed}")
            points[feed] = (point["seq"], point["hash"])
        self._members[m.node] = Member(m.node, m.role, m.parent, m.division, m.key, Revocation(points, body["reason"]))

    # -- queries ----------------------------------------------------------
    def get(self, node: str) -> Member | None:
        return self._members.get(node)

    def require(self, node: str) -> Member:
        m = self._members.get(node)
        if m is None:
            raise AuthorizationError(f"node {node!r} is not enrolled in county {self.county}")
        return m

    def __contains__(self, node: object) -> bool:
        return node in self._members

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def key_of(self, node: str) -> PublicKey:
        if node == self.root:
            return self.root_key
        return self.require(node).key

    def ancestors(self, node: str) -> list[str]:
        """Parent, grandparent … up to the root (not the node itself)."""
        out = []
        m = self._members.get(node)
        while m is not None and m.parent is not None:
            out.append(m.parent)
            m = self._members.get(m.parent)
        return out

    def children(self, node: str) -> list[str]:
        return list(self._children.get(node, ()))

    def descendants(self, node: str) -> list[str]:
        out, stack = [], list(self._children.get(node, ()))
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(self._children.get(n, ()))
        return out

    def is_ancestor(self, ancestor: str, node: str) -> bool:
        return ancestor in self.ancestors(node)

    def check_author(self, feed: FeedId) -> Member:
        """The feed's author, if it may write a feed with this audience."""
        m = self._members.get(feed.author)
        if m is None:
            if feed.author == self.root:  # before the root's own membership arrives
                return Member(self.root, COUNTY, None, self.county + "000000", self.root_key)
            raise AuthorizationError(f"author {feed.author!r} of feed {feed} is not enrolled")
        if feed.audience == PUBLIC and m.role == VILLAGE:
            raise AuthorizationError(f"a village may not write a public feed ({feed})")
        if feed.audience == UP and m.role == COUNTY:
            raise AuthorizationError(f"the county has no ancestors to write {feed} for")
        target = feed.target
        if target is not None and not self.is_ancestor(feed.author, target):
            raise AuthorizationError(f"{feed.author} may address feeds only to nodes below it, not to {target}")
        return m
