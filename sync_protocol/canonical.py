"""Canonical JSON bytes (ARCHITECTURE §4, docs/protocol.md §1).

The canonical form of a value is UTF-8 JSON with object keys sorted by code
point, no insignificant whitespace, integers only (within ±(2^53-1)), no
floats, NaN or infinities, no duplicate keys, at most 32 levels of nesting and
bounded sizes, and the whole text in Unicode NFC. Escaping is minimal: only
`"`, `\\` and the control characters U+0000–U+001F are escaped (`\\b \\f \\n
\\r \\t` by their short forms, the rest as `\\u00xx` in lower-case hex);
everything else, including Chinese text, is written as UTF-8.

`encode` checks a Python value and returns its canonical bytes. `decode`
parses bytes and proves they were canonical by re-encoding them and comparing
(whitespace, duplicate keys, escapes, key order and number spellings all fail
that comparison), then checks the bytes for floats, depth and NFC. orjson does
the byte work; the golden vectors in tests/data pin its output to this form.
The slow, exact checks run only to explain a rejection.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Union

import msgspec
import orjson

from .errors import ProtocolError
from .limits import DEFAULT_LIMITS, Limits

MAX_SAFE_INT = 2**53 - 1

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
FAST_DEPTH = 8


@functools.lru_cache(maxsize=32)
def _typed_decoder(depth: int, limits: Limits, strings: bool) -> Callable[[bytes], Any]:
    """A C-speed decoder that admits only canonical JSON types within the limits, nested `depth` deep.

    Floats, NaN, integers beyond ±(2^53-1) and arrays and objects of more
    than `max_container_items` items fail validation while parsing. With
    `strings`, so do strings (keys too) of more than `max_string_bytes // 4`
    code points: a code point is at most 4 UTF-8 bytes, so a string it admits
    is within `max_string_bytes`, and a longer one takes the exact (slow) path,
    which counts its bytes. Without `strings` (about twice as fast) it serves
    inputs too short to hold a string over the limit. msgspec has no recursive
    JSON type, so the type is unrolled; values nested deeper than `depth` take
    the exact path, which allows max_depth. Each is built once, when first
    needed (building one takes ~20 ms, which every process would pay at import).
    """
    safe_int = Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
    text: Any = Annotated[str, msgspec.Meta(max_length=limits.max_string_bytes // 4)] if strings else str
    items = msgspec.Meta(max_length=limits.max_container_items)
    t: Any = Union[None, bool, safe_int, text]  # noqa: UP007
    for _ in range(depth):
        t = Union[None, bool, safe_int, text, Annotated[list[t], items], Annotated[dict[text, t], items]]  # noqa: UP007
    return msgspec.json.Decoder(t).decode


_Fast = tuple[Callable[[bytes], Any], Callable[[bytes], Any], int]


def _decoders(limits: Limits) -> _Fast:
    """(decoder for short inputs, decoder for any input, the longest a short input may be)."""
    depth = min(FAST_DEPTH, limits.max_depth)
    # a JSON string takes at least its UTF-8 bytes plus two quotes: shorter inputs hold no string over the limit
    short = limits.max_string_bytes + 2

    def long(data: bytes) -> Any:  # inputs longer than `short`: rare (bundle headers, big session messages)
        return _typed_decoder(depth, limits, True)(data)

    return _typed_decoder(depth, limits, False), long, short


_FAST = _decoders(DEFAULT_LIMITS)
_fast_for = functools.lru_cache(maxsize=16)(_decoders)


def _fast(limits: Limits) -> _Fast:
    """The fast decoders for `limits` (the default ones without a cache lookup: the hot path)."""
    return _FAST if limits is DEFAULT_LIMITS else _fast_for(limits)


def _check(value: Any, limits: Limits, depth: int, path: str) -> None:
    """Raise ProtocolError unless `value` has only canonical JSON types and sizes."""
    t = type(value)
    if t is str:
        n = len(value)
        if n * 4 > limits.max_string_bytes and len(value.encode("utf-8", "surrogatepass")) > limits.max_string_bytes:
            raise ProtocolError(
                f"string at {path} is longer than {limits.max_string_bytes} bytes",
                hint="split the text or store it as an attachment",
            )
        if not value.isascii() and not unicodedata.is_normalized("NFC", value):
            raise ProtocolError(
                f"string at {path} is not in Unicode NFC form",
                hint="normalise text with unicodedata.normalize('NFC', s) before writing",
            )
        return
    if t is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise ProtocolError(
                f"integer at {path} is outside ±(2^53-1)", hint="store large numbers as decimal strings"
            )
        return
    if value is None or t is bool:
        return
    if t is dict or t is list or t is tuple:
        if depth >= limits.max_depth:
            raise ProtocolError(f"value at {path} is nested deeper than {limits.max_depth} levels")
        if len(value) > limits.max_container_items:
            raise ProtocolError(f"container at {path} has more than {limits.max_container_items} items")
        if t is dict:
            for k, v in value.items():
                if type(k) is not str:
                    raise ProtocolError(f"object key {k!r} at {path} is not a string")
                _check(k, limits, depth + 1, path)
                _check(v, limits, depth + 1, f"{path}.{k}")
        else:
            for i, v in enumerate(value):
                _check(v, limits, depth + 1, f"{path}[{i}]")
        return
    if t is float:
        raise ProtocolError(
            f"number at {path} is a float ({value!r}); the protocol has integers only",
            hint="use integer units: money in 分, durations in days or seconds",
        )
    raise ProtocolError(f"value at {path} has type {t.__name__}, which JSON cannot carry canonically")


def hex_bytes(text: object, size: int, what: str) -> bytes:
    """Binary data written canonically: exactly 2*size lower-case hex digits."""
    if not isinstance(text, str) or len(text) != 2 * size:
        raise ProtocolError(f"{what} must be {2 * size} lower-case hex characters")
    try:
        raw = bytes.fromhex(text)
    except ValueError as e:
        raise ProtocolError(f"{what} is not hex: {text[:16]!r}…") from e
    if raw.hex() != text:
        raise ProtocolError(f"{what} must be lower-case hex")
    return raw


def is_int(value: object, expected: int | None = None) -> bool:
    """True for a real integer (not a bool), equal to `expected` if given."""
    return type(value) is int and (expected is None or value == expected)


def _check_nfc(data: bytes, what: str) -> None:
    if not data.isascii() and not unicodedata.is_normalized("NFC", data.decode("utf-8")):
        raise ProtocolError(
            f"{what} has text that is not in Unicode NFC form",
            hint="normalise text with unicodedata.normalize('NFC', s) before writing",
        )


def encode(value: Any, *, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None) -> bytes:
    """Return the canonical bytes of `value`, or raise ProtocolError."""
    _check(value, limits, 0, "$")
    try:
        out = orjson.dumps(value, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError) as e:  # e.g. lone surrogates
        raise ProtocolError(f"value cannot be encoded as UTF-8 JSON: {e}") from e
    if max_bytes is not None and len(out) > max_bytes:
        raise ProtocolError(
            f"canonical JSON is {len(out)} bytes, more than the limit of {max_bytes}",
            hint="split the record into smaller entries",
        )
    if not out.isascii() and not unicodedata.is_normalized("NFC", out.decode("utf-8")):
        raise ProtocolError("text is not in Unicode NFC form once encoded (a combining mark after an escape)")
    return out


def decode(data: bytes, *, limits: Limits = DEFAULT_LIMITS, max_bytes: int | None = None, what: str = "JSON") -> Any:
    """Parse canonical bytes; raise ProtocolError saying why if they are not canonical.

    Fast path: a typed C decoder rejects floats, NaN and big integers while
    parsing; re-encoding and comparing rejects whitespace, key order, escapes
    and duplicate keys; the text is checked for NFC. Values nested deeper than
    FAST_DEPTH, and every rejection, go through the exact slow path.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ProtocolError(f"{what} is {len(data)} bytes, more than the limit of {max_bytes}")
    short, full, short_max = _fast(limits)
    try:
        value = (short if len(data) <= short_max else full)(data)
    except (msgspec.DecodeError, ValueError):  # includes invalid UTF-8
        value = _slow_decode(data, limits, what)
    if orjson.dumps(value, option=_OPTS) != data:
        raise _explain(data, limits, what, None)
    _check_nfc(data, what)
    return value


