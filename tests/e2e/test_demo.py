"""The README's demo command sets up a working three-tier county on loopback, with the service domain at work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sanji_domain import pii
from sync_protocol.sqlite_store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from demo import DEMO_PASSPHRASE  # noqa: E402


def test_demo_sets_up_county_townships_and_villages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(tmp_path), "--no-wait", "--base-port", "0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "三级演示已启动" in out.stdout
    with Store(tmp_path / "county" / "node.sqlite") as county:
        items = county.conn.execute("SELECT COUNT(*) FROM catalog_items WHERE state = '在用'").fetchone()[0]
        assert items >= 30
        assert len(county.directory()) == 6  # the county, two townships, three villages
        states = dict(county.conn.execute("SELECT state, COUNT(*) FROM cases GROUP BY state").fetchall())
        assert (
            states.get("COMPLETED", 0) >= 2 and states.get("ACCEPTED", 0) >= 1 and states.get("NEED_SUPPLEMENT", 0) >= 1
        )
        forwarded = county.conn.execute("SELECT COUNT(*) FROM cases WHERE origin_case_id IS NOT NULL").fetchone()[0]
        assert forwarded >= 1  # a 转报 opened a linked county case
        assert county.conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] >= 3
        assert county.conn.execute("SELECT COUNT(*) FROM rectifications").fetchone()[0] >= 1  # a 差评
        assert county.conn.execute("SELECT COUNT(*) FROM calendar_days").fetchone()[0] >= 20
        numbered = county.conn.execute("SELECT COUNT(*) FROM cases WHERE official_no IS NOT NULL").fetchone()[0]
        assert numbered == county.conn.execute("SELECT COUNT(*) FROM cases WHERE origin_case_id IS NULL").fetchone()[0]
    for village, township in (("meihua", "chengguan"), ("xinqiao", "chengguan"), ("shimen", "huashi")):
        sealer = pii.open_key_file(tmp_path / village / "pii.key", DEMO_PASSPHRASE)
        with (
            Store(tmp_path / village / "node.sqlite", seal=sealer) as v,
            Store(tmp_path / township / "node.sqlite") as t,
        ):
            held = v.conn.execute("SELECT COUNT(*) FROM catalog_items WHERE state = '在用'").fetchone()[0]
            assert held == items  # the whole catalog reached the village
            assert t.vector()[f"{village}/up"] == v.vector()[f"{village}/up"]  # its cases reached the township
            assert v.conn.execute("SELECT COUNT(*) FROM cases WHERE origin_case_id IS NULL").fetchone()[0] == 8
            assert v.conn.execute("SELECT COUNT(*) FROM roster").fetchone()[0] == 7
            assert v.conn.execute("SELECT COUNT(*) FROM cases WHERE state != 'SUBMITTED'").fetchone()[0] >= 1
