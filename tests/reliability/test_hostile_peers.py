"""Hostile peers (issue 12, point 11): the list of hostile inputs, each seen from the user's side.

tests/test_hostile.py and tests/test_strictness.py show, at the protocol level, that each hostile batch is
refused with the right reason and leaves the receiving store as it was. Here the same inputs arrive the way
a user meets them, through the real programs on a real node's data directory:

- **by bundle** (`township-node import-bundle`, `county-server import-bundle`): a bundle properly signed by
  the node it comes from, carrying one hostile batch after an honest one. The command must exit nonzero
  with a first line on stderr that is Chinese first and no traceback, and the receiving database must hold
  exactly what it held before (not the honest batch either: a bundle is all or nothing), except where the
  design records evidence on purpose (a fork, entries past a revocation: recorded, nothing applied);
- **by request** (the sync API of a township under the production server): thousands of signatures in one
  push, a decompression bomb, a clock ±2 years off: a JSON refusal whose message is Chinese first, read
  before any verification work, and nothing stored;
- **at the keyboard** (`village-agent case new`): 身份证号 variants refused with a Chinese message and no
  case stored; SQL metacharacters in every text field stored verbatim with every table intact.

The issue's reproductions 1–7 are tests elsewhere; docs/reliability.md (`## Hostile peers`) names each
one, and `test_the_reproductions_table_names_tests_that_exist` keeps that table honest.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sanji_node.child import ChildNode
from sanji_node.parent import parent_app
from sync_protocol import compression
from sync_protocol.auth import sign_request
from sync_protocol.batches import decode_batch, encode_page
from sync_protocol.bundle import BundleWriter
from sync_protocol.entries import Record
from sync_protocol.heads import decode_head, sign_head
from sync_protocol.membership import KIND_REVOKE
from sync_protocol.planning import Range

from ..network import COUNTY_CODE, UNBOUNDED, Network, seeded_key
from ..test_hostile import L, hand_signed, layout, reframe, with_signature
from ..test_signed_answers import node_dir
from ..test_views_stats import item
from .test_cli_bad_input import Run, check_all, invoke

ROOT = Path(__file__).resolve().parents[2]
NOW_S = 1_790_000_000


@dataclass
class Scene:
    net: Network
    township: ChildNode  # t1's data directory: the receiver of the villages' bundles
    county: ChildNode  # the county's: the receiver of t1's bundle
    tmp: Path


@pytest.fixture
def scene(net: Network, tmp_path: Path) -> Iterator[Scene]:
    """t1 holds v11's first commit (one case.open) and the membership; v11's store holds two more commits."""
    v11 = net.nodes["v11"]
    for i in range(3):
        v11.store.append(v11.key, "v11/up", [Record("case.open", f"c{i}", {"n": i}, 1000 + i)])
    t1 = node_dir(tmp_path / "nodes", net, "t1", role="township", parent="county")
    county = node_dir(tmp_path / "nodes", net, "county", role="county", parent=None)
    with t1.open_store() as s:
        assert s.receive(v11.store.read_batch(Range("v11/up", 1, 1))).ok
    yield Scene(net, t1, county, tmp_path)


def batch(net: Network, first: int, last: int, node: str = "v11") -> bytes:
    return net.nodes[node].store.read_batch(Range(f"{node}/up", first, last))


def state(node: ChildNode) -> dict[str, Any]:
    """Everything a hostile delivery could change in the receiver's database."""
    conn = sqlite3.connect(node.data.db_path)
    try:
        out = {}
        for table in ("entries", "heads", "feeds", "quarantine", "forks", "cases", "case_events", "fold_rejects"):
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        return out
    finally:
        conn.close()


def write_bundle(path: Path, source: str, batches: list[bytes], *, county: str = COUNTY_CODE) -> Path:
    buf = io.BytesIO()
    w = BundleWriter(buf, key=seeded_key(source), county=county, source=source, vector={}, created=NOW_S)
    for b in batches:
        w.add(b)
    w.finish()
    path.write_bytes(buf.getvalue())
    return path


def flipped_body(b: bytes) -> bytes:
    out = bytearray(b)
    out[layout(b)["entries"][0]["body"][0] + 3] ^= 0x01
    return bytes(out)


def malleated(b: bytes) -> bytes:
    sig = decode_head(decode_batch(b).head).sig
    s = int.from_bytes(sig[32:], "little")
    return with_signature(b, sig[:32] + (s + L).to_bytes(32, "little"))