def decode_many(items: list[bytes], *, limits: Limits = DEFAULT_LIMITS, what: str = "JSON") -> list[Any]:
    """`decode` for many bodies at once (a batch): one NFC check over all of them."""
    values: list[Any] = []
    _prove_each(items, limits, what, values.append)
    return values


def prove_many(items: list[bytes], *, limits: Limits = DEFAULT_LIMITS, what: str = "JSON") -> None:
    """Raise ProtocolError unless every item is canonical, keeping none of the values.

    What a verification worker runs: it only needs the proof, and values it
    does not keep cost neither memory nor garbage-collector passes.
    """
    _prove_each(items, limits, what, None)


def _prove_each(items: list[bytes], limits: Limits, what: str, keep: Callable[[Any], None] | None) -> None:
    """The fast path of `decode` for each item, then one NFC check over all of them.

    Each body begins with a starter character and ends with one, so the
    concatenation is NFC exactly when every body is.
    """
    (short, full, short_max), opts, dumps = _fast(limits), _OPTS, orjson.dumps
    maxb = limits.max_body_bytes
    for i, data in enumerate(items):
        n = len(data)
        if n > maxb:
            raise ProtocolError(f"{what} (#{i + 1} in batch) is {n} bytes, more than the limit of {maxb}")
        try:
            value = short(data) if n <= short_max else full(data)
        except (msgspec.DecodeError, ValueError):
            value = _slow_decode(data, limits, f"{what} (#{i + 1} in batch)")
        if dumps(value, option=opts) != data:
            raise _explain(data, limits, f"{what} (#{i + 1} in batch)", None)
        if keep is not None:
            keep(value)
    joined = b"".join(items)
    if not joined.isascii() and not unicodedata.is_normalized("NFC", joined.decode("utf-8")):
        for i, data in enumerate(items):
            _check_nfc(data, f"{what} (#{i + 1} in batch)")


