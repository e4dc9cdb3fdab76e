"""Node membership: the tree of trust rooted at the county (ARCHITECTURE §3).

The county's public feed `county/*` carries three protocol kinds, and no other
feed may carry them:

- `node.member`  {node, role, parent, division, pubkey[, name]}: binds a node
  id to a role, a parent, a 12-digit division code (统计用区划代码), an
  Ed25519 public key and, optionally, the display name people see (梅花村).
  The county's own membership is the first entry of its feed.
- `node.revoke`  {node, last_valid: {feed: {seq, hash}}, reason}: entries of
  the node's feeds after `seq` are quarantined, and a batch whose hash at
  `seq` differs from `hash` is quarantined whole; feeds not named are
  treated as revoked from seq 1.
- `node.name`    {node, name}: a new display name for an enrolled node.

A node id is enrolled once: a replaced laptop gets a new id. `Directory` is
the deterministic fold of these entries (in feed order; the county's own
`node.member` must come first); every node that holds the same
county feed computes the same directory.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .canonical import hex_bytes, is_int
from .errors import AuthorizationError, ProtocolError
from .feeds import PUBLIC, UP, FeedId, check_node_id, parse_feed
from .keys import PublicKey

COUNTY, TOWNSHIP, VILLAGE = "county", "township", "village"
ROLES = (COUNTY, TOWNSHIP, VILLAGE)
KIND_MEMBER = "node.member"
KIND_REVOKE = "node.revoke"
KIND_NAME = "node.name"
PROTOCOL_KINDS = (KIND_MEMBER, KIND_REVOKE, KIND_NAME)  # written only in the root's public feed
MAX_NAME_CHARS = 40
_MEMBER_KEYS = frozenset({"division", "node", "parent", "pubkey", "role"})
_NAME_BANNED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, format (bidi, zero-width), line breaks
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
    name: str = ""  # the display name (梅花村); "" when none was given

    def body(self) -> dict[str, Any]:
        """The `node.member` entry body that enrols this node (with its current name, if any)."""
        body = {
            "division": self.division,
            "node": self.node,
            "parent": self.parent,
            "pubkey": self.key.hex,
            "role": self.role,
        }
        if self.name:
            body["name"] = self.name
        return body


def check_name(name: object) -> str:
    """A node's display name: NFC text of 1–40 characters, no control or format characters, no outer spaces."""
    if not isinstance(name, str):
        raise ProtocolError(f"node name {name!r} is not text", hint="e.g. 梅花村 or 城关镇便民服务中心")
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise ProtocolError(
            f"node name {name!r} has {len(name)} characters, not 1–{MAX_NAME_CHARS}", hint="use a shorter name"
        )
    if not unicodedata.is_normalized("NFC", name):
        raise ProtocolError(f"node name {name!r} is not in Unicode NFC form")
    bad = [c for c in name if unicodedata.category(c) in _NAME_BANNED]
    if bad:
        raise ProtocolError(f"node name {name!r} contains a control character (U+{ord(bad[0]):04X})")
    if name.strip() != name:
        raise ProtocolError(f"node name {name!r} begins or ends with white space")
    return name


def check_county_code(code: object) -> str:
    if not isinstance(code, str) or not _COUNTY_CODE.fullmatch(code):
        raise ProtocolError(
            f"县代码 {code!r} 不是 6 位数字 (county code {code!r} is not 6 digits)",
            hint="用 GB/T 2260 行政区划代码，例如 430321 (use the GB/T 2260 code)",
        )
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
        elif kind == KIND_NAME:
            self._rename(body)

    def apply_all(self, items: Iterable[tuple[str, Any]]) -> Directory:
        for kind, body in items:
            self.apply(kind, body)
        return self

    def member_from_body(self, body: Any) -> Member:
        """Validate a `node.member` body against this directory (no change)."""
        if not isinstance(body, dict) or not (body.keys() == _MEMBER_KEYS or body.keys() == _MEMBER_KEYS | {"name"}):
            raise ProtocolError("membership must have exactly division, node, parent, pubkey, role and optionally name")
        node = check_node_id(body["node"])
        name = check_name(body["name"]) if "name" in body else ""
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
        return Member(node, role, parent, division, key, name=name)

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
        self._members[m.node] = replace(m, revocation=Revocation(points, body["reason"]))

    def _rename(self, body: Any) -> None:
        if not isinstance(body, dict) or body.keys() != {"name", "node"}:
            raise ProtocolError("a node.name entry must have exactly name, node")
        m = self._members.get(body["node"]) if isinstance(body["node"], str) else None
        if m is None:
            raise ProtocolError(f"cannot rename {body['node']!r}: not an enrolled node")
        self._members[m.node] = replace(m, name=check_name(body["name"]))

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

    def name_of(self, node: str) -> str:
        """The node's display name, or its id when it has none (or is not enrolled)."""
        m = self._members.get(node)
        return m.name if m is not None and m.name else node

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
