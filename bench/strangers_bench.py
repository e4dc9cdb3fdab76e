#!/usr/bin/env python3
"""Strangers against a township (issue 12, point 4): does an honest village still sync, and what does it cost?

Real processes on 127.0.0.1: a county, a township (`township-node serve`) and a
village. While the village syncs, this process keeps up, against the
township's port, `--hostile` unauthenticated connections of each kind, and
opens a new one whenever the township closes one (a persistent attacker):

    idle         connects and sends nothing
    slow-header  sends a request line, then one header byte every 2 s (slowloris)
    big-body     a push with well-formed signature headers (the village's own
                 node id, a current time, a random nonce and signature: they
                 pass every check that can be made before the body), declaring
                 64 MiB, sending `--stall-mib` MiB, then stalling

It samples the township's resident memory (VmRSS, Linux) all along, times
`GET /api/v1/health` every 0.5 s, and runs `village-agent sync` (new cases
each time) once the attack is up and again at the end of `--hold-s`. Goal
(issue 12): with 200 of each kind, the honest syncs succeed and the township
stays under 150 MiB.

    python bench/strangers_bench.py                 # 200 of each kind, 45 s
    python bench/strangers_bench.py --hostile 30 --hold-s 5 --json out.json

The figures of the last run are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402

KINDS = ("idle", "slow-header", "big-body")
ITEM = "高龄津贴申请"


@dataclass
class Tally:
    opened: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # "kind status" of what the township said before closing
    refused_connect: int = 0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def status_of(answer: bytes) -> str:
    if not answer:
        return "closed"
    parts = answer.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 1 and answer.startswith(b"HTTP/") else "garbage"


async def hostile(kind: str, host: str, port: int, args: argparse.Namespace, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection(host, port)
        except OSError:
            tally.refused_connect += 1
            await asyncio.sleep(0.5)
            continue
        tally.opened[kind] += 1
        answer = b""
        try:
            if kind == "slow-header":
                w.write(b"POST /api/v1/sync/push HTTP/1.1\r\nHost: township\r\n")
            elif kind == "big-body":
                head = (
                    "POST /api/v1/sync/push HTTP/1.1\r\nHost: township\r\n"
                    f"X-Sanji-Node: {args.claim}\r\nX-Sanji-Time: {int(time.time() * 1000)}\r\n"
                    f"X-Sanji-Nonce: {secrets.token_hex(16)}\r\nX-Sanji-Signature: {secrets.token_hex(64)}\r\n"
                    f"X-Sanji-Compression: deflate\r\nContent-Length: {64 * 1024 * 1024}\r\n\r\n"
                )
                w.write(head.encode("ascii"))
                chunk = secrets.token_bytes(64 * 1024)
                for _ in range(args.stall_mib * 16):
                    w.write(chunk)
                    await w.drain()
            while not stop.is_set():
                await w.drain()
                try:
                    answer = await asyncio.wait_for(r.read(4096), 2.0)
                    break  # an answer, or the township closed the connection
                except TimeoutError:
                    if kind == "slow-header":
                        w.write(b"X")
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            w.close()
        if not stop.is_set():
            tally.answered[f"{kind} {status_of(answer)}"] += 1


def attack(host: str, port: int, args: argparse.Namespace, tally: Tally) -> tuple[threading.Thread, Any]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        tasks = [
            asyncio.create_task(hostile(k, host, port, args, tally, stop)) for k in KINDS for _ in range(args.hostile)
        ]
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    return thread, lambda: loop.call_soon_threadsafe(stop.set)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hostile", type=int, default=200, help="connections of each kind (default 200)")
    ap.add_argument("--stall-mib", type=int, default=8, help="MiB a big body sends before it stalls (default 8)")
    ap.add_argument(
        "--hold-s", type=float, default=45.0, help="seconds the attack lasts (default 45, counted from when all are up)"
    )
    ap.add_argument(
        "--cases", type=int, default=20, help="new cases the village syncs each time (default 20; 0: only hello)"
    )
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="sanji-strangers-"))
    root.mkdir(parents=True, exist_ok=True)
    c = Cluster(root)
    try:
        return run(c, args)
    finally:
        c.close()


def run(c: Cluster, args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    c.county(catalog=args.cases > 0)
    c.start("county")
    c.enrol("t1", "township", "430321101000", "county", c.nodes["county"].url or "")
    township = c.start("t1")
    c.enrol("v11", "village", "430321101201", "t1", township.url or "")
    args.claim = "v11"
    assert township.proc is not None and township.url is not None
    pid, url = township.proc.pid, township.url
    host, port = url.split("//")[1].split(":")
    print(f"setup {time.monotonic() - t0:.1f} s; township pid {pid} at {url}", flush=True)

    rss: list[float] = []
    health: list[float] = []
    health_failures = 0
    sampling = threading.Event()

    def sample() -> None:
        nonlocal health_failures
        next_probe = 0.0
        while not sampling.is_set():
            value = rss_mib(pid)
            if value is not None:
                rss.append(value)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + 0.5
                t = time.perf_counter()
                try:
                    with urllib.request.urlopen(url + "/api/v1/health", timeout=5) as r:
                        r.read()
                    health.append(time.perf_counter() - t)
                except OSError:
                    health_failures += 1
            time.sleep(0.2)

    def honest_sync(label: str) -> dict[str, Any]:
        if args.cases:
            c.new_cases("v11", args.cases, ITEM)
        t = time.perf_counter()
        done = c.run("v11", "sync", "--json", check=False)
        took = time.perf_counter() - t
        report = json.loads(done.stdout) if done.returncode == 0 else {}
        ok = done.returncode == 0 and report.get("problem", "x") == ""
        print(f"{label}: exit {done.returncode}, {took:.2f} s, up {report.get('pushed_entries', '?')}", flush=True)
        if not ok:
            print(done.stdout, done.stderr, file=sys.stderr)
        return {"ok": ok, "seconds": round(took, 2), "exit": done.returncode}

    baseline_sync = honest_sync("honest sync, no attack")
    baseline = rss_mib(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tally = Tally()
    thread, stop = attack(host, int(port), args, tally)
    wait_for(lambda: all(tally.opened[k] >= args.hostile for k in KINDS), "the hostile connections", timeout=120)
    attacked = time.monotonic()
    print(f"attack up: {dict(tally.opened)}", flush=True)
    during = honest_sync("honest sync under attack")
    late = None
    if args.hold_s > 0:  # 0: one sync under attack is enough (the test)
        time.sleep(max(0.0, args.hold_s - (time.monotonic() - attacked)))
        late = honest_sync("honest sync at the end")
    stop()
    thread.join(timeout=30)
    sampling.set()
    sampler.join(timeout=10)

    peak = max(rss) if rss else None
    figures = {
        "hostile_per_kind": args.hostile,
        "stall_mib": args.stall_mib,
        "hold_s": args.hold_s,
        "township_rss_mib": {"before": _r(baseline), "peak": _r(peak)},
        "honest_sync": {"no_attack": baseline_sync, "under_attack": during, **({"end": late} if late else {})},
        "health": {
            "probes": len(health) + health_failures,
            "failed": health_failures,
            "p50_ms": _r(statistics.median(health) * 1000) if health else None,
            "max_ms": _r(max(health) * 1000) if health else None,
        },
        "opened": dict(tally.opened),
        "answers": dict(sorted(tally.answered.items())),
        "refused_connect": tally.refused_connect,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
    ok = during["ok"] and (late is None or late["ok"]) and (peak is None or peak < 150)
    return 0 if ok else 1


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def print_table(f: dict[str, Any]) -> None:
    h = f["health"]
    rows = [
        ("hostile connections", f"{f['hostile_per_kind']} × {', '.join(KINDS)} (reconnecting)"),
        ("township RSS before / peak", f"{f['township_rss_mib']['before']} / {f['township_rss_mib']['peak']} MiB"),
        *[
            (f"honest sync: {k}", f"{'ok' if v['ok'] else 'FAILED'} in {v['seconds']} s")
            for k, v in f["honest_sync"].items()
        ],
        ("GET /health p50 / max", f"{h['p50_ms']} / {h['max_ms']} ms ({h['failed']} of {h['probes']} failed)"),
        ("connections opened", ", ".join(f"{k} {v}" for k, v in f["opened"].items())),
        ("township's answers", ", ".join(f"{k}: {v}" for k, v in f["answers"].items()) or "—"),
    ]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")


if __name__ == "__main__":
    sys.exit(main())