def _slow_decode(data: bytes, limits: Limits, what: str) -> Any:
    """Exact checks for what the fast path refused: deep values, or an error to explain."""
    try:
        value = orjson.loads(data)
        _check(value, limits, 0, "$")
    except (orjson.JSONDecodeError, ProtocolError) as e:
        raise _explain(data, limits, what, e) from e
    return value


class _Duplicate(Exception):
    pass


def _explain(data: bytes, limits: Limits, what: str, cause: Exception | None) -> ProtocolError:
    """Find the precise reason bytes are not canonical (slow path, errors only)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise _Duplicate(sorted({k for k in keys if keys.count(k) > 1})[0])
        return dict(items)

    def bad_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=bad_constant, parse_float=lambda s: float(s))
    except UnicodeDecodeError:
        return ProtocolError(f"{what} is not valid UTF-8")
    except _Duplicate as d:
        return ProtocolError(f"{what} has a duplicate key {d.args[0]!r}", hint="each key may appear once per object")
    except RecursionError:
        return ProtocolError(f"{what} is nested deeper than {limits.max_depth} levels")
    except ValueError as e:
        return ProtocolError(f"{what} is not valid JSON: {e}")
    try:
        _check(value, limits, 0, "$")
    except ProtocolError as e:
        return ProtocolError(f"{what} is not canonical: {e.message}", hint=e.hint)
    if isinstance(cause, ProtocolError):
        return ProtocolError(f"{what} is not canonical: {cause.message}", hint=cause.hint)
    if cause is not None:
        return ProtocolError(f"{what} cannot be read as canonical JSON: {cause}")
    return ProtocolError(
        f"{what} is not in canonical form (whitespace, key order or escapes differ)",
        hint="encode with sorted keys, no spaces, UTF-8 text and minimal escapes",
    )
