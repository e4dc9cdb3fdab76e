#!/usr/bin/env python3
"""Load benchmark (issue 12, point 11, P6): many villages through many township processes into one county.

    python bench/load_bench.py                      # 500 villages, 25 under each of 20 townships, 20 cases each
    python bench/load_bench.py --quick              # 2 townships × 3 villages × 3 cases (the smoke test's size)
    python bench/load_bench.py --villages 100 --townships 4 --cases 10 --json out.json

The county and every township are real processes (`county-server serve`,
`township-node serve`, waitress on 127.0.0.1 port 0), each with its own SQLite
file; the county imports the demo catalog first. The townships and the villages
are enrolled with one-time tokens as `county-server enroll` and `init --token`
do, but in this process (`county_server.tokens.issue`, `sanji_node.child.enrol`):
520 CLI processes would take longer than the load itself. A village enrols
through its township (the enrolment is relayed to the county), holds its own
SQLite file on disk, sealed at rest under the agent's passphrase, and is an
in-process client: `ChildNode.sync()`, the same session `village-agent sync` runs.

The villages live in `--clients` client processes (each with its own
interpreter, so the clients are not one GIL), each syncing its villages with
`--threads` threads. Before anything is timed, every village syncs once
(membership and catalog) and files `--cases` ~1 KB cases (`file_cases`, as
`village-agent case new` does; requests from `sync_bench.CaseMaker`). Then:

  single stream   one village under the first township files the same number of
                  cases as all the villages together (`--single-cases`, default
                  villages × cases) and syncs alone, in this process; the
                  township's scheduler forwards them to the county. Rate: entries
                  at the county / (first request → county holds them all).
  one village     one more village files `--cases` cases and syncs alone: the
                  latency-bound figure of one village's sync, for reference.
  concurrent      every village syncs at once (`--threads` at a time in each
                  client process); a sync that fails with "retry later" is
                  retried after a second, as the village's scheduler would.
                  Rate: entries at the county / (start → county holds them all).
                  Latency: every HTTP request a village makes (hello, push, pull),
                  timed in the client around `requests` (request sent → whole
                  answer read), and each whole sync session.

Then the check: for every village feed the county holds exactly the entries
the village wrote, each once, with the same hash (lost = 0, duplicated = 0),
and exactly one `cases` row per case. CPU seconds of every process over the
concurrent phase (/proc/PID/stat) show where the two cores went.

Goal (P6): concurrent county entries/s ≥ 0.5 × the single-stream rate, and
the villages' request p99 < 1 s. Prints a table and writes --json (default
bench/results/load_bench.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sampler import wrapper as sampler_wrapper  # noqa: E402
from sync_bench import CaseMaker, percentile  # noqa: E402

from county_server import tokens  # noqa: E402
from county_server.app import open_county_store  # noqa: E402
from sanji_node import state  # noqa: E402
from sanji_node.actions import cases as case_actions  # noqa: E402
from sanji_node.child import ChildNode, apply_county_feed, enrol  # noqa: E402
from sanji_node.config import DataDir  # noqa: E402
from sanji_node.workspace import Workspace  # noqa: E402
from sync_protocol.errors import TransportError  # noqa: E402
from tests.e2e.cluster import PASSPHRASE_ENV, Cluster, Node, wait_for  # noqa: E402

COUNTY = "430321"
PASSPHRASE = "代办员的口令-load"
RETRY_S = 1.0  # a village whose sync failed "retry later" tries again after this (its scheduler waits longer)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def township_id(t: int) -> str:
    return f"lt{t:02d}"


def village_id(t: int, v: int) -> str:
    return f"lv{t:02d}{v:02d}"


def township_division(t: int) -> str:
    return f"{COUNTY}{100 + t:03d}000"


def village_division(t: int, v: int) -> str:
    return f"{COUNTY}{100 + t:03d}{200 + v:03d}"


# -- timing the villages' requests ---------------------------------------------------------------
@dataclass
class Timed:
    """One HTTP exchange a village made: its route, its status (0: no answer) and seconds, and when it began."""

    path: str
    status: int
    seconds: float
    start: float


class TimedSession(requests.Session):
    """A `requests.Session` that times each exchange (request sent → whole answer read, as `requests` reads it)."""

    def __init__(self, out: list[Timed]) -> None:
        super().__init__()
        self.out = out

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> requests.Response:  # type: ignore[override]
        t0 = time.perf_counter()
        path = str(url).split("/api/v1/", 1)[-1]
        try:
            resp = super().request(method, url, *args, **kw)
        except BaseException:
            self.out.append(Timed(path, 0, time.perf_counter() - t0, t0))
            raise
        self.out.append(Timed(path, resp.status_code, time.perf_counter() - t0, t0))
        return resp


@dataclass
class SyncRun:
    village: str
    start: float
    seconds: float
    attempts: int
    pushed: int
    ok: bool = False
    requests: list[Timed] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sync_village(node: ChildNode, deadline: float) -> SyncRun:
    """One village's sync until it succeeds (a "retry later" is retried after RETRY_S, as its scheduler would)."""
    timed: list[Timed] = []
    run = SyncRun(node.config.node_id, time.perf_counter(), 0.0, 0, 0, requests=timed)
    while True:
        run.attempts += 1
        try:
            report = node.sync(http=TimedSession(timed))
        except TransportError as e:
            run.errors.append(e.message[:200])
            if time.perf_counter() > deadline:
                break
            time.sleep(RETRY_S)
            continue
        run.pushed += report.pushed_entries
        run.ok = report.ok
        break
    run.seconds = time.perf_counter() - run.start
    return run


