"""A county, its townships and villages as SQLite stores, for protocol tests.

Keys come from fixed seeds so runs are reproducible. `exchange` moves what one
store lacks from another by the holding rule, through the real planning,
framing, verification and apply code: the same path a network sync or a
bundle takes, minus HTTP.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from sync_protocol import routing
from sync_protocol.batches import encode_page
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.limits import Limits
from sync_protocol.membership import COUNTY, KIND_MEMBER, TOWNSHIP, VILLAGE
from sync_protocol.sqlite_store import Store, Trust
from sync_protocol.verify import Verdict

UNBOUNDED = Limits(
    max_body_bytes=2**32,
    max_header_bytes=2**32,
    max_head_bytes=2**32,
    max_entries_per_batch=2**32,
    max_batch_bytes=2**40,
    max_batches_per_page=2**32,
    max_page_bytes=2**40,
)
"""Limits a test's encoder is given to frame what an honest sender never would (the receiver's limits apply)."""

COUNTY_CODE = "430321"


def seeded_key(name: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"sanji-test-key:" + name.encode()).digest())


@dataclass
class Node:
    node_id: str
    role: str
    parent: str | None
    division: str
    key: SigningKey
    store: Store
    applied: list[tuple[str, int]] = field(default_factory=list)

    def append(self, audience: str, kind: str, key: str, body: object, hlc: int = 1) -> None:
        self.store.append(self.key, f"{self.node_id}/{audience}", [Record(kind, key, body, hlc)])


@dataclass
class Network:
    nodes: dict[str, Node]

    @property
    def county(self) -> Node:
        return self.nodes["county"]

    def directory(self):  # type: ignore[no-untyped-def]
        return self.county.store.directory()

    def close(self) -> None:
        for n in self.nodes.values():
            n.store.close()


def build_network(tmp: Path | None, townships: int = 2, villages_per_township: int = 2) -> Network:
    """County `county`, townships t1…, villages v11, v12, v21 … (files under tmp, or in memory)."""
    specs: list[tuple[str, str, str | None, str]] = [("county", COUNTY, None, COUNTY_CODE + "000000")]
    for t in range(1, townships + 1):
        specs.append((f"t{t}", TOWNSHIP, "county", f"{COUNTY_CODE}{100 + t:03d}000"))
        for v in range(1, villages_per_township + 1):
            specs.append((f"v{t}{v}", VILLAGE, f"t{t}", f"{COUNTY_CODE}{100 + t:03d}{200 + v:03d}"))
    root_key = seeded_key("county")
    trust = Trust(COUNTY_CODE, "county", root_key.public.hex)
    nodes: dict[str, Node] = {}
    for node_id, role, parent, division in specs:
        node = Node(node_id, role, parent, division, seeded_key(node_id), None)  # type: ignore[arg-type]

        def fold(db, entries, node=node):  # type: ignore[no-untyped-def]
            node.applied.extend((e.feed, e.seq) for e in entries)

        path = None if tmp is None else tmp / f"{node_id}.sqlite"
        node.store = Store(path, fold=fold)
        node.store.set_trust(trust)
        node.store.set_node(node_id)
        nodes[node_id] = node
    county = nodes["county"]
    members = [
        Record(
            KIND_MEMBER,
            n.node_id,
            {"division": n.division, "node": n.node_id, "parent": n.parent, "pubkey": n.key.public.hex, "role": n.role},
            1,
        )
        for n in nodes.values()
    ]
    county.store.append(county.key, "county/*", members)
    return Network(nodes)


def exchange(src: Node, dst: Node, directory, *, max_batch_bytes: int = 1 << 20) -> list[Verdict]:  # type: ignore[no-untyped-def]
    """Send `dst` everything `src` holds that `dst` lacks and should hold."""
    verdicts: list[Verdict] = []
    wanted = lambda feed: routing.may_push(src.node_id, dst.node_id, feed, directory)  # noqa: E731
    for page in src.store.plan(dst.store.vector(), wanted, max_batch_bytes=max_batch_bytes):
        verdicts += dst.store.receive_page(encode_page([src.store.read_batch(r) for r in page]))
    return verdicts


def sync_link(child: Node, parent: Node) -> None:
    """One child↔parent session: upward first, then downward."""
    directory = parent.store.directory()
    exchange(child, parent, directory)
    exchange(parent, child, parent.store.directory())


def distribute_membership(net: Network) -> None:
    """Carry the county feed (membership) down to every township and village."""
    for node in net.nodes.values():
        if node.role == "township":
            sync_link(node, net.county)
    for node in net.nodes.values():
        if node.role == "village" and node.parent is not None:
            sync_link(node, net.nodes[node.parent])


def bundle_for(src: Node, dst: Node, *, created: int = 1735689600) -> bytes:
    """The bundle `src` writes for `dst`: what `dst` lacks of the feeds `src` may pass it, signed by `src`."""
    d = src.store.directory()
    buf = io.BytesIO()
    src.store.export_bundle(
        buf,
        key=src.key,
        source=src.node_id,
        theirs=dst.store.vector(),
        wanted=lambda f: routing.may_push(src.node_id, dst.node_id, f, d),
        created=created,
        target=dst.node_id,
    )
    return buf.getvalue()
