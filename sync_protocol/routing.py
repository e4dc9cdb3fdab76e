"""The holding rule: which nodes hold which feed (ARCHITECTURE §2).

A feed `A/x` is held by
- its author A and every ancestor of A (so the county holds everything);
- for `A/*`, every descendant of A;
- for `A/N`, node N and every ancestor of N (the relays on the way down).

Routing is this rule and nothing else: a relay forwards feed bytes verbatim
and never re-signs them. It is a pure function of the membership tree.
"""

from __future__ import annotations

from .feeds import FeedId, feed_of
from .membership import Directory


def holders(feed: FeedId | str, directory: Directory) -> set[str]:
    fid = feed_of(feed) if isinstance(feed, str) else feed
    out = {fid.author, *directory.ancestors(fid.author)}
    if fid.is_public:
        out.update(directory.descendants(fid.author))
    elif fid.target is not None:
        out.add(fid.target)
        out.update(directory.ancestors(fid.target))
    return out


def should_hold(node: str, feed: FeedId | str, directory: Directory) -> bool:
    fid = feed_of(feed) if isinstance(feed, str) else feed
    if node == fid.author or directory.is_ancestor(node, fid.author):
        return True
    if fid.is_public:
        return directory.is_ancestor(fid.author, node)
    target = fid.target
    return target is not None and (node == target or directory.is_ancestor(node, target))


def is_link(a: str, b: str, directory: Directory) -> bool:
    """True if a and b are parent and child (either way round)."""
    ma, mb = directory.get(a), directory.get(b)
    return (ma is not None and ma.parent == b) or (mb is not None and mb.parent == a)


def may_push(sender: str, receiver: str, feed: FeedId | str, directory: Directory) -> bool:
    """May `sender` hand this feed's entries to `receiver`?

    Both must hold the feed by the rule. A village cannot push another
    village's feed (it does not hold it), and nobody pushes a feed to a node
    that must not see it.
    """
    return should_hold(sender, feed, directory) and should_hold(receiver, feed, directory)
