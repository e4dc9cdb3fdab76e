"""The sync benchmark still runs end to end (a smoke run at a small size; speed is not checked here).

It starts real county, township and village processes; they all live in one
process group of their own, which is killed whatever happens, so a failed or
hung run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = "ABCDEF"
TARGETS = ["P1", "P2", "P3", "P4", "P5", "P7", "P8"]


def test_sync_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "sync_bench.json"
    cmd = [sys.executable, str(ROOT / "bench" / "sync_bench.py"), "--cases", "300", "--catalog", "100", "--no-peer",
           "--villages", "6", "--townships", "2", "--f-cases", "3", "--p8-entries", "600", "--timeout", "60",
           "--dir", str(tmp_path / "data"), "--json", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=100)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the bench and every node it started
        if proc.poll() is None:
            proc.wait()
    assert proc.returncode == 0, f"{stdout}\n{stderr}"
    assert f"json: {out}" in stdout
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["failed"] is None
    assert {"meta", "phases", "targets", "peer", "p8", "serve_peak_rss_mb", "cli_peak_rss_mb"} <= res.keys()
    assert res["peer"] is None  # --no-peer
    for ph in PHASES:
        assert "wall_s" in res["phases"][ph], ph
        assert "serve_peak_rss_mb" in res["phases"][ph], ph
    A, B, C, D, E, F = (res["phases"][ph] for ph in PHASES)
    assert A["n"] == 300 and A["docs_per_s"] > 0 and A["requests_hop1"] > 0 and A["wire_hop1"]["bytes_total"] > 0
    assert A["village_sync_peak_rss_mb"] > 0
    assert B["m"] == 100 and B["catalog_items_at_village"] == 100
    assert C["new"] == 3 and C["requests"] > 0
    assert D["applied_twice"] == 0 and D["county_chain_equals_village"] and "resent_batches" in D
    assert E["noop"] and E["requests"] >= 1 and E["bytes_total"] > 0
    assert F["villages"] == 6 and F["cases"] == 18 and F["latency_ms_p99_village_to_township"] is not None
    assert set(res["targets"]) == set(TARGETS)
    assert res["p8"]["ratio_b_c"] > 0
    assert list((tmp_path / "data").iterdir()) == []  # no --keep: the data is gone
