"""Catalog import with a preview (sanji_domain.catalog_import, county_server.catalog): 增量 and 全量替换,
every bad row and cell named, and publish == preview (nothing published that the preview did not show)."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from county_server import catalog as county_catalog
from sanji_domain import catalog, catalog_history
from sanji_domain.catalog_import import INCREMENTAL, REPLACE, ImportPreview, StalePreviewError, preview_import
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Store

from .e2e.cluster import Cluster
from .network import Network, build_network

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sanji_domain" / "data" / "demo_catalog.json"
DEMO_ITEMS: list[dict[str, Any]] = json.loads(DEMO.read_text(encoding="utf-8"))["items"]
TOWNSHIP_ITEM = next(i for i in DEMO_ITEMS if i["name"] == "就业登记")  # 办理层级 乡, 村代办, 即办件


def csv_bytes(header: list[str], *rows: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode("utf-8-sig")


def ragged_csv(*lines: str) -> bytes:
    """CSV written by hand, so a line may have fewer cells than the header (csv.writer never does that)."""
    return ("\n".join(lines) + "\n").encode("utf-8")


def xlsx_bytes(header: list[str], *rows: list[Any]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def json_bytes(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"items": items}, ensure_ascii=False).encode("utf-8")


class County:
    """The county's store and key with the demo catalog published (release 1, 48 items)."""

    def __init__(self, store: Store, key: SigningKey) -> None:
        self.store, self.key = store, key
        self.now = 1_000
        self.publish(json_bytes(DEMO_ITEMS), "demo.json")

    def preview(self, data: bytes, name: str, mode: str = INCREMENTAL) -> ImportPreview:
        return county_catalog.preview_import(self.store, data, name, mode=mode)

    def publish(self, data: bytes, name: str, mode: str = INCREMENTAL) -> dict[str, Any]:
        self.now += 1_000
        return county_catalog.publish_import(self.store, self.key, self.preview(data, name, mode), now_ms=self.now)

    def current(self) -> dict[str, dict[str, Any]]:
        return catalog_history.current_items(county_catalog.rows(self.store))

    def head(self) -> int:
        return self.store.vector()["county/*"][0]


@pytest.fixture
def county(tmp_path: Path) -> Iterator[County]:
    net: Network = build_network(tmp_path / "net", townships=1, villages_per_township=0)
    yield County(net.county.store, net.county.key)
    net.close()


def named(preview: ImportPreview) -> set[tuple[int, str]]:
    return {(p.row, p.column) for p in preview.problems}


# -- every bad input names its row and column; nothing is published ------------------------------
HEADER = ["实施编码", "事项名称", "承诺时限", "办理层级"]
CODE = TOWNSHIP_ITEM["task_code"]


