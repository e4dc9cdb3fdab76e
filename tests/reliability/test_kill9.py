"""kill -9 at random points of apply, bundle import, catalog publish and fork resolution (issue 12, point 11).

Real processes (tests/e2e/cluster.py: a county, a township serving, a village
laptop), killed by an injected fault: `SANJI_FAULT=STEP:N` makes the process
SIGKILL itself the Nth time it reaches STEP (`sync_protocol/faults.py`; the
steps sit inside transactions, just after commits and between commits). N is
drawn at random for each trial. After each trial the operation is simply run
again (the user's retry, or the node restarted), one sync round runs, and the
invariant holds (tests/reliability/invariant.py): every database passes
`integrity_check`, every entry created anywhere is at every node that should
hold it exactly once with the same hash, nothing is in quarantine, no fork is
left open, and every case filed is at the county once.

CI runs 10 trials (a fixed seed); the long run (`SANJI_LONG=1`) runs 100 with
a fresh seed and records the figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..e2e.cluster import DEMO_ITEMS, Cluster, wait_for
from . import report
from .invariant import check, survey

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the e2e cluster harness stops nodes with POSIX signals"
)

ITEM = "城乡居民医保参保登记"
KILLED = -9  # a child's return code after SIGKILL
NO_TRACEBACK = "Traceback"
ROUNDS = 5  # sync rounds a trial may take to settle
FORCE_RESOLVE_STEP = int(os.environ.get("SANJI_KILL9_RESOLVE_STEP", "0"))  # to replay one step


@pytest.fixture(scope="module")
def c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("kill9"))
    c.county()
    county = c.start("county")
    c.enrol("t1", "township", "430321101000", "county", county.url or "")
    c.start("t1", "--sync-interval", "3600")  # the township syncs up when the test says so
    c.enrol("v11", "village", "430321101201", "t1", c.nodes["t1"].url or "")
    yield c
    c.close()


def fault(step: str, n: int) -> dict[str, str]:
    return {"SANJI_FAULT": f"{step}:{n}"}


def reap(c: Cluster, name: str) -> int | None:
    """Wait for a serving node the fault killed; its return code, or None if it is still up."""
    n = c.nodes[name]
    assert n.proc is not None
    try:
        code = n.proc.wait(timeout=10)
    except Exception:
        return None
    n.proc = None
    c._close_log(n)
    return code


def restart(c: Cluster, name: str, **env: str) -> bool:
    """Start a serving node again on the port it had (its children know that URL); True if the fault
    killed it while it started (a township syncs up at start, applying what it pulls)."""
    n = c.nodes[name]
    port = (n.url or "").rsplit(":", 1)[1]
    if n.proc is not None:
        c.stop(name)
    try:
        c.start(name, "--port", port, *(("--sync-interval", "3600") if name == "t1" else ()), env=env)
    except AssertionError:
        if not env or n.proc is None or n.proc.returncode != KILLED:
            raise
        n.proc = None
        n.url = f"http://127.0.0.1:{port}"
        restart(c, name)
        return True
    return False


def file_cases(c: Cluster, created: list[str], commits: int, per_commit: int = 3) -> None:
    for _ in range(commits):
        created += [x["case_id"] for x in c.new_cases("v11", per_commit, ITEM, "--offline")]


def sync_round(c: Cluster) -> None:
    """The village syncs, the township syncs up, the village syncs again (receipts, catalog down)."""
    for name in ("v11", "t1", "v11"):
        out = c.run(name, "sync", check=False)
        assert out.returncode == 0 and NO_TRACEBACK not in out.stderr, out.stderr


def gone_before_exit(out_code: int, stderr: str) -> bool:
    """A CLI run the fault killed; any other failure must be a clean one (no traceback)."""
    assert NO_TRACEBACK not in stderr, stderr
    return out_code == KILLED


# -- the trials: each returns True if the fault fired -------------------------
def apply_at_township(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    commits = rng.randint(1, 3)
    file_cases(c, created, commits)
    if restart(c, "t1", **fault("apply", rng.randint(1, 2 * commits))):
        return True
    out = c.run("v11", "sync", check=False)
    assert NO_TRACEBACK not in out.stderr, out.stderr
    code = reap(c, "t1") if out.returncode != 0 else None
    restart(c, "t1")
    return code == KILLED


def apply_at_county(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    commits = rng.randint(1, 3)
    file_cases(c, created, commits)
    c.stop("county")  # or the township forwards the push at once, before the fault is set
    assert c.run("v11", "sync", check=False).returncode == 0
    if restart(c, "county", **fault("apply", rng.randint(1, 2 * commits))):
        return True
    out = c.run("t1", "sync", check=False)
    assert NO_TRACEBACK not in out.stderr, out.stderr
    code = reap(c, "county") if out.returncode != 0 else None
    restart(c, "county")
    return code == KILLED


def apply_at_village(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    """The laptop applying what it pulls (the receipts and releases of the round before)."""
    file_cases(c, created, 1)
    for name in ("v11", "t1"):
        c.run(name, "sync")
    out = c.run("v11", "sync", check=False, env=fault("apply", rng.randint(1, 4)))
    return gone_before_exit(out.returncode, out.stderr)


def bundle_import(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    """A village's bundle imported at the township, or the township's at the county, killed mid-import."""
    commits = rng.randint(1, 3)
    file_cases(c, created, commits)
    path = c.root / f"bundle-{time.monotonic_ns()}.sanji"
    if rng.random() < 0.5:
        c.run("v11", "export-bundle", "--to", str(path))
        target = "t1"
    else:
        c.stop("county")  # the county is reached by USB only: the township cannot forward
        c.run("v11", "sync")
        c.run("t1", "export-bundle", "--to", str(path))
        target = "county"
    out = c.run(target, "import-bundle", str(path), check=False, env=fault("bundle", rng.randint(1, commits + 1)))
    killed = gone_before_exit(out.returncode, out.stderr)
    again = c.run(target, "import-bundle", str(path), "--json", check=False)
    assert again.returncode == 0 and NO_TRACEBACK not in again.stderr, again.stderr
    path.unlink()
    if target == "county":  # receipted by the import itself (a site reached only by USB has no other way)
        assert county_receipted(c, "v11/up")
        restart(c, "county")
    return killed


def county_receipted(c: Cluster, feed: str) -> bool:
    """The county's receipt for `feed` covers everything it holds of it (县级已接收 will be true)."""
    with c.store("county") as s:
        (held,) = s.conn.execute("SELECT seq FROM feeds WHERE feed = ?", (feed,)).fetchone()
        mark = s.conn.execute("SELECT seq FROM receipt_marks WHERE feed = ?", (feed,)).fetchone()
    return mark is not None and mark[0] == held


