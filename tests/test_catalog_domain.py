"""Catalog items: the model, JSON/CSV/XLSX import with row-level errors, releases, diffs (sanji_domain.catalog)."""

from __future__ import annotations

import ast
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from county_server import catalog as county_catalog
from sanji_domain import catalog, catalog_history
from sanji_domain.errors import NotFoundError, ValidationError
from sync_protocol import canonical

from .network import Network, build_network

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sanji_domain" / "data" / "demo_catalog.json"
TYPICAL = ("城乡居民养老保险参保登记 城乡居民医保参保登记 高龄津贴申请 残疾人证申领 农村低保申请 特困人员救助供养申请 "
           "老年优待证办理 生育登记 农村宅基地建房申请 法律援助申请 临时救助申请 退役军人优待证申领").split()  # fmt: skip
COLUMNS = ["task_code", "catalog_code", "name", "item_type", "level", "village_mode", "case_type", "legal_days",
           "promised_days", "visits", "online", "allow_pledge", "materials", "fees", "phone"]  # fmt: skip


def demo_items() -> list[dict[str, Any]]:
    return json.loads(DEMO.read_text(encoding="utf-8"))["items"]


def write_json(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"items": items}, ensure_ascii=False), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[Any]], encoding: str = "utf-8-sig") -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]], title: str | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def cells(item: dict[str, Any], columns: list[str], *, typed: bool) -> list[Any]:
    """One table row: lists as JSON cells; numbers and booleans as text (CSV) or typed (XLSX)."""
    out = []
    for c in columns:
        v = item.get(c)
        if isinstance(v, list):
            v = json.dumps(v, ensure_ascii=False)
        elif not typed and isinstance(v, bool):
            v = "是" if v else "否"
        out.append("" if v is None else v)
    return out


def problems(info: pytest.ExceptionInfo[ValidationError]) -> set[tuple[int, str]]:
    assert isinstance(info.value, catalog.CatalogFileError)
    return {(p.row, p.column) for p in info.value.problems}


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    n = build_network(tmp_path)
    yield n
    n.close()