@pytest.mark.parametrize(
    ("name", "data", "where", "words"),
    [
        pytest.param(  # the report: a CSV row missing its last cell silently made a 乡 item 县
            "short.csv", ragged_csv(",".join(HEADER), f"{CODE},就业登记,0,乡", "T-NEW,新事项,0"),
            {(3, "办理层级")}, "缺少这一格", id="csv-row-with-too-few-cells",
        ),
        pytest.param(
            "unknown.csv", csv_bytes([*HEADER, "颜色"], [CODE, "就业登记", 0, "乡", "红"]),
            {(1, "颜色")}, "未知的列", id="csv-unknown-column",
        ),
        pytest.param(
            "unknown.xlsx", xlsx_bytes([*HEADER, "颜色"], [CODE, "就业登记", 0, "乡", "红"]),
            {(1, "颜色")}, "未知的列", id="xlsx-unknown-column",
        ),
        pytest.param(
            "unknown.json", json_bytes([{"task_code": CODE, "name": "就业登记", "promise_days": 3}]),
            {(1, "promise_days")}, "未知的列", id="json-unknown-key",
        ),
        pytest.param(
            "days.csv", csv_bytes(HEADER, [CODE, "就业登记", "三天", "乡"]),
            {(2, "承诺时限")}, "不是整数", id="csv-unreadable-number",
        ),
        pytest.param(
            "days.xlsx", xlsx_bytes(HEADER, [CODE, "就业登记", 0, "省"]),
            {(2, "办理层级")}, "县/乡/村", id="xlsx-unreadable-level",
        ),
        pytest.param(
            "fee.csv", csv_bytes([*HEADER, "收费标准（元）"], [CODE, "就业登记", 0, "乡", "12.345"]),
            {(2, "收费标准（元）")}, "最多两位小数", id="csv-fee-with-three-decimals",
        ),
        pytest.param(
            "fee.xlsx", xlsx_bytes([*HEADER, "收费标准（元）"], [CODE, "就业登记", 0, "乡", "二十元"]),
            {(2, "收费标准（元）")}, "不是金额", id="xlsx-fee-not-an-amount",
        ),
        pytest.param(
            "fee.json", json_bytes([{"task_code": CODE, "name": "就业登记", "level": "乡", "village_mode": "村代办",
                                     "fees": "20"}]),
            {(1, "fees")}, "没有收费名称", id="json-fee-without-a-name",
        ),
        pytest.param(
            "fee2.csv", csv_bytes([*HEADER, "收费"], [CODE, "就业登记", 0, "乡", "工本费|12.5"]),
            {(2, "收费")}, "12.50元", id="csv-fee-in-fen-with-decimals",
        ),
    ],
)  # fmt: skip
def test_each_bad_input_names_row_and_column_and_publishes_nothing(
    county: County, name: str, data: bytes, where: set[tuple[int, str]], words: str
) -> None:
    before, head = county.current(), county.head()
    preview = county.preview(data, name)
    assert named(preview) == where
    assert all(words in p.message for p in preview.problems), preview.problems
    assert not preview.ok and preview.written == [] and preview.as_json()["version"] is None
    with pytest.raises(catalog.CatalogFileError) as info:
        county_catalog.publish_import(county.store, county.key, preview, now_ms=9_000)
    (row, column), *_ = sorted(where)
    assert f"第 {row} 行 {column}" in info.value.message and "未导入任何事项" in info.value.message
    assert county.head() == head and county.current() == before  # nothing published


def test_a_short_row_is_never_a_default_but_a_blank_cell_is_shown(county: County) -> None:
    short = county.preview(ragged_csv(",".join(HEADER), f"{CODE},就业登记,0"), "short.csv")
    assert named(short) == {(2, "办理层级")}
    assert "补齐这一格" in short.problems[0].message  # what to write instead
    # a cell that is there and blank takes the default (县): the preview shows the change, old → new
    blank = county.preview(csv_bytes(HEADER, [CODE, "就业登记", 0, ""]), "blank.csv")
    assert blank.ok and [c.task_code for c in blank.changed] == [CODE]
    assert blank.changed[0].fields["level"] == ["乡", "县"]


@pytest.mark.parametrize("free", ["0", "0.00", "免费", "不收费", ""])
def test_fees_in_yuan_and_free_words(county: County, free: str) -> None:
    header = ["实施编码", "事项名称", "收费标准（元）"]
    preview = county.preview(csv_bytes(header, ["F1", "甲", free], ["F2", "乙", "20.5"], ["F3", "丙", "12"]), "f.csv")
    assert preview.ok, preview.problems
    fees = {b["task_code"]: b["fees"] for b in preview.written}
    assert fees["F1"] == []  # 不收费, not a fee named "0"
    assert fees["F2"] == [{"name": "收费", "standard_fen": 2050, "basis": "", "exemption": ""}]
    assert fees["F3"][0]["standard_fen"] == 1200
    short = catalog.check_items([{"task_code": "F4", "name": "丁", "fees": "工本费|12.50元;证书费|300"}], "x.json")
    assert [f["standard_fen"] for f in short[0]["fees"]] == [1250, 300]  # 元 when written; 分 otherwise
    assert catalog.check_items([{"task_code": "F5", "name": "戊", "fees": free or 0}], "x.json")[0]["fees"] == []


