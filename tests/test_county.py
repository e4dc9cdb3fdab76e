"""County-side pieces without HTTP: tokens, replacement laptops, catalog releases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from county_server import catalog, tokens
from county_server.app import open_county_store
from county_server.cli import main as county_main
from sanji_domain import places
from sanji_domain.errors import ValidationError
from sanji_node.config import DataDir
from sync_protocol.enrolment import EnrolRequest, Token
from sync_protocol.entries import Record
from sync_protocol.errors import AuthorizationError, ProtocolError
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_REVOKE

from .network import Network, build_network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    n = build_network(tmp_path)
    tokens.token_migrations.apply(n.county.store.db)
    yield n
    n.close()


def issue(net: Network, node: str, division: str, parent: str = "t1", now: int = 1_000) -> Token:
    return tokens.issue(net.county.store, role="village", division=division, parent=parent, node=node, now_ms=now,
                        ttl_ms=3_600_000, random_bytes=hashlib.sha256(node.encode()).digest()[:21]).token  # fmt: skip


def test_a_token_is_redeemed_once_but_a_lost_answer_can_be_asked_again(net: Network) -> None:
    token = issue(net, "v13", "430321101203")
    key = SigningKey.from_seed(b"\x13" * 32)
    first = tokens.redeem(net.county.store, net.county.key, EnrolRequest.make(token, key), now_ms=2_000)
    again = tokens.redeem(net.county.store, net.county.key, EnrolRequest.make(token, key), now_ms=3_000)
    assert first == again and first["node"] == "v13"
    with pytest.raises(AuthorizationError, match="already been used"):
        tokens.redeem(
            net.county.store, net.county.key, EnrolRequest.make(token, SigningKey.from_seed(b"\x14" * 32)), now_ms=3_000
        )
    assert len([m for m in net.county.store.directory() if m.node == "v13"]) == 1


def test_expired_forged_and_foreign_tokens_are_refused(net: Network) -> None:
    token = issue(net, "v13", "430321101203")
    key = SigningKey.from_seed(b"\x13" * 32)
    with pytest.raises(AuthorizationError, match="expired"):
        tokens.redeem(net.county.store, net.county.key, EnrolRequest.make(token, key), now_ms=10**12)
    forged = Token(token.county, token.node, token.token_id, "A" * 26, token.root_fingerprint)
    with pytest.raises(AuthorizationError, match="unknown enrolment token"):
        tokens.redeem(net.county.store, net.county.key, EnrolRequest.make(forged, key), now_ms=2_000)
    other = Token("430322", token.node, token.token_id, token.secret, token.root_fingerprint)
    with pytest.raises(AuthorizationError, match="county 430322"):
        tokens.redeem(net.county.store, net.county.key, EnrolRequest.make(other, key), now_ms=2_000)
    wrong_key = EnrolRequest(token, "v13", key.public.hex, SigningKey.from_seed(b"\x99" * 32).sign(b"x"))
    with pytest.raises(Exception, match="prove"):
        tokens.redeem(net.county.store, net.county.key, wrong_key, now_ms=2_000)


def test_a_replacement_laptop_takes_over_a_revoked_villages_division(net: Network) -> None:
    with pytest.raises(ProtocolError, match="already belongs to node v11"):
        issue(net, "v11-new", "430321101201")
    net.county.store.append(
        net.county.key, "county/*",
        [Record(KIND_REVOKE, "v11", {"last_valid": {}, "node": "v11", "reason": "笔记本丢失"}, 50)],
    )  # fmt: skip
    token = issue(net, "v11-new", "430321101201")
    body = tokens.redeem(
        net.county.store, net.county.key, EnrolRequest.make(token, SigningKey.from_seed(b"\x21" * 32)), now_ms=2_000
    )
    assert body["division"] == "430321101201" and body["node"] == "v11-new"


def test_token_strings_round_trip_and_fit_a_qr_code(net: Network) -> None:
    token = issue(net, "v13", "430321101203")
    text = str(token)
    assert Token.parse(text) == token and Token.parse(text.lower()) == token
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ .-")  # QR alphanumeric mode
    with pytest.raises(ProtocolError, match="not an enrolment token"):
        Token.parse("SJ1.430321.garbage")


def test_catalog_release_is_atomic_and_names_every_bad_row(net: Network, tmp_path: Path) -> None:
    demo = json.loads(
        (Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json").read_text("utf-8")
    )
    items = demo["items"][:10]
    items[2] = {**items[2], "task_code": ""}
    items[5] = {**items[5], "legal_days": 20, "promised_days": 999}
    items[7] = {**items[7], "task_code": items[0]["task_code"]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"items": items}, ensure_ascii=False), encoding="utf-8")
    before = net.county.store.vector()["county/*"]
    with pytest.raises(ValidationError) as info:
        catalog.import_release(net.county.store, net.county.key, path, now_ms=5)
    message = info.value.message
    assert (
        "3 处错误" in message
        and "第 3 行 task_code" in message
        and "第 6 行 promised_days" in message
        and "第 8 行 task_code" in message
    )
    assert net.county.store.vector()["county/*"] == before  # nothing imported
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"items": demo["items"]}, ensure_ascii=False), encoding="utf-8")
    release = catalog.import_release(net.county.store, net.county.key, good, now_ms=5)
    assert (release["version"], release["count"]) == (1, len(demo["items"]))
    csv_path = tmp_path / "items.csv"
    csv_path.write_text(
        "task_code,name,legal_days,promised_days\nT1,高龄津贴申请,20,10\nT2,生育登记,abc,1\n", encoding="utf-8"
    )
    with pytest.raises(ValidationError, match="第 3 行 legal_days"):
        catalog.import_release(net.county.store, net.county.key, csv_path, now_ms=6)


def test_tokens_can_be_listed_and_cancelled(net: Network) -> None:
    token = issue(net, "v13", "430321101203")
    rows = tokens.list_tokens(net.county.store)
    assert [(r["token_id"], r["node"], r["used_ms"]) for r in rows] == [(token.token_id, "v13", None)]
    tokens.cancel(net.county.store, token.token_id.lower(), now_ms=1_500)
    with pytest.raises(AuthorizationError, match="expired"):
        tokens.redeem(
            net.county.store, net.county.key, EnrolRequest.make(token, SigningKey.from_seed(b"\x13" * 32)), now_ms=2_000
        )
    with pytest.raises(ProtocolError, match="no token"):
        tokens.cancel(net.county.store, "NOSUCHID", now_ms=1)
    fresh = issue(net, "v14", "430321101204")
    tokens.redeem(
        net.county.store, net.county.key, EnrolRequest.make(fresh, SigningKey.from_seed(b"\x14" * 32)), now_ms=2_000
    )
    with pytest.raises(ProtocolError, match="already used"):
        tokens.cancel(net.county.store, fresh.token_id, now_ms=3_000)


# -- display names through the command line ------------------------------------------------------------------


def cli(*args: str) -> Result:
    out = CliRunner().invoke(county_main, list(args))
    assert out.exit_code == 0, out.output
    return out


def test_enroll_with_a_name_rename_and_nodes_show_display_names(tmp_path: Path) -> None:
    """init names the county, enroll --name names the token and its membership, rename changes it."""
    data = str(tmp_path / "county")
    cli("init", "--data", data, "--county", "430321", "--name", "示范县")
    town = json.loads(cli("enroll", "--data", data, "--role", "township", "--division", "430321101000",
                          "--node-id", "chengguan", "--name", "城关镇便民服务中心", "--json").output)  # fmt: skip
    assert (town["node"], town["name"]) == ("chengguan", "城关镇便民服务中心")
    plain = json.loads(cli("enroll", "--data", data, "--role", "township", "--division", "430321102000",
                           "--node-id", "huashi", "--json").output)  # fmt: skip
    assert plain["name"] == "huashi"  # no --name: the node id

    # the townships redeem their tokens: the node.member bodies carry the names
    dd = DataDir(data)
    root = dd.load_key(dd.load())
    with open_county_store(dd) as store:
        for i, t in enumerate((town, plain)):
            request = EnrolRequest.make(Token.parse(t["token"]), SigningKey.from_seed(bytes([i]) * 32))
            body = tokens.redeem(store, root, request, now_ms=t["expires_ms"] - 1)  # still valid
            assert body["name"] == t["name"]
        assert places.names(store.conn) == {"county": "示范县", "chengguan": "城关镇便民服务中心", "huashi": "huashi"}

    text = cli("enroll", "--data", data, "--role", "village", "--division", "430321101201", "--parent", "chengguan",
               "--node-id", "meihua", "--name", " 梅花村 ").output  # fmt: skip
    assert "村节点 梅花村（meihua，区划 430321101201，上级 chengguan）" in text
    bad = CliRunner().invoke(county_main, ["enroll", "--data", data, "--role", "village", "--division", "430321101202",
                                           "--parent", "chengguan", "--node-id", "xinqiao", "--name", "新" * 41])  # fmt: skip
    assert bad.exit_code == 2 and "名称最多 40 个字" in bad.output
    listed = json.loads(cli("tokens", "--data", data, "--json").output)["tokens"]
    assert [(t["node"], t["name"]) for t in listed] == [
        ("chengguan", "城关镇便民服务中心"),
        ("huashi", "huashi"),
        ("meihua", "梅花村"),
    ]
    assert "城关镇便民服务中心" in cli("tokens", "--data", data).output

    renamed = cli("rename", "--data", data, "huashi", "花石镇便民服务中心").output
    assert "已将节点 huashi 的名称由 huashi 改为 花石镇便民服务中心" in renamed
    missing = CliRunner().invoke(county_main, ["rename", "--data", data, "nowhere", "无名村"])
    assert missing.exit_code == 2 and "no enrolled node 'nowhere'" in missing.output
    nodes = json.loads(cli("nodes", "--data", data, "--json").output)["nodes"]
    assert {n["node"]: n["name"] for n in nodes} == {
        "county": "示范县",
        "chengguan": "城关镇便民服务中心",
        "huashi": "花石镇便民服务中心",
    }
    assert "花石镇便民服务中心" in cli("nodes", "--data", data).output
    with open_county_store(dd) as store:
        assert store.directory().name_of("huashi") == places.name_of(store.conn, "huashi") == "花石镇便民服务中心"
