"""Error edges (issue 12, point 10): JSON 500 with an incident id, busy → 503 + Retry-After, every `requests`
failure in the error tree, and the CLI's catch-all (one Chinese line and the log's path, never a traceback)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, Response

from county_server.cli import main as county_main
from sanji_node import logs
from sanji_node.parent import parent_app
from sanji_node.state import BUSY_TIMEOUT_ENV
from sync_protocol.errors import ProtocolError, TransportError
from sync_protocol.http_client import ParentClient
from sync_protocol.sqlite_store import Store

from .guarded import serve_guarded, url

ROOT = Path(__file__).resolve().parents[1]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(message)s").format(record))


@contextmanager
def recorded(name: str) -> Iterator[Records]:
    handler, logger = Records(), logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def app_on(db: Path, write: Callable[[sqlite3.Connection], None]) -> Flask:
    """A parent's app on a real store, with one extra route that writes through a fresh connection."""

    def open_store() -> Store:
        store = Store(db)
        store.conn.execute("PRAGMA busy_timeout = 50")
        return store

    with open_store():
        pass
    app = parent_app("edges", node_id="county", role="county", open_store=open_store)

    @app.post("/api/v1/test-write")
    def test_write() -> Any:
        conn = sqlite3.connect(db, timeout=0.05)
        try:
            write(conn)
        finally:
            conn.close()
        return {"ok": True}

    return app


def test_an_unexpected_failure_is_a_json_500_with_an_incident_id_that_the_log_holds(tmp_path: Path) -> None:
    def boom(conn: sqlite3.Connection) -> None:
        raise RuntimeError("a bug in a handler")

    client = app_on(tmp_path / "node.sqlite", boom).test_client()
    with recorded("sanji.http") as log:
        r = client.post("/api/v1/test-write")
    assert r.status_code == 500 and r.is_json  # was Flask's HTML page
    body = r.get_json()
    assert body["code"] == "internal" and body["incident"] in body["message"]
    assert "Traceback" not in r.get_data(as_text=True) and "a bug in a handler" not in r.get_data(as_text=True)
    assert any(body["incident"] in line for line in log.lines)


