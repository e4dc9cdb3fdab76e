"""`county-server calendar`: seed, set and list against a real county data directory."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from county_server.app import open_county_store
from county_server.calendar_cli import calendar, calendar_rows
from county_server.cli import main as county_main
from sanji_domain.workdays import calendar_from_rows
from sanji_node.config import DataDir


@pytest.fixture
def county(tmp_path: Path) -> str:
    data = str(tmp_path / "county")
    result = CliRunner().invoke(county_main, ["init", "--data", data, "--county", "430321", "--name", "示范县"])
    assert result.exit_code == 0, result.output
    return data


def run(*args: str) -> Result:
    program = click.Group("county-server", commands={"calendar": calendar})
    return CliRunner().invoke(program, ["calendar", *args])


def entries(data: str) -> list[tuple[str, str, str]]:
    with open_county_store(DataDir(data)) as store:
        return calendar_rows(store)


def test_seed_writes_the_year_once(county: str) -> None:
    first = run("seed", "--data", county, "--year", "2026")
    assert first.exit_code == 0, first.output
    assert "已写入 2026 年工作日历 25 天（法定节假日 19 天，调休上班 6 天）" in first.output
    rows = entries(county)
    assert ("2026-10-01", "holiday", "国庆节") in rows and ("2026-10-10", "workday", "国庆节调休") in rows
    again = run("seed", "--data", county, "--year", "2026", "--json")
    assert again.exit_code == 0 and json.loads(again.output)["written"] == []
    assert "无变化" in run("seed", "--data", county, "--year", "2026").output
    assert len(entries(county)) == len(rows)


def test_set_and_reseed_only_writes_what_differs(county: str) -> None:
    assert run("seed", "--data", county, "--year", "2025").exit_code == 0
    done = run("set", "2025-10-08", "normal", "--data", county)
    assert done.exit_code == 0 and "已设定 2025-10-08（星期三）恢复常规" in done.output
    assert "无变化" in run("set", "2025-10-08", "normal", "--data", county).output
    local = run("set", "2025-06-16", "holiday", "--name", "县庆", "--data", county, "--json")
    assert json.loads(local.output) == {
        "day": {"date": "2025-06-16", "kind": "holiday", "name": "县庆"},
        "changed": True,
    }
    cal = calendar_from_rows(entries(county))
    assert cal.is_workday(date.fromisoformat("2025-10-08")) and not cal.is_workday(date.fromisoformat("2025-06-16"))
    reseed = json.loads(run("seed", "--data", county, "--year", "2025", "--json").output)
    assert [d["date"] for d in reseed["written"]] == ["2025-10-08"]  # back to the official day off; 县庆 stays
    assert not calendar_from_rows(entries(county)).is_workday(date.fromisoformat("2025-06-16"))


def test_list_shows_the_years_days(county: str) -> None:
    run("seed", "--data", county, "--year", "2025")
    run("set", "2025-10-08", "normal", "--name", "县政府通知", "--data", county)
    text = run("list", "--data", county, "--year", "2025")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].split() == ["日期", "星期", "类型", "名称"]
    assert "2025-09-28  日    调休上班    国庆节调休\n" in text.output
    assert "2025-10-08  三    恢复常规    县政府通知\n" in text.output
    days = json.loads(run("list", "--data", county, "--year", "2025", "--json").output)["days"]
    assert days[0] == {"date": "2025-01-01", "kind": "holiday", "name": "元旦", "weekday": "三"}
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    empty = run("list", "--data", county, "--year", "2030")
    assert empty.exit_code == 0 and "calendar seed --year 2030" in empty.output


def test_bad_input_is_a_clear_error(county: str) -> None:
    bad_date = run("set", "2025-02-30", "holiday", "--data", county)
    assert bad_date.exit_code == 2 and "不是有效日期" in bad_date.stderr and "yyyy-mm-dd" in bad_date.stderr
    bad_kind = run("set", "2025-10-01", "vacation", "--data", county)
    assert bad_kind.exit_code == 2 and "vacation" in bad_kind.stderr
    no_data = run("seed", "--data", county, "--year", "2027", "--json")
    assert no_data.exit_code == 2
    error = json.loads(no_data.output)["error"]
    assert error["code"] == "invalid_input" and "calendar set" in error["hint"]
    assert entries(county) == []
