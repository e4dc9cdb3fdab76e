"""The domain commands as people use them: the real CLIs (click's CliRunner) on real node data directories.

The township `t1` (城关镇便民服务中心) and the village `v11` (梅花村) each hold the
county's membership (with names) and the demo catalog, signed with the county's
key and folded by the real store, as test_township_pages.py builds its township.
The tests check what issue 10 adds to the command line: `case new` gives the
查询码 beside the new number, and `case show` tells each step's reason, who
did it, the materials a 补正 asked for, the case's 备注 and its 查询码; and that
a command opens the node's store once, after the `prepare` hook.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from sanji_domain import catalog as catalog_domain
from sanji_domain.commands import CST
from sanji_domain.search import query_code
from sanji_node.child import ChildNode
from sanji_node.config import DataDir, NodeConfig
from sanji_node.domain_cli import add_domain_commands
from sync_protocol.entries import Record
from sync_protocol.keys import SigningKey
from sync_protocol.membership import KIND_MEMBER
from sync_protocol.sqlite_store import Store
from township_node.cli import main as township_cli
from village_agent.cli import main as village_cli

COUNTY = "430321"
DEMO_CATALOG = Path(__file__).resolve().parents[1] / "sanji_domain" / "data" / "demo_catalog.json"
ELDER = "高龄津贴申请"  # 乡, 村受理乡办结, 容缺受理 allowed
ELDER_REQUIRED = ["居民身份证", "居民户口簿", "《高龄津贴申请审批表》", "本人社会保障卡或惠民惠农财政补贴“一卡通”账户"]
APPLICANT = ("--name", "王秀英", "--id-number", "430321193210180014", "--phone", "13807345678")
KEYS = {n: SigningKey.from_seed(hashlib.sha256(f"domain-cli:{n}".encode()).digest()) for n in ("county", "t1", "v11")}
NODES = {  # node: (role, division, parent, display name)
    "county": ("county", COUNTY + "000000", None, "示范县"),
    "t1": ("township", "430321101000", "county", "城关镇便民服务中心"),
    "v11": ("village", "430321101201", "t1", "梅花村"),
}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def now_ms() -> int:
    return int(datetime.now(CST).timestamp() * 1000)


def build_node(path: Path, node: str) -> Path:
    """A township or village data directory holding the county's membership and the demo catalog."""
    role, division, parent, _ = NODES[node]
    data = DataDir(path)
    data.create()
    data.save_key(KEYS[node], None)
    data.save(
        NodeConfig(
            node, role, COUNTY, "county", KEYS["county"].public.hex, division,
            parent=parent, parent_url="http://127.0.0.1:9", county_name="示范县",
        )
    )  # fmt: skip
    with ChildNode.load(path).open_store() as store:
        members = [
            {"division": d, "node": n, "parent": p, "role": r, "name": name, "pubkey": KEYS[n].public.hex}
            for n, (r, d, p, name) in NODES.items()
        ]
        store.append(KEYS["county"], "county/*", [Record(KIND_MEMBER, m["node"], m, 1) for m in members])
        items = catalog_domain.read_catalog(DEMO_CATALOG)
        plan = catalog_domain.plan_release({}, items, 1, released_ms=now_ms() - 86_400_000, source="demo")
        store.append(KEYS["county"], "county/*", plan.records((now_ms() - 86_400_000) * 1000))
    return path


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nodes")
    return {n: build_node(root / n, n) for n in ("t1", "v11")}


@pytest.fixture
def township(templates: dict[str, Path], tmp_path: Path) -> str:
    return str(shutil.copytree(templates["t1"], tmp_path / "t1"))


@pytest.fixture
def village(templates: dict[str, Path], tmp_path: Path) -> str:
    return str(shutil.copytree(templates["v11"], tmp_path / "v11"))