# -- modes -----------------------------------------------------------------------------------------
def test_a_one_row_file_in_incremental_mode_changes_nothing_else(county: County) -> None:
    before = county.current()
    data = csv_bytes(["实施编码", "事项名称", "办理层级", "村级办理方式", "咨询电话"],
                     [CODE, "就业登记", "乡", "村代办", "0731-5550000"])  # fmt: skip
    preview = county.preview(data, "one.csv")
    assert (len(preview.added), len(preview.changed), len(preview.cancelled)) == (0, 1, 0)
    assert preview.unchanged == len(DEMO_ITEMS) - 1
    release = county_catalog.publish_import(county.store, county.key, preview, now_ms=5_000)
    assert release["changes"] == {"added": [], "changed": [CODE], "cancelled": []}
    after = county.current()
    assert {c: b for c, b in after.items() if c != CODE} == {c: b for c, b in before.items() if c != CODE}
    assert all(b["state"] == "在用" for b in after.values())


def test_replace_mode_previews_the_cancellations_and_publishes_nothing_until_confirmed(county: County) -> None:
    head = county.head()
    data = json_bytes([TOWNSHIP_ITEM])
    preview = county.preview(data, "one.json", REPLACE)
    assert len(preview.cancelled) == len(DEMO_ITEMS) - 1 and preview.as_json()["counts"]["cancelled"] == 47
    assert all(c.fields["state"] == ["在用", "取消"] for c in preview.cancelled)
    assert county.head() == head  # a preview writes nothing
    with pytest.raises(StalePreviewError, match="未发布任何内容"):  # a confirmation of another preview
        county_catalog.publish_import(county.store, county.key, preview, now_ms=5_000, digest="0" * 64)
    assert county.head() == head
    # the same file in 增量 mode is a different preview: its digest confirms nothing else
    assert county.preview(data, "one.json").digest != preview.digest
    release = county_catalog.publish_import(county.store, county.key, preview, now_ms=5_000, digest=preview.digest)
    assert len(release["changes"]["cancelled"]) == 47
    assert sum(b["state"] == "取消" for b in county.current().values()) == 47


def test_a_preview_made_before_another_release_is_refused(county: County) -> None:
    preview = county.preview(json_bytes([{**TOWNSHIP_ITEM, "hours": "周一至周五"}]), "h.json")
    other = DEMO_ITEMS[0]["task_code"]
    county_catalog.change_state(county.store, county.key, other, "暂停", "政策调整", now_ms=4_000)
    head = county.head()
    with pytest.raises(StalePreviewError, match="预览之后已变更") as info:
        county_catalog.publish_import(county.store, county.key, preview, now_ms=5_000)
    assert info.value.http_status == 409 and "重新预览" in (info.value.hint or "")
    assert county.head() == head
    again = county.preview(json_bytes([{**TOWNSHIP_ITEM, "hours": "周一至周五"}]), "h.json")
    assert again.digest != preview.digest and again.base_version == 2
    assert county_catalog.publish_import(county.store, county.key, again, now_ms=5_000)["version"] == 3


def test_the_same_file_as_csv_xlsx_and_json_gives_the_same_preview(county: County) -> None:
    header = ["实施编码", "事项名称", "办理层级", "村级办理方式", "承诺时限", "法定时限", "办件类型"]
    row = [CODE, "就业登记", "乡", "村代办", 3, 5, "承诺件"]
    keys = ["task_code", "name", "level", "village_mode", "promised_days", "legal_days", "case_type"]
    previews = [
        county.preview(csv_bytes(header, row), "f.csv"),
        county.preview(xlsx_bytes(header, row), "f.xlsx"),
        county.preview(json_bytes([dict(zip(keys, row, strict=True))]), "f.json"),
    ]
    fields = [{c.task_code: c.fields for c in p.changed} for p in previews]
    assert fields[0] == fields[1] == fields[2]
    assert fields[0][CODE]["promised_days"] == [0, 3] and fields[0][CODE]["case_type"] == ["即办件", "承诺件"]
    assert len({p.digest for p in previews}) == 1  # the same change, whatever the format
    # the pure function the CLI and the pages share: bytes and the feed's rows in, the same preview out
    pure = preview_import(csv_bytes(header, row), "f.csv", county_catalog.rows(county.store))
    assert pure == previews[0]


