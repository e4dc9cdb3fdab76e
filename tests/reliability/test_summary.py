"""The long run's summary table: every record, aligned by display width (Chinese takes two columns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import report, summary


def test_records_are_written_only_when_a_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.OUT_ENV, raising=False)
    report.record("kill -9 at random points", trials=10)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(report.OUT_ENV, str(tmp_path / "out"))
    report.record("kill -9 at random points", trials=10, lost=0)
    report.record("乡镇 杀进程", 耗时="3 秒", lost=0)
    assert summary.main([str(tmp_path / "out")]) == 0


def test_the_table_lines_up_chinese_and_latin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(report.OUT_ENV, str(tmp_path))
    report.record("fuzz: bundle reader", inputs=12000, outside_the_error_tree=0)
    report.record("县级 导入数据包", 结果="全部通过", lost=0)
    text = summary.table(summary.load(tmp_path))
    lines = [x for x in text.splitlines() if x]
    assert lines[0].split() == ["record", "figure", "value"]
    value_column = {
        summary.width(x[: x.index(v)]) for x, v in zip(lines[2:], ["12000", "0", "全部通过", "0"], strict=True)
    }
    assert len(value_column) == 1  # every value starts in the same terminal column
    assert summary.width("县级ab") == 6 and summary.width("e\u0301") == 1


def test_no_records_is_said_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert summary.main([str(tmp_path)]) == 1
    assert "没有记录" in capsys.readouterr().err