# -- the same items from every file format --------------------------------------------------------
def test_json_csv_and_xlsx_import_give_identical_bodies(tmp_path: Path) -> None:
    items = demo_items()[:6]
    from_json = catalog.read_catalog(write_json(tmp_path / "c.json", items))
    rows = [cells(i, COLUMNS, typed=False) for i in items]
    from_csv = catalog.read_catalog(write_csv(tmp_path / "c.csv", COLUMNS, rows))  # UTF-8 with BOM
    assert (tmp_path / "c.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    plain = catalog.read_catalog(write_csv(tmp_path / "plain.csv", COLUMNS, rows, encoding="utf-8"))
    # Excel on Chinese Windows saves CSV as GBK
    gbk = catalog.read_catalog(write_csv(tmp_path / "gbk.csv", COLUMNS, rows, encoding="gb18030"))
    chinese = [catalog.LABELS[c] for c in COLUMNS]  # 实施编码, 事项名称, 承诺时限 … as headers
    typed = [cells(i, COLUMNS, typed=True) for i in items]
    from_xlsx = catalog.read_catalog(write_xlsx(tmp_path / "c.xlsx", chinese, typed, title="示范县事项实施清单"))
    # the table files leave out the long texts; compare the columns they carry
    subset = [{k: v for k, v in i.items() if k in COLUMNS or k in ("state", "case_type")} for i in from_json]
    for other in (from_csv, plain, gbk, from_xlsx):
        assert [{k: v for k, v in i.items() if k in COLUMNS or k in ("state", "case_type")} for i in other] == subset
    assert from_csv == plain == gbk == from_xlsx
    full = sorted(catalog._PARSERS)
    assert all(sorted(i) == full for i in from_json + from_xlsx)  # complete, uniform bodies


def test_full_bodies_match_across_formats_including_long_texts(tmp_path: Path) -> None:
    items = demo_items()[10:14]
    columns = [f for f in catalog.ITEM_FIELDS if f not in ("version", "state", "state_reason")]
    from_json = catalog.read_catalog(write_json(tmp_path / "c.json", items))
    from_csv = catalog.read_catalog(
        write_csv(tmp_path / "c.csv", columns, [cells(i, columns, typed=False) for i in items])
    )
    from_xlsx = catalog.read_catalog(
        write_xlsx(tmp_path / "c.xlsx", columns, [cells(i, columns, typed=True) for i in items])
    )
    assert from_json == from_csv == from_xlsx
    assert all(canonical.decode(canonical.encode({**i, "state": "在用", "version": 1})) for i in from_json)


def test_short_forms_chinese_values_and_defaults(tmp_path: Path) -> None:
    header = ["序号", "实施编码*", "事项名称", "事项类型", "办理层级", "村级办理方式", "法定时限（工作日）",
              "承诺时限（工作日）", "是否网办", "容缺受理", "申请材料", "收费"]  # fmt: skip
    row = [1, "T1", "居民身份证换领", "07 行政确认", "乡镇", "村代办", "60", "20.0", "否", "是",
           "居民身份证|原件|1|必需;户口簿|复印件|2|非必需|户主页及本人页\n照片|电子", "工本费|2000|发改价格〔2003〕2322号|低保对象免收"]  # fmt: skip
    (item,) = catalog.read_catalog(write_csv(tmp_path / "c.csv", header, [row]))
    assert item == {
        "task_code": "T1", "catalog_code": "", "name": "居民身份证换领", "item_type": "07", "legal_basis": "",
        "department": "", "level": "乡", "village_mode": "村代办", "conditions": "", "case_type": "承诺件",
        "legal_days": 60, "promised_days": 20, "visits": 1, "online": False, "allow_pledge": True,
        "materials": [
            {"name": "居民身份证", "form": "原件", "copies": 1, "required": True, "standard": "", "notes": ""},
            {"name": "户口簿", "form": "复印件", "copies": 2, "required": False, "standard": "户主页及本人页", "notes": ""},
            {"name": "照片", "form": "电子", "copies": 1, "required": True, "standard": "", "notes": ""},
        ],
        "fees": [{"name": "工本费", "standard_fen": 2000, "basis": "发改价格〔2003〕2322号", "exemption": "低保对象免收"}],
        "phone": "", "supervise_phone": "", "address": "", "hours": "", "state": None, "state_reason": "",
    }  # fmt: skip
    minimal = catalog.check_items([{"task_code": " Ｔ2 ", "name": "生育登记"}], "x.json")[0]
    assert minimal["task_code"] == "Ｔ2" and minimal["case_type"] == "即办件" and minimal["item_type"] == "20"
    assert minimal["level"] == "县" and minimal["village_mode"] is None and minimal["materials"] == []


# -- row-level errors, and an atomic release ------------------------------------------------------
BAD_HEADER = ["实施编码", "事项名称", "事项类型", "法定时限", "承诺时限", "收费"]
BAD_ROWS = [
    ["A1", "高龄津贴申请", "05", 20, 10, ""],
    ["A2", "农村低保申请", "05", 30, 45, ""],  # row 3: promised over legal
    ["A3", "生育登记", "20", 0, 0, ""],
    ["A4", "临时救助申请", "99", 20, 10, ""],  # row 5: unknown item type
    ["A5", "法律援助申请", "行政给付", 7, 3, ""],
    ["A6", "居住证申领", "07", 15, 7, "工本费|12.5"],  # row 7: money not in whole 分
    ["A7", "老年优待证办理", "20 公共服务", 10, 5, "[]"],
]
BAD_EXPECTED = {(3, "承诺时限"), (5, "事项类型"), (7, "收费")}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_three_bad_rows_are_named_and_nothing_is_written(net: Network, tmp_path: Path, fmt: str) -> None:
    if fmt == "csv":
        path = write_csv(tmp_path / "bad.csv", BAD_HEADER, BAD_ROWS)
    else:
        path = write_xlsx(tmp_path / "bad.xlsx", BAD_HEADER, BAD_ROWS)
    with pytest.raises(ValidationError) as info:
        catalog.read_catalog(path)
    assert problems(info) == BAD_EXPECTED
    assert {p.field for p in info.value.problems} == {"promised_days", "item_type", "fees"}
    assert "3 处错误，未导入任何事项" in info.value.message and "第 7 行 收费" in info.value.message
    before = net.county.store.vector()["county/*"]
    with pytest.raises(ValidationError):
        county_catalog.import_release(net.county.store, net.county.key, path, now_ms=5)
    assert net.county.store.vector()["county/*"] == before  # the feed head is unchanged: nothing imported
    assert county_catalog.releases(net.county.store) == []


def test_bad_rows_are_counted_as_the_spreadsheet_shows_them(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "t.xlsx", BAD_HEADER, BAD_ROWS, title="示范县事项实施清单（2025 年版）")
    with pytest.raises(ValidationError) as info:
        catalog.read_catalog(path)
    assert problems(info) == {(r + 1, c) for r, c in BAD_EXPECTED}  # the title row moves every row down


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"legal_days": 2.5}, "legal_days", "不是整数"),
        ({"visits": -1}, "visits", "负数"),
        ({"online": "也许"}, "online", "是/否"),
        ({"name": ""}, "name", "必填"),
        ({"task_code": "X" * 37}, "task_code", "36"),
        ({"case_type": "即办件", "promised_days": 3}, "promised_days", "即办件"),
        ({"case_type": "承诺件", "promised_days": 0}, "promised_days", "承诺件"),
        ({"level": "村", "village_mode": "村代办"}, "village_mode", "村受理村办结"),
        ({"level": "县", "village_mode": "村受理乡办结"}, "village_mode", "县级"),
        ({"level": "省"}, "level", "县/乡/村"),
        ({"item_type": "01 行政给付"}, "item_type", "行政许可"),
        ({"materials": [{"name": "身份证", "form": "扫描件"}]}, "materials", "扫描件"),
        ({"materials": [{"name": "身份证", "颜色": "红"}]}, "materials", "未知的栏目"),
        ({"materials": "[{"}, "materials", "JSON"),
        ({"fees": [{"name": "工本费", "standard_fen": 1.5}]}, "fees", "分"),
        ({"state": "作废"}, "state", "在用/暂停/取消"),
        ({"promise_days": 3}, "", "未知的列"),
    ],
)
def test_each_kind_of_bad_value_is_one_problem(item: dict[str, Any], field: str, words: str) -> None:
    good = {"task_code": "T1", "name": "高龄津贴申请", "legal_days": 20, "promised_days": 10}
    with pytest.raises(ValidationError) as info:
        catalog.check_items([{**good, **item}], "x.json")
    (problem,) = info.value.problems
    assert problem.row == 1 and problem.field == field and words in problem.message