def catalog_publish(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    items = [dict(x) for x in DEMO_ITEMS]
    pick = rng.randrange(len(items))
    items[pick]["name"] = f"{items[pick]['name']}（第{time.monotonic_ns() % 10**8}版）"
    path = c.root / "catalog.json"
    path.write_text(json.dumps({"items": items}, ensure_ascii=False), encoding="utf-8")
    before = len(c.json("county", "catalog", "releases"))
    out = c.run("county", "catalog", "import", str(path), check=False, env=fault("append", rng.randint(1, 2)))
    killed = gone_before_exit(out.returncode, out.stderr)
    again = c.run("county", "catalog", "import", str(path), check=False)  # the officer runs it again
    assert again.returncode == 0 and NO_TRACEBACK not in again.stderr, again.stderr
    versions = [r["version"] for r in c.json("county", "catalog", "releases")]
    assert versions == list(range(1, before + 2)), versions  # one new release, whole, once
    return killed


def fork_resolution(c: Cluster, rng: random.Random, created: list[str]) -> bool:
    """A laptop restored from a copy files offline (a fork); the county decides and the laptop applies it,
    each killed at a random step, each rerun."""
    sync_round(c)
    copy = c.root / "v11-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(c.nodes["v11"].data, copy)
    file_cases(c, created, 1, per_commit=2)
    for name in ("v11", "t1"):
        c.run(name, "sync")
    shutil.rmtree(c.nodes["v11"].data)
    shutil.copytree(copy, c.nodes["v11"].data)
    file_cases(c, created, 1, per_commit=2)  # offline on the old copy: another history
    assert c.run("v11", "sync", check=False).returncode == 2
    c.run("t1", "sync")
    out = c.run("county", "resolve-fork", "v11", "--reason", "笔记本从旧备份恢复", check=False,
                env=fault("append", rng.randint(1, 2)))  # fmt: skip
    killed = gone_before_exit(out.returncode, out.stderr)
    if any(f["resolved_seq"] is None for f in c.json("county", "forks")["forks"]):
        c.run("county", "resolve-fork", "v11", "--reason", "笔记本从旧备份恢复")  # not decided yet: again
    c.run("t1", "sync")
    step = FORCE_RESOLVE_STEP or rng.randint(1, 4)
    out = c.run("v11", "sync", check=False, env=fault("resolve", step))
    killed = gone_before_exit(out.returncode, out.stderr) or killed

    last: list[str] = []

    def settled() -> bool:
        c.run("t1", "sync")
        out = c.run("v11", "sync", check=False)
        last[:] = [out.stdout, out.stderr]
        return out.returncode == 0

    try:
        wait_for(settled, "the laptop to take the decision and sync", step=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e} (resolve:{step}); the laptop's last sync said:\n" + "\n".join(last)) from e
    return killed


TRIALS: dict[str, Callable[[Cluster, random.Random, list[str]], bool]] = {
    "apply at the township": apply_at_township,
    "apply at the county": apply_at_county,
    "apply at the laptop": apply_at_village,
    "bundle import": bundle_import,
    "catalog publish": catalog_publish,
    "fork resolution": fork_resolution,
}
# CI: 10 trials, each kind at least once, and a second fork of the same feed after the first was decided;
# the long run draws from the same kinds
CI_ORDER = [
    "apply at the township", "apply at the county", "apply at the laptop", "bundle import", "catalog publish",
    "fork resolution", "apply at the township", "bundle import", "catalog publish", "fork resolution",
]  # fmt: skip


def check_now(c: Cluster) -> None:
    """Right after a trial (no sync round): sound files, whole chains, one history, each thing once."""
    with c.store("county") as county, c.store("t1") as t1, c.store("v11") as v11:
        check({"county": county, "t1": t1, "v11": v11}, converged=False)


def settle_and_check(c: Cluster, created: list[str]) -> tuple[int, int]:
    """Sync rounds until the nodes agree (the county numbers cases in the background: 办件编号 entries
    may follow a round), then the invariant; returns (lost, duplicated) cases at the county."""
    for _ in range(ROUNDS):
        sync_round(c)
        with c.store("county") as county, c.store("t1") as t1, c.store("v11") as v11:
            if not survey({"county": county, "t1": t1, "v11": v11}).problems:
                break
    with c.store("county") as county, c.store("t1") as t1, c.store("v11") as v11:
        check({"county": county, "t1": t1, "v11": v11})
        at_county = [k for (k,) in county.conn.execute("SELECT key FROM entries WHERE kind = 'case.new'")]
    lost = len(set(created) - set(at_county))
    duplicated = len(at_county) - len(set(at_county))
    assert (lost, duplicated) == (0, 0), f"{lost} cases lost, {duplicated} duplicated"
    return lost, duplicated


def run_trials(
    c: Cluster,
    order: list[str],
    seed: int,
    *,
    settle_every: int = 1,
    progress: Callable[[dict[str, object]], None] | None = None,
) -> dict[str, object]:
    """The trials in `order`; after each the invariant without a sync round, and every `settle_every`
    trials (and after the last) the whole invariant after sync rounds."""
    rng = random.Random(seed)
    created: list[str] = []
    killed: Counter[str] = Counter()
    ran: Counter[str] = Counter()
    start = time.monotonic()
    for i, kind in enumerate(order):
        try:
            if TRIALS[kind](c, rng, created):
                killed[kind] += 1
            ran[kind] += 1
            check_now(c)
            if (i + 1) % settle_every == 0 or i + 1 == len(order):
                settle_and_check(c, created)
        except BaseException as e:
            raise AssertionError(f"trial {i + 1} ({kind}, seed {seed}) failed: {e}") from e
        if progress is not None:
            progress(figures(i + 1, seed, created, killed, ran, start))
    return figures(len(order), seed, created, killed, ran, start)


def figures(
    trials: int, seed: int, created: list[str], killed: Counter[str], ran: Counter[str], start: float
) -> dict[str, object]:
    return {
        "trials": trials,
        "killed": sum(killed.values()),
        "cases": len(created),
        "lost": 0,
        "duplicated": 0,
        "seconds": round(time.monotonic() - start, 1),
        "seed": seed,
        **{f"{k} (killed/run)": f"{killed[k]}/{ran[k]}" for k in TRIALS},
    }


@pytest.mark.slow
def test_kill9_ten_trials(c: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    if report.long_run():
        pytest.skip("the long run runs the 100 trials instead")
    # the laptop is killed just after re-issuing its first record, before marking it (where a case was filed
    # twice); the long run draws this step at random
    monkeypatch.setattr(sys.modules[__name__], "FORCE_RESOLVE_STEP", 3)
    done = run_trials(c, CI_ORDER, seed=12, settle_every=len(CI_ORDER))
    assert done["killed"] >= 6  # most faults fire (a drawn step past the last one reached does not)


@pytest.mark.long
def test_kill9_long_run(c: Cluster) -> None:
    trials = int(os.environ.get("SANJI_KILL9_TRIALS", "100"))
    seed = int(os.environ.get("SANJI_SEED", str(int(time.time()))))
    only = os.environ.get("SANJI_KILL9_ONLY", "")  # one kind of trial, e.g. "fork resolution"
    kinds = [k for k in TRIALS if not only or k == only]
    order = [kinds[i % len(kinds)] for i in range(trials)]
    random.Random(seed).shuffle(order)

    def progress(f: dict[str, object]) -> None:  # kept after each trial: a stopped run still has its figures
        report.record("kill -9 at random points", **f)

    done = run_trials(c, order, seed, progress=progress)
    assert done["killed"] >= trials // 2


def test_a_fault_plan_is_read_strictly() -> None:
    from sync_protocol import faults

    assert faults._parse("apply:3") == ("apply", 3)
    assert faults._parse("") is None and faults._parse("apply") is None and faults._parse("apply:0") is None
    assert faults._parse("apply:-1") is None and faults._parse(":2") is None
    assert Path(faults.__file__).stem in __import__("sync_protocol").ADAPTER_MODULES


def test_a_bundle_killed_just_after_its_commit_is_receipted_when_imported_again(c: Cluster) -> None:
    """The import committed, then the process died before it wrote the receipts: the rerun (which finds
    nothing new) writes them, or a site reached only by USB never sees 县级已接收."""
    created: list[str] = []
    file_cases(c, created, 1)
    c.stop("county")  # reached by USB only
    c.run("v11", "sync")
    path = c.root / "after-commit.sanji"
    written = c.run("t1", "export-bundle", "--to", str(path)).stdout
    batches = int(written.split("（")[1].split(" 批")[0])
    out = c.run("county", "import-bundle", str(path), check=False, env=fault("bundle", batches + 1))
    assert out.returncode == KILLED, written
    assert not county_receipted(c, "v11/up")
    c.run("county", "import-bundle", str(path))
    assert county_receipted(c, "v11/up")
    check_now(c)
    restart(c, "county")