# -- publish == preview ----------------------------------------------------------------------------
def _mutate(rng: random.Random, item: dict[str, Any]) -> dict[str, Any]:
    out = dict(item)
    for _ in range(rng.randint(0, 3)):
        what = rng.choice(["hours", "phone", "name", "state", "online", "fees", "legal_days", "visits"])
        if what in ("hours", "phone"):
            out[what] = rng.choice(["", "工作日 8:30-17:30", "0731-5551234", "周一至周五"])
        elif what == "name":
            out["name"] = item["name"] + rng.choice(["", "（新）", "申请"])
        elif what == "state":
            out["state"] = rng.choice(["在用", "暂停", "取消", None])
        elif what == "online":
            out["online"] = not item.get("online", False)
        elif what == "fees":
            out["fees"] = rng.choice([[], [{"name": "工本费", "standard_fen": rng.randint(1, 5000)}], "免费"])
        elif what == "legal_days":
            out["legal_days"] = max(item.get("legal_days", 0), item.get("promised_days", 0)) + rng.randint(0, 5)
        else:
            out["visits"] = rng.randint(0, 3)
    return out


def test_what_is_published_is_exactly_what_the_preview_showed(county: County) -> None:
    """Property-style: for random files over a changing catalog, in both modes, the release's differences
    from the previous one are the preview's added, changed and cancelled items, field by field."""
    rng = random.Random(20261203)
    seen = {"added": 0, "changed": 0, "cancelled": 0, "replace": 0, "nothing": 0}
    for trial in range(25):
        before = county.current()
        listed = rng.sample(sorted(before), rng.randint(1, 8))
        items = [_mutate(rng, {k: v for k, v in before[c].items() if k != "version"}) for c in listed]
        for n in range(rng.randint(0, 2)):
            base = rng.choice(DEMO_ITEMS)
            items.append({**base, "task_code": f"NEW{trial:02d}{n}", "name": f"{base['name']}（{trial}）"})
        rng.shuffle(items)
        mode = rng.choice([INCREMENTAL, INCREMENTAL, REPLACE])
        if trial % 8 == 0:  # the catalog's own items as they are: nothing to publish
            items, mode = [{k: v for k, v in before[c].items() if k != "version"} for c in listed], INCREMENTAL
        preview = county.preview(json_bytes(items), f"t{trial}.json", mode)
        assert preview.ok, preview.problems
        head = county.head()
        release = county_catalog.publish_import(county.store, county.key, preview, now_ms=10_000 + trial)
        after = county.current()
        d = catalog_history.diff(before, after)
        assert d["added"] == sorted(c.task_code for c in preview.added)
        assert d["removed"] == []
        assert d["changed"] == {c.task_code: c.fields for c in [*preview.changed, *preview.cancelled]}
        newly_cancelled = {
            c for c, b in after.items() if b["state"] == "取消" and before.get(c, {}).get("state") != "取消"
        }
        assert newly_cancelled == {c.task_code for c in preview.cancelled}
        untouched = set(before) - {c.task_code for c in [*preview.changed, *preview.cancelled]}
        assert all(after[c] == before[c] for c in untouched)  # same body, same version
        if mode == INCREMENTAL:
            assert all(after[c] == before[c] for c in set(before) - set(listed))
        if not preview.written:
            assert release["version"] is None and county.head() == head
            seen["nothing"] += 1
        else:
            assert release["version"] == preview.version and release["changes"] == preview.changes
        for kind in ("added", "changed", "cancelled"):
            seen[kind] += len(getattr(preview, kind))
        seen["replace"] += mode == REPLACE
    assert all(seen.values()), seen  # the trials reached every kind of change, both modes, and a no-op


# -- the command line ------------------------------------------------------------------------------
def at_terminal(c: Cluster, *args: str, answer: str) -> str:
    """Run a county command with a terminal (a pty) as its stdin, type `answer`; return what it printed."""
    main, sub = pty.openpty()
    cmd = [sys.executable, "-m", "county_server", *args, "--data", str(c.nodes["county"].data)]
    with subprocess.Popen(cmd, stdin=sub, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=c.env) as proc:
        os.close(sub)
        os.write(main, answer.encode() + b"\n")
        out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 2, out
    return out.decode()


