"""The README's demo command sets up a working three-tier county on loopback, with the service domain at work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sanji_domain import pii
from sync_protocol.sqlite_store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from demo import DEMO_CLERK_PASSWORD, DEMO_PASSPHRASE  # noqa: E402

_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _log_in(client: Any, fields: dict[str, str]) -> str:
    """Post the login form as a browser would (with its CSRF token); return the page it lands on."""
    page = client.get("/login", headers={"Host": "127.0.0.1"})
    found = _TOKEN.search(page.text)
    assert found, page.text
    done = client.post("/login", data={**fields, "csrf_token": found.group(1)}, headers={"Host": "127.0.0.1"},
                       follow_redirects=True)  # fmt: skip
    assert done.status_code == 200, done.text
    return str(done.text)


def test_demo_sets_up_county_townships_and_villages(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(tmp_path), "--no-wait", "--base-port", "0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "三级演示已启动" in out.stdout
    pages = out.stdout.split("网页 Pages", 1)[1].split("Try:", 1)[0]
    for label in ("城关镇", "花石镇", "梅花村", "新桥村", "石门村"):
        assert re.search(rf"{label}\s+http://127\.0\.0\.1:\d+/", pages), pages  # every node's page address
    assert "chengguan-head" in pages and DEMO_CLERK_PASSWORD in pages and DEMO_PASSPHRASE in pages
    assert re.search(r"county\s+http://127\.0\.0\.1:\d+/\s+登录名 county-admin（周明，管理员）", pages), pages
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

    # the printed logins open the pages: a township's head and a village's agent
    from sanji_node.child import ChildNode
    from township_node.app import create_app as township_app
    from village_agent.app import Village
    from village_agent.app import create_app as village_app

    town = township_app(ChildNode.load(tmp_path / "chengguan")).test_client()
    inbox = _log_in(town, {"login": "chengguan-head", "password": DEMO_CLERK_PASSWORD})
    assert "待办" in inbox and "王芳" in inbox and "梅花村" in inbox
    from county_server.app import create_app as county_app

    county_pages = county_app(tmp_path / "county").test_client()
    home = _log_in(county_pages, {"login": "county-admin", "password": DEMO_CLERK_PASSWORD})
    assert "对账" in home and "周明" in home and "梅花村" in home and "城关镇便民服务中心" in home
    agent = village_app(Village.open(tmp_path / "meihua", idle_minutes=15)).test_client()
    home = _log_in(agent, {"name": "李建国", "passphrase": DEMO_PASSPHRASE})
    assert "李建国" in home and "口令不对" not in home