def request_signature_as_head(b: bytes) -> bytes:
    """A receipt of another kind passed off as an entry: v11's signature over a request, put where its head's goes."""
    h = sign_request(seeded_key("v11"), county=COUNTY_CODE, node="v11", to="t1", method="POST",
                     path="/api/v1/sync/push", body=b, now_ms=NOW_S * 1000, nonce=b"\x01" * 16)  # fmt: skip
    return with_signature(b, bytes.fromhex(h["X-Sanji-Signature"]))


def other_county_head(b: bytes) -> bytes:
    h = decode_head(decode_batch(b).head)
    return reframe(b, head=sign_head(seeded_key("v11"), "430322", h.feed, h.seq, h.hash).encode())


def forked(net: Network) -> bytes:
    """v11 signs a second history from seq 1 (t1 holds the first one's seq 1)."""
    return hand_signed(seeded_key("v11"), "v11/up", [(1000, "case.open", "c0", b'{"n":99}')])


def gap(net: Network) -> bytes:
    return batch(net, 3, 3)


def non_canonical(net: Network) -> bytes:
    return hand_signed(seeded_key("v11"), "v11/up", [(1000, "case.open", "c0", b'{"n": 0}')])


def oversize(net: Network) -> bytes:
    body = b'{"t":"' + b"x" * (256 * 1024 - 6) + b'"}'
    return hand_signed(seeded_key("v11"), "v11/up", [(1000, "case.open", "c0", body)])


def weak_key_signature(b: bytes) -> bytes:
    """What verifies under a small-order (weak) public key: R = identity, S = 0."""
    return with_signature(b, bytes([1]) + bytes(31) + bytes(32))


# name: (the hostile batch, made from the scene's network, a phrase of the Chinese message, what may be recorded)
BY_BUNDLE: dict[str, tuple[Callable[[Network], bytes], str, tuple[str, ...]]] = {
    "bit_flip": (lambda n: flipped_body(batch(n, 2, 2)), "没有通过校验", ()),
    "signature_malleated_s_plus_l": (lambda n: malleated(batch(n, 2, 2)), "没有通过校验", ()),
    "signature_all_zero": (lambda n: with_signature(batch(n, 2, 2), bytes(64)), "没有通过校验", ()),
    "weak_key_identity_signature": (lambda n: weak_key_signature(batch(n, 2, 2)), "没有通过校验", ()),
    "wrong_county": (lambda n: other_county_head(batch(n, 2, 2)), "没有通过校验", ()),
    "head_replayed_onto_another_feed": (lambda n: reframe(batch(n, 2, 2), feed="v12/up"), "没有通过校验", ()),
    "request_signature_passed_off_as_a_head": (lambda n: request_signature_as_head(batch(n, 2, 2)), "没有通过校验", ()),
    "non_canonical_json": (non_canonical, "没有通过校验", ()),
    "oversize_body": (oversize, "没有通过校验", ()),
    "fork": (forked, "分叉", ("forks", "feeds")),
    "gap": (gap, "缺", ()),
}  # fmt: skip


@pytest.mark.parametrize("name", BY_BUNDLE)
def test_a_hostile_batch_in_a_bundle_is_refused_whole_with_a_chinese_message(scene: Scene, name: str) -> None:
    make, phrase, recorded = BY_BUNDLE[name]
    honest = batch(scene.net, 2, 2)
    hostile = make(scene.net)
    bundle = write_bundle(scene.tmp / f"{name}.sjb", "v11", [hostile] if name in ("fork", "gap") else [honest, hostile])
    before = state(scene.township)
    run = invoke("township_node", ["import-bundle", "--data", str(scene.township.data.path), str(bundle)])
    check_all([run])
    assert phrase in run.stderr, run
    after = state(scene.township)
    for table in before:
        if table not in recorded:
            assert after[table] == before[table], f"{table} changed"
    assert after["entries"] == before["entries"]


def test_entries_past_a_revocation_are_quarantined_and_the_user_told(scene: Scene) -> None:
    net = scene.net
    h1 = net.nodes["v11"].store.vector()["v11/up"][1]
    with scene.township.open_store() as s:
        first = s.vector()["v11/up"]
    revoke = {"last_valid": {"v11/up": {"hash": first[1].hex(), "seq": 1}}, "node": "v11", "reason": "笔记本电脑遗失"}
    net.county.store.append(net.county.key, "county/*", [Record(KIND_REVOKE, "v11", revoke, 9000)])
    with scene.township.open_store() as s:
        assert s.receive(net.county.store.read_batch(Range("county/*", 1, net.county.store.vector()["county/*"][0]))).ok
    assert h1 != first[1]
    before = state(scene.township)
    bundle = write_bundle(scene.tmp / "revoked.sjb", "t1", [batch(net, 2, 3)])  # relayed by t1 itself
    run = invoke("township_node", ["import-bundle", "--data", str(scene.township.data.path), str(bundle)])
    check_all([run])
    assert "隔离" in run.stderr, run
    after = state(scene.township)
    assert after["entries"] == before["entries"] and len(after["quarantine"]) == len(before["quarantine"]) + 1


