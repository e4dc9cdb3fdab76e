"""The local three-tier demo: a county, two townships and three villages on 127.0.0.1.

    python scripts/demo.py [--dir DIR] [--keep] [--no-wait] [--base-port PORT]

Every node is a real process with its own SQLite file and port, enrolled with a
one-time token exactly as on real machines. The county publishes the demo
catalog; each village logs cases offline and syncs; the townships relay them
to the county, whose receipts come back down. Ctrl-C stops every node cleanly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "county_server" / "data" / "demo_catalog.json"
TOWNSHIPS = {"chengguan": ("430321101000", "城关镇", 10), "huashi": ("430321102000", "花石镇", 11)}
VILLAGES = {
    "meihua": ("chengguan", "430321101201", "梅花村", 20),
    "xinqiao": ("chengguan", "430321101202", "新桥村", 21),
    "shimen": ("huashi", "430321102201", "石门村", 22),
}
NAMES = [
    "王秀英",
    "李建国",
    "张桂兰",
    "刘德华",
    "陈玉梅",
    "杨志强",
    "黄淑珍",
    "赵国庆",
    "周秀兰",
    "吴明辉",
    "徐凤英",
    "孙立新",
]
ITEMS = [
    "城乡居民养老保险参保登记",
    "高龄津贴申请",
    "残疾人证申领",
    "农村低保申请",
    "生育登记",
    "老年优待证办理",
    "临时救助申请",
]
PROGRAMS = {"county": "county_server", "township": "township_node", "village": "village_agent"}


def run(program: str, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", PROGRAMS[program], *args], input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{program} {' '.join(args[:2])} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def start(program: str, data: Path, port: int, logs: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    serve = data / "serve.json"
    if serve.exists():
        serve.unlink()
    log = (logs / f"{data.name}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", PROGRAMS[program], "serve", "--data", str(data), "--port", str(port), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not serve.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            tail = (logs / f"{data.name}.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-2:]
            raise SystemExit(f"{data.name} did not start: {' '.join(tail)}")
        time.sleep(0.1)
    return proc, json.loads(serve.read_text(encoding="utf-8"))["url"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--dir",
        type=Path,
        default=ROOT / "demo-data",
        help="where the nodes' data directories go (default: demo-data/)",
    )
    ap.add_argument("--keep", action="store_true", help="reuse the data from the last run instead of starting fresh")
    ap.add_argument(
        "--no-wait", action="store_true", help="set everything up, print the summary, stop the nodes and exit"
    )
    ap.add_argument(
        "--base-port",
        type=int,
        default=8400,
        help="the county's port; townships use +10…, villages +20… (0: any free ports)",
    )
    args = ap.parse_args()
    base: Path = args.dir.resolve()
    if base.exists() and not args.keep:
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()  # SIGTERM on Linux, TerminateProcess on Windows
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        county = base / "county"
        fresh = not (county / "node.json").exists()
        if fresh:
            run("county", "init", "--data", str(county), "--county", "430321", "--name", "示范县")
            run("county", "catalog", "import", str(CATALOG), "--data", str(county))
        port_of = (lambda offset: 0) if args.base_port == 0 else (lambda offset: args.base_port + offset)
        p, county_url = start("county", county, port_of(0), logs)
        procs.append(p)
        urls = {"county": county_url}
        def enrol(program: str, name: str, division: str, parent: str, parent_url: str, port: int, *extra: str) -> None:
            token = json.loads(run("county", "enroll", "--data", str(county), "--role", program, "--division", division,
                                   "--parent", parent, "--node-id", name, "--json"))["token"]  # fmt: skip
            run(program, "init", "--data", str(base / name), "--parent", parent_url, "--token", token, "--port", str(port), *extra)

        for name, (division, _label, offset) in TOWNSHIPS.items():
            if fresh:
                enrol("township", name, division, "county", county_url, port_of(offset))
            p, urls[name] = start("township", base / name, port_of(offset), logs, "--sync-interval", "5", "--max-backoff", "30")
            procs.append(p)
        for name, (parent, division, label, offset) in VILLAGES.items():
            data = base / name
            if fresh:
                enrol("village", name, division, parent, urls[parent], port_of(offset), "--fallback", county_url)
                cases = [
                    {"item": ITEMS[(i + len(name)) % len(ITEMS)], "applicant": {"name": NAMES[(i * 5 + len(name)) % len(NAMES)]},
                     "agent": "代办员", "notes": f"{label}代办点收件"}
                    for i in range(8)
                ]  # fmt: skip
                run("village", "case", "new", "--data", str(data), "--offline", "--json", "-", stdin=json.dumps(cases, ensure_ascii=False))
            run("village", "sync", "--data", str(data))
            p, urls[name] = start("village", data, port_of(offset), logs, "--sync-interval", "10", "--max-backoff", "60")
            procs.append(p)
        time.sleep(1)
        print("\n三级演示已启动 Sanji three-tier demo is running:\n")
        print(f"  县   county      {urls['county']}   data {county}")
        for name, (_, label, _) in TOWNSHIPS.items():
            print(f"  乡镇 {label:<6} {urls[name]}   data {base / name}")
        for name, (_, _, label, _) in VILLAGES.items():
            print(f"  村   {label:<6} {urls[name]}   data {base / name}")
        print("\nTry:")
        print(f"  .venv/bin/county-server nodes --data {county}")
        print(f"  .venv/bin/village-agent status --data {base / 'meihua'}")
        print(
            f'  echo \'{{"item": "生育登记", "applicant": {{"name": "张桂兰"}}}}\' | .venv/bin/village-agent case new --data {base / "meihua"} --json -'
        )
        print(f"  .venv/bin/village-agent sync --data {base / 'meihua'}")
        print(f"\nLogs in {logs}. Ctrl-C stops every node.")
        if args.no_wait:
            return
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print("a node stopped; see the logs", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
