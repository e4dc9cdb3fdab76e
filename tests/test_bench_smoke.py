"""The protocol benchmark still runs (a smoke run at a small size; speed is not checked here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_protocol_bench_runs_and_prints_its_ratio(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "protocol_bench.py"), "--entries", "600", "--batch", "200", "--repeat", "1",
         "--workers", "1", "--json", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio \(b\)/\(c\): \d+\.\d\d", lines[-1])
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["entries"] == 600 and figures["create"] > 0 and figures["apply"] > 0 and figures["raw"] > 0
