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
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sanji_domain.demo import DemoPeople  # noqa: E402

CATALOG = ROOT / "sanji_domain" / "data" / "demo_catalog.json"
TOWNSHIPS = {"chengguan": ("430321101000", "城关镇", 10), "huashi": ("430321102000", "花石镇", 11)}
VILLAGES = {
    "meihua": ("chengguan", "430321101201", "梅花村", 20),
    "xinqiao": ("chengguan", "430321101202", "新桥村", 21),
    "shimen": ("huashi", "430321102201", "石门村", 22),
}
PASSPHRASE_ENV = "SANJI_DEMO_PASSPHRASE"
DEMO_PASSPHRASE = "梅花村代办员的口令"  # demo only: a real agent chooses their own
CLERK_PASSWORD_ENV = "SANJI_DEMO_CLERK_PASSWORD"
DEMO_CLERK_PASSWORD = "demo-2026-窗口"  # demo only: each clerk sets their own
# the demo's window accounts per township: (login, name, role); the head (中心负责人) manages the others
CLERKS = [("{t}-head", "王芳", "head"), ("{t}-a", "李明", "clerk")]
# the county's page accounts: (login, name, role); 管理员 changes data, 监察员 only reads
COUNTY_ACCOUNTS = [("county-admin", "周明", "admin"), ("county-jiancha", "钱丽", "inspector")]
# the items each village's agent files in the demo (by name; all handled through a village)
ITEMS = [
    "高龄津贴申请",
    "老年优待证办理",
    "残疾人证申领",
    "农村低保申请",
    "生育登记",
    "临时救助申请",
    "城乡居民医保参保登记",
]
PROGRAMS = {"county": "county_server", "township": "township_node", "village": "village_agent"}


def handle_demo_cases(base: Path, county: Path) -> None:
    """The windows at work: each township accepts, completes, asks for 补正, forwards a county item; the county
    completes what was forwarded; agents record evaluations (one 差评 opens a rectification)."""
    for township in TOWNSHIPS:
        rows = json.loads(run("township", "case", "list", "--json", "--data", str(base / township)))
        mine = sorted((r for r in rows if not r.get("origin_case_id")), key=lambda r: r["local_no"])
        for n, case in enumerate(mine):
            ref, level = case["local_no"], case.get("level")

            def act(action: str, *extra: str, ref: str = ref, data: Path = base / township) -> None:
                run("township", "case", "transition", ref, action, "--person", "窗口A岗", *extra, "--data", str(data))

            if level == "县" and n % 3 == 0:
                act("accept")
                act("forward")
            elif n % 4 == 0:
                for action in ("accept", "start"):
                    act(action)
                act("complete", "--result", "准予办理")
            elif n % 4 == 1:
                act("accept")
            elif n % 4 == 2:
                act("request_supplement", "--reason", "请补充村委会出具的证明材料")
        run("township", "sync", "--data", str(base / township))
    for case in json.loads(run("county", "case", "list", "--json", "--data", str(county))):
        if case["state"] == "FORWARDED" and not case.get("origin_case_id"):
            for action in ("accept", "start", "complete"):
                run(
                    "county",
                    "case",
                    "transition",
                    case["local_no"],
                    action,
                    "--person",
                    "县政务服务中心",
                    "--data",
                    str(county),
                )
    for township in TOWNSHIPS:
        run("township", "sync", "--data", str(base / township))
    for name in VILLAGES:
        data = base / name
        run("village", "sync", "--data", str(data))
        done = [
            r
            for r in json.loads(run("village", "case", "list", "--json", "--data", str(data)))
            if r["state"] == "COMPLETED"
        ]
        for i, case in enumerate(done[:3]):
            level = ("5", "4", "2")[i]
            run(
                "village",
                "evaluate",
                case["local_no"],
                "--level",
                level,
                "--comment",
                "代办员回访时记录",
                "--data",
                str(data),
            )