def test_a_township_editing_a_relayed_village_entry_is_refused_at_the_county(scene: Scene) -> None:
    """t1 changes v11's entry and re-signs the head with its own key: the county refuses the bundle whole."""
    net = scene.net
    edited = hand_signed(seeded_key("t1"), "v11/up", [(1000, "case.open", "c0", b'{"n":0,"edited":true}')])
    bundle = write_bundle(scene.tmp / "edited.sjb", "t1", [edited])
    before = state(scene.county)
    run = invoke("county_server", ["import-bundle", "--data", str(scene.county.data.path), str(bundle)])
    check_all([run])
    assert "没有通过校验" in run.stderr
    assert state(scene.county) == before
    assert net  # the same bytes, unedited, are v11's and would be accepted (tests/test_hostile.py)


def test_a_bundle_of_another_county_is_refused(scene: Scene) -> None:
    bundle = write_bundle(scene.tmp / "foreign.sjb", "v11", [batch(scene.net, 2, 2)], county="430322")
    before = state(scene.township)
    run = invoke("township_node", ["import-bundle", "--data", str(scene.township.data.path), str(bundle)])
    check_all([run])
    assert "别的县" in run.stderr and state(scene.township) == before


def test_a_catalog_rollback_to_an_older_release_changes_nothing(scene: Scene) -> None:
    """The county's older release, replayed (a stale USB stick, or a peer hoping to roll the catalog back):
    its entries are already held, so nothing moves; the newer item stays in force."""
    county = scene.net.county
    old = {**item(ELDER, "高龄津贴申请", "村"), "version": 1}
    county.store.append(county.key, "county/*", [Record("catalog.item", ELDER, old, 2000)])
    older = county.store.vector()["county/*"][0]
    county.store.append(
        county.key, "county/*", [Record("catalog.item", ELDER, {**old, "name": "高龄津贴", "version": 2}, 2001)]
    )
    newest = county.store.vector()["county/*"][0]
    with scene.township.open_store() as s:
        assert s.receive(county.store.read_batch(Range("county/*", 1, newest))).ok
    before = state(scene.township)
    with scene.township.open_store() as s:
        held = s.conn.execute("SELECT name, version FROM catalog_items").fetchall()
    bundle = write_bundle(
        scene.tmp / "old-catalog.sjb", "county", [county.store.read_batch(Range("county/*", 1, older))]
    )
    run = invoke("township_node", ["import-bundle", "--data", str(scene.township.data.path), str(bundle)])
    assert run.code == 0 and "新增 0 条" in run.stdout and "Traceback" not in run.stderr, run
    assert state(scene.township) == before
    with scene.township.open_store() as s:
        assert s.conn.execute("SELECT name, version FROM catalog_items").fetchall() == held == [("高龄津贴", 2)]


# -- by request: the sync API of a township --------------------------------------------------------------------


@pytest.fixture
def township_api(scene: Scene) -> Any:
    t1 = scene.township
    clock = lambda: NOW_S * 1000  # noqa: E731
    return parent_app("t1", node_id="t1", role="township", open_store=t1.open_store, key=t1.key, clock_ms=clock)


def signed_post(
    app: Any, path: str, body: bytes, *, now_ms: int = NOW_S * 1000, extra: dict[str, str] | None = None
) -> Any:
    h = sign_request(seeded_key("v11"), county=COUNTY_CODE, node="v11", to="t1", method="POST", path=path, body=body,
                     now_ms=now_ms, nonce=__import__("os").urandom(16))  # fmt: skip
    return app.test_client().post(path, data=body, headers={**h, **(extra or {})})


def chinese_first(message: str) -> bool:
    return bool(re.match(r"[\u3400-\u9fff]", message))


BY_REQUEST: dict[str, Callable[[Scene], tuple[str, bytes, dict[str, str], int]]] = {
    # thousands of signatures in one request: 4,097 one-entry batches, each with its own signed head
    "thousands_of_signatures": lambda sc: (
        "/api/v1/sync/push",
        compression.compress(encode_page([batch(sc.net, 2, 2)] * 4097, limits=UNBOUNDED)),
        {compression.HEADER: compression.ENCODING},
        NOW_S * 1000,
    ),
    "decompression_bomb": lambda sc: (
        "/api/v1/sync/push",
        zlib.compress(b"\x00" * (80 * 1024 * 1024), 9),
        {compression.HEADER: compression.ENCODING},
        NOW_S * 1000,
    ),
    "clock_two_years_ahead": lambda sc: ("/api/v1/sync/hello", b"{}", {}, (NOW_S + 2 * 365 * 86400) * 1000),
    "clock_two_years_behind": lambda sc: ("/api/v1/sync/hello", b"{}", {}, (NOW_S - 2 * 365 * 86400) * 1000),
}


