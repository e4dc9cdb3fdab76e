"""Membership rules, the holding rule and batch planning (pure functions of the tree)."""

from __future__ import annotations

import pytest

from sync_protocol import planning, routing
from sync_protocol.errors import AuthorizationError, ProtocolError, SyncError
from sync_protocol.feeds import FeedId, parse_feed
from sync_protocol.membership import KIND_MEMBER, KIND_REVOKE, Directory
from sync_protocol.planning import Range

from .network import COUNTY_CODE, seeded_key

ROOT = seeded_key("county")


def member(node: str, role: str, parent: str | None, division: str) -> dict[str, object]:
    return {"division": division, "node": node, "parent": parent, "pubkey": seeded_key(node).public.hex, "role": role}


def county_tree() -> Directory:
    d = Directory(COUNTY_CODE, "county", ROOT.public)
    d.apply(KIND_MEMBER, member("county", "county", None, COUNTY_CODE + "000000"))
    for t in (1, 2):
        d.apply(KIND_MEMBER, member(f"t{t}", "township", "county", f"{COUNTY_CODE}{100 + t:03d}000"))
        for v in (1, 2):
            d.apply(KIND_MEMBER, member(f"v{t}{v}", "village", f"t{t}", f"{COUNTY_CODE}{100 + t:03d}{200 + v:03d}"))
    return d


def test_tree_shape() -> None:
    d = county_tree()
    assert len(d) == 7
    assert d.ancestors("v11") == ["t1", "county"]
    assert sorted(d.descendants("t1")) == ["v11", "v12"]
    assert sorted(d.children("county")) == ["t1", "t2"]


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (member("t3", "township", "county", "430322103000"), "not in county"),
        (member("t3", "township", "county", "430321103001"), "end in 000"),
        (member("t3", "township", "county", "430321400000"), "001–399"),
        (member("v13", "village", "t1", "430321102203"), "not in its township"),
        (member("v13", "village", "county", "430321101203"), "parent of a village must be an enrolled township"),
        (member("v13", "village", "nobody", "430321101203"), "parent of a village"),
        (member("t3", "mayor", "county", "430321103000"), "role 'mayor'"),
        (member("Bad Id", "township", "county", "430321103000"), "not valid"),
        (member("up", "township", "county", "430321103000"), "reserved"),
        (member("t1", "township", "county", "430321101000"), "already enrolled"),
        (member("t3", "township", "county", "4303211030"), "12 digits"),
        ({**member("t3", "township", "county", "430321103000"), "pubkey": "00" * 32}, "weak or invalid"),
        ({**member("t3", "township", "county", "430321103000"), "extra": 1}, "exactly"),
    ],
)
def test_invalid_memberships_are_refused(body: dict[str, object], phrase: str) -> None:
    d = county_tree()
    with pytest.raises(SyncError) as info:
        d.apply(KIND_MEMBER, body)
    assert phrase in str(info.value)
    assert len(d) == 7


def test_county_membership_must_carry_the_root_key() -> None:
    d = Directory(COUNTY_CODE, "county", ROOT.public)
    body = member("county", "county", None, COUNTY_CODE + "000000")
    body["pubkey"] = seeded_key("impostor").public.hex
    with pytest.raises(AuthorizationError, match="root key"):
        d.apply(KIND_MEMBER, body)


def test_who_may_author_which_feed() -> None:
    d = county_tree()
    for ok in ("county/*", "county/t1", "county/v22", "t1/*", "t1/up", "t1/v11", "v11/up"):
        d.check_author(parse_feed(ok))
    for bad, phrase in [
        ("v11/*", "village may not write a public feed"),
        ("county/up", "no ancestors"),
        ("t1/v21", "only to nodes below it"),
        ("t1/t2", "only to nodes below it"),
        ("v11/v12", "only to nodes below it"),
        ("stranger/up", "not enrolled"),
    ]:
        with pytest.raises(AuthorizationError, match=phrase):
            d.check_author(parse_feed(bad))


