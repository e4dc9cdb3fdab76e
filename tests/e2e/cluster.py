"""Real node processes on 127.0.0.1 for end-to-end tests: one county, townships and villages.

Every node is its own process with its own SQLite file and its own port (port
0: the OS picks a free one, and the node writes it to DATA/serve.json). The
CLIs run as subprocesses exactly as an IT officer would run them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanji_domain import pii
from sanji_domain.demo import DemoPeople
from sync_protocol.sqlite_store import Store

PROGRAMS = {"county": "county_server", "township": "township_node", "village": "village_agent"}
DEADLINE_S = 60.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S, step: float = 0.1) -> Any:
    """Poll until `condition()` is truthy (no fixed sleeps); fail with `what` after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@dataclass
class Node:
    name: str
    role: str
    data: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str | None = None
    log: Path | None = None
    logf: Any = None

    @property
    def program(self) -> str:
        return PROGRAMS[self.role]


PASSPHRASE_ENV = "SANJI_TEST_PASSPHRASE"
# the display names the county gives the test nodes at enrolment (`enroll --name`)
PLACE_NAMES = {
    "t1": "城关镇便民服务中心",
    "t2": "花石镇便民服务中心",
    "v11": "梅花村",
    "v12": "新桥村",
    "v13": "石门村",
    "v21": "白石村",
    "v22": "龙潭村",
}
DEMO_CATALOG = Path(__file__).resolve().parents[2] / "sanji_domain" / "data" / "demo_catalog.json"
DEMO_ITEMS = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))["items"]


@dataclass
class Cluster:
    root: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=lambda: {**os.environ, "PYTHONUNBUFFERED": "1"})
    people: DemoPeople = field(default_factory=DemoPeople)

    def run(
        self,
        node: Node | str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a node's CLI; `env` adds variables for this run only (e.g. an injected fault)."""
        n = self.nodes[node] if isinstance(node, str) else node
        cmd = [sys.executable, "-m", n.program, *args]
        if "--data" not in args:
            cmd += ["--data", str(n.data)]  # click takes options after the subcommand's arguments too
        run_env = {**self.env, **env} if env else self.env
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, env=run_env, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def json(self, node: str, *args: str, input: str | None = None) -> Any:
        out = self.run(node, *args, "--json", input=input).stdout
        return json.loads(out)

    # -- building ----------------------------------------------------------
    def county(self, code: str = "430321", *, catalog: bool = True) -> Node:
        """Create the county; with the demo catalog released, as a county has before it enrols anyone."""
        n = self.nodes["county"] = Node("county", "county", self.root / "county")
        self.run(n, "init", "--county", code, "--name", "示范县")
        if catalog:
            self.run(n, "catalog", "import", str(DEMO_CATALOG))
        return n

    def enrol(self, name: str, role: str, division: str, parent: str, parent_url: str, *extra: str) -> Node:
        label = ("--name", PLACE_NAMES[name]) if name in PLACE_NAMES else ()
        token = self.json(
            "county", "enroll", "--role", role, "--division", division, "--parent", parent, "--node-id", name, *label
        )["token"]
        n = self.nodes[name] = Node(name, role, self.root / name)
        if role == "village":  # the agent's passphrase seals personal data on the laptop
            self.env.setdefault(PASSPHRASE_ENV, "代办员的口令-test")
            extra = ("--passphrase-env", PASSPHRASE_ENV, *extra)
        self.run(n, "init", "--parent", parent_url, "--token", token, *extra)
        return n

    def store(self, name: str) -> Store:
        """A node's store, opened as the node opens it (a village's with the agent's passphrase)."""
        n = self.nodes[name]
        sealer = None
        if (n.data / "pii.key").exists():
            sealer = pii.open_key_file(n.data / "pii.key", self.env[PASSPHRASE_ENV])
        return Store(n.data / "node.sqlite", **({"seal": sealer} if sealer else {}))

    def cases(self, n: int, item: str, **kw: Any) -> list[dict[str, Any]]:
        """`n` valid case requests for a demo-catalog item (Faker villagers with valid ID numbers)."""
        spec = next(i for i in DEMO_ITEMS if item in (i["name"], i["task_code"]))
        # by name: the release in force may give the item another 实施编码 than the demo catalog
        return [{**self.people.case_request(spec, **kw), "item": spec["name"]} for _ in range(n)]

    def new_cases(self, village: str, n: int, item: str, *args: str, **kw: Any) -> list[dict[str, Any]]:
        out = self.run(village, "case", "new", "--output-json", "--json", "-", *args,
                       input=json.dumps(self.cases(n, item, **kw), ensure_ascii=False))  # fmt: skip
        return json.loads(out.stdout)

    # -- processes ---------------------------------------------------------
    def start(self, name: str, *extra: str, env: dict[str, str] | None = None) -> Node:
        n = self.nodes[name]
        serve_file = n.data / "serve.json"
        if serve_file.exists():
            serve_file.unlink()
        n.log = self.root / f"{name}.log"
        args = [sys.executable, "-m", n.program, "serve", "--data", str(n.data), "--port", "0", *extra]
        n.logf = n.log.open("ab")
        n.proc = subprocess.Popen(args, stdout=n.logf, stderr=subprocess.STDOUT, env={**self.env, **(env or {})})
        wait_for(lambda: serve_file.exists() or n.proc.poll() is not None, f"{name} to start")  # type: ignore[union-attr]
        if n.proc.poll() is not None:
            self._close_log(n)
            raise AssertionError(f"{name} exited at start:\n{n.log.read_text(encoding='utf-8', errors='replace')}")
        n.url = json.loads(serve_file.read_text(encoding="utf-8"))["url"]
        return n

    def stop(self, name: str) -> None:
        n = self.nodes[name]
        if n.proc is not None and n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
            try:
                n.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
        n.proc = None
        self._close_log(n)

    @staticmethod
    def _close_log(n: Node) -> None:
        if n.logf is not None:
            n.logf.close()
            n.logf = None

    def kill9(self, name: str) -> None:
        n = self.nodes[name]
        assert n.proc is not None
        n.proc.send_signal(signal.SIGKILL)
        n.proc.wait()
        n.proc = None
        self._close_log(n)

    def close(self) -> None:
        for name in list(self.nodes):
            self.stop(name)
