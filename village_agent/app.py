"""The village agent's local app, on 127.0.0.1 only: the agent's pages, the status and the "sync now" API.

The laptop's keys are encrypted under the agent's passphrase, so `serve`
starts locked. The login page asks for the agent's name and the passphrase;
the passphrase unlocks the node key and the personal-data key for the process
(one `ChildNode`, one `Workspace`, and the sync job start then). If the
passphrase's environment variable is set when `serve` starts (the demo and
scripts), the process unlocks at once so sync runs, and the pages still ask
for the login. A session idle for `idle_minutes` is locked again and asks for
the passphrase; the keys stay open in the process, so sync keeps running.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

from sanji_domain import pii
from sanji_node.actions.sync_status import SyncMonitor
from sanji_node.child import PII_KEY_FILE, ChildNode
from sanji_node.config import DataDir, NodeConfig
from sanji_node.scheduler import SyncScheduler
from sanji_node.workspace import Workspace
from sync_protocol.errors import KeyFileError, SyncError
from sync_protocol.keys import SigningKey

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WRONG_PASSPHRASE = "口令不对"


class WrongPassphraseError(KeyFileError):
    """The agent's passphrase does not open this laptop's keys."""

    code = "wrong_passphrase"


@dataclass
class Village:
    """The village laptop's process: locked until the agent's passphrase opens its keys."""

    data: DataDir
    config: NodeConfig
    page_bytes: int = 1024 * 1024
    sync_interval_s: float | None = None  # None: no sync job (a test, or the docs' route listing)
    max_backoff_s: float = 900.0
    idle_minutes: int = 15
    node: ChildNode | None = None
    workspace: Workspace | None = None
    scheduler: SyncScheduler | None = None
    monitor: SyncMonitor | None = None
    serving: bool = False
    last_agent: str = ""  # the name the login page offers next time (the agents' names are not villagers' data)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, data_dir: str | Path, **kw: Any) -> Village:
        """The village in `data_dir`, still locked (nothing is decrypted, the store is not opened)."""
        data = DataDir(data_dir)
        config = data.load()
        if config.role != "village":
            raise KeyFileError(
                f"{data.path} 是{config.role}节点，不是村代办点 (not a village node)",
                hint="用该角色的程序启动，或指定村代办点的数据目录",
            )
        return cls(data, config, **kw)

    @classmethod
    def of(cls, node: ChildNode, **kw: Any) -> Village:
        """A village whose node is already unlocked (a script or a test that loaded it)."""
        village = cls(node.data, node.config, **kw)
        village._opened(node)
        return village

    @property
    def locked(self) -> bool:
        return self.workspace is None

    @property
    def needs_passphrase(self) -> bool:
        return bool(self.config.passphrase_env) or (self.data.path / PII_KEY_FILE).exists()

    def check_passphrase(self, passphrase: str) -> tuple[SigningKey, pii.Sealer | None]:
        """The node key and the personal-data sealer the passphrase opens; WrongPassphraseError if it is wrong."""
        sealer = None
        pii_path = self.data.path / PII_KEY_FILE
        if pii_path.exists():
            try:
                sealer = pii.open_key_file(pii_path, passphrase)
            except KeyFileError as e:
                if e.message.startswith(WRONG_PASSPHRASE):
                    raise WrongPassphraseError(WRONG_PASSPHRASE, hint="请输入代办员设置的口令") from e
                raise
        if not self.data.key_path.exists():
            return self.data.load_key(self.config), sealer  # says which file is missing
        secret = passphrase.encode("utf-8") if self.config.passphrase_env else None
        try:
            key = SigningKey.from_pem(self.data.key_path.read_bytes(), secret)
        except KeyFileError as e:
            if secret:
                raise WrongPassphraseError(WRONG_PASSPHRASE, hint="请输入代办员设置的口令") from e
            raise
        return key, sealer

    def unlock(self, passphrase: str) -> None:
        """Check the passphrase; the first time, open the node, its workspace and the sync job."""
        key, sealer = self.check_passphrase(passphrase)
        with self._lock:
            if self.node is None:
                self._opened(ChildNode(self.data, self.config, key, page_bytes=self.page_bytes, sealer=sealer))

    def unlock_from_env(self) -> str | None:
        """Unlock with the passphrase in the configured environment variable, if it is set; a problem as text."""
        name = self.config.passphrase_env
        value = os.environ.get(name) if name else None
        if not self.needs_passphrase:
            self.unlock("")
            return None
        if not value:
            return None
        try:
            self.unlock(value)
        except SyncError as e:
            return f"环境变量 {name} 中的口令无法解锁本机（{e.message}），请在页面上登录。"
        return None

    def _opened(self, node: ChildNode) -> None:
        self.node = node
        self.workspace = Workspace(node)  # opens (and migrates) the store once
        if self.sync_interval_s is not None:
            self.monitor = SyncMonitor(sync=node.sync)
            self.scheduler = SyncScheduler(
                self.monitor.run, interval_s=self.sync_interval_s, max_backoff_s=self.max_backoff_s
            )
            if self.serving:
                self.scheduler.start()

    def start(self) -> None:
        """The server is listening: start the sync job if the node is unlocked (else at unlock)."""
        with self._lock:
            self.serving = True
            if self.scheduler is not None:
                self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.workspace is not None:
            self.workspace.close()

    def sync_now(self) -> bool:
        """Ask the sync job to run now; False when there is none (locked, or no job in this process)."""
        if self.scheduler is None or not self.serving:
            return False
        self.scheduler.sync_now()
        return True

    # -- search texts (personal data: kept in this process, never in a URL or a cookie) --------


def create_app(source: Village | ChildNode) -> Flask:
    """The local app for a village (locked or not), or for a node already loaded."""
    village = source if isinstance(source, Village) else Village.of(source)
    app = Flask("village_agent")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["sanji_village"] = village

    @app.before_request
    def local_only() -> Any:
        # the app listens on 127.0.0.1; refuse other Host names so a web page cannot reach it by DNS rebinding
        host = (request.host or "").rsplit(":", 1)[0].strip("[]")
        if host not in LOCAL_HOSTS:
            return jsonify({"code": "not_allowed", "message": f"host {request.host!r} is not this machine"}), 403
        return None

    from .pages import register_pages

    register_pages(app, village)

    @app.get("/api/v1/status")
    def status() -> Any:
        if village.node is None:
            return jsonify(_locked()), 503
        return jsonify(village.node.status())

    @app.post("/api/v1/sync-now")
    def sync() -> Any:  # cross-origin requests are refused before this (sanji_node.web.site.cross_origin)
        if village.node is None:
            return jsonify(_locked()), 503
        if not village.sync_now():
            return jsonify({"code": "not_available", "message": "no sync job is running"}), 503
        return jsonify({"ok": True, "message": "已开始同步"})

    return app


def _locked() -> dict[str, str]:
    return {
        "code": "locked",
        "message": "本机已锁定：请在浏览器页面上输入代办员口令 (locked: the agent logs in on the page)",
    }
