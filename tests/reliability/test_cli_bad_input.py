"""Bad input at the command line (issue 12, acceptance 4): no traceback ever reaches the user.

Every command of the three programs (found by walking their click groups, so a new command is covered
without editing this file) is run against broken data directories: missing, a file instead of a folder,
no `node.json`, a corrupt one, one that is a folder, one of the wrong shape. Against a real node, the
commands that take an id get unknown ids, the bundle commands get a missing, a garbage and a folder
"bundle", every typed option gets a bad value, and every command runs with the database locked by
another process. Each run must exit nonzero (the locked run: a command that only reads may succeed),
print a first line on stderr that is Chinese first (`错误: ` then a CJK character), and print no
"Traceback" anywhere.

The matrix runs in process (click's runner: an exception escaping a command is caught there and fails the
test, exactly where a real process would print a traceback); `test_real_processes` runs a sample of each
kind as `python -m <program>` subprocesses, in parallel, to show the same at the process edge.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from county_server.cli import main as county_main
from sanji_node.state import BUSY_TIMEOUT_ENV
from township_node.cli import main as township_main
from village_agent.cli import main as village_main

from ..network import build_network
from ..test_signed_answers import node_dir

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS: dict[str, click.Group] = {
    "county_server": county_main,
    "township_node": township_main,
    "village_agent": village_main,
}
CJK = re.compile(r"[\u3400-\u9fff]")
# commands that would run until stopped, reach the network or prompt on a real node: run only where they fail early
LONG_RUNNING = {("serve",), ("sync",), ("init",)}


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from leaves(cmd, (*path, name))
        else:
            yield (*path, name), cmd


COMMANDS = [(prog, path, cmd) for prog, group in PROGRAMS.items() for path, cmd in leaves(group)]

NAMED = {  # plausible values for required parameters, by name (ids that exist nowhere)
    "county_code": "430321",
    "county_name": "测试县",
    "division": "430321109000",
    "for_node": "t1",
    "parent_url": "http://127.0.0.1:9",
    "token": "not-a-token",
    "new_env": "SANJI_TEST_NEW_PASSPHRASE",
    "display_name": "张三",
    "login": "nobody",
    "node": "x99",
    "name": "某村",
    "reason": "测试",
    "ref": "NOPE-0001",
    "a": "998",
    "b": "999",
    "code": "NOCODE",
    "item": "NOITEM",
    "day": "2026-01-05",
    "evaluation_id": "no-such-evaluation",
    "card_id": "no-such-card",
    "agent": "某人",
    "year": "2026",
}


def value_for(param: click.Parameter, tmp: Path) -> str:
    if param.name in NAMED and not isinstance(param.type, click.Choice):
        return NAMED[param.name]
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    if isinstance(param.type, click.types.IntParamType):
        return "3"
    if isinstance(param.type, click.Path):
        return str(tmp / "nowhere" / str(param.name))
    return "x"


def argv(path: tuple[str, ...], cmd: click.Command, data: Path, tmp: Path, **over: str) -> list[str]:
    """The command with its required parameters filled (`over` replaces values by parameter name)."""
    args = list(path)
    for p in cmd.params:
        if p.name == "data_dir":
            args += ["--data", str(data)]
        elif p.required:
            v = over.get(p.name or "", value_for(p, tmp))
            args += [p.opts[0], v] if isinstance(p, click.Option) else [v]
    return args


@dataclass
class Run:
    program: str
    args: list[str]
    code: int
    stdout: str
    stderr: str
    escaped: BaseException | None = None

    def __str__(self) -> str:
        return f"{self.program} {' '.join(self.args)} → {self.code}\n{self.stderr}{self.stdout}"[:2000]


def invoke(program: str, args: list[str]) -> Run:
    r: Result = CliRunner().invoke(PROGRAMS[program], args)
    escaped = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    return Run(program, args, r.exit_code, r.stdout, r.stderr, escaped)


def problems(run: Run, *, must_fail: bool = True) -> list[str]:
    """What is wrong with how a bad input was answered (empty: answered as it should be)."""
    out: list[str] = []
    if run.escaped is not None:
        out.append(f"exception escaped: {type(run.escaped).__name__}: {run.escaped}")
    if "Traceback" in run.stderr or "Traceback" in run.stdout:
        out.append("traceback printed")
    if must_fail and run.code == 0:
        out.append("exit status 0")
    if run.code != 0 and run.escaped is None:
        first = (run.stderr.strip().splitlines() or [""])[0]
        message = first.removeprefix("错误: ").removeprefix("错误：")
        if not (first.startswith("错误") and CJK.match(message)):
            out.append(f"first line on stderr not Chinese first: {first!r}")
    return out


def check_all(runs: list[Run], *, must_fail: bool = True) -> None:
    bad = [f"{run}\n  ✗ {'; '.join(p)}" for run in runs if (p := problems(run, must_fail=must_fail))]
    assert not bad, f"{len(bad)} of {len(runs)} runs answered badly:\n" + "\n".join(bad)


@pytest.fixture(autouse=True)
def quiet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Incident logs go to a temporary home; the loggers the commands set up are put back afterwards."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "50")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in ("sanji", "waitress")}
    yield
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        for h in logger.handlers:
            if h not in handlers:
                h.close()
        logger.handlers[:], logger.propagate = handlers, propagate


def broken_dirs(tmp: Path) -> dict[str, Path]:
    tmp.mkdir(exist_ok=True)
    dirs: dict[str, Path] = {"missing": tmp / "missing" / "data"}
    (tmp / "a_file").write_text("not a folder", encoding="utf-8")
    dirs["file_not_folder"] = tmp / "a_file"
    for name, content in {
        "empty": None,
        "corrupt_json": b"\x00\xff{not json",
        "json_array": b"[1, 2]",
        "wrong_types": b'{"node_id": 5, "role": ["county"], "county": null}',
        "json_is_folder": b"",
    }.items():
        d = tmp / name
        d.mkdir()
        if name == "json_is_folder":
            (d / "node.json").mkdir()
        elif content is not None:
            (d / "node.json").write_bytes(content)
        dirs[name] = d
    return dirs


def test_every_command_on_a_broken_data_directory(tmp_path: Path) -> None:
    dirs = broken_dirs(tmp_path)
    runs = []
    for state, data in dirs.items():
        for program, path, cmd in COMMANDS:
            if path == ("init",) and state in ("missing", "empty"):
                continue  # init makes the directory: its bad input is the token (below)
            if path == ("restore",) and state in ("missing", "empty"):
                continue  # restore fills an empty directory: its bad input is the backup (below)
            runs.append(invoke(program, argv(path, cmd, data, tmp_path)))
    check_all(runs)


@dataclass
class Nodes:
    county: Path
    township: Path
    village: Path

    def data(self, program: str) -> Path:
        return {"county_server": self.county, "township_node": self.township, "village_agent": self.village}[program]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    county = tmp_path / "county"
    made = CliRunner().invoke(county_main, ["init", "--data", str(county), "--county", "430321", "--name", "测试县"])
    assert made.exit_code == 0, made.output
    net = build_network(tmp_path / "net")
    township = node_dir(tmp_path / "nodes", net, "t1", role="township", parent="county").data.path
    village = node_dir(tmp_path / "nodes", net, "v11", role="village", parent="t1").data.path
    net.close()
    yield Nodes(county, township, village)


def test_commands_on_a_real_node_with_unknown_ids_bad_files_and_bad_options(nodes: Nodes, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(b"SANJI?" + os.urandom(2000))
    (tmp_path / "folder.bundle").mkdir()
    runs: list[Run] = []
    for program, path, cmd in COMMANDS:
        data = nodes.data(program)
        if path in LONG_RUNNING:
            continue
        ids = {p.name for p in cmd.params if p.required and p.name in NAMED}
        if ids & {"node", "ref", "code", "item", "evaluation_id", "card_id", "a", "login"}:
            runs.append(invoke(program, argv(path, cmd, data, tmp_path)))  # unknown ids
        for p in cmd.params:
            if isinstance(p, click.Path) or not isinstance(p, click.Option):
                continue
            if isinstance(p.type, (click.types.IntParamType, click.Choice, click.types.FloatParamType)):
                runs.append(invoke(program, [*argv(path, cmd, data, tmp_path), p.opts[0], "不是数字"]))
    for program in PROGRAMS:
        data = nodes.data(program)
        for bundle in (tmp_path / "no-such.bundle", garbage, tmp_path / "folder.bundle", tmp_path / "a" / "b.bundle"):
            runs.append(invoke(program, ["import-bundle", "--data", str(data), str(bundle)]))
        export = ["export-bundle", "--data", str(data), "--for", "county" if program != "county_server" else "t1"]
        for out in (tmp_path / "no-folder" / "x.bundle", tmp_path / "folder.bundle", tmp_path):
            runs.append(invoke(program, [*export, "--to", str(out)]))
        runs.append(invoke(program, ["restore", "--data", str(tmp_path / "new" / program), "--from", str(garbage)]))
        runs.append(invoke(program, ["backup", "--data", str(data), "--to", str(garbage)]))
    runs.append(
        invoke("township_node", ["init", "--data", str(tmp_path / "t9"), "--parent", "nonsense", "--token", "x"])
    )
    runs.append(
        invoke("village_agent", ["init", "--data", str(tmp_path / "v9"), "--parent", "http://[::1", "--token", ""])
    )
    runs.append(invoke("county_server", ["init", "--data", str(tmp_path / "c9"), "--county", "12", "--name", ""]))
    check_all(runs)


def test_every_command_with_the_database_locked(nodes: Nodes, tmp_path: Path) -> None:
    runs: list[Run] = []
    for program in PROGRAMS:
        data = nodes.data(program)
        lock = sqlite3.connect(data / "node.sqlite", timeout=0.05)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            for prog, path, cmd in COMMANDS:
                if prog == program and path not in LONG_RUNNING:
                    runs.append(invoke(program, argv(path, cmd, data, tmp_path)))
        finally:
            lock.rollback()
            lock.close()
    check_all(runs, must_fail=False)  # a command that only reads may succeed; none may leak a traceback
    assert any("占用" in r.stderr for r in runs), "no command met the lock"


def test_real_processes(nodes: Nodes, tmp_path: Path) -> None:
    """A sample of each kind of bad input, as real `python -m <program>` processes (in parallel)."""
    dirs = broken_dirs(tmp_path / "broken")
    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(os.urandom(3000))
    samples = [
        ("county_server", ["nodes", "--data", str(dirs["corrupt_json"])]),
        ("county_server", ["serve", "--data", str(nodes.county), "--port", "x"]),
        ("county_server", ["import-bundle", "--data", str(nodes.county), str(garbage)]),
        ("township_node", ["status", "--data", str(dirs["json_is_folder"])]),
        ("township_node", ["case", "show", "--data", str(nodes.township), "NOPE-1"]),
        ("township_node", ["export-bundle", "--data", str(nodes.township), "--to", str(tmp_path / "no" / "x")]),
        ("village_agent", ["case", "list", "--data", str(dirs["missing"])]),
        ("village_agent", ["import-bundle", "--data", str(nodes.village), str(tmp_path / "no-such.bundle")]),
        ("village_agent", ["sync", "--data", str(dirs["file_not_folder"])]),
        ("village_agent", ["nonsense-command"]),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path / "home"), BUSY_TIMEOUT_ENV: "50"}
    pipe = subprocess.PIPE
    procs = [
        (
            prog,
            args,
            subprocess.Popen(
                [sys.executable, "-m", prog, *args], env=env, cwd=tmp_path, text=True, stdout=pipe, stderr=pipe
            ),
        )
        for prog, args in samples
    ]
    runs = []
    for prog, args, proc in procs:
        out, err = proc.communicate(timeout=120)
        runs.append(Run(prog, args, proc.returncode, out, err))
    check_all(runs)
    assert {r.code for r in runs} <= {1, 2, 3}


def test_the_matrix_covers_every_documented_command() -> None:
    """The walk finds the commands docs/cli.md documents (so `every command` means every command)."""
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### (?:county-server|township-node|village-agent) (.+)$", doc, re.M))
    found = {" ".join(path) for _, path, _ in COMMANDS}
    assert documented - {"calendar", "clerk", "account"} <= found  # groups: their commands are listed
    assert len(COMMANDS) > 80
