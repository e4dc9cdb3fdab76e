"""Fuzzing the decoders a stranger's bytes reach (issue 12, point 11): anything raised is in the error tree.

Targets: the canonical JSON decoder, the batch and page decoders with the
batch verifier (`verify.check_batch`), the bundle reader (`check_bundle`,
`iter_bundle`), the session messages (hello, hello reply, pull request, push
reply), signed heads and the enrolment message. Inputs are random bytes,
random canonical JSON objects shaped like each message (the right keys, any
values), and valid messages a real store wrote, damaged by a few random
edits (bit flips, bytes set, inserted, deleted, truncation, splices). Each
input must be decoded or refused with a `SyncError`; any other exception
(KeyError, ValueError, TypeError, …) fails the test with the input.

CI: a small fixed budget per target (derandomized, so a run is repeatable).
The long run (`SANJI_LONG=1`): 10 minutes in all, shared by the targets
(`SANJI_FUZZ_SECONDS` to change), and the figures are recorded.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol import canonical
from sync_protocol.batches import decode_batch, decode_page_prefix, encode_page
from sync_protocol.bundle import check_bundle, iter_bundle
from sync_protocol.enrolment import decode_message
from sync_protocol.entries import Record
from sync_protocol.errors import SyncError
from sync_protocol.heads import decode_head
from sync_protocol.membership import Directory
from sync_protocol.planning import Range
from sync_protocol.session import Hello, HelloReply, PullRequest, PushReply
from sync_protocol.verify import Status, check_batch

from ..network import COUNTY_CODE, build_network, bundle_for, distribute_membership
from . import report

CI_EXAMPLES = 500
LONG_SECONDS = float(os.environ.get("SANJI_FUZZ_SECONDS", "600"))  # the whole long run, shared by the targets

# values the canonical encoder writes (so a shaped message gets past the JSON layer to the field checks)
words = st.text(st.characters(codec="ascii") | st.sampled_from("王秀英梅花村办件县"), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | words
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(words, inner, max_size=5),
    max_leaves=20,
)
# and anything JSON can say, for the decoder itself (floats, huge integers, any text)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
hexes = st.text("0123456789abcdefABCDEF", min_size=0, max_size=140)
feeds = st.sampled_from(["v11/up", "t1/*", "county/v11", "v11", "/up", "V11/up", "v11/up/x", "", "县/up"])
vectors = st.dictionaries(feeds, st.lists(st.integers(-2, 2**64) | hexes | json_scalars, max_size=3), max_size=3)


@dataclass
class Samples:
    """Valid inputs written by real stores, and what the verifier needs."""

    batch: bytes
    page: bytes
    bundle: bytes
    head: bytes
    hello: bytes
    hello_reply: bytes
    pull: bytes
    push_reply: bytes
    directory: Directory


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    net = build_network(tmp_path_factory.mktemp("fuzz"))
    distribute_membership(net)
    v11, t1 = net.nodes["v11"], net.nodes["t1"]
    for i in range(2):
        records = [Record("case.new", f"c{i}", {"item": "高龄津贴申请", "name": "王秀英", "n": i}, 1000 + i)]
        v11.store.append(v11.key, "v11/up", records)
    batch = v11.store.read_batch(Range("v11/up", 1, 2))
    vector = v11.store.vector()
    head = v11.store.head("v11/up")
    assert head is not None
    out = Samples(
        batch=batch,
        page=encode_page([batch, v11.store.read_batch(Range("v11/up", 2, 2))]),
        bundle=bundle_for(v11, t1),
        head=head.encode(),
        hello=Hello.of(vector, lambda f: True, "v11").encode(),
        hello_reply=HelloReply(False, vector, vector).encode(),
        pull=PullRequest(vector, 1 << 20).encode(),
        push_reply=PushReply([], vector).encode(),
        directory=v11.store.directory(),
    )
    net.close()
    return out


# -- inputs --------------------------------------------------------------------
def damaged(data: st.DataObject, valid: bytes) -> bytes:
    """`valid` with one to four random edits."""
    b = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]), label="op")
        at = data.draw(st.integers(0, max(len(b) - 1, 0)), label="at")
        if op == "flip" and b:
            b[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and b:
            b[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            b[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del b[at : at + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del b[at:]
        elif op == "splice":  # a copy of another part of the input: repeated frames, lengths that lie
            src = data.draw(st.integers(0, max(len(valid) - 1, 0)))
            b[at:at] = valid[src : src + data.draw(st.integers(1, 64))]
    return bytes(b)


def bytes_for(data: st.DataObject, valid: bytes) -> bytes:
    """Random bytes, or the valid input damaged (mostly: a random blob rarely gets past the first check)."""
    if data.draw(st.integers(0, 9), label="kind") == 0:
        return data.draw(st.binary(max_size=512), label="random bytes")
    return damaged(data, valid)


def shaped(data: st.DataObject, keys: dict[str, st.SearchStrategy[Any]]) -> bytes:
    """A canonical JSON object with (some of) the message's keys and any values: past the JSON layer."""
    msg = {
        k: data.draw(json_values if data.draw(st.integers(0, 4)) == 0 else s, label=k)
        for k, s in keys.items()
        if data.draw(st.integers(0, 19)) > 0
    }
    if data.draw(st.integers(0, 4), label="v") > 0:  # mostly the right version, so the fields are read
        msg["v"] = 1 if data.draw(st.integers(0, 3)) else data.draw(st.sampled_from([2, True, "1", 1.0]))
    try:
        return canonical.encode(msg)
    except SyncError:  # the encoder refuses it (a float, …): send the bytes it would not write, decoded leniently
        return repr(msg).encode()


