"""Sync benchmark: real county, township and village processes on 127.0.0.1, side by side with the peer.

    python bench/sync_bench.py [--cases 10000] [--catalog 2000] [--peer/--no-peer] [--json FILE] [--keep]

Every node is its own process with its own data directory and SQLite file,
created and enrolled with one-time tokens exactly as an IT officer would
(`county-server init`, `county-server enroll`, `township-node init --token`,
`village-agent init --token --passphrase-env`), and served with `serve --port 0`.
The county imports the demo catalog (sanji_domain/data/demo_catalog.json, 48
items) right after `county-server init`, so the villages hold it from their
first sync. Every node folds what it appends or receives into the domain
tables (cases, case_pii, case_events, catalog_items …) in the same transaction,
and the villages seal entry bodies and personal data at rest with a key
unlocked by the agent's passphrase (the bench sets $SANJI_BENCH_PASSPHRASE in
the children's environment). The phases (issue 4):

  A  N valid ~1 KB cases logged offline at a village (`village-agent case new
     --offline --json`, ≤ 1,000 a commit, not timed): requests built with
     `DemoPeople.case_request` for demo items a village may file, validated by
     the node (item, applicant with a valid 身份证号, every required material),
     the agent's notes padding each case's entry body to ~1 KB; then timed:
     `village-agent sync` (village → township) and the township's own scheduler
     forwarding them (township → county) until the county's SQLite holds all N.
  B  a fresh village enrolled (`village-agent init --no-sync`), then an M-item
     catalog (~2 KB items derived from the demo catalog, codes of their own)
     imported at the county together with the demo items (unchanged, so the
     release writes exactly the M new items) and pulled by the township (not
     timed); then timed: the fresh village's first sync pulling the catalog
     through its township (`village-agent sync`; again if the first stops
     early, all of them timed: `syncs` says how many it took).
  C  1 % new cases at the village of A, then one sync; timed until the county holds them.
  D  a backlog of cases at the township while its link to the county is held
     down, released, the township killed (SIGKILL) once the county holds ~40 %,
     restarted on the same port: entries re-sent (the county's
     peers.resent_batches for the township) and entries applied twice (must be 0).
  E  a no-op sync: requests and bytes.
  F  V villages under T townships (default 50 under 5) with a few cases each,
     all asked to sync at once (`POST /api/v1/sync-now` to their running
     `village-agent serve`): county entries/s and request latency.

How things are measured, from outside the programs (no code in the nodes is changed):

* Wire bytes and requests: every link (village → township, township → county)
  goes through a counting TCP proxy in this process: the children's `--parent`
  URL is the proxy's. It counts every byte read and written on the sockets
  (HTTP headers and bodies, bodies compressed as the nodes send them) and
  parses the request line and Content-Length of each request, so it knows the
  request count per route and each request's latency (first request byte
  in → last response byte out, as seen at the proxy). This is the same count
  the peer harness makes at its server's sockets; the proxy adds one loopback
  hop (and a little CPU in this process) to every figure.
* Peak RSS: VmHWM from /proc/<pid>/status for the serve processes (read at the
  end of each phase: a high-water mark since the process started); for one-shot
  CLI processes (`sync`, `init` …) the child's own VmHWM, written by the child at
  exit (os.wait4's ru_maxrss would include this process's own RSS, which Linux
  carries over fork and exec into the child's high-water mark).
* Counts at the county: read-only SQLite queries on its node.sqlite. A village's
  file is sealed: the bench opens it only as the agent does, with the `Store`
  and the sealer of its pii.key (`Cluster.village_query`).
* Timed CLI commands (A, B, C, E) include the interpreter's start and imports,
  reported once as `meta.cli_startup_s`; the peer's figures are timed inside
  its client process.
* Case bodies pad their notes with random common characters (as the peer does),
  so compression is not flattered by the notes; the rest of a case (the item, the
  materials checklist) repeats from case to case as it would in real use, and
  catalog items repeat the demo catalog's text and compress better than real
  data would.

The townships forward on their own schedule, as in production: a push from a
village asks the township's scheduler to sync up at once. A push that arrives
while the township's upstream sync is already running is dropped by the
scheduler (APScheduler logs "skipped: maximum number of running instances
reached") and waits for the next --sync-interval, so the benchmark runs the
townships with --township-interval 1 (default) to bound that wait to ~1 s; each
phase reports `township_skipped_sync_triggers` (counted in the townships' logs)
and `forward_tail_s` (the county's last arrival after the village's sync ended).

With `--peer` (the default) and `node` on PATH it then runs the peer harness
(../shared/peers/pouchdb/run.sh, PouchDB 9 over express-pouchdb, CouchDB
replication protocol) at the same N, M and D size, and with `--p8` (the default)
bench/protocol_bench.py for P8. It prints a table of Sanji against the peer with
the ratios for the targets P1–P5, P7, P8 and writes everything to --json
(default bench/results/sync_bench.json).

Options: --cases N, --catalog M, --resume-n ND (phase D, default N), --villages V,
--townships T, --f-cases K (cases per village in F), --township-interval S (the
townships' --sync-interval), --page-kib (the nodes' page size, default theirs),
--dir DIR (data, default a temporary directory), --keep (keep it), --peer-repeats R,
--peer-script PATH, --p8/--no-p8, --p8-entries E, --phases ABCDEF (C and E need A),
--timeout S (per wait), --json FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sanji_domain import catalog as domain_catalog  # noqa: E402
from sanji_domain import commands as domain_commands  # noqa: E402
from sanji_domain import pii  # noqa: E402
from sanji_domain.demo import DemoPeople  # noqa: E402
from sync_protocol import canonical  # noqa: E402
from sync_protocol.sqlite_store import Store  # noqa: E402

PROGRAMS = {"county": "county_server", "township": "township_node", "village": "village_agent"}
COUNTY = "430321"
DEFAULT_PEER = ROOT.parent / "shared" / "peers" / "pouchdb" / "run.sh"
DEMO_CATALOG = ROOT / "sanji_domain" / "data" / "demo_catalog.json"
PASSPHRASE_ENV = "SANJI_BENCH_PASSPHRASE"  # the village agents' passphrase (seals bodies and personal data)
PASSPHRASE = "代办员的口令-bench"
CASE_BYTES = 1024  # a case entry's body, as the node stores and sends it (the peer pads its docs to 1,024 too)
MIN_NOTES_BYTES = 100  # items whose body leaves less room than this for the agent's notes are not drawn


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------------
# Padding drawn from ~500 common characters compresses roughly like real prose; repeated phrases
# would flatter compression. The peer harness pads its case documents the same way.
COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
    "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其"
    "些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建"
    "月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接"
    "知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研七办六"
)
PHRASES = ["申请人家庭经济困难，", "经村委会入户核查，", "材料齐全符合受理条件，", "已告知申请人办理时限，",
           "待乡镇复核后上报县级部门，", "家庭成员共四人，", "已在村务公开栏公示七日，"]  # fmt: skip


def demo_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))["items"]
    return items


class CaseMaker:
    """Valid ~1 KB case requests for the demo catalog (`case new --json`), sized by the body the node stores.

    The requests come from `DemoPeople.case_request` (Faker villagers, valid 身份证号, every
    required material listed) for demo items a village may file (`village_mode` set). To know
    the size of the entry body the node will build from a request (the item, the materials
    checklist, case_id, local_no … are added by `case new`), each request is first run through
    `sanji_domain.commands.new_cases` here, against an in-memory copy of the demo catalog as
    released: that also proves it valid before any node sees it. The agent's `notes` then pad
    the body to ~`target` bytes with random common characters, as the peer pads its documents.
    Items whose body leaves less than `min_notes` bytes for notes (4+ materials) are not drawn,
    so every case is ~`target` bytes.
    """

    def __init__(self, target: int = CASE_BYTES, min_notes: int = MIN_NOTES_BYTES) -> None:
        self.target = target
        raw = demo_items()
        bodies = domain_catalog.plan_release({}, domain_catalog.check_items(raw, DEMO_CATALOG.name), 1).items
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("CREATE TABLE catalog_items (task_code TEXT PRIMARY KEY, name TEXT, state TEXT, body TEXT)")
        self.conn.execute("CREATE TABLE cases (local_no TEXT, origin_case_id TEXT)")
        self.conn.execute("CREATE TABLE entries (feed TEXT, hlc INTEGER)")
        self.conn.executemany(
            "INSERT INTO catalog_items VALUES (?, ?, ?, ?)",
            [(b["task_code"], b["name"], b["state"], json.dumps(b, ensure_ascii=False)) for b in bodies],
        )
        self.actor = domain_commands.Actor("v00", "village", village_division(101, 1), "t1", "county")
        village = [i for i in raw if i.get("village_mode")]
        probe = DemoPeople(seed=0)
        base = {i["task_code"]: self._sizes([probe.case_request(i, notes="")])[0][1] for i in village}
        self.items = [i for i in village if base[i["task_code"]] <= target - min_notes]
        if not self.items:
            raise SystemExit(f"no demo item fits a {target}-byte case with {min_notes} bytes of notes")

    def _sizes(self, requests: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
        """Each request's body as `case new` would store it (notes blank) and its canonical size."""
        now = int(time.time() * 1000)
        cmd = domain_commands.new_cases(self.conn, self.actor, [{**r, "notes": None} for r in requests], now_ms=now)
        out = []
        for rec in cmd.records:
            body = {**rec.body, "notes": ""}
            out.append((body, len(canonical.encode(body))))
        return out

    def requests(self, n: int, seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        people = DemoPeople(seed=seed)
        reqs = [people.case_request(rng.choice(self.items)) for _ in range(n)]
        for r, (_, size) in zip(reqs, self._sizes(reqs), strict=True):
            notes: list[str] = []
            while size < self.target - 40:
                part = (
                    (rng.choice(PHRASES) if rng.random() < 0.3 else "")
                    + "".join(rng.choice(COMMON) for _ in range(rng.randint(6, 18)))
                    + "，"
                )
                notes.append(part)
                size += len(part.encode())
            r["notes"] = "".join(notes)
        return reqs


def catalog_items(m: int) -> list[dict[str, Any]]:
    """M ~2 KB catalog items, cycling through the demo catalog with their own codes.

    Codes never collide with the demo catalog's (36 characters, the demo's are 31), so
    a file of the demo items plus these makes a release of exactly M new items.
    """
    demo = demo_items()
    codes = {i["task_code"] for i in demo}
    items = []
    for i in range(m):
        item = json.loads(json.dumps(demo[i % len(demo)]))
        item["task_code"] = (item["task_code"] + f"{i:06d}")[-36:]
        item["catalog_code"] = f"{i:012d}"
        item["name"] = f"{item['name']}（{i // len(demo) + 1}）"
        assert item["task_code"] not in codes
        items.append(item)
    return items


# -- a counting TCP proxy ------------------------------------------------------------------------
@dataclass
class Req:
    link: str
    method: str = ""
    path: str = ""
    t_start: float = 0.0
    t_sent: float = 0.0
    t_first: float = 0.0
    t_last: float = 0.0
    req_bytes: int = 0
    resp_bytes: int = 0

    @property
    def latency(self) -> float:
        return (self.t_last or self.t_sent) - self.t_start


class _Conn:
    """One proxied connection: parses request heads (HTTP/1.1, no pipelining) to count and time requests."""

    def __init__(self, proxy: CountingProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.head = b""
        self.need = 0
        self.cur: Req | None = None
        self.last: Req | None = None

    def feed_request(self, data: bytes, t: float) -> None:
        i = 0
        while i < len(data):
            if self.cur is None:
                self.cur = Req(self.proxy.name, t_start=t)
            if self.need > 0:
                take = min(self.need, len(data) - i)
                self.cur.req_bytes += take
                self.need -= take
                i += take
                if self.need == 0:
                    self._done(t)
                continue
            before = len(self.head)
            self.head += data[i:]
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                self.cur.req_bytes += len(data) - i
                return
            used = end + 4 - before
            self.cur.req_bytes += used
            i += used
            lines = self.head[:end].decode("latin-1").split("\r\n")
            self.head = b""
            parts = lines[0].split(" ")
            self.cur.method, self.cur.path = parts[0], parts[1].split("?")[0] if len(parts) > 1 else ""
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            self.need = length
            if length == 0:
                self._done(t)

    def _done(self, t: float) -> None:
        assert self.cur is not None
        self.cur.t_sent = t
        self.last = self.cur
        self.proxy.record(self.cur)
        self.cur = None

    def feed_response(self, n: int, t: float) -> None:
        r = self.last
        if r is not None:
            if not r.t_first:
                r.t_first = t
            r.t_last = t
            r.resp_bytes += n


class CountingProxy:
    """Listens on 127.0.0.1:0 and forwards to `target`, counting bytes and requests on the sockets."""

    def __init__(self, name: str, target_url: str) -> None:
        self.name = name
        host, port = target_url.split("://", 1)[1].rsplit(":", 1)
        self.target = (host, int(port))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Req] = []
        self.accepts: list[float] = []
        self.c2s = 0
        self.s2c = 0
        self.blocked = False
        self._lock = threading.Lock()
        self._conns: set[_Conn] = set()
        self._closed = False
        threading.Thread(target=self._accept_loop, name=f"proxy-{name}", daemon=True).start()

    def record(self, r: Req) -> None:
        with self._lock:
            self.requests.append(r)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, client, upstream)
            with self._lock:
                self._conns.add(conn)
                self.accepts.append(time.perf_counter())
            threading.Thread(target=self._pump, args=(conn, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, False), daemon=True).start()

    def _pump(self, conn: _Conn, up: bool) -> None:
        src, dst = (conn.client, conn.upstream) if up else (conn.upstream, conn.client)
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                t = time.perf_counter()
                if up:
                    conn.feed_request(data, t)
                else:
                    conn.feed_response(len(data), t)
                with self._lock:
                    if up:
                        self.c2s += len(data)
                    else:
                        self.s2c += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        for s in (conn.client, conn.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        with self._lock:
            self._conns.discard(conn)

    def block(self) -> None:
        """Behave like a link that is down: refuse new connections, cut the open ones."""
        self.blocked = True
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            self._drop(c)

    def unblock(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self.block()

    def window(self, t0: float, t1: float) -> list[Req]:
        with self._lock:
            return [r for r in self.requests if t0 <= r.t_start < t1]


def wire_summary(reqs: list[Req]) -> dict[str, Any]:
    by_route: dict[str, dict[str, int]] = {}
    for r in reqs:
        d = by_route.setdefault(f"{r.method} {r.path}", {"n": 0, "in_bytes": 0, "out_bytes": 0})
        d["n"] += 1
        d["in_bytes"] += r.req_bytes
        d["out_bytes"] += r.resp_bytes
    lat = sorted(r.latency * 1000 for r in reqs)
    return {
        "requests": len(reqs),
        "bytes_client_to_server": sum(r.req_bytes for r in reqs),
        "bytes_server_to_client": sum(r.resp_bytes for r in reqs),
        "bytes_total": sum(r.req_bytes + r.resp_bytes for r in reqs),
        "latency_ms_p50": round(percentile(lat, 50), 2) if lat else None,
        "latency_ms_p99": round(percentile(lat, 99), 2) if lat else None,
        "latency_ms_max": round(lat[-1], 2) if lat else None,
        "by_route": by_route,
    }


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# -- processes -----------------------------------------------------------------------------------
@dataclass
class Node:
    name: str
    role: str
    data: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str | None = None
    port: int = 0
    logf: Any = None
    proxy: CountingProxy | None = None  # the proxy in front of this node's server
    peak_kb: int = 0  # the largest VmHWM seen over the node's serve processes

    @property
    def program(self) -> str:
        return PROGRAMS[self.role]


@dataclass
class CliRun:
    label: str
    rc: int
    wall_s: float
    maxrss_kb: int
    stdout: str
    stderr: str


class CliFailed(RuntimeError):
    pass


# `python -c HWM_WRAPPER FILE -m PROGRAM ARGS…`: runs PROGRAM as `python -m` would and, at exit, writes
# the process's own peak RSS (VmHWM, kB) to FILE
HWM_WRAPPER = """
import atexit, runpy, sys
out = sys.argv[1]
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            with open(out, "w") as f:
                f.write(line.split()[1])
atexit.register(hwm)
assert sys.argv[2] == "-m"
sys.argv = [sys.argv[3], *sys.argv[4:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def vmhwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Cluster:
    root: Path
    timeout: float
    nodes: dict[str, Node] = field(default_factory=dict)
    proxies: list[CountingProxy] = field(default_factory=list)
    env: dict[str, str] = field(
        default_factory=lambda: {**os.environ, "PYTHONUNBUFFERED": "1", PASSPHRASE_ENV: PASSPHRASE}
    )
    cli_runs: list[CliRun] = field(default_factory=list)
    sealers: dict[str, pii.Sealer] = field(default_factory=dict)

    def run(self, node: str, *args: str, label: str = "", check: bool = True, timeout: float = 1800) -> CliRun:
        """Run one CLI command as its own process (`python -m PROGRAM …`); its peak RSS is its own VmHWM.

        Not os.wait4's ru_maxrss: Linux carries the parent's high-water mark over fork and exec
        into the child's, so every CLI would report at least this process's RSS (which holds the
        requests and catalogs it writes). The child runs its program through `HWM_WRAPPER`,
        which writes /proc/self/status VmHWM (the exec'd process's own) to a file at exit.
        """
        n = self.nodes[node]
        cmd = [sys.executable, "-m", n.program, *args]
        if "--data" not in args:
            cmd += ["--data", str(n.data)]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
            hwm = Path(tmp) / "hwm"
            argv = [sys.executable, "-c", HWM_WRAPPER, str(hwm), *cmd[1:]]
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env)
            timer = threading.Timer(timeout, p.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(p.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            res = CliRun(
                label or f"{node} {args[0]}",
                p.returncode,
                wall,
                int(hwm.read_text()) if hwm.exists() else int(usage.ru_maxrss),
                out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"),
            )
        self.cli_runs.append(res)
        if check and res.rc != 0:
            raise CliFailed(f"{' '.join(cmd)} failed ({res.rc}):\n{res.stdout}\n{res.stderr}")
        return res

    def json(self, node: str, *args: str, label: str = "") -> Any:
        return json.loads(self.run(node, *args, "--json", label=label).stdout)

    def county(self) -> Node:
        """The county, with the demo catalog released (as a county has before it enrols anyone)."""
        n = self.nodes["county"] = Node("county", "county", self.root / "county")
        self.run("county", "init", "--county", COUNTY, "--name", "示范县")
        self.run("county", "catalog", "import", str(DEMO_CATALOG), "--json", label="county catalog import (demo)")
        return n

    def init_village(self, name: str, parent_url: str, token: str, *extra: str, label: str = "") -> CliRun:
        """`village-agent init`: the agent's passphrase (from the env) seals the laptop's data at rest."""
        self.nodes[name] = Node(name, "village", self.root / name)
        return self.run(name, "init", "--parent", parent_url, "--token", token, "--passphrase-env", PASSPHRASE_ENV,
                        *extra, label=label or f"{name} init")  # fmt: skip

    def enrol(self, name: str, role: str, division: str, parent: str, *extra: str) -> CliRun:
        token = self.json(
            "county", "enroll", "--role", role, "--division", division, "--parent", parent, "--node-id", name
        )["token"]
        p = self.nodes[parent]
        assert p.proxy is not None, f"{parent} has no proxy in front of it"
        if role == "village":
            return self.init_village(name, p.proxy.url, token, *extra)
        self.nodes[name] = Node(name, role, self.root / name)
        return self.run(name, "init", "--parent", p.proxy.url, "--token", token, *extra, label=f"{name} init")

    def start(self, name: str, *extra: str, port: int = 0) -> Node:
        n = self.nodes[name]
        serve_file = n.data / "serve.json"
        if serve_file.exists():
            serve_file.unlink()
        args = [sys.executable, "-m", n.program, "serve", "--data", str(n.data), "--port", str(port), *extra]
        n.logf = (self.root / f"{name}.log").open("ab")
        n.proc = subprocess.Popen(args, stdout=n.logf, stderr=subprocess.STDOUT, env=self.env)
        proc = n.proc
        wait_for(lambda: serve_file.exists() or proc.poll() is not None, f"{name} to start", self.timeout)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {self.root / (name + '.log')}")
        n.url = json.loads(serve_file.read_text(encoding="utf-8"))["url"]
        n.port = int(n.url.rsplit(":", 1)[1])
        if n.proxy is None and n.role != "village":
            n.proxy = CountingProxy(name, n.url)
            self.proxies.append(n.proxy)
        return n

    def rss_kb(self, name: str) -> int:
        n = self.nodes[name]
        if n.proc is not None and n.proc.poll() is None:
            n.peak_kb = max(n.peak_kb, vmhwm_kb(n.proc.pid))
        return n.peak_kb

    def serve_rss(self) -> dict[str, int]:
        return {name: self.rss_kb(name) for name, n in self.nodes.items() if n.proc is not None}

    def stop(self, name: str) -> None:
        n = self.nodes[name]
        if n.proc is not None and n.proc.poll() is None:
            self.rss_kb(name)
            n.proc.send_signal(signal.SIGTERM)
            try:
                n.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
        n.proc = None
        if n.logf is not None:
            n.logf.close()
            n.logf = None

    def kill9(self, name: str) -> None:
        n = self.nodes[name]
        assert n.proc is not None
        self.rss_kb(name)
        n.proc.send_signal(signal.SIGKILL)
        n.proc.wait()
        n.proc = None
        if n.logf is not None:
            n.logf.close()
            n.logf = None

    def close(self) -> None:
        procs = [n for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for n in procs:  # SIGTERM everyone first, then wait: 50 villages stop in parallel
            with contextlib.suppress(OSError):
                n.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for n in procs:
            try:
                n.proc.wait(timeout=30)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                n.proc.kill()  # type: ignore[union-attr]
                n.proc.wait()  # type: ignore[union-attr]
        for n in self.nodes.values():
            n.proc = None
            if n.logf is not None:
                n.logf.close()
                n.logf = None
        for p in self.proxies:
            p.close()

    # -- reading the nodes' SQLite ------------------------------------------------------------------
    def query(self, node: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read-only SQL on a county's or township's file (a village's is sealed: `village_query`)."""
        assert self.nodes[node].role != "village", f"{node} is a village: use village_query"
        path = self.nodes[node].data / "node.sqlite"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def village_query(self, node: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """SQL on a village's file, opened as the agent opens it: with the sealer of its pii.key.

        Only while the village runs no process (it is a CLI-only village in A–E).
        """
        n = self.nodes[node]
        if node not in self.sealers:
            self.sealers[node] = pii.open_key_file(n.data / "pii.key", self.env[PASSPHRASE_ENV])
        with Store(n.data / "node.sqlite", seal=self.sealers[node]) as store:
            return store.conn.execute(sql, params).fetchall()

    def count(self, node: str, feed: str) -> int:
        return int(self.query(node, "SELECT COUNT(*) FROM entries WHERE feed = ?", feed)[0][0])

    def count_many(self, node: str, feeds: Iterable[str]) -> int:
        feeds = list(feeds)
        marks = ",".join("?" * len(feeds))
        return int(self.query(node, f"SELECT COUNT(*) FROM entries WHERE feed IN ({marks})", *feeds)[0][0])

    def skipped_triggers(self, name: str) -> int:
        """How often the township's scheduler dropped a "sync now" because a sync was running (its log)."""
        path = self.root / f"{name}.log"
        if not path.exists():
            return 0
        return path.read_text(encoding="utf-8", errors="replace").count("maximum number of running instances")

    def resent(self, node: str) -> int:
        rows = self.query("county", "SELECT resent_batches FROM peers WHERE node = ?", node)
        return int(rows[0][0]) if rows else 0


def wait_for(cond: Callable[[], Any], what: str, timeout: float, step: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def log_cases(c: Cluster, village: str, bodies: list[dict[str, Any]], per_commit: int = 1000) -> float:
    """Log cases offline in commits of ≤ per_commit (`case new --json FILE`); returns the seconds it took."""
    t0 = time.perf_counter()
    for start in range(0, len(bodies), per_commit):
        f = c.root / f"cases-{village}-{start}.json"
        f.write_text(json.dumps(bodies[start : start + per_commit], ensure_ascii=False), encoding="utf-8")
        c.run(village, "case", "new", "--offline", "--json", str(f), label=f"{village} case new")
        f.unlink()
    return time.perf_counter() - t0


def village_division(township: int, village: int) -> str:
    return f"{COUNTY}{township:03d}{200 + village:03d}"


def township_division(township: int) -> str:
    return f"{COUNTY}{township:03d}000"


def cli_rss(runs: list[CliRun]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        out[r.label] = max(out.get(r.label, 0), r.maxrss_kb)
    return out


def mb(kb: int | None) -> float | None:
    return round(kb / 1024, 1) if kb else None


# -- the phases ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.a = args
        self.c = Cluster(root, timeout=args.timeout)
        self.results: dict[str, Any] = {}
        self.skipped: dict[str, int] = {}
        self.page = ["--page-kib", str(args.page_kib)] if args.page_kib else []
        self.workers = ["--workers", str(args.server_workers)] if args.server_workers else []
        self.tserve = ["--sync-interval", str(args.township_interval), "--max-backoff", "2", *self.page, *self.workers]
        self.cases = CaseMaker()

    def phase_rss(self, runs_from: int) -> dict[str, Any]:
        skipped = {}
        for name, n in self.c.nodes.items():
            if n.role == "township":
                now = self.c.skipped_triggers(name)
                if now > self.skipped.get(name, 0):
                    skipped[name] = now - self.skipped.get(name, 0)
                self.skipped[name] = now
        return {
            "serve_peak_rss_mb": {k: mb(v) for k, v in self.c.serve_rss().items()},
            "cli_peak_rss_mb": {k: mb(v) for k, v in cli_rss(self.c.cli_runs[runs_from:]).items()},
            "township_skipped_sync_triggers": skipped,
        }

    def setup(self) -> None:
        c = self.c
        t0 = time.perf_counter()
        c.county()
        c.start("county", *self.workers)
        c.enrol("t1", "township", township_division(101), "county")
        c.start("t1", *self.tserve)
        c.enrol("va", "village", village_division(101, 1), "t1")
        c.enrol("vd", "village", village_division(101, 3), "t1")
        self.results["setup_s"] = round(time.perf_counter() - t0, 2)
        startup = c.run("va", "--help", "--data", "x", label="village-agent --help", check=False)
        self.results["cli_startup_s"] = round(startup.wall_s, 3)  # interpreter + imports, in every CLI figure

    def wait_county(self, feeds: list[str], total: int, what: str, step: float = 0.02) -> float:
        wait_for(lambda: self.c.count_many("county", feeds) >= total, what, self.a.timeout, step)
        return time.perf_counter()

    def links(self, t0: float, t1: float, proxies: Iterable[CountingProxy] | None = None) -> dict[str, Any]:
        return {p.name: wire_summary(p.window(t0, t1)) for p in (proxies or self.c.proxies)}

    def phase_a(self) -> None:
        c, n = self.c, self.a.cases
        log(f"A: logging {n} cases at va (not timed)")
        bodies = self.cases.requests(n, 1)
        logged = log_cases(c, "va", bodies)
        before = c.count("county", "va/up")
        mark = len(c.cli_runs)
        log("A: timed: village-agent sync, then the township's scheduler forwards to the county")
        t0 = time.perf_counter()
        sync = c.run("va", "sync", "--json", *self.page, label="va sync")
        t_hop1 = time.perf_counter()
        t_end = self.wait_county(["va/up"], before + n, "phase A cases at the county")
        report = json.loads(sync.stdout)
        t1p = c.nodes["t1"].proxy
        assert t1p is not None
        # the session starts at the village's first request (the peer, too, times inside its client);
        # the interpreter's start before it is reported apart as command_wall_s
        first = min(r.t_start for r in t1p.window(t0, t_end))
        wall = t_end - first
        hop1 = self.links(t0, t_end, [t1p])["t1"]
        hop2 = self.links(t0, t_end, [c.nodes["county"].proxy])["county"]  # type: ignore[list-item]
        body_bytes, folded, pii_rows = c.query(
            "county",
            "SELECT (SELECT AVG(LENGTH(body)) FROM entries WHERE feed = 'va/up' AND kind = 'case.new'), "
            "(SELECT COUNT(*) FROM cases WHERE feed = 'va/up'), "
            "(SELECT COUNT(*) FROM case_pii p JOIN cases k USING (case_id) WHERE k.feed = 'va/up')",
        )[0]
        self.results["A"] = {
            "n": n,
            "avg_body_bytes": round(body_bytes),
            "avg_request_bytes": round(sum(len(json.dumps(b, ensure_ascii=False).encode()) for b in bodies) / n),
            "items_drawn": len(self.cases.items),
            "county_cases_folded": folded,
            "county_case_pii_rows": pii_rows,
            "log_cases_s": round(logged, 2),
            "wall_s": round(wall, 3),
            "docs_per_s": round(n / wall, 1),
            "command_wall_s": round(t_end - t0, 3),
            "command_docs_per_s": round(n / (t_end - t0), 1),
            "hop1_wall_s": round(report["elapsed_s"], 3),
            "hop1_docs_per_s": round(n / report["elapsed_s"], 1),
            "forward_tail_s": round(t_end - t_hop1, 3),
            "village_sync_report": report,
            "requests_hop1": hop1["requests"],
            "requests_hop2": hop2["requests"],
            "wire_hop1": hop1,
            "wire_hop2": hop2,
            "wire_bytes_per_case_hop1": round(hop1["bytes_total"] / n, 1),
            "wire_bytes_per_case_two_hops": round((hop1["bytes_total"] + hop2["bytes_total"]) / n, 1),
            "village_sync_peak_rss_mb": mb(sync.maxrss_kb),
            **self.phase_rss(mark),
        }

    def phase_b(self) -> None:
        c, m = self.c, self.a.catalog
        log(f"B: enrolling vb (no sync), importing a {m}-item catalog at the county, pulled by t1 (not timed)")
        # vb is enrolled before the release: a village whose own membership entry comes after a commit
        # larger than one page never gets past the first page (see docs/performance.md, phase B)
        token = c.json(
            "county", "enroll", "--role", "village", "--division", village_division(101, 2), "--parent", "t1",
            "--node-id", "vb",
        )["token"]  # fmt: skip
        mark = len(c.cli_runs)
        t1p = c.nodes["t1"].proxy
        assert t1p is not None
        init = c.init_village("vb", t1p.url, token, "--no-sync", label="vb init")  # enrol only
        # the whole catalog as an import states it: the demo items (released at setup, unchanged, so not
        # written again) and M new items; a release writes only new and changed items, so M item entries
        demo, items = demo_items(), catalog_items(m)
        codes = {i["task_code"] for i in items}
        f = c.root / "catalog.json"
        f.write_text(json.dumps({"county": COUNTY, "items": demo + items}, ensure_ascii=False), encoding="utf-8")
        avg = round(len(json.dumps(items, ensure_ascii=False).encode()) / m)
        release = c.json("county", "catalog", "import", str(f), label="county catalog import")
        moved = {k: len(v) for k, v in release["changes"].items()}
        if moved != {"added": m, "changed": 0, "cancelled": 0}:
            raise RuntimeError(f"the catalog release should add {m} items and change nothing else: {moved}")
        c.run("t1", "sync", "--json", *self.page, label="t1 sync")
        wait_for(
            lambda: (
                c.query("t1", "SELECT COUNT(DISTINCT key) FROM entries WHERE kind = 'catalog.item'")[0][0]
                >= len(demo) + m
            ),
            "the catalog at t1",
            self.a.timeout,
        )
        log("B: timed: the fresh village's first sync, pulling the catalog through t1 (village-agent sync)")

        def held() -> tuple[dict[str, str], int]:
            at_vb = dict(c.village_query("vb", "SELECT task_code, state FROM catalog_items"))  # as folded at vb
            return at_vb, sum(1 for code, state in at_vb.items() if code in codes and state == "在用")

        # A fresh village's first sync stops after its first pull page (docs/performance.md, phase B): sync
        # again until vb holds the catalog, and time every sync it took (`syncs` says how many).
        t0 = time.perf_counter()
        syncs: list[CliRun] = []
        reports: list[dict[str, Any]] = []
        while True:
            syncs.append(c.run("vb", "sync", "--json", *self.page, label="vb sync"))
            t_end = time.perf_counter()
            reports.append(json.loads(syncs[-1].stdout))
            at_vb, got = held()
            if (got >= m and len(at_vb) == len(demo) + m) or len(syncs) == 5 or reports[-1]["noop"]:
                break
        entries = c.village_query("vb", "SELECT COUNT(*) FROM entries WHERE kind = 'catalog.item'")[0][0]
        wall = sum(r.wall_s for r in syncs)  # the sync commands, not the checks between them
        inside = sum(r["elapsed_s"] for r in reports)  # timed inside the client process, as the peer times its client
        ok = got >= m and len(at_vb) == len(demo) + m
        self.results["B"] = {
            "m": m,
            "avg_item_bytes": avg,
            "wall_s": round(inside, 3),
            "docs_per_s": round(m / inside, 1) if ok else None,
            "command_wall_s": round(wall, 3),
            "command_docs_per_s": round(m / wall, 1) if ok else None,
            "syncs": len(syncs),
            "sync_reports": reports,
            "catalog_items_at_village": got,
            "demo_items_at_village": len(at_vb) - got,
            "catalog_item_entries_at_village": entries,
            "release": {"version": release["version"], "count": release["count"], **moved},
            "entries_pulled": sum(r["pulled_entries"] for r in reports),
            "first_sync_ok": ok and len(syncs) == 1,
            "catalog_ok": ok,
            "wire": self.links(t0, t_end, [t1p])["t1"],
            "requests": len(t1p.window(t0, t_end)),
            "village_init_peak_rss_mb": mb(init.maxrss_kb),
            "village_sync_peak_rss_mb": mb(max(r.maxrss_kb for r in syncs)),
            "note": "docs/s from the syncs' own durations (inside the client, as the peer measures), summed over "
            "the syncs it took; command_* include the interpreter's start and imports",
            **self.phase_rss(mark),
        }
        if not ok:  # a rate for syncs that did not move the catalog means nothing
            raise RuntimeError(f"after {len(syncs)} syncs vb holds {got} of the {m} new items: {reports}")

    def phase_c(self) -> None:
        c = self.c
        k = max(1, self.a.cases // 100)
        log(f"C: logging {k} new cases at va (not timed), then a timed sync")
        log_cases(c, "va", self.cases.requests(k, 3))
        before = c.count("county", "va/up")
        total = self.a.cases + k
        mark = len(c.cli_runs)
        t0 = time.perf_counter()
        sync = c.run("va", "sync", "--json", *self.page, label="va sync")
        t_hop1 = time.perf_counter()
        t_end = self.wait_county(["va/up"], total, "phase C cases at the county", step=0.005)
        wall = t_end - t0
        hop1 = self.links(t0, t_end, [c.nodes["t1"].proxy])["t1"]  # type: ignore[list-item]
        hop2 = self.links(t0, t_end, [c.nodes["county"].proxy])["county"]  # type: ignore[list-item]
        self.results["C"] = {
            "new": k,
            "county_before": before,
            "wall_s": round(wall, 3),
            "docs_per_s": round(k / wall, 1),
            "hop1_wall_s": round(t_hop1 - t0, 3),
            "forward_tail_s": round(t_end - t_hop1, 3),
            "requests": json.loads(sync.stdout)["requests"],
            "requests_hop1": hop1["requests"],
            "requests_hop2": hop2["requests"],
            "wire_hop1": hop1,
            "wire_hop2": hop2,
            "village_sync_peak_rss_mb": mb(sync.maxrss_kb),
            **self.phase_rss(mark),
        }

    def phase_d(self) -> None:
        c, nd = self.c, self.a.resume_n
        log(f"D: logging {nd} cases at vd, pushing them to t1 while t1's link to the county is down")
        log_cases(c, "vd", self.cases.requests(nd, 4))
        cp = c.nodes["county"].proxy
        assert cp is not None
        mark = len(c.cli_runs)
        resent_before = c.resent("t1")
        cp.block()
        c.run("vd", "sync", "--json", *self.page, label="vd sync")
        t1_port = c.nodes["t1"].port
        log("D: link back; killing t1 (SIGKILL) once the county holds 40 %")
        t0 = time.perf_counter()
        cp.unblock()
        target = int(nd * 0.4)
        seen = wait_for(lambda: c.count("county", "vd/up") >= target and c.count("county", "vd/up"),
                        "40 % of the backlog at the county", self.a.timeout, step=0.002)  # fmt: skip
        t_kill = time.perf_counter()
        c.kill9("t1")
        through = c.count("county", "vd/up")
        t_restart = time.perf_counter()
        c.start("t1", *self.tserve, port=t1_port)
        t_up = time.perf_counter()
        t_end = self.wait_county(["vd/up"], nd, "phase D backlog at the county")
        rows = c.query(
            "county", "SELECT COUNT(*), COUNT(DISTINCT seq), COUNT(DISTINCT key) FROM entries WHERE feed = 'vd/up'"
        )
        cnt, dseq, dkey = rows[0]
        county_chain = c.query("county", "SELECT seq, hash FROM entries WHERE feed = 'vd/up' ORDER BY seq")
        village_chain = c.village_query("vd", "SELECT seq, hash FROM entries WHERE feed = 'vd/up' ORDER BY seq")
        self.results["D"] = {
            "n": nd,
            "kill_fraction": 0.4,
            "county_count_when_seen": seen,
            "county_count_after_kill": through,
            "killed_at_fraction": round(through / nd, 3),
            "kill_came_too_late": through >= nd,
            "killed_after_s": round(t_kill - t0, 3),
            "restart_s": round(t_up - t_restart, 3),
            "converge_after_restart_s": round(t_end - t_up, 3),
            "wall_s": round(t_end - t0, 3),
            "docs_per_s": round(nd / (t_end - t0), 1),
            "resent_batches": c.resent("t1") - resent_before,
            "applied_twice": (cnt - dseq) + (cnt - dkey),
            "county_entries": cnt,
            "county_chain_equals_village": county_chain == village_chain,
            "wire_hop2": self.links(t0, t_end, [cp])["county"],
            "requests": len(cp.window(t0, t_end)),
            **self.phase_rss(mark),
        }

    def phase_e(self) -> None:
        c = self.c
        log("E: draining receipts, then a timed no-op sync")
        mark = len(c.cli_runs)
        for _ in range(20):  # receipts travel down after every push: wait until a sync finds nothing to do
            c.run("t1", "sync", "--json", label="t1 sync")
            if json.loads(c.run("va", "sync", "--json", label="va sync").stdout)["noop"]:
                break
        t1p = c.nodes["t1"].proxy
        assert t1p is not None
        t0 = time.perf_counter()
        sync = c.run("va", "sync", "--json", label="va sync")
        t_end = time.perf_counter()
        report = json.loads(sync.stdout)
        wire = self.links(t0, t_end, [t1p])["t1"]
        self.results["E"] = {
            "noop": report["noop"],
            "wall_s": round(t_end - t0, 3),
            "docs_per_s": None,
            "requests": report["requests"],
            "requests_at_socket": wire["requests"],
            "bytes_total": wire["bytes_total"],
            "wire": wire,
            "village_sync_peak_rss_mb": mb(sync.maxrss_kb),
            **self.phase_rss(mark),
        }

    def phase_f(self) -> None:
        c, T, V, k = self.c, self.a.townships, self.a.villages, self.a.f_cases
        log(f"F: {V} villages under {T} townships (setup not timed)")
        mark = len(c.cli_runs)
        towns = [f"ft{t}" for t in range(1, T + 1)]
        for i, t in enumerate(towns):
            c.enrol(t, "township", township_division(201 + i), "county")
            c.start(t, *self.tserve)
        villages = [(f"fv{v}", towns[v % T], village_division(201 + v % T, v // T + 1)) for v in range(V)]
        tokens = {}
        for name, town, div in villages:  # tokens from the county CLI, one at a time
            tokens[name] = c.json(
                "county", "enroll", "--role", "village", "--division", div, "--parent", town, "--node-id", name
            )["token"]

        def init(v: tuple[str, str, str]) -> None:
            name, town, _ = v
            proxy = c.nodes[town].proxy
            assert proxy is not None
            c.init_village(name, proxy.url, tokens[name], label="fv init")  # enrols and runs the first sync

        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 2))) as ex:
            list(ex.map(init, villages))
        for name, _, _ in villages:
            c.start(name, "--sync-interval", "3600", *self.page)  # one sync at start, then not for an hour

        def idle(name: str) -> bool:
            with urllib.request.urlopen(f"{c.nodes[name].url}/api/v1/status", timeout=30) as r:
                s = json.loads(r.read())
            return 0 < s["last_attempt_ms"] <= s["last_success_ms"]

        wait_for(lambda: all(idle(name) for name, _, _ in villages), "F villages' first syncs", self.a.timeout, 0.2)

        for name, _, _ in villages:  # the requests are made here (CaseMaker is single-threaded), filed in parallel
            f = c.root / f"cases-{name}.json"
            f.write_text(json.dumps(self.cases.requests(k, int(name[2:]) + 100), ensure_ascii=False), encoding="utf-8")

        def log_f(name: str) -> None:
            f = c.root / f"cases-{name}.json"
            c.run(name, "case", "new", "--offline", "--json", str(f), label="fv case new")
            f.unlink()

        with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 2))) as ex:
            list(ex.map(log_f, [name for name, _, _ in villages]))
        feeds = [f"{name}/up" for name, _, _ in villages]
        total = V * k

        def sync_now(name: str) -> float:
            t = time.perf_counter()
            req = urllib.request.Request(
                f"{c.nodes[name].url}/api/v1/sync-now",
                data=b"{}",
                method="POST",
                headers={"Content-Type": "application/json"},  # a script's request: no form can send it
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            return t

        log(f"F: timed: POST /api/v1/sync-now to all {V} villages at once")
        proxies = [c.nodes[t].proxy for t in towns]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(V) as ex:
            list(ex.map(sync_now, [name for name, _, _ in villages]))
        t_end = self.wait_county(feeds, total, "phase F cases at the county", step=0.02)
        wall = t_end - t0
        hop1 = wire_summary([r for p in proxies if p for r in p.window(t0, t_end)])
        cp = c.nodes["county"].proxy
        assert cp is not None
        hop2 = wire_summary(cp.window(t0, t_end))
        village_rss = [c.rss_kb(name) for name, _, _ in villages]
        self.results["F"] = {
            "villages": V,
            "townships": T,
            "cases": V * k,
            "wall_s": round(wall, 3),
            "docs_per_s": round(V * k / wall, 1),
            "county_entries_per_s": round(V * k / wall, 1),
            "requests_hop1": hop1["requests"],
            "requests_hop2": hop2["requests"],
            "latency_ms_p99_village_to_township": hop1["latency_ms_p99"],
            "latency_ms_p99_township_to_county": hop2["latency_ms_p99"],
            "latency_note": "per HTTP request at the counting proxy: first request byte in to last response byte out",
            "wire_hop1": hop1,
            "wire_hop2": hop2,
            "village_serve_peak_rss_mb_max": mb(max(village_rss)),
            "village_serve_peak_rss_mb_median": mb(int(statistics.median(village_rss))),
            **self.phase_rss(mark),
        }
        for name, _, _ in villages:  # 50 resident villages: stop them before the rest is reported
            c.stop(name)
        self.results["F"]["serve_peak_rss_mb"] = {
            k2: v for k2, v in self.results["F"]["serve_peak_rss_mb"].items() if not k2.startswith("fv")
        }


# -- the peer and P8 -----------------------------------------------------------------------------
def run_peer(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    script = Path(args.peer_script)
    if shutil.which("node") is None:
        return {"skipped": "node is not on PATH"}
    if not script.exists():
        return {"skipped": f"{script} does not exist"}
    out = out_dir / "peer.json"
    cmd = ["bash", str(script), str(args.cases), "--m", str(args.catalog), "--resume-n", str(args.resume_n),
           "--repeats", str(args.peer_repeats), "--out", str(out)]  # fmt: skip
    log(f"peer: {' '.join(cmd)} (minutes at N=10000)")
    t0 = time.perf_counter()
    with (out_dir / "peer.log").open("wb") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout=args.peer_timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return {"error": f"timed out after {args.peer_timeout} s", "log": str(out_dir / "peer.log")}
    if rc != 0 or not out.exists():
        return {"error": f"run.sh exited {rc}", "log": str(out_dir / "peer.log")}
    data = json.loads(out.read_text(encoding="utf-8"))
    return {"command": " ".join(cmd), "wall_s": round(time.perf_counter() - t0, 1), "median": data["median"],
            "meta": data.get("meta", {}), "trouble": data.get("trouble")}  # fmt: skip


def run_p8(args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    out = out_dir / "protocol_bench.json"
    cmd = [sys.executable, str(ROOT / "bench" / "protocol_bench.py"), "--entries", str(args.p8_entries),
           "--repeat", "1", "--json", str(out)]  # fmt: skip
    log(f"P8: {' '.join(cmd[1:])}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not out.exists():
        return {"error": done.stderr[-2000:], "command": " ".join(cmd)}
    return {"command": " ".join(cmd), **json.loads(out.read_text())}


def targets(r: dict[str, Any], peer: dict[str, Any] | None, p8: dict[str, Any] | None) -> dict[str, Any]:
    pm = (peer or {}).get("median") or {}
    A, B, D, E = r.get("A", {}), r.get("B", {}), r.get("D", {}), r.get("E", {})

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    peer_wire = (pm["A.bytes_client_to_server"] + pm["A.bytes_server_to_client"]) / pm["A.n"] if pm else None
    out: dict[str, Any] = {}

    def t(key: str, what: str, sanji: Any, peer_v: Any, rat: float | None, holds: bool | None, goal: str) -> None:
        out[key] = {"what": what, "sanji": sanji, "peer": peer_v, "ratio": rat, "target": goal, "holds": holds}

    r1 = ratio(A.get("docs_per_s"), pm.get("A.docs_per_s"))
    t("P1", "phase A docs/s (Sanji two hops; peer one hop)", A.get("docs_per_s"), pm.get("A.docs_per_s"), r1,
      None if r1 is None else r1 >= 3, "≥ 3×")  # fmt: skip
    r2 = ratio(A.get("wire_bytes_per_case_hop1"), peer_wire)
    t("P2", "wire bytes per case, one hop, at the server socket", A.get("wire_bytes_per_case_hop1"),
      round(peer_wire, 1) if peer_wire else None, r2, None if r2 is None else r2 <= 0.35, "≤ 0.35×")  # fmt: skip
    p3 = E.get("requests") == 1 and (E.get("bytes_total") or 1 << 30) < 2048 if E else None
    t("P3", "no-op sync: requests, bytes", f"{E.get('requests')} req, {E.get('bytes_total')} B" if E else None,
      None, None, p3, "1 request, < 2 KB")  # fmt: skip
    r4 = ratio(B.get("docs_per_s"), pm.get("B.docs_per_s"))
    t("P4", "phase B docs/s (fresh village pulls the catalog)", B.get("docs_per_s"), pm.get("B.docs_per_s"), r4,
      None if r4 is None else r4 >= 3, "≥ 3×")  # fmt: skip
    p5 = (D.get("resent_batches", 99) <= 1 and D.get("applied_twice", 1) == 0) if D else None
    t("P5", "kill at 40 %: batches re-sent, entries applied twice",
      f"{D.get('resent_batches')} re-sent, {D.get('applied_twice')} twice" if D else None,
      f"{pm.get('D.docs_resent')} docs re-sent" if pm else None, None, p5, "≤ 1 batch re-sent, 0 twice")  # fmt: skip
    r7 = ratio(A.get("village_sync_peak_rss_mb"), pm.get("A.client_rss_mb"))
    t("P7", "village agent peak RSS (phase A sync) MB", A.get("village_sync_peak_rss_mb"), pm.get("A.client_rss_mb"),
      r7, None if r7 is None else r7 <= 0.5, "≤ 0.5×")  # fmt: skip
    r8 = round(p8["ratio_b_c"], 3) if p8 and "ratio_b_c" in p8 else None
    t("P8", "verify+apply / raw executemany (protocol_bench.py)", round(p8["apply"]) if r8 else None,
      round(p8["raw"]) if r8 else None, r8, None if r8 is None else r8 >= 0.5, "≥ 0.5×")  # fmt: skip
    return out


def table(res: dict[str, Any]) -> str:
    r, pm = res["phases"], ((res.get("peer") or {}).get("median") or {})

    def f(v: Any, nd: int = 1) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.{nd}f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    def rat(a: Any, b: Any) -> str:
        return f"{a / b:.2f}×" if isinstance(a, int | float) and isinstance(b, int | float) and a and b else "-"

    A, B, C, D, E, F = (r.get(k, {}) for k in "ABCDEF")
    rows = [
        ("A docs/s (Sanji 2 hops)", A.get("docs_per_s"), pm.get("A.docs_per_s")),
        ("A docs/s hop 1 only", A.get("hop1_docs_per_s"), pm.get("A.docs_per_s")),
        ("A wall s", A.get("wall_s"), pm.get("A.wall_s")),
        ("A requests (hop 1)", A.get("requests_hop1"), pm.get("A.requests")),
        ("A wire bytes/case (hop 1)", A.get("wire_bytes_per_case_hop1"),
         (pm["A.bytes_client_to_server"] + pm["A.bytes_server_to_client"]) / pm["A.n"] if pm else None),
        ("A client peak RSS MB", A.get("village_sync_peak_rss_mb"), pm.get("A.client_rss_mb")),
        ("A server peak RSS MB (township / peer server)", (A.get("serve_peak_rss_mb") or {}).get("t1"),
         pm.get("A.server_rss_mb_AC")),
        ("B docs/s", B.get("docs_per_s"), pm.get("B.docs_per_s")),
        ("B wall s", B.get("wall_s"), pm.get("B.wall_s")),
        ("B requests", B.get("requests"), pm.get("B.requests")),
        ("B village syncs it took", B.get("syncs"), None),
        ("B client peak RSS MB", B.get("village_init_peak_rss_mb"), pm.get("B.client_rss_mb")),
        ("C wall s", C.get("wall_s"), pm.get("C.wall_s")),
        ("C requests (hop 1)", C.get("requests_hop1"), pm.get("C.requests")),
        ("D re-sent (Sanji batches / peer docs)", D.get("resent_batches"), pm.get("D.docs_resent")),
        ("D applied twice (Sanji) / written-minus-n (peer)", D.get("applied_twice"), pm.get("D.server_docs_written_minus_n")),
        ("E no-op requests", E.get("requests"), None),
        ("E no-op bytes", E.get("bytes_total"), None),
        ("F county entries/s", F.get("county_entries_per_s"), None),
        ("F p99 ms village→township", F.get("latency_ms_p99_village_to_township"), None),
        ("F p99 ms township→county", F.get("latency_ms_p99_township_to_county"), None),
    ]  # fmt: skip
    lines = [f"{'':50} {'Sanji':>12} {'peer':>12} {'ratio':>8}"]
    for name, s, p in rows:
        lines.append(f"{name:50} {f(s):>12} {f(p):>12} {rat(s, p):>8}")
    lines.append("")
    lines.append(f"{'target':4} {'goal':28} {'Sanji':>22} {'peer':>18} {'ratio':>7}  holds")
    for key, t in res["targets"].items():
        holds = {True: "yes", False: "NO", None: "-"}[t["holds"]]
        lines.append(f"{key:4} {t['target']:28} {f(t['sanji']):>22} {f(t['peer']):>18} {f(t['ratio'], 2):>7}  {holds}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="N: cases in phase A (1 %% of them in C)")
    ap.add_argument("--catalog", type=int, default=2_000, help="M: catalog items in phase B")
    ap.add_argument("--resume-n", type=int, default=None, help="cases in phase D (default: N)")
    ap.add_argument("--villages", type=int, default=50, help="villages in phase F")
    ap.add_argument("--townships", type=int, default=5, help="townships in phase F")
    ap.add_argument("--f-cases", type=int, default=20, help="cases per village in each round of phase F")
    ap.add_argument(
        "--township-interval", type=int, default=1, help="the townships' --sync-interval (seconds; see the docstring)"
    )
    ap.add_argument("--page-kib", type=int, default=None, help="the nodes' --page-kib (default: theirs, 1024)")
    ap.add_argument(
        "--server-workers",
        type=int,
        default=0,
        help="county's and townships' serve --workers (0: verify in the server)",
    )
    ap.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True, help="run the PouchDB peer too")
    ap.add_argument("--peer-script", default=str(DEFAULT_PEER), help="the peer harness's run.sh")
    ap.add_argument("--peer-repeats", type=int, default=1, help="--repeats for the peer harness")
    ap.add_argument("--peer-timeout", type=float, default=1800.0, help="seconds before the peer run is abandoned")
    ap.add_argument("--p8", action=argparse.BooleanOptionalAction, default=True, help="run protocol_bench.py for P8")
    ap.add_argument("--p8-entries", type=int, default=10_000, help="--entries for protocol_bench.py")
    ap.add_argument("--phases", default="ABCDEF", help="which phases to run (A is needed by C and E)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds any one wait may take")
    ap.add_argument(
        "--dir", type=Path, default=None, help="where the nodes' data goes (default: a temporary directory)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs afterwards")
    ap.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "sync_bench.json", help="write results here"
    )
    args = ap.parse_args(argv)
    if args.resume_n is None:
        args.resume_n = args.cases

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop every node

    signal.signal(signal.SIGTERM, on_term)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="sanji-sync-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise SystemExit(f"{root} is not empty")
    bench = Bench(args, root)
    started = time.time()
    failed: str | None = None
    try:
        bench.setup()
        for ph in args.phases:
            getattr(bench, f"phase_{ph.lower()}")()
    except (Exception, KeyboardInterrupt, SystemExit) as e:  # stop the nodes, report what was measured, fail
        failed = f"{type(e).__name__}: {e}"
        log(f"FAILED: {failed}")
    finally:
        serve_rss = bench.c.serve_rss()
        bench.c.close()
    results = bench.results
    res: dict[str, Any] = {
        "meta": {
            "tool": "sanji sync_bench",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(),
            "data_dir": str(root),
            "wire_bytes": "counted at a TCP proxy in front of each server: HTTP headers + bodies as sent (compressed)",
            "rss": "serve processes: VmHWM from /proc; CLI processes: their own VmHWM, written at exit (not ru_maxrss, which includes the bench's RSS)",
            "setup_s": results.pop("setup_s", None),
            "cli_startup_s": results.pop("cli_startup_s", None),
            "total_s": round(time.time() - started, 1),
        },
        "phases": results,
        "serve_peak_rss_mb": {k: mb(v) for k, v in serve_rss.items()},
        "cli_peak_rss_mb": {k: mb(v) for k, v in cli_rss(bench.c.cli_runs).items()},
        "failed": failed,
    }
    peer = p8 = None
    if failed is None and args.p8:
        p8 = run_p8(args, root)
    if failed is None and args.peer:
        peer = run_peer(args, root)
    res["peer"], res["p8"] = peer, p8
    res["targets"] = targets(results, peer, p8)
    res["meta"]["total_s"] = round(time.time() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    print(table(res))
    if peer and ("error" in peer or "skipped" in peer):
        print(f"peer: {peer.get('error') or peer.get('skipped')}")
    if p8 is None and args.p8 is False:
        print("P8: run `python bench/protocol_bench.py` (or drop --no-p8)")
    print(f"json: {args.json}")
    if not args.keep:
        if args.dir:  # a directory the caller gave: empty it, leave it
            for child in root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        else:
            shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"data: {root}")
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