def test_duplicates_unknown_columns_and_unreadable_files(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", ["实施编码", "事项名称", "备 注"], [["T1", "甲", ""], ["T1", "乙", ""]])
    with pytest.raises(ValidationError) as info:
        catalog.read_catalog(path)
    assert problems(info) == {(1, "备 注"), (3, "实施编码")}  # an unknown column once, at the header
    assert "T1 与第 2 行重复" in info.value.message
    with pytest.raises(ValidationError, match="找不到表头"):
        catalog.read_catalog(write_csv(tmp_path / "h.csv", ["编号", "名称"], [["T1", "甲"]]))
    with pytest.raises(ValidationError, match="没有事项"):
        catalog.read_catalog(write_json(tmp_path / "e.json", []))
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ValidationError, match=r"\.xlsx"):
        catalog.read_catalog(tmp_path / "old.xls")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="Excel"):
        catalog.read_catalog(tmp_path / "broken.xlsx")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValidationError, match="JSON"):
        catalog.read_catalog(tmp_path / "broken.json")


# -- releases ---------------------------------------------------------------------------------------
def appended(net: Network, before: int) -> list[tuple[str, str]]:
    return [
        (kind, key)
        for kind, key in net.county.store.conn.execute(
            "SELECT kind, key FROM entries WHERE feed = 'county/*' AND seq > ? ORDER BY seq", (before,)
        )
    ]


def head(net: Network) -> int:
    return net.county.store.vector()["county/*"][0]


