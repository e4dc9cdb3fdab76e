"""Load (issue 12, point 11, P6): many villages through township processes into one county, nothing lost.

`bench/load_bench.py` starts a real county and township processes, enrols the
villages through their townships and syncs them as in-process clients. The CI
part runs it at its smallest (`--quick`: 2 townships × 3 villages × 3 cases) and
checks that it runs and that the county holds every entry exactly once; the long
run (`SANJI_LONG=1`) runs the full load, 500 villages through 20 townships, and
records its figures (docs/performance.md, "Load (P6)"). Speed is reported, not
asserted: the machine is shared and the figures are ratios of the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from . import report

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str, timeout: float) -> dict[str, Any]:
    """The bench in a process group of its own, killed whatever happens (a hung run leaves nothing behind)."""
    out = tmp_path / "load_bench.json"
    cmd = [sys.executable, str(ROOT / "bench" / "load_bench.py"), *args, "--dir", str(tmp_path / "data"),
           "--json", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the bench, its client processes and every node it started
        if proc.poll() is None:
            proc.wait()
    assert proc.returncode == 0, f"{stdout}\n{stderr[-4000:]}"
    assert f"json: {out}" in stdout
    res: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert res["failed"] is None
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []  # no --keep: data gone
    return res


def check_figures(res: dict[str, Any], villages: int, cases: int) -> None:
    r = res["results"]
    c, chk = r["concurrent"], r["check"]
    assert c["villages"] == villages and c["entries"] == villages * cases
    assert c["pushed_entries"] == villages * cases  # every village pushed its cases, each once
    assert c["syncs_failed"] == 0
    assert c["requests"] >= 3 * villages  # hello, push, pull at least
    assert 0 < c["latency_ms_p50"] <= c["latency_ms_p99"] <= c["latency_ms_max"]
    assert c["county_entries_per_s"] > 0 and r["single_stream"]["county_entries_per_s"] > 0
    assert r["single_stream"]["cases"] == villages * cases
    assert chk["entries_written"] >= villages * cases and chk["cases_filed"] == villages * cases
    assert chk["lost"] == 0 and chk["duplicated"] == 0 and chk["hash_differs"] == 0
    assert chk["cases_lost"] == 0 and chk["cases_duplicated"] == 0 and chk["case_ids_differ_in_sample"] == 0
    assert chk["ok"]
    assert r["p6"]["ratio_vs_single_stream"] == pytest.approx(
        c["county_entries_per_s"] / r["single_stream"]["county_entries_per_s"], abs=0.002
    )


def test_load_bench_quick_runs_and_loses_nothing(tmp_path: Path) -> None:
    res = run_bench(tmp_path, "--quick", "--sample", "lt01", timeout=150)
    check_figures(res, villages=6, cases=3)
    c = res["results"]["concurrent"]
    assert c["townships"] == 2
    assert c["county_pulls_from_townships"] >= 1  # the townships forwarded to the county
    sample = c["samples"]["lt01"]  # the sampled township wrote where its threads were
    assert sample["samples"] > 0 and sample["busy"] + sample["idle"] > 0


@pytest.mark.long
def test_load_500_villages_through_20_townships(tmp_path: Path) -> None:
    res = run_bench(tmp_path, "--sample", "county,lt01", timeout=3600)
    check_figures(res, villages=500, cases=20)
    r = res["results"]
    c = r["concurrent"]
    report.record(
        "load: 500 villages, 20 townships, 1 county",
        villages=c["villages"],
        townships=c["townships"],
        entries=c["entries"],
        p50_ms=c["latency_ms_p50"],
        p99_ms=c["latency_ms_p99"],
        entries_per_s=c["county_entries_per_s"],
        single_stream_entries_per_s=r["single_stream"]["county_entries_per_s"],
        ratio=r["p6"]["ratio_vs_single_stream"],
        p6_holds=r["p6"]["holds"],
        lost=r["check"]["lost"],
        duplicated=r["check"]["duplicated"],
    )
