"""督办 on the township's pages: the county's notice shows in a box on 待办 and on 督办; the clerk reads it
(已阅, with a reply), which writes the signed `supervision.ack` that goes up with the next sync."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sanji_domain import commands, kinds, supervision
from sanji_node.child import ChildNode
from sync_protocol.entries import Record
from tests.test_township_pages import KEYS, build_township, login, now_ms
from township_node.app import create_app

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def township(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("township-supervision") / "t1"
    known = build_township(path)
    node = ChildNode.load(path)
    case_id = known["open_by_liming"]["case_id"]
    with node.open_store() as store:
        for notice_id, extra, reason in (
            ("n-case", {"case_id": case_id}, "已超期，请两日内办结"),
            ("n-window", {"window": "城关镇便民服务中心"}, "本周红牌偏多，请说明"),
        ):
            body = {
                "at_ms": now_ms(),
                "by": "周县长",
                "notice_id": notice_id,
                "reason": reason,
                "township": "t1",
                **extra,
            }
            (hlc,) = commands.stamps(store.conn, "county/t1", now_ms(), 1)
            store.append(KEYS["county"], "county/t1", [Record(kinds.SUPERVISION_NOTICE, notice_id, body, hlc)])
    return path, known


@pytest.fixture
def app(township: tuple[Path, dict[str, Any]]) -> Iterator[Flask]:
    flask_app = create_app(ChildNode.load(township[0]))
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["township"].ws.close()


def test_the_clerk_reads_a_notice_from_the_inbox_box_and_it_is_recorded(app: Flask) -> None:
    client = app.test_client()
    login(client, "liming")
    inbox = client.get("/").text
    assert "县级督办" in inbox and "2 条待阅" in inbox
    assert "已超期，请两日内办结" in inbox and "本周红牌偏多，请说明" in inbox and "本乡镇窗口" in inbox
    csrf = _TOKEN.search(inbox)
    assert csrf
    resp = client.post(
        "/supervision/n-case/ack", data={"note": "已电话催办", "back": "inbox", "csrf_token": csrf.group(1)}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/")
    inbox = client.get("/").text
    assert "已阅。县级在本乡镇下次同步后看到" in inbox and "1 条待阅" in inbox
    page = client.get("/supervision").text
    assert "已阅：李明" in page and "回复：已电话催办" in page
    ws = app.extensions["township"].ws
    (row,) = [r for r in ws.read(supervision.notices) if r["notice_id"] == "n-case"]
    assert (row["state"], row["acked_by"], row["note"]) == (supervision.ACKNOWLEDGED, "李明", "已电话催办")
    resp = client.post("/supervision/n-case/ack", data={"csrf_token": csrf.group(1)})
    assert "已签收" in client.get(resp.headers["Location"]).text  # twice: a Chinese flash, no traceback


def test_a_reply_is_optional_and_bounded(app: Flask) -> None:
    client = app.test_client()
    login(client, "zhaoli")
    page = client.get("/supervision").text
    csrf = _TOKEN.search(page)
    assert csrf
    resp = client.post("/supervision/n-window/ack", data={"note": "长" * 501, "csrf_token": csrf.group(1)})
    assert "回复太长" in client.get(resp.headers["Location"]).text
    client.post("/supervision/n-window/ack", data={"note": "", "csrf_token": csrf.group(1)})
    assert "已阅：赵丽" in client.get("/supervision").text