def in_tree(decode: Callable[[bytes], Any], data: bytes) -> None:
    """Decoded, or refused with an error of the tree; anything else propagates and fails the example."""
    try:
        decode(data)
    except SyncError:
        pass


# -- the targets -----------------------------------------------------------------
def fuzz_canonical(s: Samples, data: st.DataObject) -> None:
    kind = data.draw(st.integers(0, 2))
    if kind == 0:
        raw = data.draw(st.binary(max_size=256))
    elif kind == 1:
        raw = data.draw(st.text(max_size=128)).encode("utf-8", "surrogatepass")
    else:
        value = data.draw(any_json)
        try:
            raw = damaged(data, canonical.encode(value))
        except SyncError:
            raw = repr(value).encode()
    in_tree(canonical.decode, raw)


def fuzz_batch(s: Samples, data: st.DataObject) -> None:
    raw = bytes_for(data, s.batch)
    in_tree(decode_batch, raw)
    in_tree(lambda b: check_batch(b, county=COUNTY_CODE, directory=s.directory), raw)


def fuzz_page(s: Samples, data: st.DataObject) -> None:
    in_tree(decode_page_prefix, bytes_for(data, s.page))


def fuzz_bundle(s: Samples, data: st.DataObject) -> None:
    raw = bytes_for(data, s.bundle)

    def read(b: bytes) -> None:
        info = check_bundle(io.BytesIO(b), name="E:/fuzz.sjb")
        for item in iter_bundle(io.BytesIO(b), name="E:/fuzz.sjb"):
            if isinstance(item, bytes):
                check_batch(item, county=COUNTY_CODE, directory=s.directory)
        assert info.header.county == COUNTY_CODE

    in_tree(read, raw)


SESSION: dict[str, tuple[Callable[[bytes], Any], Callable[[Samples], bytes], dict[str, st.SearchStrategy[Any]]]] = {
    "hello": (Hello.decode, lambda s: s.hello, {"digest": hexes, "own": vectors}),
    "hello reply": (
        HelloReply.decode,
        lambda s: s.hello_reply,
        {"match": st.booleans(), "own": vectors, "vector": st.none() | vectors},
    ),
    "pull request": (
        PullRequest.decode,
        lambda s: s.pull,
        {"max_bytes": st.integers(-1, 2**40), "vector": vectors},
    ),
    "push reply": (
        PushReply.decode,
        lambda s: s.push_reply,
        {
            "results": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "feed": feeds | json_scalars,
                        "status": st.sampled_from([*(x.value for x in Status), "held", "Accepted"]),
                        "first": json_values,
                        "last": json_values,
                        "reason": json_values,
                        "want": json_values,
                    },
                ),
                max_size=3,
            ),
            "vector": vectors,
        },
    ),
}


def fuzz_session(message: str) -> Callable[[Samples, st.DataObject], None]:
    decode, valid, keys = SESSION[message]

    def target(s: Samples, data: st.DataObject) -> None:
        raw = shaped(data, keys) if data.draw(st.integers(0, 3), label="shaped") else bytes_for(data, valid(s))
        in_tree(decode, raw)

    return target


def fuzz_head_and_enrolment(s: Samples, data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="head"):
        in_tree(decode_head, bytes_for(data, s.head))
        return
    enrol = {
        "node": st.text(max_size=12),
        "proof": hexes,
        "pubkey": hexes,
        "token": st.text(max_size=80),
        "v": st.just(1),
    }
    keys = {"enrol": st.fixed_dictionaries({}, optional=enrol), "since": st.integers(-1, 2**64) | st.none()}
    in_tree(decode_message, shaped(data, keys))


TARGETS: dict[str, Callable[[Samples, st.DataObject], None]] = {
    "canonical decoder": fuzz_canonical,
    "batch decoder and verifier": fuzz_batch,
    "page decoder": fuzz_page,
    "bundle reader": fuzz_bundle,
    **{f"session: {m}": fuzz_session(m) for m in SESSION},
    "signed heads and enrolment": fuzz_head_and_enrolment,
}


def run(target: Callable[[Samples, st.DataObject], None], s: Samples, *, seconds: float | None) -> int:
    """Run a target: CI's fixed derandomized budget, or fresh random runs until `seconds` have passed."""
    count = 0

    def body(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        target(s, data)

    quiet = list(HealthCheck)
    if seconds is None:
        settings(max_examples=CI_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=quiet)(
            given(st.data())(body)
        )()
        return count
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        settings(max_examples=2000, deadline=None, database=None, suppress_health_check=quiet)(given(st.data())(body))()
    return count


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz(samples: Samples, name: str) -> None:
    if report.long_run():
        pytest.skip("the long run fuzzes for minutes instead")
    assert run(TARGETS[name], samples, seconds=None) >= CI_EXAMPLES // 2


@pytest.mark.long
@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz_long(samples: Samples, name: str) -> None:
    start = time.monotonic()
    examples = run(TARGETS[name], samples, seconds=LONG_SECONDS / len(TARGETS))
    report.record(
        f"fuzz: {name}", inputs=examples, outside_the_error_tree=0, seconds=round(time.monotonic() - start, 1)
    )


def test_samples_are_valid(samples: Samples) -> None:
    """The inputs the fuzzer damages are good as written (so a refusal is the damage's)."""
    assert decode_batch(samples.batch).feed == "v11/up"
    assert check_batch(samples.batch, county=COUNTY_CODE, directory=samples.directory).error is None
    assert len(decode_page_prefix(samples.page)[0]) == 2
    assert check_bundle(io.BytesIO(samples.bundle), name="b").header.source == "v11"
    for decode, valid, _ in SESSION.values():
        decode(valid(samples))
    decode_head(samples.head)