def own_chain(node: ChildNode) -> dict[str, list[tuple[int, str]]]:
    """Every entry of the feeds this village writes: {feed: [(seq, hash hex)]}."""
    me = node.config.node_id
    with node.open_store() as store:
        rows = store.conn.execute(
            "SELECT feed, seq, hash FROM entries WHERE feed LIKE ? ORDER BY feed, seq", (f"{me}/%",)
        )
        out: dict[str, list[tuple[int, str]]] = {}
        for feed, seq, h in rows:
            out.setdefault(feed, []).append((seq, bytes(h).hex()))
        return out


def file_cases(node: ChildNode, requests_: list[dict[str, Any]]) -> list[str]:
    """`village-agent case new --json`, in this process: the case ids filed."""
    with Workspace(node) as ws:
        return [c["case_id"] for c in case_actions.file_cases(ws, requests_)]


# -- a client process: its villages, loaded once, synced when told -------------------------------
def client_main(
    dirs: list[str], cases: int, threads: int, timeout: float, ready: Any, go: Any, out: Any, index: int
) -> None:
    """Load the villages (scrypt once each), sync each once, file its cases, report ready; on `go`, sync them all."""
    try:
        nodes = [ChildNode.load(d) for d in dirs]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(min(4, threads)) as ex:  # membership and catalog first: a village files against it
            firsts = list(ex.map(lambda n: sync_village(n, time.perf_counter() + timeout), nodes))
        first_s = time.perf_counter() - t0
        maker = CaseMaker()
        filed: dict[str, list[str]] = {}
        t1 = time.perf_counter()
        for i, n in enumerate(nodes):
            filed[n.config.node_id] = file_cases(n, maker.requests(cases, seed=1000 * index + i + 1))
        file_s = time.perf_counter() - t1
        ready.put({"index": index, "pid": os.getpid(), "first_sync_s": first_s, "file_s": file_s,
                   "first_sync_failed": [r.village for r in firsts if not r.ok]})  # fmt: skip
        go.wait()
        deadline = time.perf_counter() + timeout
        with ThreadPoolExecutor(threads) as ex:
            runs = list(ex.map(lambda n: sync_village(n, deadline), nodes))
        chains = {n.config.node_id: own_chain(n) for n in nodes}
        out.put({"index": index, "runs": [r.__dict__ | {"requests": [t.__dict__ for t in r.requests]} for r in runs],
                 "chains": chains, "filed": filed})  # fmt: skip
    except BaseException as e:  # the parent reports it and fails the run
        out.put({"index": index, "error": f"{type(e).__name__}: {e}"})
        ready.put({"index": index, "error": f"{type(e).__name__}: {e}"})


