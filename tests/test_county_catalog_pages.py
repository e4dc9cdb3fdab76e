"""事项清单 pages at the county: list, import with a preview, edit one item, state changes, releases, diffs, 办事指南.

Through the Flask test client on a county data directory made by the real
`county-server` commands, with the demo catalog (48 items) released as
version 1. Acceptance 2 on the page: no import publishes anything its preview
did not show, and every bad cell is named by row and column.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import stat
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from county_server import catalog, catalog_uploads
from county_server.app import create_app
from county_server.node import open_county_store
from sanji_domain import catalog_history as history
from sanji_node.config import DataDir

from .e2e.cluster import DEMO_CATALOG
from .test_county_pages import PASSWORDS, cli, token

GAOLING = "11430321006185309N4001305001000"  # 高龄津贴申请: 乡, 承诺件, 法定 20, 承诺 10
DIBAO = "11430321006185309N4001305002000"  # 农村低保申请
N_ITEMS = 48


@pytest.fixture(scope="module")
def county_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("county-catalog")
    assert cli("init", "--data", str(path), "--county", "430321", "--name", "示范县").exit_code == 0
    assert cli("catalog", "import", "--data", str(path), str(DEMO_CATALOG)).exit_code == 0
    for login, role, name in (("admin1", "admin", "周县长"), ("jiancha", "inspector", "吴监察")):
        done = cli("account", "add", "--data", str(path), "--name", name, "--login", login, "--role", role,
                   "--password-env", "PW", env={"PW": PASSWORDS[login]})  # fmt: skip
        assert done.exit_code == 0, done.output
    return path


@pytest.fixture()
def data_path(county_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "c"
    shutil.copytree(county_dir, path)
    return path


@pytest.fixture()
def app(data_path: Path) -> Iterator[Flask]:
    flask_app = create_app(data_path)
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["county"].ws.close()


def signed_in(app: Flask, login: str = "admin1") -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    resp = client.post("/login", data={"login": login, "password": PASSWORDS[login], "csrf_token": token(page)})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


@pytest.fixture()
def admin(app: Flask) -> FlaskClient:
    return signed_in(app)


def text(resp: Any) -> str:
    return str(resp.get_data(as_text=True))


def csrf(client: FlaskClient, path: str = "/catalog") -> str:
    return token(text(client.get(path)))


def upload(client: FlaskClient, name: str, data: bytes, mode: str = "增量") -> Any:
    """Upload a file on the import page; returns the response (a redirect to its preview when it was taken)."""
    form = {"csrf_token": csrf(client, "/catalog/import"), "mode": mode, "file": (io.BytesIO(data), name)}
    return client.post("/catalog/import", data=form, content_type="multipart/form-data")


def preview(client: FlaskClient, name: str, data: bytes, mode: str = "增量") -> tuple[str, str, Any]:
    """Upload and open the preview: (its url, its digest or "" when it cannot be published, the response)."""
    resp = upload(client, name, data, mode)
    assert resp.status_code == 302, text(resp)
    url = resp.headers["Location"]
    assert "/catalog/preview/" in url
    page = client.get(url)
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', text(page))
    return url, found.group(1) if found else "", page


def confirm(client: FlaskClient, url: str, digest: str) -> Any:
    return client.post(url + "/publish", data={"csrf_token": token(text(client.get(url))), "digest": digest})


def state(data_path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """The county feed's latest release and its items, read from the database on disk."""
    with open_county_store(DataDir(data_path)) as store:
        rows = catalog.rows(store)
    return history.latest_version(rows), history.current_items(rows)


def audit_rows(data_path: Path, action: str) -> list[dict[str, Any]]:
    with open_county_store(DataDir(data_path)) as store:
        cur = store.conn.execute(
            "SELECT who_login, who_name, target, reason, details FROM audit_log WHERE action = ? ORDER BY audit_id",
            (action,),
        )
        return [{"login": r[0], "name": r[1], "target": r[2], "reason": r[3], "details": json.loads(r[4])} for r in cur]


