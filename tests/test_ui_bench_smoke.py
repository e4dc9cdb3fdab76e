"""The UI benchmark still runs (a smoke run at a tiny size; speed is not checked here).

It fills a county, a township and three villages in a cache directory, measures
every page once warm and three times timed, and a second run on the same cache
skips the fill.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOWNSHIP_PAGES = {
    "inbox_first",
    "inbox_page50",
    "case",
    "search_name",
    "search_id_number",
    "search_query_code",
    "stats",
    "stats_month",
}
VILLAGE_PAGES = {"home", "my_cases", "search_name"}


def run(tmp_path: Path, out: Path) -> tuple[str, dict]:  # type: ignore[type-arg]
    cmd = [sys.executable, str(ROOT / "bench" / "ui_bench.py"), "--cases", "200", "--villages", "3", "--requests", "3",
           "--cache", str(tmp_path / "cache"), "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(out.read_text(encoding="utf-8"))


def test_ui_bench_fills_measures_and_reuses_its_cache(tmp_path: Path) -> None:
    stdout, res = run(tmp_path, tmp_path / "first.json")
    assert {"meta", "fill", "measured"} <= res.keys()
    assert res["meta"]["cached"] is False and res["meta"]["goal_p95_s"] == 0.3
    fill = res["fill"]
    assert fill["cases"] == 200 and fill["villages"] == 3 and fill["fill_s"] > 0
    assert fill["steps"]["file"] == 200  # every case filed, and their lives went on
    assert {"accept", "complete", "deliver", "evaluate"} <= fill["steps"].keys()
    m = res["measured"]
    assert m["mode"] == "routes"  # through the township's and the village's Flask apps, signed in
    assert m["township_rows"]["cases_filed"] == 200 and m["township_rows"]["open"] > 0
    assert m["urgent_order_checked"] == {"cases": 200, "equal": True, "first_difference": None}
    assert set(m["township"]) == TOWNSHIP_PAGES and set(m["village"]) == VILLAGE_PAGES
    for page in [*m["township"].values(), *m["village"].values()]:
        assert page["n"] == 3 and 0 < page["p50_s"] <= page["p95_s"] <= page["max_s"]
        assert isinstance(page["meets_goal"], bool) and page["label"]
    assert "p95" in stdout and "待办" in stdout and f"json: {tmp_path / 'first.json'}" in stdout

    _, again = run(tmp_path, tmp_path / "second.json")  # the same sizes: the cache is used, not filled again
    assert again["meta"]["cached"] is True and again["fill"]["filled_at_ms"] == fill["filled_at_ms"]
    assert set(again["measured"]["township"]) == TOWNSHIP_PAGES


COUNTY_PAGES = {"recon", "stats", "monitor"}  # and their variants, on the branches that build them


def test_ui_bench_county_fills_two_townships_and_times_the_county_pages(tmp_path: Path) -> None:
    """`--county` at a tiny size: two townships of two villages, one village quiet and one restored from an
    old copy (a fork at the township, reported to the county, and a batch held in quarantine), the county's
    pages timed signed in as a 管理员, and the cases kept aside applied at the county."""
    out = tmp_path / "county.json"
    cmd = [sys.executable, str(ROOT / "bench" / "ui_bench.py"), "--county", "--townships", "2", "--villages", "2",
           "--cases", "80", "--days", "14", "--silent", "1", "--forked", "1", "--apply-cases", "20",
           "--requests", "2", "--cache", str(tmp_path / "cache"), "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["meta"]["goal_p95_s"] == 0.5
    fill = res["fill"]
    assert fill["county"] is True and fill["townships"] == 2 and fill["fill_s"] > 0
    assert fill["steps"]["file"] + sum(fill["skipped"].values()) >= 80 - 2  # a quiet village files no more
    assert {"accept", "complete", "deliver"} <= fill["steps"].keys()
    assert fill["not_accepted_at_townships"] == {"FORK": 1, "QUARANTINED": 1}
    assert list(fill["silent_villages"]) and fill["forked_villages"] and fill["county_db_bytes"] > 0
    m = res["measured"]
    assert m["mode"] == "county" and m["county_rows"]["nodes"] == {"county": 1, "township": 2, "village": 4}
    # every case filed reached the county; the restored laptop's were stopped at the township (fork, quarantine)
    assert m["county_rows"]["cases_filed"] == fill["steps"]["file"]
    rows = m["county_rows"]
    assert rows["forks"] == 1 and rows["contact_reports"] >= 3  # the township's evidence and contact reports
    assert rows["case_events"] > rows["cases_filed"] and rows["evaluations"] > 0
    assert COUNTY_PAGES <= set(m["county"]) and set(m["county"]) | set(m["pages_noted"]) >= COUNTY_PAGES
    for page in m["county"].values():
        assert page["n"] == 2 and 0 < page["p50_s"] <= page["p95_s"] <= page["max_s"]
    apply = m["apply"]
    assert apply["cases"] == 20 and apply["entries"] == 40 and apply["as_opened_s"] > 0
    assert "对账" in done.stdout and "apply 20 cases at the county" in done.stdout

    # --county-data: the pages of a county data directory as it is (no fill, nothing applied)
    cmd = [sys.executable, str(ROOT / "bench" / "ui_bench.py"), "--county-data", str(tmp_path / "cache" / "county"),
           "--requests", "1", "--json", str(tmp_path / "as-is.json")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    as_is = json.loads((tmp_path / "as-is.json").read_text(encoding="utf-8"))
    assert as_is["measured"]["county_rows"] == rows and "apply" not in as_is["measured"]
    assert set(as_is["measured"]["county"]) == set(m["county"])
