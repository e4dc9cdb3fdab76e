"""Signed receipts: the county acknowledges what it committed, in feeds that travel down.

After entries of a feed written by a township or village are committed at the
county, the county appends a `sync.receipt` entry {feed, seq, hash} to the feed
`county/<author>`. The holding rule carries it down through the relays to the
author, where it reads as 县级已接收 (committed at the county), signed by the
root key like everything else the county writes.
"""

from __future__ import annotations

from collections import defaultdict

from sanji_node.state import KIND_RECEIPT, receipt_marks
from sync_protocol.entries import Record
from sync_protocol.feeds import feed_of
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store


def write_receipts(store: Store, key: SigningKey, authors: set[str], hlc: int) -> int:
    """Receipt every feed of these authors whose head is past its last receipt; return the count."""
    root = store.trust.root_node
    vector = store.vector()
    due: dict[str, list[Record]] = defaultdict(list)
    for author in sorted(authors):
        if author == root:
            continue
        target = f"{root}/{author}"
        done = receipt_marks(store, author)
        for feed, (seq, h) in vector.items():
            if feed_of(feed).author == author and seq > done.get(feed, 0):
                due[target].append(Record(KIND_RECEIPT, feed, {"feed": feed, "hash": h.hex(), "seq": seq}, hlc))
    for target, records in due.items():
        store.append(key, target, records)
    return sum(len(r) for r in due.values())


def subtree(store: Store, node: str) -> set[str]:
    d = store.directory()
    return {node, *d.descendants(node)}
