"""The county's pages, the shared part: accounts (管理员, 监察员), login, roles, CSRF and the audit log,
through the Flask test client on a county data directory made by the real `county-server` commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from county_server import audit
from county_server.app import create_app
from county_server.cli import main as county_cli
from county_server.node import open_county_store
from sanji_node.config import DataDir

PASSWORDS = {"admin1": "admin1-pass-2026", "jiancha": "jiancha-pass-2026"}


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(county_cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def county_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("county")
    assert cli("init", "--data", str(path), "--county", "430321", "--name", "示范县").exit_code == 0
    return path


@pytest.fixture()
def app(county_dir: Path, tmp_path: Path) -> Iterator[Flask]:
    import shutil

    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    env = {"PW": PASSWORDS["admin1"]}
    done = cli("account", "add", "--data", str(path), "--name", "周县长", "--login", "admin1", "--role", "admin",
               "--password-env", "PW", env=env)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "已添加管理员 周县长" in done.output
    flask_app = create_app(path)
    flask_app.config["TESTING"] = True
    flask_app.config["SANJI_PATH"] = str(path)
    yield flask_app
    flask_app.extensions["county"].ws.close()


def token(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: FlaskClient, name: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"login": name, "password": PASSWORDS[name], "csrf_token": token(page)})
    assert resp.status_code == 302, resp.get_data(as_text=True)


NAV_PAGES = ["/", "/nodes", "/catalog", "/monitor", "/stats", "/ratings", "/audit"]


def test_every_page_asks_for_a_login_first(app: Flask) -> None:
    client = app.test_client()
    for path in [*NAV_PAGES, "/accounts"]:
        resp = client.get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], path
    page = client.get("/login").get_data(as_text=True)
    assert "县级管理员登录" in page


def test_a_wrong_password_is_refused_in_chinese(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"login": "admin1", "password": "nope-nope-nope", "csrf_token": token(page)})
    assert resp.status_code == 401
    assert "登录名或密码不对" in resp.get_data(as_text=True)


def test_the_admin_sees_every_page_and_adds_an_inspector_which_is_audited(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin1")
    for path in [*NAV_PAGES, "/accounts"]:
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "周县长" in resp.get_data(as_text=True)
    page = client.get("/accounts").get_data(as_text=True)
    resp = client.post(
        "/accounts/add",
        data={"name": "钱监察", "login": "jiancha", "role": "inspector", "password": PASSWORDS["jiancha"],
              "confirm": PASSWORDS["jiancha"], "csrf_token": token(page)},
    )  # fmt: skip
    assert resp.status_code == 302
    page = client.get("/accounts").get_data(as_text=True)
    assert "钱监察" in page and "监察员" in page
    with open_county_store(DataDir(app.config["SANJI_PATH"])) as store:
        rows = audit.rows(store.db)
    assert [(r["action"], r["who_name"], r["target"]) for r in rows] == [("account.add", "周县长", "jiancha")]
    log = client.get("/audit").get_data(as_text=True)
    assert "添加账号" in log and "jiancha" in log and "周县长" in log


def test_an_inspector_reads_but_may_not_manage_accounts(app: Flask) -> None:
    env = {"PW": PASSWORDS["jiancha"]}
    path = app.config["SANJI_PATH"]
    assert cli("account", "add", "--data", path, "--name", "钱监察", "--login", "jiancha", "--password-env", "PW",
               env=env).exit_code == 0  # fmt: skip  (inspector is the default role)
    client = app.test_client()
    login(client, "jiancha")
    for path in NAV_PAGES:
        assert client.get(path).status_code == 200, path
    resp = client.get("/accounts")
    assert resp.status_code == 403 and "没有这项权限" in resp.get_data(as_text=True)
    assert "账号</a>" not in client.get("/audit").get_data(as_text=True)  # not in the menu either


def test_a_form_without_its_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin1")
    resp = client.post("/accounts/add", data={"name": "x", "login": "xx", "role": "admin", "password": "12345678"})
    assert resp.status_code == 400 and "表单已过期" in resp.get_data(as_text=True)


def test_a_disabled_account_is_signed_out_at_its_next_request(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin1")
    path = app.config["SANJI_PATH"]
    env = {"PW": "second-admin-2026"}
    assert cli("account", "add", "--data", path, "--name", "孙管理", "--login", "admin2", "--role", "admin",
               "--password-env", "PW", env=env).exit_code == 0  # fmt: skip
    assert cli("account", "disable", "--data", path, "--login", "admin1").exit_code == 0
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert "已停用" in client.get("/login").get_data(as_text=True)


def test_the_accounts_page_speaks_of_the_county(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin1")
    page = client.get("/accounts").get_data(as_text=True)
    assert "操作日志上记下的姓名" in page and "账号只保存在县级服务器上" in page and "监察员只能查看" in page
