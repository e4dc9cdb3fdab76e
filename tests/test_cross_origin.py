"""The local app and every page refuse cross-origin state changes (issue 12, point 7), in the shared page core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf

from sanji_node.web import Site, init_pages

BASE = "http://127.0.0.1:8420"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = Flask("edges")
    init_pages(app, Site(title="测试", data_path=tmp_path, county_name=lambda: "示范县", centre_name=lambda: "梅花村"))
    done: list[str] = []

    @app.get("/token")
    def token() -> str:
        return generate_csrf()

    @app.post("/form")
    def form() -> str:
        done.append("form")
        return "ok"

    @app.post("/api/v1/sync-now")
    def sync_now() -> Any:
        done.append("sync")
        return {"ok": True}

    signed = Blueprint("sync_api", __name__)

    @signed.post("/api/v1/sync/hello")
    def hello() -> Any:
        return {"match": True}

    app.register_blueprint(signed)
    app.extensions["done"] = done
    return app.test_client()


CROSS = {
    "other_origin": {"headers": {"Origin": "http://evil.example"}},
    "cross_site": {"headers": {"Sec-Fetch-Site": "cross-site"}},
    "same_site_other_port": {"headers": {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}},
    "null_origin": {"headers": {"Origin": "null"}},
    "other_referer": {"headers": {"Referer": "http://evil.example/page.html"}},
    # an old browser (no Origin, no Sec-Fetch-*) posting another site's form, or a beacon with text/plain
    "old_browser_form": {"data": "a=1", "content_type": FORM},
    "old_browser_text": {"data": "{}", "content_type": "text/plain"},
    "no_content_type": {},
}


@pytest.mark.parametrize("how", CROSS.values(), ids=CROSS.keys())
def test_a_cross_origin_sync_now_is_refused(client: FlaskClient, how: dict[str, Any]) -> None:
    r = client.post("/api/v1/sync-now", base_url=BASE, **how)
    assert r.status_code == 403 and r.get_json()["code"] == "not_allowed"
    assert "请求来源不对" in r.get_json()["message"]
    assert client.application.extensions["done"] == []  # no sync was started


SAME = {
    "same_origin_page": {"headers": {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}, "json": {}},
    "same_origin_form_type": {"headers": {"Origin": BASE}, "data": "a=1", "content_type": FORM},
    "script_with_json": {"json": {}},
}


@pytest.mark.parametrize("how", SAME.values(), ids=SAME.keys())
def test_same_origin_and_scripts_still_start_a_sync(client: FlaskClient, how: dict[str, Any]) -> None:
    r = client.post("/api/v1/sync-now", base_url=BASE, **how)
    assert r.status_code == 200 and client.application.extensions["done"] == ["sync"]


def test_a_page_post_needs_the_same_origin_and_its_csrf_token(client: FlaskClient) -> None:
    token = client.get("/token", base_url=BASE).get_data(as_text=True)
    foreign = client.post("/form", base_url=BASE, data={"csrf_token": token}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "请求来源不对" in foreign.get_data(as_text=True)
    assert client.post("/form", base_url=BASE, data={}, headers={"Origin": BASE}).status_code == 400  # no token
    ok = client.post("/form", base_url=BASE, data={"csrf_token": token}, headers={"Origin": BASE})
    assert ok.status_code == 200
    old_browser = client.post("/form", base_url=BASE, data={"csrf_token": token})  # no Origin: the token decides
    assert old_browser.status_code == 200
    assert client.application.extensions["done"] == ["form", "form"]


def test_the_signed_sync_api_is_not_asked_for_an_origin(client: FlaskClient) -> None:
    r = client.post("/api/v1/sync/hello", base_url=BASE, data=b"{}", content_type="application/octet-stream")
    assert r.status_code == 200  # a node's request carries its signature instead