def test_revocation_records_the_last_valid_point() -> None:
    d = county_tree()
    d.apply(
        KIND_REVOKE, {"node": "v11", "last_valid": {"v11/up": {"seq": 7, "hash": "ab" * 32}}, "reason": "笔记本丢失"}
    )
    m = d.get("v11")
    assert m is not None and m.revocation is not None
    assert m.revocation.last_valid_seq("v11/up") == 7
    assert m.revocation.last_valid_seq("v11/other") == 0
    with pytest.raises(ProtocolError):
        d.apply(KIND_REVOKE, {"node": "county", "last_valid": {}, "reason": "x"})
    d.apply(KIND_REVOKE, {"node": "t2", "last_valid": {}, "reason": "撤销"})
    with pytest.raises(AuthorizationError, match="parent t2 is revoked"):
        d.apply(KIND_MEMBER, member("v23", "village", "t2", "430321102203"))


@pytest.mark.parametrize(
    ("feed", "holders"),
    [
        ("county/*", {"county", "t1", "t2", "v11", "v12", "v21", "v22"}),
        ("county/t1", {"county", "t1"}),
        ("county/v21", {"county", "t2", "v21"}),
        ("t1/*", {"county", "t1", "v11", "v12"}),
        ("t1/up", {"county", "t1"}),
        ("t1/v12", {"county", "t1", "v12"}),
        ("v22/up", {"county", "t2", "v22"}),
    ],
)
def test_holding_rule(feed: str, holders: set[str]) -> None:
    d = county_tree()
    assert routing.holders(feed, d) == holders
    for node in ("county", "t1", "t2", "v11", "v12", "v21", "v22"):
        assert routing.should_hold(node, feed, d) == (node in holders)
        assert routing.should_hold(node, FeedId(*feed.split("/")), d) == (node in holders)


def test_may_push_only_between_holders() -> None:
    d = county_tree()
    assert routing.may_push("v11", "t1", "v11/up", d)
    assert routing.may_push("t1", "county", "v11/up", d)  # relay, verbatim
    assert not routing.may_push("v12", "t1", "v11/up", d)  # a village pushing another village's feed
    assert not routing.may_push("t1", "v12", "v11/up", d)  # nobody sends a feed to a node that must not see it
    assert routing.may_push("county", "t2", "county/v21", d)
    assert not routing.may_push("county", "t1", "county/v21", d)
    assert routing.is_link("v11", "t1", d) and not routing.is_link("v11", "county", d)


def test_plan_ranges_and_digest() -> None:
    h = bytes(32)
    mine = {"a/up": (5, h), "b/up": (3, h), "c/up": (2, h)}
    theirs = {"a/up": (2, h), "b/up": (3, h), "c/up": (4, h)}
    assert planning.plan_ranges(mine, theirs, lambda f: True) == [Range("a/up", 3, 5)]
    assert planning.plan_ranges(mine, {}, lambda f: f != "b/up") == [Range("a/up", 1, 5), Range("c/up", 1, 2)]
    assert planning.digest(mine) == planning.digest(dict(reversed(list(mine.items()))))
    assert planning.digest(mine) != planning.digest(theirs)
    assert planning.digest({"x/up": (0, b"")}) == planning.digest({})
    assert planning.diverged({"a/up": (2, h)}, {"a/up": (2, b"\x01" * 32)}) == ["a/up"]
    wire = planning.vector_to_wire(mine)
    assert planning.vector_from_wire(wire) == mine
    with pytest.raises(ProtocolError):
        planning.vector_from_wire({"a/up": [1]})
    with pytest.raises(ProtocolError):
        planning.vector_from_wire({"not a feed": [1, "00" * 32]})


def test_cut_range_ends_batches_at_signed_heads() -> None:
    rng = Range("v11/up", 4, 12)
    commits = [(5, 300), (8, 300), (9, 100), (12, 700)]
    assert planning.cut_range(rng, commits, 650) == [
        Range("v11/up", 4, 8),
        Range("v11/up", 9, 9),
        Range("v11/up", 10, 12),
    ]
    assert planning.cut_range(rng, commits, 10_000) == [rng]
    with pytest.raises(ProtocolError, match="no signed head"):
        planning.cut_range(rng, [(5, 300)], 650)
    with pytest.raises(ProtocolError, match="out of order"):
        planning.cut_range(rng, [(8, 1), (5, 1)], 650)


def test_paginate_bounds_pages_by_bytes() -> None:
    batches = [(Range("a/up", i, i), 400) for i in range(1, 6)]
    pages = planning.paginate(batches, 1000)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert planning.paginate([(Range("a/up", 1, 1), 5000)], 1000) == [[Range("a/up", 1, 1)]]
    assert planning.paginate([], 1000) == []