@pytest.mark.parametrize("name", BY_REQUEST)
def test_a_hostile_request_is_refused_with_a_chinese_json_error(scene: Scene, township_api: Any, name: str) -> None:
    path, body, extra, when = BY_REQUEST[name](scene)
    before = state(scene.township)
    got = signed_post(township_api, path, body, now_ms=when, extra=extra)
    assert got.status_code in (400, 403, 413), got.get_data()
    err = got.get_json()
    assert chinese_first(err["message"]), err
    assert state(scene.township) == before


# -- at the keyboard ----------------------------------------------------------------------------------------------


ELDER = "11430321MB0000000001"
GOOD_ID = "430321197005225410"
ID_VARIANTS = {
    "wrong_check_digit": "430321197005225411",
    "lower_case_x_wrong": "43032119700522541x",
    "fifteen_digits": "430321700522541",
    "letters": "43032119700522541A",
    "born_in_the_future": "430321209905225419",
    "not_a_date": "430321197013325416",
    "sql_in_the_id": "4303211970'; DROP TABLE cases;--",
}


@pytest.fixture
def village(scene: Scene) -> ChildNode:
    """v12's data directory, holding the membership and a catalog of one village item."""
    county = scene.net.county
    county.store.append(
        county.key, "county/*", [Record("catalog.item", ELDER, item(ELDER, "高龄津贴申请", "村"), 2000)]
    )
    return node_dir(scene.tmp / "nodes", scene.net, "v12", role="village", parent="t1")


def new_case(village: ChildNode, **fields: str) -> Run:
    args = ["case", "new", "--data", str(village.data.path), "--item", ELDER, "--offline"]
    args += ["--material", "居民身份证", "--material", "户口簿"]
    for name, value in {"name": "王秀英", "id_number": GOOD_ID, "phone": "13907345678", **fields}.items():
        args += [f"--{name.replace('_', '-')}", value]
    return invoke("village_agent", args)


def cases(village: ChildNode) -> list[Any]:
    with village.open_store() as s:
        return s.conn.execute("SELECT case_id FROM cases").fetchall()


def test_id_number_variants_are_refused_and_nothing_is_stored(village: ChildNode) -> None:
    runs = [new_case(village, id_number=number) for number in ID_VARIANTS.values()]
    check_all(runs)
    assert all("身份证" in r.stderr for r in runs), "\n".join(map(str, runs))
    assert cases(village) == []
    control = new_case(village, id_number="４３０３ ２１１９ ７００５ ２２５４ １０")  # spaced, full-width: normalised
    assert control.code == 0, control
    assert len(cases(village)) == 1


SQL = "'); DROP TABLE cases; -- \" OR 1=1 %_ \\ ;"


def test_sql_metacharacters_in_every_text_field_are_stored_verbatim(village: ChildNode) -> None:
    """Free text (address, 委托书编号, 备注, who did it) is stored as typed; a name refuses the characters."""
    refused = new_case(village, name="王" + SQL)
    check_all([refused])
    assert "姓名" in refused.stderr and cases(village) == []
    fields = {"address": "梅花村" + SQL, "proxy_no": "D-1" + SQL, "notes": SQL, "person": "李" + SQL}
    run = new_case(village, **fields)
    assert run.code == 0, run
    listed = invoke("village_agent", ["case", "list", "--data", str(village.data.path), "--json"])
    assert listed.code == 0, listed
    [case] = json.loads(listed.stdout)
    shown = invoke("village_agent", ["case", "show", "--data", str(village.data.path), case["local_no"], "--json"])
    assert shown.code == 0, shown
    text = shown.stdout
    for value in fields.values():
        assert json.dumps(value, ensure_ascii=False)[1:-1] in text, value
    with village.open_store() as s:
        assert {"cases", "case_pii", "entries"} <= set(s.db.table_names())  # every table is still there
    found = invoke("village_agent", ["case", "list", "--data", str(village.data.path), "--json", "--item", "%"])
    assert found.code == 0 and json.loads(found.stdout) == [], found  # a LIKE wildcard matches nothing


def test_the_reproductions_table_names_tests_that_exist() -> None:
    """docs/reliability.md, `## Hostile peers`: every `tests/…::test_…` it names is a test function in that file."""
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    section = doc.split("## Hostile peers", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)", section)
    assert len(named) >= 20
    for path, test in named:
        assert re.search(rf"^(async )?def {test}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), (path, test)