# -- the processes' CPU --------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all the machine's cores so far, every process counted (Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    return float(sum(fields) - idle), float(sum(fields))


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_s(pid) for name, pid in pids.items()} | {"bench": time.process_time()}


# -- the run -------------------------------------------------------------------------------------
class LoadBench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.a = args
        self.c = Cluster(root)
        self.c.env[PASSPHRASE_ENV] = PASSPHRASE
        # the node processes import this checkout's code, whatever is installed
        self.c.env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        os.environ[PASSPHRASE_ENV] = PASSPHRASE  # the in-process villages and the client processes
        self.towns = [township_id(t) for t in range(1, args.townships + 1)]
        # spread evenly: village i is the (i // T + 1)th of township i % T + 1
        T = args.townships
        self.villages = [(village_id(i % T + 1, i // T + 1), i % T + 1, i // T + 1) for i in range(args.villages)]
        self.sampled = [x for x in args.sample.split(",") if x]
        self.results: dict[str, Any] = {}
        self.clients: list[mp.process.BaseProcess] = []

    # setup ------------------------------------------------------------------------------------
    def issue(self, specs: list[tuple[str, str, str, str]]) -> dict[str, str]:
        """Tokens for (node, role, division, parent), as `county-server enroll` issues them."""
        out = {}
        with open_county_store(DataDir(self.c.nodes["county"].data)) as store:
            for node, role, division, parent in specs:
                issued = tokens.issue(store, role=role, division=division, parent=parent, node=node,
                                      now_ms=int(time.time() * 1000), ttl_ms=3_600_000, random_bytes=os.urandom(21))  # fmt: skip
                out[node] = str(issued.token)
        return out

    def enrol(self, name: str, role: str, parent_url: str, token: str) -> None:
        """`init --token --no-sync`, in this process (a village: through its township, sealed by the passphrase)."""
        data = DataDir(self.c.root / name)
        config, answer = enrol(data, parent_url=parent_url, token_text=token, expect_role=role,
                               passphrase_env=PASSPHRASE_ENV if role == "village" else None, since=0)  # fmt: skip
        with state.open_store(data, config) as store:
            apply_county_feed(store, answer)
        self.c.nodes[name] = Node(name, role, data.path)

    def setup(self) -> None:
        c, a = self.c, self.a
        t0 = time.perf_counter()
        c.county()
        self.start("county")
        county_url = c.nodes["county"].url
        assert county_url
        log(f"setup: {len(self.towns)} townships")
        toks = self.issue([(t, "township", township_division(i + 1), "county") for i, t in enumerate(self.towns)])
        for t in self.towns:
            self.enrol(t, "township", county_url, toks[t])
        serve = ["--sync-interval", str(a.township_interval), "--max-backoff", "2"]
        for t in self.towns:
            self.start(t, *serve)
        singles = [("ls1", 1, 90), ("lsk", 1, 91)]  # the single stream and the one village, under the first township
        everyone = self.villages + singles
        log(f"setup: enrolling {len(everyone)} villages through their townships")
        toks = self.issue([(v, "village", village_division(t, n), township_id(t)) for v, t, n in everyone])

        def enrol_village(v: tuple[str, int, int]) -> None:
            self.enrol(v[0], "village", c.nodes[township_id(v[1])].url or "", toks[v[0]])

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(enrol_village, everyone))
        wait_for(lambda: all(self.catalog_at(t) for t in self.towns), "the catalog at every township", a.timeout)
        self.results["setup_enrol_s"] = round(time.perf_counter() - t0, 1)
        log(f"setup: {a.clients} client processes load their villages, sync once and file {a.cases} cases each")
        ctx = mp.get_context("spawn")
        self.ready, self.go, self.out = ctx.Queue(), ctx.Event(), ctx.Queue()
        chunks = [self.villages[i :: a.clients] for i in range(a.clients)]
        for i, chunk in enumerate(chunks):
            p = ctx.Process(target=client_main, args=([str(c.root / v) for v, _, _ in chunk], a.cases, a.threads,
                            a.timeout, self.ready, self.go, self.out, i), daemon=True)  # fmt: skip
            p.start()
            self.clients.append(p)
        readies = [self.ready.get(timeout=a.timeout * 4) for _ in self.clients]
        bad = [r["error"] for r in readies if "error" in r]
        bad += [f"first sync of {v} failed" for r in readies for v in r.get("first_sync_failed", [])]
        if bad:
            raise RuntimeError(f"a client process failed: {bad[:5]}")
        self.results["clients_setup"] = readies
        self.results["setup_s"] = round(time.perf_counter() - t0, 1)

    def start(self, name: str, *extra: str) -> None:
        """`serve --port 0`, as `Cluster.start`; a node named in --sample runs under bench/sampler.py."""
        if name not in self.sampled:
            self.c.start(name, *extra)
            return
        n = self.c.nodes[name]
        serve_file = n.data / "serve.json"
        n.log = self.c.root / f"{name}.log"
        n.logf = n.log.open("ab")
        out = self.c.root / f"sample-{name}.json"
        args = [sys.executable, "-c", sampler_wrapper(), str(out), "-m", n.program, "serve", "--data", str(n.data),
                "--port", "0", *extra]  # fmt: skip
        n.proc = proc = subprocess.Popen(args, stdout=n.logf, stderr=subprocess.STDOUT, env=self.c.env)
        wait_for(lambda: serve_file.exists() or proc.poll() is not None, f"{name} to start", self.a.timeout)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {n.log}")
        n.url = json.loads(serve_file.read_text(encoding="utf-8"))["url"]

    def samples(self, sig: int) -> None:
        for name in self.sampled:
            proc = self.c.nodes[name].proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)

    def read_samples(self) -> dict[str, Any]:
        out = {}
        for name in self.sampled:
            f = self.c.root / f"sample-{name}.json"
            with contextlib.suppress(TimeoutError):
                wait_for(f.exists, f"{name}'s samples", 10)
            if f.exists():
                out[name] = json.loads(f.read_text(encoding="utf-8"))
        return out

    def county_sessions(self) -> tuple[int, int]:
        """The pushes and pulls the county has answered the townships so far (its `peers` table)."""
        row = self.query("county", "SELECT SUM(pushes), SUM(pulls) FROM peers WHERE node LIKE 'lt%'")[0]
        return int(row[0] or 0), int(row[1] or 0)

    def catalog_at(self, node: str) -> bool:
        return bool(self.query(node, "SELECT COUNT(*) FROM catalog_items")[0][0])

    def query(self, node: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        path = self.c.nodes[node].data / "node.sqlite"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def county_count(self, feeds: Iterable[str]) -> int:
        feeds = list(feeds)
        marks = ",".join("?" * len(feeds))
        return int(self.query("county", f"SELECT COUNT(*) FROM entries WHERE feed IN ({marks})", *feeds)[0][0])

    def wait_county(self, feeds: list[str], total: int, what: str, step: float) -> float:
        wait_for(lambda: self.county_count(feeds) >= total, what, self.a.timeout, step)
        return time.perf_counter()

    # the phases -----------------------------------------------------------------------------
    def alone(self, name: str, n: int, label: str) -> dict[str, Any]:
        """`name` files n cases, then syncs alone; the township's scheduler forwards them to the county."""
        node = ChildNode.load(self.c.root / name)
        sync_village(node, time.perf_counter() + self.a.timeout)  # membership and catalog (not timed)
        maker = CaseMaker()
        for start in range(0, n, 1000):  # ≤ 1,000 a commit, as sync_bench's `case new` files
            file_cases(node, maker.requests(min(1000, n - start), seed=start + len(name)))
        log(f"{label}: {name} syncs {n} cases alone")
        feed = f"{name}/up"
        t0 = time.perf_counter()
        run = sync_village(node, t0 + self.a.timeout)
        t_hop1 = time.perf_counter()
        t_end = self.wait_county([feed], n, f"{label} at the county", step=0.01)
        wall = t_end - t0
        lat = sorted(t.seconds * 1000 for t in run.requests)
        return {
            "village": name,
            "cases": n,
            "wall_s": round(wall, 3),
            "county_entries_per_s": round(n / wall, 1),
            "village_sync_s": round(t_hop1 - t0, 3),
            "forward_tail_s": round(t_end - t_hop1, 3),
            "requests": len(run.requests),
            "latency_ms_p50": round(percentile(lat, 50), 1),
            "latency_ms_max": round(lat[-1], 1) if lat else None,
        }

    def concurrent(self) -> None:
        a = self.a
        feeds = [f"{v}/up" for v, _, _ in self.villages]
        total = len(self.villages) * a.cases
        pids = {"county": self.c.nodes["county"].proc.pid}  # type: ignore[union-attr]
        pids |= {t: self.c.nodes[t].proc.pid for t in self.towns}  # type: ignore[union-attr]
        pids |= {f"client{i}": p.pid for i, p in enumerate(self.clients) if p.pid}
        log(f"concurrent: {len(self.villages)} villages sync at once ({a.clients} processes × {a.threads} threads)")
        before = self.county_count(feeds)
        self.samples(signal.SIGUSR1)
        sessions0 = self.county_sessions()
        cpu0, machine0 = cpu_snapshot(pids), machine_busy()
        t0 = time.perf_counter()
        wall0 = time.time()
        self.go.set()
        t_end = self.wait_county(feeds, before + total, "the concurrent phase at the county", step=0.1)
        wall = t_end - t0
        outs = [self.out.get(timeout=a.timeout) for _ in self.clients]
        t_clients = time.perf_counter()
        cpu1, machine1 = cpu_snapshot(pids), machine_busy()
        self.samples(signal.SIGUSR2)
        sessions1 = self.county_sessions()
        bad = [o["error"] for o in outs if "error" in o]
        if bad:
            raise RuntimeError(f"a client process failed: {bad}")
        runs = [r for o in outs for r in o["runs"]]
        reqs = [t for r in runs for t in r["requests"]]
        lat = sorted(t["seconds"] * 1000 for t in reqs)
        by_route: dict[str, list[float]] = {}
        for t in reqs:
            by_route.setdefault(t["path"], []).append(t["seconds"] * 1000)
        sessions = sorted(r["seconds"] * 1000 for r in runs)
        cpu = {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0}
        by_role = {
            "county": cpu["county"],
            "townships": round(sum(cpu[t] for t in self.towns), 2),
            "clients": round(sum(v for k, v in cpu.items() if k.startswith("client")), 2),
            "bench": cpu["bench"],
        }
        span = t_clients - t0
        self.chains = {v: ch for o in outs for v, ch in o["chains"].items()}
        self.filed = {v: ids for o in outs for v, ids in o["filed"].items()}
        self.results["concurrent"] = {
            "villages": len(self.villages),
            "townships": len(self.towns),
            "cases_per_village": a.cases,
            "entries": total,
            "client_processes": a.clients,
            "threads_per_client": a.threads,
            "started_utc": time.strftime("%H:%M:%S", time.gmtime(wall0)),
            "wall_s": round(wall, 3),
            "county_entries_per_s": round(total / wall, 1),
            "requests": len(reqs),
            "latency_ms_p50": round(percentile(lat, 50), 1),
            "latency_ms_p90": round(percentile(lat, 90), 1),
            "latency_ms_p99": round(percentile(lat, 99), 1),
            "latency_ms_max": round(lat[-1], 1) if lat else None,
            "latency_by_route": {
                k: {"n": len(v), "p50": round(percentile(sorted(v), 50), 1), "p99": round(percentile(sorted(v), 99), 1)}
                for k, v in sorted(by_route.items())
            },
            "statuses": dict(Counter(str(t["status"]) for t in reqs)),
            "sync_ms_p50": round(percentile(sessions, 50), 1),
            "sync_ms_p99": round(percentile(sessions, 99), 1),
            "sync_ms_max": round(sessions[-1], 1) if sessions else None,
            "syncs_retried": sum(1 for r in runs if r["attempts"] > 1),
            "syncs_failed": sum(1 for r in runs if not r["ok"]),
            "errors": Counter(e.split(":")[0][:80] for r in runs for e in r["errors"]).most_common(5),
            "pushed_entries": sum(r["pushed"] for r in runs),
            "last_sync_done_s": round(max((r["start"] + r["seconds"] for r in runs), default=t0) - t0, 3),
            # each township session at the county pulls once (and pushes when it has something)
            "county_pushes_from_townships": sessions1[0] - sessions0[0],
            "county_pulls_from_townships": sessions1[1] - sessions0[1],
            "cpu_s": by_role,
            "cpu_s_per_process": cpu,
            "cpu_busy_of_all_cores": round(sum(by_role.values()) / (span * (os.cpu_count() or 1)), 3),
            "cpu_span_s": round(span, 3),
            "machine_busy_of_all_cores": round((machine1[0] - machine0[0]) / max(1.0, machine1[1] - machine0[1]), 3),
            "samples": self.read_samples(),
            "load_avg": os.getloadavg(),
        }

    def check(self) -> None:
        """Every entry each village wrote is at the county exactly once, with the same hash; one case row per case."""
        lost = duplicated = differ = 0
        feeds = [f for ch in self.chains.values() for f in ch]
        marks = ",".join("?" * len(feeds))
        held: dict[str, dict[int, str]] = {}
        counts: Counter[tuple[str, int]] = Counter()
        for feed, seq, h in self.query(
            "county", f"SELECT feed, seq, hash FROM entries WHERE feed IN ({marks})", *feeds
        ):
            counts[(feed, seq)] += 1
            held.setdefault(feed, {})[seq] = bytes(h).hex()
        duplicated = sum(n - 1 for n in counts.values())
        written = 0
        for ch in self.chains.values():
            for feed, chain in ch.items():
                for seq, h in chain:
                    written += 1
                    got = held.get(feed, {}).get(seq)
                    if got is None:
                        lost += 1
                    elif got != h:
                        differ += 1
        ups = [f"{v}/up" for v in self.filed]
        rows = self.query(
            "county",
            f"SELECT feed, COUNT(*), COUNT(DISTINCT case_id) FROM cases WHERE feed IN ({','.join('?' * len(ups))}) "
            "GROUP BY feed",
            *ups,
        )
        cases = {feed: (n, d) for feed, n, d in rows}
        ids_at_county = {
            feed: {cid for (cid,) in self.query("county", "SELECT case_id FROM cases WHERE feed = ?", feed)}
            for feed in ups[:50]  # a sample: the ids are compared for the first 50 villages
        }
        case_lost = sum(max(0, len(ids) - cases.get(f"{v}/up", (0, 0))[1]) for v, ids in self.filed.items())
        case_dup = sum(n - d for n, d in cases.values())
        ids_differ = sum(1 for f, ids in ids_at_county.items() if ids != set(self.filed[f.split("/")[0]]))
        self.results["check"] = {
            "entries_written": written,
            "lost": lost,
            "duplicated": duplicated,
            "hash_differs": differ,
            "cases_filed": sum(len(ids) for ids in self.filed.values()),
            "cases_lost": case_lost,
            "cases_duplicated": case_dup,
            "case_ids_differ_in_sample": ids_differ,
            "ok": lost == duplicated == differ == case_lost == case_dup == ids_differ == 0,
        }

    def run(self) -> None:
        self.results["load_avg_at_start"] = os.getloadavg()
        self.setup()
        single_n = self.a.single_cases or len(self.villages) * self.a.cases
        self.results["single_stream"] = self.alone("ls1", single_n, "single stream")
        self.results["one_village"] = self.alone("lsk", self.a.cases, "one village")
        self.concurrent()
        self.check()
        self.results["p6"] = p6(self.results)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.go.set()
        for p in self.clients:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
        self.c.close()


def p6(r: dict[str, Any]) -> dict[str, Any]:
    single = r["single_stream"]["county_entries_per_s"]
    conc = r["concurrent"]["county_entries_per_s"]
    ratio = round(conc / single, 3) if single else None
    p99 = r["concurrent"]["latency_ms_p99"]
    return {
        "ratio_vs_single_stream": ratio,
        "rate_holds": ratio is not None and ratio >= 0.5,
        "p99_ms": p99,
        "p99_holds": p99 < 1000,
        "holds": ratio is not None and ratio >= 0.5 and p99 < 1000,
    }


def table(res: dict[str, Any]) -> str:
    r = res["results"]
    s, one, c, chk, goal = r["single_stream"], r["one_village"], r["concurrent"], r["check"], r["p6"]
    rows: list[tuple[str, Any]] = [
        ("villages / townships / cases each", f"{c['villages']} / {c['townships']} / {c['cases_per_village']}"),
        ("client processes × threads", f"{c['client_processes']} × {c['threads_per_client']}"),
        ("single stream: cases, wall s", f"{s['cases']:,}, {s['wall_s']}"),
        ("single stream: county entries/s", f"{s['county_entries_per_s']:,.1f}"),
        ("one village alone: wall s (cases)", f"{one['wall_s']} ({one['cases']})"),
        ("concurrent: wall s", c["wall_s"]),
        ("concurrent: county entries/s", f"{c['county_entries_per_s']:,.1f}"),
        ("ratio vs single stream (goal ≥ 0.5)", goal["ratio_vs_single_stream"]),
        ("request latency p50 / p99 / max ms (goal p99 < 1000)",
         f"{c['latency_ms_p50']} / {c['latency_ms_p99']} / {c['latency_ms_max']}"),
        ("sync session p50 / p99 ms", f"{c['sync_ms_p50']} / {c['sync_ms_p99']}"),
        ("requests; statuses", f"{c['requests']}; {c['statuses']}"),
        ("syncs retried / failed", f"{c['syncs_retried']} / {c['syncs_failed']}"),
        ("CPU s county / townships / clients / bench", " / ".join(str(v) for v in c["cpu_s"].values())),
        ("CPU busy of all cores: this run / whole machine", f"{c['cpu_busy_of_all_cores']} / {c['machine_busy_of_all_cores']}"),
        ("lost / duplicated / hash differs", f"{chk['lost']} / {chk['duplicated']} / {chk['hash_differs']}"),
        ("P6 holds", {True: "yes", False: "NO"}[goal["holds"]]),
    ]  # fmt: skip
    return "\n".join(f"{k:55} {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--villages", type=int, default=500, help="villages in the concurrent phase")
    ap.add_argument("--townships", type=int, default=20, help="township processes (villages spread evenly)")
    ap.add_argument("--cases", type=int, default=20, help="cases each village files before the concurrent phase")
    ap.add_argument("--single-cases", type=int, default=0, help="cases of the single stream (default villages × cases)")
    ap.add_argument("--clients", type=int, default=2, help="client processes the villages are spread over")
    ap.add_argument("--threads", type=int, default=25, help="villages syncing at once in each client process")
    ap.add_argument("--township-interval", type=int, default=5, help="the townships' serve --sync-interval (s)")
    ap.add_argument("--sample", default="", help="nodes to run under bench/sampler.py, e.g. county,lt01")
    ap.add_argument("--quick", action="store_true", help="2 townships × 3 villages × 3 cases, 1 client process")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds any one wait may take")
    ap.add_argument("--dir", type=Path, default=None, help="where the nodes' data goes (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs afterwards")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "load_bench.json", help="write here")
    args = ap.parse_args(argv)
    if args.quick:
        args.villages, args.townships, args.cases, args.clients, args.threads = 6, 2, 3, 1, 6
        args.timeout = min(args.timeout, 120.0)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sanji-load-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    bench = LoadBench(args, root)
    started = time.time()
    failed: str | None = None
    try:
        bench.run()
    except (Exception, KeyboardInterrupt) as e:
        failed = f"{type(e).__name__}: {e}"
        log(f"FAILED: {failed}")
    finally:
        bench.close()
    res = {
        "meta": {
            "tool": "sanji load_bench",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "load_avg_at_start": bench.results.get("load_avg_at_start"),
            "latency": "per HTTP request of a village, timed in its client process around requests (sent → read)",
            "total_s": round(time.time() - started, 1),
        },
        "results": bench.results,
        "failed": failed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    if failed is None:
        print(table(res))
    print(f"json: {args.json}")
    if args.keep:
        print(f"data: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0 if res["results"]["check"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
