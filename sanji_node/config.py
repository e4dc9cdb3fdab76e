"""A node's data directory and its configuration file (`node.json`).

DATA/node.json     this file: who the node is and where its parent is
DATA/node.key      the node's Ed25519 private key (PKCS#8 PEM, encrypted if a passphrase is set)
DATA/node.sqlite   the node's database (entries, feeds, domain tables)
DATA/serve.json    written by `serve`: the URL it listens on and its process id
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sync_protocol import files
from sync_protocol.errors import KeyFileError, StoreError
from sync_protocol.keys import SigningKey
from sync_protocol.sqlite_store import Trust

CONFIG_FILE, KEY_FILE, DB_FILE, SERVE_FILE = "node.json", "node.key", "node.sqlite", "serve.json"


@dataclass
class NodeConfig:
    node_id: str
    role: str
    county: str
    root_node: str
    root_key: str
    division: str
    parent: str | None = None
    parent_url: str | None = None
    fallback_url: str | None = None
    county_name: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    sync_interval_s: int = 60
    stall_timeout_s: float = 30.0  # no byte moved on the link for this long: the attempt fails and is retried
    card_scan_interval_s: int = 600  # the county: seconds between scheduled card scans (0: none)
    passphrase_env: str | None = None
    parent_key: str | None = None  # hex, from the county's signed enrolment answer: checks the parent's answers
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trust(self) -> Trust:
        return Trust(self.county, self.root_node, self.root_key)


class DataDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def key_path(self) -> Path:
        return self.path / KEY_FILE

    @property
    def db_path(self) -> Path:
        return self.path / DB_FILE

    @property
    def serve_path(self) -> Path:
        return self.path / SERVE_FILE

    def exists(self) -> bool:
        return self.config_path.exists()

    def create(self) -> None:
        if self.exists():
            raise StoreError(
                f"文件夹 {self.path} 里已经有一个节点 ({self.path} already holds a node)",
                hint="换一个 --data 文件夹，或先移走这个 (use another --data directory, or remove this one)",
            )
        files.private_dir(self.path)

    def load(self) -> NodeConfig:
        if not self.exists():
            raise StoreError(
                f"文件夹 {self.path} 里没有节点 (no node in {self.path})",
                hint="先运行 init，或用 --data 指定正确的数据文件夹 (run init first, or pass the right --data directory)",
            )
        try:
            raw = json.loads(self.config_path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(NodeConfig)}
            return NodeConfig(**{k: v for k, v in raw.items() if k in known})
        except (
            OSError,
            ValueError,
            TypeError,
            AttributeError,
        ) as e:  # unreadable, not JSON, not an object, fields missing
            raise StoreError(
                f"节点配置文件 {self.config_path} 已损坏或无法读取 (node.json is damaged: {type(e).__name__})",
                hint="从备份恢复数据目录（或只恢复 node.json），或联系县级信息管理员",
            ) from e

    def save(self, config: NodeConfig) -> None:
        files.write_atomic(self.config_path, json.dumps(asdict(config), ensure_ascii=False, indent=2).encode("utf-8"))

    def passphrase(self, config: NodeConfig) -> bytes | None:
        if not config.passphrase_env:
            return None
        value = os.environ.get(config.passphrase_env)
        if not value:
            raise KeyFileError(
                f"本机密钥有口令保护，但环境变量 {config.passphrase_env} 没有设置 "
                f"(the key is encrypted and ${config.passphrase_env} is not set)",
                hint=f"把环境变量 {config.passphrase_env} 设为密钥的口令 (set it to the key's passphrase)",
            )
        return value.encode("utf-8")

    def save_key(self, key: SigningKey, passphrase: bytes | None) -> None:
        files.write_atomic(self.key_path, key.to_pem(passphrase))

    def load_key(self, config: NodeConfig) -> SigningKey:
        if not self.key_path.exists():
            raise KeyFileError(
                f"本机密钥文件 {self.key_path} 不见了 (the key file is missing)",
                hint="从备份恢复数据文件夹，或重新注册本节点 (restore it from the backup, or re-enrol)",
            )
        data, passphrase = self.key_path.read_bytes(), self.passphrase(config)
        try:
            return SigningKey.from_pem(data, passphrase)
        except KeyFileError as e:
            if passphrase and b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:  # intact, but will not open
                raise KeyFileError(
                    f"口令不对，无法打开本机密钥 {self.key_path.name} (wrong passphrase in ${config.passphrase_env})",
                    hint=f"把环境变量 {config.passphrase_env} 设为代办员设置的口令（区分大小写、全角半角）再试；"
                    "确认口令没错仍打不开时，本机密钥文件可能已损坏，请从备份恢复数据目录或联系县级信息管理员",
                ) from e
            raise
