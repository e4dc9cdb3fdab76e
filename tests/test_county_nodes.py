"""节点与登记 through the Flask test client: enrol from the form (token, QR, sheet), the token list with cancel and
re-send, a node's page with its problems and the action for each (fork, quarantine, conflict), revoke with a
confirmation, rename; a 监察员 gets 403 on every action, every action writes one audit row, bad input answers
in Chinese and changes nothing. The county directory is made by the real commands; the villages' data are
signed with real keys (`tokens.redeem` as the enrolment route does)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from county_server import audit, node_admin, tokens
from county_server.app import create_app
from county_server.cli import main as county_main
from county_server.node import open_county_store
from sanji_node.config import DataDir
from sync_protocol.enrolment import EnrolRequest, Token
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_REVOKE
from sync_protocol.sqlite_store import Store

from .test_county_pages import PASSWORDS, cli, login, token

T1, V1 = "430321101000", "430321101201"


def enrol_direct(
    store: Store, root: SigningKey, role: str, division: str, parent: str, name: str, seed: int
) -> SigningKey:
    """Issue a token (as the CLI does) and redeem it with a new key (as the enrolment route does)."""
    sheet = node_admin.issue_token(store, who=audit.CLI_ACTOR, now_ms=1, role=role, division=division, parent=parent,
                                   name=name, ttl_ms=10**13, random_bytes=bytes([seed]) * 21)  # fmt: skip
    key = SigningKey.from_seed(bytes([seed]) * 32)
    tokens.redeem(store, root, EnrolRequest.make(Token.parse(sheet.token), key), now_ms=2)
    return key


@pytest.fixture(scope="module")
def county_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("county-nodes")
    assert cli("init", "--data", str(path), "--county", "430321", "--name", "示范县").exit_code == 0
    for name, role in (("admin1", "admin"), ("jiancha", "inspector")):
        who = "周县长" if role == "admin" else "钱监察"
        done = cli("account", "add", "--data", str(path), "--name", who, "--login", name, "--role", role,
                   "--password-env", "PW", env={"PW": PASSWORDS[name]})  # fmt: skip
        assert done.exit_code == 0, done.output
    data = DataDir(path)
    root = data.load_key(data.load())
    with open_county_store(data) as store:
        enrol_direct(store, root, "township", T1, "county", "城关镇便民服务中心", 1)
        enrol_direct(store, root, "village", V1, T1, "梅花村", 2)
    return path


@pytest.fixture()
def app(county_dir: Path, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    flask_app = create_app(path)
    flask_app.config["TESTING"] = True
    flask_app.config["SANJI_PATH"] = str(path)
    yield flask_app
    flask_app.extensions["county"].ws.close()


def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "admin1")
    return client


def post(client: FlaskClient, path: str, data: dict[str, Any], page: str = "/nodes") -> Any:
    return client.post(path, data={**data, "csrf_token": token(client.get(page).get_data(as_text=True))})


def store_of(app: Flask) -> Store:
    return open_county_store(DataDir(app.config["SANJI_PATH"]))


def audit_rows(app: Flask, node: str | None = None) -> list[tuple[str, str, str]]:
    with store_of(app) as store:
        rows = audit.rows(store.db, target_kind="node" if node else None, target=node)
    return [(r["action"], r["who_name"], r["reason"]) for r in rows]


def test_the_list_shows_nodes_by_name_with_the_tokens(app: Flask) -> None:
    page = admin(app).get("/nodes").get_data(as_text=True)
    assert "城关镇便民服务中心" in page and "梅花村" in page and V1 in page
    assert "已使用" in page and "登记乡镇或村" in page and "从未联系" in page


def test_enrol_from_the_form_shows_the_token_qr_and_the_sheet_and_is_audited(app: Flask) -> None:
    client = admin(app)
    resp = post(client, "/nodes/enrol", {"role": "village", "name": "新桥村", "division": "430321101202",
                                          "parent": T1, "days": "7"})  # fmt: skip
    assert resp.status_code == 200
    sheet = resp.get_data(as_text=True)
    (text,) = set(re.findall(r"SJ1\.[A-Z0-9.]+", sheet))
    assert "<svg" in sheet and "节点登记单" in sheet and "新桥村" in sheet and "城关镇便民服务中心" in sheet
    assert f"village-agent init --data &lt;数据目录&gt; --parent &lt;乡镇服务器地址&gt; --token {text}" in sheet
    assert "令牌只显示这一次" in sheet and "@page" not in sheet  # the print CSS comes from print.css
    assert Token.parse(text).node == "430321101202"
    assert audit_rows(app, "430321101202") == [("token.issue", "周县长", "")]
    listed = client.get("/nodes").get_data(as_text=True)
    assert "新桥村" in listed and "未使用" in listed and text not in listed  # the secret is shown once only


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"role": "village", "name": "新桥村", "division": "43032110120", "parent": T1}, "区划代码应为 12 位数字"),
        ({"role": "village", "name": "新桥村", "division": "430322101202", "parent": T1}, "不属于本县"),
        (
            {"role": "village", "name": "新桥村", "division": "430321102202", "parent": T1},
            "不在所选乡镇 城关镇便民服务中心 之下",
        ),
        ({"role": "village", "name": "新桥村", "division": "430321101202", "parent": ""}, "请选择村所属的乡镇"),
        ({"role": "village", "name": "新桥村", "division": V1, "parent": T1}, "已登记给 梅花村"),
        ({"role": "township", "name": "花石镇", "division": "430321102001", "parent": ""}, "最后 3 位应为 000"),
        ({"role": "village", "name": "", "division": "430321101202", "parent": T1}, "请填写名称"),
        ({"role": "village", "name": "新" * 41, "division": "430321101202", "parent": T1}, "名称最多 40 个字"),
    ],
)
def test_bad_enrolment_input_is_refused_in_chinese_and_issues_nothing(
    app: Flask, form: dict[str, str], message: str
) -> None:
    resp = post(admin(app), "/nodes/enrol", {**form, "days": "3"})
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    with store_of(app) as store:
        assert len(tokens.list_tokens(store)) == 2
    assert len(audit_rows(app)) == 2  # the two enrolments of the fixture


def test_cancel_and_resend_a_token(app: Flask) -> None:
    client = admin(app)
    first = post(client, "/nodes/enrol", {"role": "township", "name": "花石镇便民服务中心",
                                          "division": "430321102000", "days": "3"}).get_data(as_text=True)  # fmt: skip
    old = Token.parse(re.findall(r"SJ1\.[A-Z0-9.]+", first)[0])
    waiting = client.get("/nodes/430321102000").get_data(as_text=True)  # not enrolled yet: its page offers 重发
    assert "花石镇便民服务中心" in waiting and "重发令牌" in waiting and "未使用" in waiting
    assert post(client, "/nodes/430321102000/resend", {"reason": ""}).status_code == 302  # no reason: nothing
    resent = post(client, "/nodes/430321102000/resend", {"reason": "登记单丢失"})
    new = Token.parse(re.findall(r"SJ1\.[A-Z0-9.]+", resent.get_data(as_text=True))[0])
    assert new.token_id != old.token_id
    with store_of(app) as store:
        states = {r["token_id"]: r["state"] for r in node_admin.token_rows(store, int(time.time() * 1000))}
    assert states[old.token_id] == "cancelled" and states[new.token_id] == "unused"
    # the old token no longer enrols
    with store_of(app) as store, pytest.raises(Exception, match="expired"):
        data = DataDir(app.config["SANJI_PATH"])
        tokens.redeem(store, data.load_key(data.load()), EnrolRequest.make(old, SigningKey.generate()), now_ms=10**13)
    resp = post(client, f"/nodes/tokens/{new.token_id}/cancel", {"reason": "改为下周再登记"})
    assert resp.status_code == 302
    page = client.get("/nodes").get_data(as_text=True)
    assert "已作废" in page
    actions = [a for a, *_ in audit_rows(app, "430321102000")]
    assert actions == ["token.cancel", "token.resend", "token.issue"]
    resp = post(client, "/nodes/tokens/NOSUCH/cancel", {"reason": "x"})
    assert "没有编号为 NOSUCH 的登记令牌" in client.get("/nodes").get_data(as_text=True)


def test_the_node_page_shows_facts_and_the_audit_rows(app: Flask) -> None:
    page = admin(app).get(f"/nodes/{V1}").get_data(as_text=True)
    assert "梅花村" in page and "城关镇便民服务中心" in page and "密钥指纹" in page and "从未联系" in page
    assert "没有分叉" in page and "没有隔离的数据" in page and "签发登记令牌" in page  # its audit row
    assert admin(app).get("/nodes/nobody").status_code == 404


def test_rename_and_revoke_with_a_confirmation(app: Flask) -> None:
    client = admin(app)
    resp = post(client, f"/nodes/{V1}/rename", {"name": "梅花社区", "reason": "撤村改居"}, f"/nodes/{V1}")
    assert resp.status_code == 302
    assert "梅花社区" in client.get(f"/nodes/{V1}").get_data(as_text=True)
    ask = post(client, f"/nodes/{V1}/revoke", {"reason": "笔记本丢失"}, f"/nodes/{V1}")
    assert ask.status_code == 200 and "确认吊销 梅花社区" in ask.get_data(as_text=True)
    with store_of(app) as store:
        assert store.directory().get(V1).revocation is None  # type: ignore[union-attr]  # asked, not done
    done = post(client, f"/nodes/{V1}/revoke", {"reason": "笔记本丢失", "confirm": "yes"}, f"/nodes/{V1}")
    assert done.status_code == 302
    with store_of(app) as store:
        assert store.directory().get(V1).revocation.reason == "笔记本丢失"  # type: ignore[union-attr]
    assert audit_rows(app, V1)[:2] == [("node.revoke", "周县长", "笔记本丢失"), ("node.rename", "周县长", "撤村改居")]
    page = client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert "已吊销" in page and "吊销原因" in page
    again = post(client, f"/nodes/{V1}/revoke", {"reason": "再来", "confirm": "yes"}, f"/nodes/{V1}")
    assert again.status_code == 302 and "已经吊销" in client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert len(audit_rows(app, V1)) == 3  # issue, rename, revoke: the refused second one wrote nothing


def test_an_action_without_a_reason_changes_nothing(app: Flask) -> None:
    client = admin(app)
    post(client, f"/nodes/{V1}/revoke", {"reason": " ", "confirm": "yes"}, f"/nodes/{V1}")
    post(client, f"/nodes/{V1}/rename", {"name": "梅花社区", "reason": ""}, f"/nodes/{V1}")
    post(client, f"/nodes/{V1}/fork", {"reason": ""}, f"/nodes/{V1}")
    assert "请填写原因" in client.get(f"/nodes/{V1}").get_data(as_text=True)
    with store_of(app) as store:
        assert store.directory().get(V1).revocation is None  # type: ignore[union-attr]
        assert store.directory().name_of(V1) == "梅花村"
    assert [a for a, *_ in audit_rows(app, V1)] == ["token.issue"]


def quarantined_batches(app: Flask) -> None:
    """梅花村 files a case, is revoked at the county, and files another: quarantined."""
    data = DataDir(app.config["SANJI_PATH"])
    root = data.load_key(data.load())
    v = SigningKey.from_seed(bytes([2]) * 32)
    with Store(":memory:") as laptop, store_of(app) as store:
        laptop.set_trust(store.trust)
        from sync_protocol.planning import Range

        laptop.receive(store.read_batch(Range("county/*", 1, store.vector()["county/*"][0])))
        laptop.append(v, f"{V1}/up", [Record("ledger.note", "n1", {"n": 1}, 10)])
        store.receive(laptop.read_batch(Range(f"{V1}/up", 1, 1)))
        seq, digest = store.vector()[f"{V1}/up"]
        body = {"node": V1, "last_valid": {f"{V1}/up": {"seq": seq, "hash": digest.hex()}}, "reason": "笔记本丢失"}
        store.append(root, "county/*", [Record(KIND_REVOKE, V1, body, 20)])
        laptop.append(v, f"{V1}/up", [Record("ledger.note", "n2", {"n": 2}, 30)])
        store.receive(laptop.read_batch(Range(f"{V1}/up", 2, 2)))
        assert len(store.quarantined(waiting_only=True)) == 1


def test_release_or_refuse_a_quarantined_batch_from_the_page(app: Flask) -> None:
    quarantined_batches(app)
    client = admin(app)
    page = client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert "第 2–2 条" in page and "放行" in page and "拒收" in page and "吊销（笔记本丢失）以后写入的数据" in page
    assert "隔离 1 条" in client.get("/nodes").get_data(as_text=True)
    assert post(client, f"/nodes/{V1}/quarantine/1/release", {"reason": ""}, f"/nodes/{V1}").status_code == 302
    with store_of(app) as store:
        assert store.vector()[f"{V1}/up"][0] == 1  # no reason: not released
    post(client, f"/nodes/{V1}/quarantine/1/release", {"reason": "核实是丢失前补录的"}, f"/nodes/{V1}")
    with store_of(app) as store:
        assert store.vector()[f"{V1}/up"][0] == 2
    post(client, f"/nodes/{V1}/quarantine/1/release", {"reason": "再点一次"}, f"/nodes/{V1}")  # idempotent
    refused = post(client, f"/nodes/{V1}/quarantine/1/refuse", {"reason": "改主意"}, f"/nodes/{V1}")
    assert refused.status_code == 302
    page = client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert "已放行" in page and "核实是丢失前补录的" in page and "已经放行，不能再改" in page
    # one row for the release (the revocation above was written directly, not through an action)
    assert [a for a, *_ in audit_rows(app, V1)] == ["quarantine.release", "token.issue"]


def test_acknowledge_a_refused_entry_with_a_note(app: Flask) -> None:
    with store_of(app) as store:
        store.conn.execute(
            "INSERT INTO fold_rejects (feed, seq, kind, key, reason) VALUES (?, 1, 'case.event', 'c1', '不能这样做')",
            (f"{V1}/up",),
        )
        store.conn.commit()
    client = admin(app)
    page = client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert "不能这样做" in page and "冲突 1" in client.get("/nodes").get_data(as_text=True)
    post(client, f"/nodes/{V1}/ack", {"feed": f"{V1}/up", "seq": "1", "note": "已电话核实，不需处理"}, f"/nodes/{V1}")
    page = client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert "已确认" in page and "已电话核实，不需处理" in page and "周县长" in page
    assert "冲突 1" not in client.get("/nodes").get_data(as_text=True)
    post(client, f"/nodes/{V1}/ack", {"feed": f"{V1}/up", "seq": "1", "note": "again"}, f"/nodes/{V1}")
    post(client, f"/nodes/{V1}/ack", {"feed": f"{V1}/up", "seq": "9", "note": "x"}, f"/nodes/{V1}")
    assert "不是冲突或拒收条目" in client.get(f"/nodes/{V1}").get_data(as_text=True)
    assert [a for a, *_ in audit_rows(app, V1)] == ["conflict.ack", "token.issue"]


WRITES = [
    ("/nodes/enrol", {"role": "township", "name": "花石镇", "division": "430321102000", "days": "3"}),
    ("/nodes/tokens/ABCDEFGH/cancel", {"reason": "x"}),
    (f"/nodes/{V1}/resend", {"reason": "x"}),
    (f"/nodes/{V1}/rename", {"name": "x", "reason": "x"}),
    (f"/nodes/{V1}/revoke", {"reason": "x", "confirm": "yes"}),
    (f"/nodes/{V1}/fork", {"reason": "x"}),
    (f"/nodes/{V1}/quarantine/1/release", {"reason": "x"}),
    (f"/nodes/{V1}/quarantine/1/refuse", {"reason": "x"}),
    (f"/nodes/{V1}/ack", {"feed": f"{V1}/up", "seq": "1", "note": "x"}),
]


def test_an_inspector_reads_every_page_but_gets_403_on_every_action(app: Flask) -> None:
    client = app.test_client()
    login(client, "jiancha")
    assert client.get("/nodes").status_code == 200 and client.get(f"/nodes/{V1}").status_code == 200
    for path, data in WRITES:
        resp = post(client, path, data)
        assert resp.status_code == 403, path
    assert len(audit_rows(app)) == 2  # the two enrolments of the fixture


def test_the_cli_commands_are_the_same_actions_and_write_audit_rows(county_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    data = str(path)
    issued = cli("enroll", "--data", data, "--role", "village", "--division", "430321101202", "--parent", T1,
                 "--name", "新桥村", "--json")  # fmt: skip
    assert issued.exit_code == 0, issued.output
    token_id = Token.parse(issued.output.split('"token": "')[1].split('"')[0]).token_id
    assert cli("tokens", "--data", data, "--cancel", token_id).exit_code == 0
    assert "已作废" in cli("tokens", "--data", data).output
    assert cli("rename", "--data", data, V1, "梅花社区").exit_code == 0
    assert cli("revoke", "--data", data, V1, "--reason", "笔记本丢失").exit_code == 0
    refused = CliRunner().invoke(county_main, ["resolve-fork", "--data", data, V1, "--reason", "x"])
    assert refused.exit_code == 2 and "县级没有" in refused.output  # nothing of its feed here: nothing written
    with open_county_store(DataDir(path)) as store:
        rows = audit.rows(store.db)
    assert [(r["action"], r["who_name"], r["target"]) for r in rows[:4]] == [
        ("node.revoke", "命令行", V1),
        ("node.rename", "命令行", V1),
        ("token.cancel", "命令行", "430321101202"),
        ("token.issue", "命令行", "430321101202"),
    ]
    assert rows[0]["reason"] == "笔记本丢失" and rows[1]["details"] == {"原名称": "梅花村", "新名称": "梅花社区"}