def test_release_versions_changes_cancellations_and_states(net: Network, tmp_path: Path) -> None:
    store, key = net.county.store, net.county.key
    items = demo_items()[:5]
    codes = [i["task_code"] for i in items]
    path = write_json(tmp_path / "c.json", items)
    first = county_catalog.import_release(store, key, path, now_ms=1_000)
    assert first["version"] == 1 and first["count"] == 5 and first["changes"]["added"] == sorted(codes)

    seq = head(net)  # unchanged file: no release, nothing written
    again = county_catalog.import_release(store, key, path, now_ms=2_000)
    assert again == {
        "version": None,
        "current": 1,
        "count": 5,
        "changes": {"added": [], "changed": [], "cancelled": []},
    }
    assert head(net) == seq

    old_hours = items[1]["hours"]
    items[1] = {**items[1], "hours": "工作日 9:00-17:00"}
    second = county_catalog.import_release(store, key, write_json(path, items), now_ms=3_000)
    assert second["version"] == 2 and second["changes"]["changed"] == [codes[1]]
    assert appended(net, seq) == [("catalog.item", codes[1]), ("catalog.release", "2")]  # only that item's entry
    rows = county_catalog.rows(store)
    release2 = catalog_history.releases(rows)[1]
    assert dict(map(tuple, release2["items"])) == {c: (2 if c == codes[1] else 1) for c in codes}

    seq = head(net)  # 增量 (the default): the item the file leaves out stays as it is
    assert county_catalog.import_release(store, key, write_json(path, items[:4]), now_ms=3_500)["version"] is None
    assert head(net) == seq
    third = county_catalog.import_release(store, key, write_json(path, items[:4]), now_ms=4_000, mode="全量替换")
    assert third["version"] == 3 and third["changes"]["cancelled"] == [codes[4]] and third["count"] == 5
    assert appended(net, seq) == [("catalog.item", codes[4]), ("catalog.release", "3")]
    current = catalog_history.current_items(county_catalog.rows(store))
    assert current[codes[4]]["state"] == "取消" and current[codes[4]]["version"] == 3

    d = county_catalog.diff_releases(store, 1, 3)
    assert d["added"] == [] and d["removed"] == []
    assert set(d["changed"]) == {codes[1], codes[4]}
    assert d["changed"][codes[1]] == {"hours": [old_hours, "工作日 9:00-17:00"]}
    assert d["changed"][codes[4]]["state"] == ["在用", "取消"]

    suspended = county_catalog.change_state(store, key, codes[0], "暂停", "政策调整", now_ms=5_000)
    assert suspended["version"] == 4 and suspended["reason"] == "政策调整"
    assert suspended["changes"] == {"added": [], "changed": [codes[0]], "cancelled": []}
    seq = head(net)  # the file gives no state: the suspension survives a re-import
    assert county_catalog.import_release(store, key, path, now_ms=6_000)["version"] is None
    assert head(net) == seq
    with pytest.raises(ValidationError, match="已是暂停"):
        county_catalog.change_state(store, key, codes[0], "暂停", "again", now_ms=6_500)
    resumed = county_catalog.change_state(store, key, codes[0], "在用", "", now_ms=7_000)
    assert resumed["version"] == 5
    assert catalog_history.current_items(county_catalog.rows(store))[codes[0]]["state"] == "在用"
    cancelled = county_catalog.change_state(store, key, codes[2], "取消", "省级清单已取消", now_ms=8_000)
    assert cancelled["changes"]["cancelled"] == [codes[2]]
    with pytest.raises(NotFoundError):
        county_catalog.change_state(store, key, "NOPE", "暂停", "x", now_ms=9_000)
    with pytest.raises(ValidationError, match="原因"):
        county_catalog.change_state(store, key, codes[1], "暂停", " ", now_ms=9_000)
    assert [r["version"] for r in county_catalog.releases(store)] == [1, 2, 3, 4, 5, 6]
    assert catalog_history.release_items(county_catalog.rows(store), 4)[codes[0]]["state_reason"] == "政策调整"
    with pytest.raises(NotFoundError, match="第 9 版"):
        county_catalog.diff_releases(store, 1, 9)


def test_plan_release_is_pure_and_complete() -> None:
    incoming = catalog.check_items(demo_items()[:3], "demo.json")
    plan = catalog.plan_release({}, incoming, 1, released_ms=42, source="demo.json")
    assert plan and plan.version == 1 and len(plan.items) == 3
    assert all(i["version"] == 1 and i["state"] == "在用" for i in plan.items)
    assert plan.release is not None and plan.release["released_ms"] == 42 and plan.release["count"] == 3
    records = plan.records(7)
    assert [r.kind for r in records] == ["catalog.item"] * 3 + ["catalog.release"]
    assert all(canonical.encode(r.body) for r in records)
    current = {i["task_code"]: i for i in plan.items}
    empty = catalog.plan_release(current, incoming, 2)
    assert not empty and empty.records(1) == [] and empty.changes["added"] == []
    explicit = [{**incoming[0], "state": "取消"}, *incoming[1:]]
    assert catalog.plan_release(current, explicit, 2).changes["cancelled"] == [incoming[0]["task_code"]]
    with pytest.raises(ValidationError, match="重复"):
        catalog.plan_release({}, [incoming[0], incoming[0]], 1)


