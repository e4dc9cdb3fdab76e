"""The README's demo command sets up a working three-tier county on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sync_protocol.sqlite_store import Store

ROOT = Path(__file__).resolve().parents[2]


def test_demo_sets_up_county_townships_and_villages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(tmp_path), "--no-wait", "--base-port", "0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "三级演示已启动" in out.stdout
    with Store(tmp_path / "county" / "node.sqlite") as county:
        items = county.conn.execute("SELECT COUNT(*) FROM entries WHERE kind = 'catalog.item'").fetchone()[0]
        assert items >= 30
        assert len(county.directory()) == 6  # the county, two townships, three villages
    for village, township in (("meihua", "chengguan"), ("xinqiao", "chengguan"), ("shimen", "huashi")):
        with Store(tmp_path / village / "node.sqlite") as v, Store(tmp_path / township / "node.sqlite") as t:
            held = v.conn.execute("SELECT COUNT(*) FROM entries WHERE kind = 'catalog.item'").fetchone()[0]
            assert held == items  # the whole catalog reached the village
            assert t.vector()[f"{village}/up"] == v.vector()[f"{village}/up"]  # its cases reached the township
            assert v.vector()[f"{village}/up"][0] >= 1