def invoke(program: click.Group, data: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(program, [*args, "--data", data], input=input)


def ok(program: click.Group, data: str, *args: str, input: str | None = None) -> str:
    result = invoke(program, data, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def file_elder(data: str, *extra: str) -> str:
    """A window case for 高龄津贴申请 at the township; returns its local number."""
    out = ok(township_cli, data, "case", "new", "--item", ELDER, *APPLICANT, *extra, "--output-json")
    return str(json.loads(out)["local_no"])


# -- case new: the 查询码 beside the new number ------------------------------------------------------------


def test_case_new_prints_the_query_code_next_to_the_number(township: str) -> None:
    materials = [a for m in ELDER_REQUIRED for a in ("--material", m)]
    out = ok(township_cli, township, "case", "new", "--item", ELDER, *APPLICANT, *materials, "--person", "王芳")
    found = re.fullmatch(rf"已登记办件 (\S+)，查询码 (\d{{6}})（已收件，({UUID})），待上传。\n", out)
    assert found, out
    number, code, case_id = found.groups()
    assert number.startswith("430321101000-") and code == query_code(case_id)

    made = json.loads(ok(township_cli, township, "case", "new", "--item", ELDER, *APPLICANT, *materials,
                         "--output-json"))  # fmt: skip
    assert set(made) == {"case_id", "local_no", "state", "query_code"}
    assert made["query_code"] == query_code(made["case_id"]) and made["state"] == "SUBMITTED"


def test_a_list_of_cases_gets_one_line_and_one_query_code_each(village: str) -> None:
    request = {"item": ELDER, "applicant": dict(zip(("name", "id_number", "phone"), APPLICANT[1::2], strict=True)),
               "materials": ELDER_REQUIRED}  # fmt: skip
    out = ok(village_cli, village, "case", "new", "--offline", "--json", "-", input=json.dumps([request, request]))
    lines = out.splitlines()
    assert len(lines) == 2
    for line in lines:
        found = re.fullmatch(
            rf"已登记办件 430321101201-\d{{8}}-\d+，查询码 (\d{{6}})（已收件，({UUID})），待上传。", line
        )
        assert found and found.group(1) == query_code(found.group(2)), line
    made = json.loads(ok(village_cli, village, "case", "new", "--offline", "--json", "-", "--output-json",
                         input=json.dumps([request])))  # fmt: skip
    assert [m["query_code"] for m in made] == [query_code(made[0]["case_id"])]


# -- case show: reasons, who, the materials a 补正 asked for, 备注, 查询码 -----------------------------------------


def test_case_show_tells_each_steps_reason_and_who_and_what_a_supplement_asked_for(township: str) -> None:
    # filed against a pledge (容缺受理) with only the ID card: three required materials still missing
    no = file_elder(township, "--material", "居民身份证", "--pledge", "--notes", "行动不便，上门收件。")
    ok(township_cli, township, "case", "transition", no, "request_supplement", "--reason", "请补交户口簿和审批表",
       "--person", "王芳")  # fmt: skip
    text = ok(township_cli, township, "case", "show", no)
    detail = json.loads(ok(township_cli, township, "case", "show", no, "--json"))
    lines = text.splitlines()
    assert lines[0] == f"办件 {no}  办件编号 （县级接收后赋号）  查询码 {query_code(detail['case_id'])}"
    assert "  备注: 行动不便，上门收件。" in lines
    step = lines.index("    " + detail["events"][0]["at"] + " 补齐补正（城关镇便民服务中心，经办人 王芳）")
    assert lines[step + 1 : step + 3] == [
        "      原因: 请补交户口簿和审批表",
        "      需补正材料: " + "、".join(ELDER_REQUIRED[1:]),
    ]
    assert detail["query_code"] == query_code(detail["case_id"])
    assert detail["events"][0]["asked_materials"] == ELDER_REQUIRED[1:]

    # the materials come in: the 补正 still shows what it asked for; 补正完成 asks for nothing
    materials = [a for m in ELDER_REQUIRED for a in ("--material", m)]
    ok(township_cli, township, "case", "transition", no, "supplement", *materials, "--person", "李明")
    text = ok(township_cli, township, "case", "show", no)
    assert "      需补正材料: " + "、".join(ELDER_REQUIRED[1:]) in text.splitlines()
    assert "补正完成（城关镇便民服务中心，经办人 李明）" in text and "  材料: 5 项，齐全" in text.splitlines()
    after = json.loads(ok(township_cli, township, "case", "show", no, "--json"))
    assert [e.get("asked_materials") for e in after["events"]] == [ELDER_REQUIRED[1:], None]


def test_case_show_lists_exactly_the_materials_the_window_named(township: str) -> None:
    """The window's page names the materials on the request (一次告知); `case show` lists those, not the rest."""
    no = file_elder(township, *(a for m in ELDER_REQUIRED for a in ("--material", m)))
    ok(township_cli, township, "case", "transition", no, "accept", "--person", "王芳")
    refused = invoke(township_cli, township, "case", "transition", no, "request_supplement", "--reason", "x",
                     "--ask", "结婚证")  # fmt: skip
    assert refused.exit_code == 2 and "不在事项" in refused.output  # only the item's own materials
    ok(township_cli, township, "case", "transition", no, "request_supplement", "--reason", "复印件不清晰",
       "--ask", "居民户口簿", "--ask", "《高龄津贴申请审批表》", "--person", "王芳")  # fmt: skip
    text = ok(township_cli, township, "case", "show", no).splitlines()
    step = next(i for i, line in enumerate(text) if line.endswith(" 补齐补正（城关镇便民服务中心，经办人 王芳）"))
    assert text[step + 1 : step + 3] == [
        "      原因: 复印件不清晰",
        "      需补正材料: 居民户口簿、《高龄津贴申请审批表》",
    ]


def test_case_show_tells_why_a_case_was_refused_or_suspended(township: str) -> None:
    refused = file_elder(township, "--pledge", "--material", "居民身份证")
    ok(township_cli, township, "case", "transition", refused, "reject", "--reason", "申请人未满八十周岁",
       "--person", "王芳")  # fmt: skip
    text = ok(township_cli, township, "case", "show", refused).splitlines()
    at = text.index("  办理过程:")
    assert text[at + 1].endswith(" 不予受理（城关镇便民服务中心，经办人 王芳）")
    assert text[at + 2] == "      原因: 申请人未满八十周岁"
    assert "备注" not in "\n".join(text)  # no notes, no 备注 line

    held = file_elder(township, "--pledge", "--material", "居民身份证")
    for action, *args in (["accept"], ["suspend", "--kind", "特别程序", "--reason", "需上级部门核实户籍"]):
        ok(township_cli, township, "case", "transition", held, action, *args)
    text = ok(township_cli, township, "case", "show", held).splitlines()
    step = next(i for i, line in enumerate(text) if line.endswith(" 挂起（城关镇便民服务中心）"))
    assert text[step + 1 : step + 3] == ["      类型: 特别程序", "      原因: 需上级部门核实户籍"]


def test_a_step_with_no_reason_shows_only_who_did_it(township: str) -> None:
    no = file_elder(township, *(a for m in ELDER_REQUIRED for a in ("--material", m)))
    ok(township_cli, township, "case", "transition", no, "accept", "--person", "赵丽")
    text = ok(township_cli, township, "case", "show", no).splitlines()
    at = text.index("  办理过程:")
    assert text[at + 1].endswith(" 受理（城关镇便民服务中心，经办人 赵丽）") and text[at + 2 :] == []


def test_unknown_case_is_a_clear_error(township: str) -> None:
    result = invoke(township_cli, township, "case", "show", "430321101000-20260101-99")
    assert result.exit_code == 2 and "错误" in result.stderr
    result = invoke(township_cli, township, "case", "show", "430321101000-20260101-99", "--json")
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["message"]


# -- one store per command, opened after `prepare` --------------------------------------------------------------


class CountingNode(ChildNode):
    """A node that records when its store is opened."""

    opened: list[str]

    def open_store(self) -> Store:
        self.opened.append("open")
        return super().open_store()


def program(calls: list[str]) -> click.Group:
    """A village program whose loader and `prepare` hook record what happens, in order."""

    def load(data_dir: str) -> CountingNode:
        node = CountingNode.load(data_dir)
        assert isinstance(node, CountingNode)
        node.opened = calls
        return node

    prepare: Callable[[Any, bool], None] = lambda node, offline: calls.append(f"prepare offline={offline}")  # noqa: E731
    group = click.Group("village-agent")
    add_domain_commands(group, "village", load, prepare=prepare)
    return group


def test_a_command_opens_the_store_once_after_prepare(village: str) -> None:
    calls: list[str] = []
    main = program(calls)
    args = ["--item", ELDER, *APPLICANT, *(a for m in ELDER_REQUIRED for a in ("--material", m))]
    made = json.loads(ok(main, village, "case", "new", *args, "--offline", "--output-json"))
    assert calls == ["prepare offline=True", "open"]
    calls.clear()
    ok(main, village, "case", "show", made["local_no"])
    ok(main, village, "ledger", "show", "--json")
    assert calls == ["open", "open"]