def test_cli_dry_run_and_replace_ask_before_cancelling(tmp_path: Path) -> None:
    """`catalog import` in real processes: --dry-run publishes nothing; --replace without --yes, run by a
    script (no terminal), refuses; 增量 changes one item; --replace --yes cancels what the preview showed."""
    c = Cluster(tmp_path)
    c.county()  # release 1: the demo catalog
    one = tmp_path / "one.csv"
    one.write_bytes(csv_bytes(["实施编码", "事项名称", "办理层级", "村级办理方式", "咨询电话"],
                              [CODE, "就业登记", "乡", "村代办", "0731-5550000"]))  # fmt: skip

    def releases() -> int:
        with c.store("county") as store:
            return catalog_history.latest_version(county_catalog.rows(store))

    dry = c.run("county", "catalog", "import", str(one), "--replace", "--dry-run")
    assert "新增 0 项，变更 1 项，取消 47 项，不变 0 项" in dry.stdout and "！将取消 47 项事项" in dry.stdout
    assert "咨询电话: " in dry.stdout and "状态: 在用 → 取消" in dry.stdout and "未发布任何内容" in dry.stdout
    assert releases() == 1

    refused = c.run("county", "catalog", "import", str(one), "--replace", input="", check=False)
    assert refused.returncode == 2 and "未确认取消 47 项事项" in refused.stderr and "--yes" in refused.stderr
    assert "取消 47 项" in refused.stdout  # the preview was shown before the refusal
    assert releases() == 1 and "Traceback" not in refused.stderr

    # at a terminal the command asks; answering no publishes nothing
    asked = at_terminal(c, "catalog", "import", str(one), "--replace", answer="n")
    assert "将取消 47 项事项并发布新版本，确认吗？" in asked and "未确认取消 47 项事项" in asked
    assert releases() == 1

    added = c.run("county", "catalog", "import", str(one))
    assert "（增量：文件未列出的事项保持不变；当前第 1 版）" in added.stdout
    assert "已发布事项清单第 2 版，共 48 项：新增 0，变更 1，取消 0" in added.stdout

    done = c.json("county", "catalog", "import", str(one), "--replace", "--yes")
    assert done["version"] == 3 and len(done["changes"]["cancelled"]) == 47
    assert done["preview"]["counts"] == {"added": 0, "changed": 0, "cancelled": 47, "unchanged": 1, "problems": 0}
    assert releases() == 3


def test_a_file_of_a_few_columns_changes_only_those_columns(county: County) -> None:
    """The report: a file without a column must not reset that column (办理层级 乡 → 县, 材料 → none)."""
    before = county.current()
    header = ["实施编码", "法定时限", "承诺时限"]  # no 事项名称, 办理层级, 办件类型, 申请材料 …
    preview = county.preview(csv_bytes(header, [CODE, 10, 5], ["T-NEW", 3, 0]), "few.csv")
    assert named(preview) == {(3, "事项名称")}  # a new item still needs its name
    assert "必填" in preview.problems[0].message
    preview = county.preview(csv_bytes(header, [CODE, 10, 5]), "few.csv")
    assert preview.ok and [c.task_code for c in preview.changed] == [CODE]
    # 办件类型 follows the new 承诺时限 (no column for it); every other field keeps its value
    assert preview.changed[0].fields == {
        "legal_days": [0, 10],
        "promised_days": [0, 5],
        "case_type": ["即办件", "承诺件"],
    }
    county_catalog.publish_import(county.store, county.key, preview, now_ms=5_000)
    after = county.current()[CODE]
    assert after["level"] == "乡" and after["materials"] == before[CODE]["materials"] and after["name"] == "就业登记"
    # a column that is there decides, and the checks across fields see the merged item
    clash = county.preview(json_bytes([{"task_code": CODE, "case_type": "即办件"}]), "clash.json")
    assert named(clash) == {(1, "promised_days")} and "即办件" in clash.problems[0].message
