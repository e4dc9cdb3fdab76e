"""Canonical JSON: what is accepted, what is refused, and that encode/decode agree."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol import canonical
from sync_protocol.errors import ProtocolError
from sync_protocol.limits import Limits

SAFE = canonical.MAX_SAFE_INT

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text().map(lambda s: unicodedata.normalize("NFC", s)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8).map(lambda s: unicodedata.normalize("NFC", s)), children, max_size=5)
    ),
    max_leaves=25,
)


def reference(value: object) -> bytes:
    """The canonical form as the standard library spells it (the spec's reference)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_encode_matches_reference_and_round_trips(value: object) -> None:
    try:
        data = canonical.encode(value)
    except ProtocolError as e:
        # the only value-level refusal for these inputs: NFC broken by a combining mark after an escape
        assert "NFC" in e.message
        return
    assert data == reference(value)
    assert canonical.decode(data) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None, -5]}, b'{"a":[true,null,-5],"b":1}'),
        ("县政务服务中心", '"县政务服务中心"'.encode()),
        ('a\nb\t\x01\x1f"\\', b'"a\\nb\\t\\u0001\\u001f\\"\\\\"'),
        ({}, b"{}"),
        ([], b"[]"),
        (SAFE, b"9007199254740991"),
        (-SAFE, b"-9007199254740991"),
        ({"é": "é"}, '{"é":"é"}'.encode()),
    ],
)
def test_known_encodings(value: object, expected: bytes) -> None:
    assert canonical.encode(value) == expected
    assert canonical.decode(expected) == value


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (1.5, "float"),
        ({"money": 12.0}, "float"),
        (float("nan"), "float"),
        (2**53, "±(2^53-1)"),
        (-(2**53), "±(2^53-1)"),
        ("e\u0301", "NFC"),
        ({"e\u0301": 1}, "NFC"),
        ({1: "a"}, "not a string"),
        (b"bytes", "type bytes"),
        ({"a": {1, 2}}, "type set"),
    ],
)
def test_encode_refuses(value: object, phrase: str) -> None:
    with pytest.raises(ProtocolError) as info:
        canonical.encode(value)
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b'{"a":1.5}', "float"),
        (b"[1e20]", "float"),
        (b"1.0", "float"),
        (b"NaN", "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b"9007199254740992", "±(2^53-1)"),
        (b"-18446744073709551616", "±(2^53-1)"),
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'{"b":1,"a":2}', "canonical form"),
        (b'{"a": 1}', "canonical form"),
        (b'"\\u0041"', "canonical form"),
        (b'"\\u001F"', "canonical form"),
        (b'"\\/"', "canonical form"),
        ('"e\u0301"'.encode(), "NFC"),
        (b'"\xff"', "UTF-8"),
        (b'"\\ud800"', "canonical JSON"),
        (b"", "not valid JSON"),
        (b"[" * 40 + b"]" * 40, "deeper than 32"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper than 32"),
    ],
)
def test_decode_refuses_with_a_reason(data: bytes, phrase: str) -> None:
    with pytest.raises(ProtocolError) as info:
        canonical.decode(data)
    assert phrase in str(info.value)


def test_depth_limit_is_exact_on_both_paths() -> None:
    limits = Limits()
    ok = b"[" * limits.max_depth + b"1" + b"]" * limits.max_depth
    assert canonical.decode(ok) is not None  # deeper than the fast decoder: the exact path takes it
    with pytest.raises(ProtocolError):
        canonical.decode(b"[" + ok + b"]")
    with pytest.raises(ProtocolError, match="deeper"):
        canonical.encode(json.loads(b"[" + ok + b"]"))


def test_size_limits() -> None:
    small = Limits(max_string_bytes=10)
    with pytest.raises(ProtocolError, match="longer than 10 bytes"):
        canonical.encode("县" * 4, limits=small)  # 12 UTF-8 bytes
    assert canonical.encode("县" * 3, limits=small)
    with pytest.raises(ProtocolError, match="more than the limit of 5"):
        canonical.decode(b'"abcdef"', max_bytes=5)
    with pytest.raises(ProtocolError, match="more than the limit of 5"):
        canonical.encode("abcdef", max_bytes=5)


def test_decode_many_finds_the_bad_body() -> None:
    good = canonical.encode({"办件": "高龄津贴申请"})
    assert canonical.decode_many([good, good]) == [{"办件": "高龄津贴申请"}] * 2
    with pytest.raises(ProtocolError, match="#2 in batch"):
        canonical.decode_many([good, b'{"a":1.5}'])
    with pytest.raises(ProtocolError, match=r"#3 in batch.*NFC"):
        canonical.decode_many([good, good, '"e\u0301"'.encode()])