def test_a_locked_database_is_a_503_with_retry_after(tmp_path: Path) -> None:
    db = tmp_path / "node.sqlite"

    def write(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    client = app_on(db, write).test_client()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # another writer of the node holds the lock
    try:
        r = client.post("/api/v1/test-write")
    finally:
        holder.rollback()
        holder.close()
    assert r.status_code == 503  # was 500, taken by the child as a refusal
    assert r.headers["Retry-After"] == "5"
    assert r.get_json()["code"] == "busy"
    assert client.post("/api/v1/test-write").status_code == 200  # once the lock is gone


# -- the client: 503 is "retry later", and no `requests` exception escapes the tree ----------------------------


@contextmanager
def served(app: Flask) -> Iterator[str]:
    with serve_guarded(app) as server:
        yield url(server)


def busy_then_ok(busy_answers: int) -> Flask:
    app = Flask("busy")
    seen: list[int] = []

    @app.post("/api/v1/enroll")
    def enroll() -> Any:
        seen.append(1)
        if len(seen) <= busy_answers:
            return Response(
                json.dumps({"code": "busy", "message": "数据库正忙 (busy)"}),
                status=503,
                headers={"Retry-After": "2"},
                mimetype="application/json",
            )
        return {"ok": True, "after": len(seen)}

    return app


def test_the_client_retries_a_503_after_retry_after_and_then_succeeds() -> None:
    with served(busy_then_ok(2)) as url:
        waits: list[float] = []
        client = ParentClient(url, key=None, node_id="v11", county="430321", sleep=waits.append, attempts=3)
        assert client.enroll(b"{}") == {"ok": True, "after": 3}
        client.close()
    assert waits == [2.0, 2.0]  # Retry-After, not the 0.5 s backoff


def test_a_503_that_lasts_is_transport_error_retry_later() -> None:
    with served(busy_then_ok(10)) as url:
        client = ParentClient(url, key=None, node_id="v11", county="430321", sleep=lambda s: None, attempts=2)
        with pytest.raises(TransportError, match="数据库正忙"):
            client.enroll(b"{}")
        client.close()


@contextmanager
def raw_server(answer: bytes) -> Iterator[str]:
    """A socket that reads a request, sends `answer` and hangs up: a link cut mid-reply, or not HTTP at all."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        socket.create_connection(listener.getsockname(), timeout=5).close()  # wakes the accept
        thread.join(timeout=10)
        listener.close()


CUTS = {
    "cut_mid_chunked_reply": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",  # ChunkedEncodingError
    "short_body": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc",
    "not_http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "bad_chunk_size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("answer", CUTS.values(), ids=CUTS.keys())
def test_every_requests_failure_is_a_transport_error(answer: bytes) -> None:
    with raw_server(answer) as url:
        client = ParentClient(url, key=None, node_id="v11", county="430321", sleep=lambda s: None, attempts=2)
        with pytest.raises(TransportError):  # was ChunkedEncodingError & co., out of the tree: a traceback
            client.enroll(b"{}")
        assert client.requests == 2  # retried
        client.close()


def test_a_parent_url_that_cannot_work_is_refused_not_retried() -> None:
    client = ParentClient("htp:/nowhere", key=None, node_id="v11", county="430321", sleep=lambda s: None)
    with pytest.raises(ProtocolError, match="上级地址"):
        client.enroll(b"{}")
    assert client.requests == 1


# -- the CLI: one Chinese line, a log path, never a traceback (real processes) -----------------------------------


def cli(program: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", program, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )


def one_chinese_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    first = done.stderr.splitlines()[0]
    assert first.startswith("错误: ") and any("\u4e00" <= c <= "\u9fff" for c in first[4:8]), done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("edges") / "county"
    result = CliRunner().invoke(county_main, ["init", "--data", str(data), "--county", "430321", "--name", "示范县"])
    assert result.exit_code == 0, result.output
    return data


def test_a_corrupt_node_json_is_one_chinese_line(tmp_path: Path) -> None:
    data = tmp_path / "v"
    data.mkdir()
    (data / "node.json").write_text('{"node_id": "v11", "role": ', encoding="utf-8")  # cut by a power failure
    done = cli("village_agent", "status", "--data", str(data), env={"HOME": str(tmp_path)})
    err = one_chinese_line(done)
    assert done.returncode == 2 and "node.json" in err and "已损坏" in err


def test_a_missing_folder_for_a_bundle_is_one_chinese_line(county: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-usb" / "x.sjb"
    done = cli("county_server", "export-bundle", "--data", str(county), "--for", "county", "--to", str(target))
    err = one_chinese_line(done)
    assert done.returncode == 2 and "文件或文件夹不存在" in err and "no-such-usb" in err  # was a FileNotFoundError


def test_a_locked_database_is_one_chinese_line_and_retry_later(county: Path) -> None:
    holder = sqlite3.connect(county / "node.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        args = ["enroll", "--data", str(county), "--role", "township", "--division", "430321101000"]
        done = cli("county_server", *args, "--parent", "county", "--node-id", "t1", env={BUSY_TIMEOUT_ENV: "200"})
    finally:
        holder.rollback()
        holder.close()
    err = one_chinese_line(done)
    assert done.returncode == 3 and "数据库正被" in err  # exit 3: retry later


def test_an_unexpected_error_prints_the_incident_and_the_log_path_and_logs_the_traceback(county: Path) -> None:
    """Any bug: a database file that is not a database at all (a half-copied file) stands in for one."""
    bad = county.parent / "bad"
    bad.mkdir()
    (bad / "node.json").write_text((county / "node.json").read_text(encoding="utf-8"), encoding="utf-8")
    (bad / "node.key").write_bytes((county / "node.key").read_bytes())
    (bad / "node.sqlite").write_bytes(b"this is not a database" * 100)
    done = cli("county_server", "nodes", "--data", str(bad))
    err = one_chinese_line(done)
    assert done.returncode == 1 and "事件编号" in err and str(logs.log_path(bad)) in err
    incident = err.split("事件编号 ")[1][:8]
    logged = logs.log_path(bad).read_text(encoding="utf-8")
    assert incident in logged and "Traceback" in logged  # the traceback is in the log, not on the screen


def test_log_lines_carry_no_id_numbers_or_mobile_numbers() -> None:
    text = "applicant 430321199001011234 phone 13812345678 case 430321101201-20261203-1"
    assert logs.redact(text) == "applicant ****************** phone 1********** case 430321101201-20261203-1"


# -- the first sync after init: the link (retry later) is not a bug ----------------------------------------------


@pytest.mark.parametrize(
    "fault, exit_code, says",
    [
        (TransportError("cannot reach the county"), 0, "网络不通，稍后自动重试"),
        (RuntimeError("a bug in the first sync"), 1, "程序出错了"),
    ],
    ids=["link_down", "bug"],
)
def test_init_tells_a_link_failure_of_the_first_sync_from_a_bug(
    county: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Exception, exit_code: int, says: str
) -> None:
    from county_server.app import create_app as county_app
    from sanji_node.child import ChildNode
    from township_node.cli import main as township_main

    node_id = f"t{exit_code}"
    where = ["--division", f"43032110{exit_code}000", "--parent", "county", "--node-id", node_id]
    token = CliRunner().invoke(county_main, ["enroll", "--data", str(county), "--role", "township", *where, "--json"])
    assert token.exit_code == 0, token.output

    def failing_sync(self: ChildNode, **kw: Any) -> Any:
        raise fault

    monkeypatch.setattr(ChildNode, "sync", failing_sync)
    app = county_app(county)
    try:
        with served(app) as url:
            args = ["init", "--data", str(tmp_path / node_id), "--parent", url]
            result = CliRunner().invoke(township_main, [*args, "--token", json.loads(token.stdout)["token"]])
    finally:
        app.extensions["sanji_numbering"].stop()
    assert result.exit_code == exit_code, result.output
    assert "已注册乡镇节点" in result.stdout and says in result.stderr  # was 首次同步未完成（稍后自动重试） for both
    assert "Traceback" not in result.output


def test_without_a_node_only_an_incident_makes_a_log_in_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("sanji", "waitress"):  # a fresh program: no handler from the tests before
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
    assert logs.setup_logging(tmp_path / "not-a-node") is None
    assert not (tmp_path / ".sanji").exists()  # `init` and friends leave no trace in the home directory
    path = logs.setup_logging(None, fallback=True)
    assert path == tmp_path / ".sanji" / "logs" / "sanji.log"
    logging.getLogger("sanji.cli").error("incident 0badc0de, applicant 13812345678")
    for h in logging.getLogger("sanji").handlers:
        h.close()
    assert "incident 0badc0de, applicant 1**********" in path.read_text(encoding="utf-8")