class _Form(HTMLParser):
    """The values a browser would send for the first POST form of a page (inputs, selected options, textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._area: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name") and a.get("type") not in ("radio", "checkbox", "file"):
            self.values.setdefault(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.values):
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._area = a.get("name")
            self.values[self._area or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._area = None

    def handle_data(self, data: str) -> None:
        if self._area:
            self.values[self._area] += data


def form_fields(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html.split('class="item-form"', 1)[1])
    return parser.values


def page_publishes(data_path: Path) -> list[dict[str, Any]]:
    """The publishes made from the pages (the demo catalog was published from the command line)."""
    return [r for r in audit_rows(data_path, "catalog.publish") if r["login"] != "cli"]


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- the list -------------------------------------------------------------------------------------
def test_the_list_shows_every_item_by_name_with_level_deadline_fee_and_the_release(admin: FlaskClient) -> None:
    page = text(admin.get("/catalog"))
    assert "现行清单：<strong>第 1 版</strong>" in page and f"共 {N_ITEMS} 项" in page
    assert "高龄津贴申请" in page and "乡级（村受理乡办结）" in page and "承诺 10 个工作日（法定 20）" in page
    assert "居住证申领" in page and "20.00 元" in page  # a fee of 2000 分
    assert "在用 48 项，暂停 0 项，取消 0 项" in page
    found = text(admin.get("/catalog?q=gljt"))  # pinyin initials
    assert "高龄津贴申请" in found and "农村低保申请" not in found and "找到 1 项" in found
    assert "找到 1 项" in text(admin.get("/catalog?q=高龄津")) and "找到 1 项" in text(admin.get(f"/catalog?q={DIBAO}"))
    county_items = text(admin.get("/catalog?level=县"))
    assert "残疾人证申领" in county_items and "高龄津贴申请" not in county_items
    assert "没有符合条件的事项" in text(admin.get("/catalog?state=取消"))


# -- Acceptance 2 on the page ---------------------------------------------------------------------
def test_a_one_row_file_in_incremental_mode_changes_that_item_only_after_confirmation(
    admin: FlaskClient, data_path: Path
) -> None:
    before_version, before = state(data_path)
    url, digest, page = preview(admin, "one.csv", csv_bytes("实施编码,承诺时限", f"{GAOLING},8"))
    body = text(page)
    assert page.status_code == 200 and digest
    assert '<div class="n" id="cancel-count">0</div>' in body and "cancel-warning" not in body
    assert "承诺时限" in body and "10 个工作日" in body and "8 个工作日" in body  # old → new
    assert f"不变 {N_ITEMS - 1} 项" in body
    assert state(data_path)[0] == before_version  # a preview publishes nothing
    resp = confirm(admin, url, digest)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/catalog/releases")
    version, after = state(data_path)
    assert version == before_version + 1
    assert after[GAOLING]["promised_days"] == 8
    changed = {c for c in after if after[c] != before[c]}
    assert changed == {GAOLING}  # nothing else changed
    assert {k for k, (old, new) in history.diff({GAOLING: before[GAOLING]}, {GAOLING: after[GAOLING]})["changed"][
        GAOLING
    ].items()} == {"promised_days"}  # fmt: skip
    assert "已发布事项清单第 2 版" in text(admin.get("/catalog/releases"))
    [row] = audit_rows(data_path, "catalog.publish")[-1:]
    assert row["login"] == "admin1"
    assert row["details"] | {} == {"version": 2, "mode": "增量", "source": "one.csv", "added": 0, "changed": 1,
                                   "cancelled": 0}  # fmt: skip
    assert not list((data_path / catalog_uploads.FOLDER).iterdir())  # the upload is gone once published


def test_replace_mode_shows_the_cancelled_count_in_red_and_publishes_nothing_until_confirmed(
    admin: FlaskClient, data_path: Path
) -> None:
    url, digest, page = preview(admin, "whole.csv", csv_bytes("实施编码,承诺时限", f"{GAOLING},10"), mode="全量替换")
    body = text(page)
    n = N_ITEMS - 1
    assert f'<div class="n" id="cancel-count">{n}</div>' in body
    assert "cancel-count" in body and f'将取消 <strong class="cancel-n">{n}</strong> 项事项' in body
    assert "农村低保申请" in body and "新导入的清单中已无此事项" in body  # each cancelled item listed
    assert f"确认发布（取消 {n} 项）" in body
    # nothing is published while the administrator looks, goes away, comes back
    admin.get("/catalog")
    assert state(data_path)[0] == 1 and not page_publishes(data_path)
    assert "在用 48 项" in text(admin.get("/catalog"))
    resp = confirm(admin, url, digest)
    assert resp.status_code == 302
    version, items = state(data_path)
    assert version == 2 and sum(1 for i in items.values() if i["state"] == "取消") == n
    assert items[GAOLING]["state"] == "在用"
    assert audit_rows(data_path, "catalog.publish")[-1]["details"]["cancelled"] == n


def test_discarding_a_preview_publishes_nothing_and_deletes_the_upload(admin: FlaskClient, data_path: Path) -> None:
    url, digest, _ = preview(admin, "whole.csv", csv_bytes("实施编码,承诺时限", f"{GAOLING},10"), mode="全量替换")
    resp = admin.post(url + "/discard", data={"csrf_token": csrf(admin)})
    assert resp.status_code == 302
    assert "已放弃这次导入" in text(admin.get("/catalog"))
    assert state(data_path)[0] == 1
    assert not list((data_path / catalog_uploads.FOLDER).iterdir())
    gone = admin.post(url + "/publish", data={"csrf_token": csrf(admin), "digest": digest})
    assert gone.status_code == 302 and "找不到这次导入的文件" in text(admin.get(gone.headers["Location"]))
    assert state(data_path)[0] == 1


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        # a CSV line missing its last cell: never a default (the 乡 → 县)
        (("实施编码,事项名称,办理层级", f"{GAOLING},高龄津贴申请"), ("第 2 行", "办理层级", "缺少这一格")),
        (("实施编码,备用栏", f"{GAOLING},x"), ("第 1 行", "备用栏", "未知的列")),
        (("实施编码,承诺时限", f"{GAOLING},五天"), ("第 2 行", "承诺时限", "不是整数")),
        (("实施编码,收费标准（元）", f"{GAOLING},12.505"), ("第 2 行", "收费标准（元）", "不是金额")),
    ],
    ids=["too-few-cells", "unknown-column", "unreadable-value", "fee-three-decimals"],
)
def test_a_bad_cell_is_named_by_row_and_column_and_nothing_can_be_published(
    admin: FlaskClient, data_path: Path, lines: tuple[str, ...], where: tuple[str, str, str]
) -> None:
    url, digest, page = preview(admin, "bad.csv", csv_bytes(*lines))
    body = text(page)
    assert page.status_code == 422 and not digest and "确认发布" not in body
    row, column, what = where
    assert "不能发布" in body
    found = re.search(
        rf"<td class=\"num\">{row}</td><td><strong>{re.escape(column)}</strong></td><td>([^<]*)</td>", body
    )
    assert found and what in found.group(1), body
    resp = admin.post(url + "/publish", data={"csrf_token": csrf(admin), "digest": "0" * 64})
    assert resp.status_code == 302
    assert state(data_path)[0] == 1 and not page_publishes(data_path)


def test_fees_zero_and_free_words_are_free_and_yuan_keep_two_decimals(admin: FlaskClient, data_path: Path) -> None:
    rows = csv_bytes(
        "实施编码,事项名称,办理层级,村级办理方式,收费标准（元）",
        "T-FEE-1,测试事项甲,乡,村代办,0",
        "T-FEE-2,测试事项乙,乡,村代办,免费",
        "T-FEE-3,测试事项丙,乡,村代办,12.50",
    )
    url, digest, page = preview(admin, "fees.csv", rows)
    body = text(page)
    assert page.status_code == 200, body
    fees = re.findall(r"<tr class=\"added\"><td>(测试事项.)</td>.*?<td>([^<]*)</td></tr>", body)
    assert fees == [("测试事项甲", "不收费"), ("测试事项乙", "不收费"), ("测试事项丙", "收费 12.50 元")]
    assert confirm(admin, url, digest).status_code == 302
    items = state(data_path)[1]
    assert items["T-FEE-1"]["fees"] == [] and items["T-FEE-2"]["fees"] == []
    assert items["T-FEE-3"]["fees"] == [{"name": "收费", "standard_fen": 1250, "basis": "", "exemption": ""}]
    assert "收费 12.50 元" in text(admin.get("/catalog?q=测试事项丙"))


def test_a_publish_whose_preview_is_stale_is_refused_with_a_fresh_preview(admin: FlaskClient, data_path: Path) -> None:
    url, digest, _ = preview(admin, "whole.csv", csv_bytes("实施编码,承诺时限", f"{GAOLING},9"), mode="全量替换")
    # meanwhile someone publishes another release (here: from the command line)
    done = cli("catalog", "suspend", "--data", str(data_path), DIBAO, "--reason", "政策调整")
    assert done.exit_code == 0, done.output
    resp = confirm(admin, url, digest)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(url)
    fresh = text(admin.get(url))
    assert "未发布：您预览之后，事项清单已有新版本（现行第 2 版），这次没有发布任何内容" in fresh
    assert "预览基于现行第 2 版清单" in fresh
    new_digest = re.search(r'name="digest" value="([0-9a-f]{64})"', fresh)
    assert new_digest and new_digest.group(1) != digest
    version, items = state(data_path)
    assert version == 2 and items[GAOLING]["promised_days"] == 10  # only the suspension
    assert not page_publishes(data_path)
    [cli_row] = audit_rows(data_path, "catalog.status")
    assert (cli_row["login"], cli_row["target"], cli_row["reason"]) == ("cli", DIBAO, "政策调整")
    assert confirm(admin, url, new_digest.group(1)).status_code == 302  # the fresh preview may be confirmed
    assert state(data_path)[0] == 3


# -- the upload -----------------------------------------------------------------------------------
def test_the_upload_waits_on_the_server_owner_only_never_in_the_cookie(app: Flask, data_path: Path) -> None:
    client = signed_in(app)
    marker = "独一无二的事项名称"
    url, _, _ = preview(client, "new.json", json.dumps({"items": [
        {"task_code": "T-NEW-1", "name": marker, "level": "乡", "village_mode": "村代办"}]}, ensure_ascii=False).encode())  # fmt: skip
    folder = data_path / catalog_uploads.FOLDER
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    stored = sorted(folder.iterdir())
    assert len(stored) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stored)
    upload_id = url.rsplit("/", 1)[1]
    assert len(upload_id) == 24 and {p.stem for p in stored} == {upload_id}
    cookie = client.get_cookie("sanji_session")
    assert cookie is not None and upload_id not in cookie.value and len(cookie.value) < 400
    assert catalog_uploads.sweep(data_path, now_ms=2**50) == 1  # an upload left for a day is swept away
    assert not list(folder.iterdir())


def test_a_file_that_cannot_be_taken_is_refused_in_chinese(
    admin: FlaskClient, data_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resp = upload(admin, "清单.xls", b"\xd0\xcf\x11\xe0")
    assert resp.status_code == 400 and "另存为 .xlsx" in text(resp)
    resp = upload(admin, "empty.csv", b"")
    assert resp.status_code == 400 and "是空的" in text(resp)
    monkeypatch.setattr(catalog_uploads, "MAX_BYTES", 2000)  # (the test client leaks a large body's spool file)
    resp = upload(admin, "big.csv", b"a" * 2001)
    assert resp.status_code == 413 and "文件太大" in text(resp)
    resp = upload(admin, "bigger.csv", b"a" * 80_000)  # refused before anything reads the body
    assert resp.status_code == 413 and "文件太大：事项清单文件不能超过" in text(resp)
    monkeypatch.undo()
    resp = admin.post("/catalog/import", data={"csrf_token": csrf(admin, "/catalog/import"), "mode": "增量"})
    assert resp.status_code == 400 and "请选择要导入的事项清单文件" in text(resp)
    _, digest, page = preview(admin, "broken.json", b"{not json")
    assert page.status_code == 400 and not digest and "不是有效的 UTF-8 JSON 文件" in text(page)
    _, digest, page = preview(admin, "x.xlsx", b"PK not really a zip")
    assert page.status_code == 400 and "不能作为 Excel (.xlsx) 文件读取" in text(page)
    assert state(data_path)[0] == 1 and not list((data_path / catalog_uploads.FOLDER).iterdir())


def test_an_xlsx_file_is_previewed_like_a_csv(admin: FlaskClient, data_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["县政务服务事项实施清单"])  # a title row above the header
    sheet.append(["序号", "实施编码", "承诺办结时限（工作日）"])
    sheet.append([1, GAOLING, 7])
    out = io.BytesIO()
    book.save(out)
    url, digest, page = preview(admin, "清单.xlsx", out.getvalue())
    assert page.status_code == 200 and "7 个工作日" in text(page)
    assert confirm(admin, url, digest).status_code == 302
    assert state(data_path)[1][GAOLING]["promised_days"] == 7


# -- one item -------------------------------------------------------------------------------------
def test_the_item_page_shows_every_field_and_its_actions(admin: FlaskClient) -> None:
    page = text(admin.get(f"/catalog/item/{GAOLING}"))
    for shown in ("高龄津贴申请", GAOLING, "乡级（村受理乡办结）", "承诺 10 个工作日（法定 20）", "不收费", "暂停这个事项",
                  "取消这个事项", "打印办事指南", "修改", "第 1 版"):  # fmt: skip
        assert shown in page, shown
    resp = admin.get("/catalog/item/NO-SUCH")
    assert resp.status_code == 302 and "没有实施编码为 NO-SUCH 的事项" in text(admin.get("/catalog"))


def test_editing_an_item_is_checked_like_an_import_previewed_then_confirmed(
    admin: FlaskClient, data_path: Path
) -> None:
    form_page = text(admin.get(f"/catalog/item/{GAOLING}/edit"))
    form = form_fields(form_page)
    assert form["task_code"] == GAOLING and form["promised_days"] == "10" and form["level"] == "乡"
    assert (form["m-0-name"], form["m-0-form"], form["m-0-copies"], form["m-0-required"]) == (
        "居民身份证",
        "原件",
        "1",
        "必需",
    )
    assert form["fee-0-name"] == "" and "fee-2-name" not in form  # free: no fee rows, two blank ones
    # a promise longer than the legal limit: the import's own check, shown beside the field
    bad = admin.post(f"/catalog/item/{GAOLING}/edit", data={**form, "promised_days": "25"})
    assert bad.status_code == 400
    assert re.search(r'has-error">\s*<label for="f-promised_days".*?承诺时限 25 超过法定时限 20', text(bad), re.S)
    assert state(data_path)[0] == 1
    ok = admin.post(f"/catalog/item/{GAOLING}/edit",
                    data={**form, "promised_days": "6", "fee-0-name": "工本费", "fee-0-yuan": "12.50", "m-4-name": ""})  # fmt: skip
    assert ok.status_code == 302, text(ok)
    url = ok.headers["Location"]
    page = text(admin.get(url))
    assert "修改预览" in page and "这是预览，尚未发布" in page
    assert re.search(r"<td>承诺时限</td><td class=\"old\">10 个工作日</td><td class=\"new\">6 个工作日</td>", page)
    assert re.search(r"<td>收费</td><td class=\"old\">不收费</td><td class=\"new\">工本费 12.50 元</td>", page)
    assert state(data_path)[0] == 1
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert digest
    resp = confirm(admin, url, digest.group(1))
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/catalog/item/{GAOLING}")
    version, items = state(data_path)
    assert version == 2 and items[GAOLING]["promised_days"] == 6
    assert items[GAOLING]["fees"] == [{"name": "工本费", "standard_fen": 1250, "basis": "", "exemption": ""}]
    assert len(items[GAOLING]["materials"]) == 4  # the material whose name was cleared is gone
    [row] = audit_rows(data_path, "catalog.item")
    assert row["target"] == GAOLING and row["details"]["changed"] == 1 and row["details"]["version"] == 2
    again = form_fields(text(admin.get(f"/catalog/item/{GAOLING}/edit")))
    assert (again["fee-0-name"], again["fee-0-yuan"]) == ("工本费", "12.50")
    unchanged = admin.post(f"/catalog/item/{GAOLING}/edit", data=again)
    assert unchanged.status_code == 302 and "没有修改任何内容" in text(admin.get(unchanged.headers["Location"]))


def test_a_new_item_from_the_form_and_a_code_already_taken(admin: FlaskClient, data_path: Path) -> None:
    page = text(admin.get("/catalog/new"))
    base = {"csrf_token": token(page), "name": "新事项", "item_type": "20", "level": "乡", "village_mode": "村代办",
            "case_type": "即办件", "legal_days": "0", "promised_days": "0", "visits": "1", "online": "否",
            "allow_pledge": "否", "fees": "免费", "materials": "居民身份证|原件|1|必需"}  # fmt: skip
    taken = admin.post("/catalog/new", data={**base, "task_code": GAOLING})
    assert taken.status_code == 400 and f"实施编码 {GAOLING} 已在事项清单中" in text(taken)
    missing = admin.post("/catalog/new", data={**base, "task_code": ""})
    assert missing.status_code == 400 and "必填" in text(missing)
    nameless_fee = admin.post("/catalog/new", data={**base, "task_code": "T-NEW-9", "fee-0-yuan": "5"})
    assert nameless_fee.status_code == 400
    assert re.search(r'<div class="error" role="alert">第 1 项收费 name: 必填</div>', text(nameless_fee))
    bad_amount = admin.post("/catalog/new", data={**base, "task_code": "T-NEW-9", "fee-0-name": "工本费",
                                                  "fee-0-yuan": "12.505"})  # fmt: skip
    assert bad_amount.status_code == 400 and "不是金额" in text(bad_amount)
    ok = admin.post("/catalog/new", data={**base, "task_code": "T-NEW-9"})
    assert ok.status_code == 302
    body = text(admin.get(ok.headers["Location"]))
    assert "新增的事项（1）" in body and "新事项" in body and "不收费" in body
    assert state(data_path)[0] == 1


def test_suspend_cancel_and_resume_need_a_reason_and_are_audited(admin: FlaskClient, data_path: Path) -> None:
    where = f"/catalog/item/{GAOLING}/state"
    resp = admin.post(where, data={"csrf_token": csrf(admin), "state": "暂停", "reason": ""})
    assert resp.status_code == 302 and "暂停事项须说明原因" in text(admin.get(resp.headers["Location"]))
    assert state(data_path)[0] == 1
    admin.post(where, data={"csrf_token": csrf(admin), "state": "暂停", "reason": "政策调整，暂停受理"})
    page = text(admin.get(f"/catalog/item/{GAOLING}"))
    assert "已暂停这个事项，发布为事项清单第 2 版" in page and "暂停原因：政策调整，暂停受理" in page
    assert "恢复在用" in page and ">暂停这个事项</button>" not in page
    admin.post(where, data={"csrf_token": csrf(admin), "state": "取消", "reason": "省级清单已取消该事项"})
    admin.post(where, data={"csrf_token": csrf(admin), "state": "在用", "reason": ""})
    version, items = state(data_path)
    assert version == 4 and items[GAOLING]["state"] == "在用"
    rows = audit_rows(data_path, "catalog.status")
    assert [(r["login"], r["details"]["state"], r["reason"]) for r in rows] == [
        ("admin1", "暂停", "政策调整，暂停受理"), ("admin1", "取消", "省级清单已取消该事项"), ("admin1", "在用", "")
    ]  # fmt: skip
    assert "在用 48 项" in text(admin.get("/catalog"))


# -- releases, diffs, 办事指南 -----------------------------------------------------------------------
def test_the_release_history_and_the_diff_of_any_two_releases(admin: FlaskClient, data_path: Path) -> None:
    for days in ("9", "8"):
        url, digest, _ = preview(admin, f"d{days}.csv", csv_bytes("实施编码,承诺时限", f"{GAOLING},{days}"))
        assert confirm(admin, url, digest).status_code == 302
    admin.post(f"/catalog/item/{DIBAO}/state", data={"csrf_token": csrf(admin), "state": "暂停", "reason": "核查"})
    page = text(admin.get("/catalog/releases"))
    for v in (1, 2, 3, 4):
        assert f"第 {v} 版" in page
    assert "周县长" in page and "命令行" in page and "暂停 " + DIBAO in page and "核查" in page
    diff = text(admin.get("/catalog/diff?a=1&b=4"))
    assert "事项清单第 1 版 → 第 4 版" in diff and "变更 2 项" in diff
    assert re.search(r"<td>承诺时限</td><td class=\"old\">10 个工作日</td><td class=\"new\">8 个工作日</td>", diff)
    assert re.search(r"<td>状态</td><td class=\"old\">在用</td><td class=\"new\">暂停</td>", diff)
    latest = text(admin.get("/catalog/diff"))  # the two latest by default
    assert "第 3 版 → 第 4 版" in latest and "变更 1 项" in latest
    resp = admin.get("/catalog/diff?a=1&b=99")
    assert resp.status_code == 302 and "没有第 99 版事项清单" in text(admin.get(resp.headers["Location"]))


def test_the_printable_guide_of_an_item(admin: FlaskClient) -> None:
    page = text(admin.get(f"/catalog/item/{GAOLING}/guide"))
    for shown in ("办事指南", "高龄津贴申请", GAOLING, "乡级（村受理乡办结）", "设定依据", "受理条件", "居民身份证",
                  "法定办结时限：20 个工作日", "承诺办结时限：10 个工作日", "不收费", "第 1 版清单", "print.css"):  # fmt: skip
        assert shown in page, shown
    assert "高龄津贴申请" in text(admin.get(f"/catalog/item/{GAOLING}/guide?version=1"))
    assert admin.get(f"/catalog/item/{GAOLING}/guide?version=7").status_code == 302


def test_an_inspector_reads_every_catalog_page_and_changes_nothing(app: Flask, data_path: Path) -> None:
    inspector = signed_in(app, "jiancha")
    for path in ("/catalog", f"/catalog/item/{GAOLING}", f"/catalog/item/{GAOLING}/guide", "/catalog/releases",
                 "/catalog/diff?a=1&b=1"):  # fmt: skip
        assert inspector.get(path).status_code == 200, path
    page = text(inspector.get(f"/catalog/item/{GAOLING}"))
    assert "暂停这个事项" not in page and "导入事项清单" not in text(inspector.get("/catalog"))
    t = csrf(inspector)
    assert inspector.get("/catalog/import").status_code == 403
    assert (
        inspector.post(
            f"/catalog/item/{GAOLING}/state", data={"csrf_token": t, "state": "暂停", "reason": "x"}
        ).status_code
        == 403
    )
    assert inspector.post("/catalog/import", data={"csrf_token": t, "mode": "增量"}).status_code == 403
    assert inspector.post(f"/catalog/item/{GAOLING}/edit", data={"csrf_token": t}).status_code == 403
    assert state(data_path)[0] == 1


def test_the_command_line_import_is_audited_as_cli(data_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_bytes(csv_bytes("实施编码,承诺时限", f"{GAOLING},9"))
    done = cli("catalog", "import", "--data", str(data_path), str(f))
    assert done.exit_code == 0, done.output
    rows = audit_rows(data_path, "catalog.publish")
    assert [(r["login"], r["name"], r["details"]["version"], r["details"]["added"], r["details"]["changed"])
            for r in rows] == [("cli", "命令行", 1, N_ITEMS, 0), ("cli", "命令行", 2, 0, 1)]  # fmt: skip