def clerks_role(role: str) -> str:
    return {"head": "中心负责人", "clerk": "窗口人员"}[role]


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
    os.environ.setdefault(PASSPHRASE_ENV, DEMO_PASSPHRASE)
    os.environ.setdefault(CLERK_PASSWORD_ENV, DEMO_CLERK_PASSWORD)
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
            for year in ("2025", "2026"):  # the State Council's holidays and 调休 days, for the deadlines
                run("county", "calendar", "seed", "--year", year, "--data", str(county))
            for login, person, role in COUNTY_ACCOUNTS:
                run("county", "account", "add", "--data", str(county), "--login", login, "--name", person,
                    "--role", role, "--password-env", CLERK_PASSWORD_ENV)  # fmt: skip
        port_of = (lambda offset: 0) if args.base_port == 0 else (lambda offset: args.base_port + offset)
        p, county_url = start("county", county, port_of(0), logs)
        procs.append(p)
        urls = {"county": county_url}

        def enrol(
            program: str, name: str, label: str, division: str, parent: str, parent_url: str, port: int, *extra: str
        ) -> None:
            token = json.loads(run("county", "enroll", "--data", str(county), "--role", program, "--division", division,
                                   "--parent", parent, "--node-id", name, "--name", label, "--json"))["token"]  # fmt: skip
            run(
                program,
                "init",
                "--data",
                str(base / name),
                "--parent",
                parent_url,
                "--token",
                token,
                "--port",
                str(port),
                *extra,
            )

        for name, (division, label, offset) in TOWNSHIPS.items():
            if fresh:
                enrol("township", name, f"{label}便民服务中心", division, "county", county_url, port_of(offset))
                for login, person, role in CLERKS:
                    run("township", "clerk", "add", "--data", str(base / name), "--login", login.format(t=name),
                        "--name", person, "--role", role, "--password-env", CLERK_PASSWORD_ENV)  # fmt: skip
            p, urls[name] = start(
                "township", base / name, port_of(offset), logs, "--sync-interval", "5", "--max-backoff", "30"
            )
            procs.append(p)
        people = DemoPeople(seed=2026)
        items = {i["name"]: i for i in json.loads(CATALOG.read_text(encoding="utf-8"))["items"]}
        for name, (parent, division, label, offset) in VILLAGES.items():
            data = base / name
            if fresh:
                enrol("village", name, label, division, parent, urls[parent], port_of(offset), "--fallback", county_url,
                      "--passphrase-env", PASSPHRASE_ENV)  # fmt: skip
                town = TOWNSHIPS[parent][1]
                cases = [
                    people.case_request(items[ITEMS[(i + offset) % len(ITEMS)]], township=town, village=label)
                    for i in range(8)
                ]
                run(
                    "village",
                    "case",
                    "new",
                    "--data",
                    str(data),
                    "--offline",
                    "--json",
                    "-",
                    stdin=json.dumps(cases, ensure_ascii=False),
                )
                for day in range(7):
                    date = f"2026-11-{23 + day:02d}"
                    run(
                        "village",
                        "roster",
                        "set",
                        date,
                        people.agent(),
                        "--substitute",
                        people.agent(),
                        "--data",
                        str(data),
                    )
            run("village", "sync", "--data", str(data))
        if fresh:
            handle_demo_cases(base, county)
        for name, (_parent, _division, _label, offset) in VILLAGES.items():
            data = base / name
            if fresh:
                run("village", "sync", "--data", str(data))
            p, urls[name] = start(
                "village", data, port_of(offset), logs, "--sync-interval", "10", "--max-backoff", "60", "--no-browser"
            )
            procs.append(p)
        time.sleep(1)
        print("\n三级演示已启动 Sanji three-tier demo is running:\n")
        print(f"  县   county      {urls['county']}   data {county}")
        for name, (_, label, _) in TOWNSHIPS.items():
            print(f"  乡镇 {label:<6} {urls[name]}   data {base / name}")
        for name, (_, _, label, _) in VILLAGES.items():
            print(f"  村   {label:<6} {urls[name]}   data {base / name}")
        print("\n网页 Pages (open in a browser on this machine):\n")
        county_logins = "、".join(
            f"{login}（{person}，{'管理员' if role == 'admin' else '监察员'}）" for login, person, role in COUNTY_ACCOUNTS
        )
        print(f"  县   county      {urls['county']}/   登录名 {county_logins}  密码 {DEMO_CLERK_PASSWORD}")
        for name, (_, label, _) in TOWNSHIPS.items():
            logins = "、".join(
                f"{login.format(t=name)}（{person}，{clerks_role(role)}）" for login, person, role in CLERKS
            )
            print(f"  乡镇 {label:<6} {urls[name]}/   登录名 {logins}  密码 {DEMO_CLERK_PASSWORD}")
        for name, (_, _, label, _) in VILLAGES.items():
            print(f"  村   {label:<6} {urls[name]}/   代办员姓名任填，口令 {DEMO_PASSPHRASE}")
        print("\nTry:")
        print(f"  .venv/bin/county-server nodes --data {county}")
        print(f"  .venv/bin/village-agent status --data {base / 'meihua'}")
        print(
            f"  export {PASSPHRASE_ENV}='{DEMO_PASSPHRASE}'   # the demo agents' passphrase (villages encrypt personal data)"
        )
        print(f"  .venv/bin/village-agent case list --data {base / 'meihua'}")
        print(f"  .venv/bin/village-agent catalog show 生育登记 --data {base / 'meihua'}")
        sample = DemoPeople(seed=7).applicant()
        birth = json.loads(CATALOG.read_text(encoding="utf-8"))["items"]
        mats = next(i for i in birth if i["name"] == "生育登记")["materials"]
        print(f"  .venv/bin/village-agent case new --item 生育登记 --name {sample['name']} --id-number {sample['id_number']} "
              f"--phone {sample['phone']} " + " ".join(f"--material {m['name']}" for m in mats if m.get("required", True))
              + f" --data {base / 'meihua'}")  # fmt: skip
        print(f"  .venv/bin/township-node case list --data {base / 'chengguan'}")
        print(f"  .venv/bin/village-agent ledger export 台账.xlsx --data {base / 'meihua'}")
        print(f"  .venv/bin/county-server stats show --by township --data {county}")
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