def test_diff_is_field_level() -> None:
    a = {"T1": {"name": "甲", "promised_days": 10, "version": 1}, "T2": {"name": "乙", "version": 1}}
    b = {"T1": {"name": "甲", "promised_days": 5, "version": 2}, "T3": {"name": "丙", "version": 2}}
    assert catalog_history.diff(a, b) == {
        "added": ["T3"],
        "removed": ["T2"],
        "changed": {"T1": {"promised_days": [10, 5]}},
    }
    assert catalog_history.diff(a, a) == {"added": [], "removed": [], "changed": {}}


# -- the demo catalog -------------------------------------------------------------------------------
def test_demo_catalog_validates_and_has_the_typical_village_items() -> None:
    items = catalog.read_catalog(DEMO)
    names = {i["name"] for i in items}
    assert len(items) >= 30 and set(TYPICAL) <= names
    assert sum(i["case_type"] == "即办件" for i in items) >= 3
    assert 3 <= sum(i["allow_pledge"] for i in items) < len(items) // 2
    assert {i["level"] for i in items} == {"县", "乡", "村"}
    assert {i["village_mode"] for i in items} == set(catalog.VILLAGE_MODES)
    forwarded = [i for i in items if i["level"] == "县" and "转报" in i["address"]]
    assert len(forwarded) >= 3  # county items a township receives and forwards (转报)
    assert sum(not i["fees"] for i in items) > len(items) * 0.8  # fees mostly 0
    raw = json.loads(DEMO.read_text(encoding="utf-8"))["items"]
    assert all("version" not in i and "state" not in i for i in raw)  # set by the release


def test_the_domain_module_imports_no_node_package() -> None:
    tree = ast.parse((ROOT / "sanji_domain" / "catalog.py").read_text(encoding="utf-8"))
    roots = {
        (n.module or "").split(".")[0] if isinstance(n, ast.ImportFrom) else a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    assert not roots & {"county_server", "township_node", "village_agent", "sanji_node", "flask", "sqlite3"}


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_imports_lists_diffs_and_suspends(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from county_server.cli import main

    runner = CliRunner()
    data = str(tmp_path / "county")

    def run(*args: str) -> str:
        result = runner.invoke(main, [*args, "--data", data])
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--county", "430321", "--name", "示范县")
    items = demo_items()[:4]
    path = write_json(tmp_path / "c.json", items)
    assert "已发布事项清单第 1 版，共 4 项" in run("catalog", "import", str(path))
    assert "无变化" in run("catalog", "import", str(path))
    bad = write_csv(tmp_path / "bad.csv", BAD_HEADER, BAD_ROWS)
    result = runner.invoke(main, ["catalog", "import", str(bad), "--data", data, "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["error"]["code"] == "invalid_input"
    code = items[0]["task_code"]
    assert runner.invoke(main, ["catalog", "suspend", code, "--data", data]).exit_code == 2  # --reason is required
    assert "已暂停事项" in run("catalog", "suspend", code, "--reason", "政策调整")
    assert "已恢复事项" in run("catalog", "resume", code)
    assert "已取消事项" in run("catalog", "cancel", items[1]["task_code"], "--reason", "合并")
    listing = run("catalog", "releases")
    assert "暂停" in listing and "政策调整" in listing and listing.count("\n") == 5
    assert "c.json（增量）" in listing  # an import's release names its mode
    assert [r["version"] for r in json.loads(run("catalog", "releases", "--json"))] == [1, 2, 3, 4]
    text = run("catalog", "diff", "1", "4")
    assert "变更 1 项" in text and "状态: 在用 → 取消" in text
    assert json.loads(run("catalog", "diff", "1", "2", "--json"))["changed"][code]["state"] == ["在用", "暂停"]
