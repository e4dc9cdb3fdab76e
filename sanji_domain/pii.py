"""Personal data at rest on the village laptop: the key file, the sealer, and the purge rule.

The agent's passphrase never encrypts data directly. `pii.key` holds a random
32-byte data key, wrapped (AES-256-GCM) under a key derived from the
passphrase with scrypt; changing the passphrase rewraps the data key and
leaves every sealed byte as it is.

    pii.key = {"v": 1, "type": "sanji-pii-key",
               "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": hex},
               "wrap": {"alg": "aes-256-gcm", "nonce": hex, "key": hex}}

A `Sealer` seals with the data key: `MAGIC ‖ nonce(12) ‖ AES-256-GCM(plain,
aad)`. The aad names the place a value belongs to (an entry's `feed#seq`, a
table row's key), so a sealed value moved to another row does not open.
Random 96-bit nonces are safe for far more values than a laptop will ever
seal under one key (NIST SP 800-38D: up to 2**32).

After the county's receipt covers a case, the agent's laptop no longer needs
its personal data: `PurgeRule` says when it goes (set by the county and
shown to the agent), `due_for_purge` lists what is due, and the node purges
it with `Store.purge_bodies` (and the domain's `case_pii` rows).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sync_protocol import files
from sync_protocol.errors import KeyFileError, StoreError

from .errors import ValidationError

KEY_FILE = "pii.key"
KEY_FILE_TYPE = "sanji-pii-key"
KEY_FILE_VERSION = 1
SCHEME = "aes-256-gcm/1"  # what `Store` records in meta.sealed
MAGIC = b"\xa7"  # first byte of every sealed value, format version 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
SALT_BYTES = 16
MIN_PASSPHRASE = 8
SEAL_OVERHEAD = len(MAGIC) + NONCE_BYTES + TAG_BYTES
_WRAP_AAD = b"sanji/pii-key/v1\n"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: n=2**14, r=8, p=1, the scrypt paper's parameters for interactive use.

    Every `village-agent` command unlocks the key once, so the cost is paid per command on a cheap
    laptop: ~50 ms and 16 MiB. A key file records its own parameters, so they can be raised later
    (`change_passphrase(..., kdf=ScryptParams(...))` rewraps under others); tests pass smaller ones.
    """

    n: int = 2**14
    r: int = 8
    p: int = 1

    def check(self) -> None:
        if not (2 <= self.n <= 2**20 and self.n & (self.n - 1) == 0 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise KeyFileError(
                f"密钥文件的 scrypt 参数不可用 n={self.n} r={self.r} p={self.p} (unusable scrypt parameters)",
                hint="n 为 2 的幂且不超过 2**20, r ≤ 32, p ≤ 16",
            )


class Sealer:
    """AES-256-GCM under the data key; `seal`/`open` bind each value to its place (`aad`)."""

    scheme = SCHEME

    def __init__(self, key: bytes, *, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"数据密钥应为 {KEY_BYTES} 字节 (the data key is {KEY_BYTES} bytes, not {len(key)})")
        self._aead = AESGCM(key)
        self._randbytes = randbytes

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, plain: bytes, aad: bytes) -> bytes:
        nonce = self._randbytes(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, plain, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        place = aad.decode("utf-8", "replace")
        if len(sealed) < SEAL_OVERHEAD or sealed[:1] != MAGIC:
            raise StoreError(
                f"{place} 的数据不是加密格式 (not a sealed value)", hint="数据库可能已损坏，请从乡镇或备份恢复"
            )
        try:
            return self._aead.decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], aad)
        except InvalidTag as e:
            raise StoreError(
                f"{place} 的数据无法解密: 密钥不对、数据损坏或被移到了别处 "
                "(cannot decrypt: another key, damaged, or moved from another row)",
                hint="用本机的 pii.key 和代办员口令打开；若仍失败，请从乡镇或备份恢复",
            ) from e


# -- the key file ---------------------------------------------------------------


def create_key_file(
    path: str | Path,
    passphrase: str,
    *,
    kdf: ScryptParams = ScryptParams(),
    randbytes: Callable[[int], bytes] = os.urandom,
) -> Sealer:
    """Make a new data key and save it wrapped under `passphrase`; refuses to replace an existing file."""
    path = Path(path)
    if path.exists():
        raise KeyFileError(
            f"{path} 已存在 (the key file already exists)",
            hint="已加密的数据只能用原来的密钥文件打开；要换口令请用 change_passphrase",
        )
    _check_new_passphrase(passphrase)
    data_key = randbytes(KEY_BYTES)
    _write_atomically(path, _wrap(data_key, passphrase, kdf, randbytes))
    return Sealer(data_key, randbytes=randbytes)


def open_key_file(path: str | Path, passphrase: str) -> Sealer:
    """The sealer of the data key in `path`; KeyFileError if the passphrase is wrong or the file damaged."""
    return Sealer(_unwrap(_read(Path(path)), passphrase))


def change_passphrase(
    path: str | Path,
    old: str,
    new: str,
    *,
    kdf: ScryptParams | None = None,
    randbytes: Callable[[int], bytes] = os.urandom,
) -> None:
    """Rewrap the data key under `new` (fresh salt); the sealed data stays as it is."""
    path = Path(path)
    doc = _read(path)
    data_key = _unwrap(doc, old)
    _check_new_passphrase(new)
    _write_atomically(path, _wrap(data_key, new, kdf or _params(doc), randbytes))


def _check_new_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyFileError(
            f"口令至少 {MIN_PASSPHRASE} 个字符 (the passphrase needs at least {MIN_PASSPHRASE} characters)",
            hint="用一句只有代办员知道的话",
        )


def _derive(passphrase: str, salt: bytes, kdf: ScryptParams) -> bytes:
    kdf.check()
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=salt, length=KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)


def _wrap(data_key: bytes, passphrase: str, kdf: ScryptParams, randbytes: Callable[[int], bytes]) -> dict[str, Any]:
    salt, nonce = randbytes(SALT_BYTES), randbytes(NONCE_BYTES)
    wrapping = _derive(passphrase, salt, kdf)
    return {
        "v": KEY_FILE_VERSION,
        "type": KEY_FILE_TYPE,
        "kdf": {"name": "scrypt", "n": kdf.n, "r": kdf.r, "p": kdf.p, "salt": salt.hex()},
        "wrap": {
            "alg": "aes-256-gcm",
            "nonce": nonce.hex(),
            "key": AESGCM(wrapping).encrypt(nonce, data_key, _WRAP_AAD).hex(),
        },
    }


def _unwrap(doc: Mapping[str, Any], passphrase: str) -> bytes:
    kdf = _params(doc)
    try:
        wrap = doc["wrap"]
        salt = bytes.fromhex(doc["kdf"]["salt"])
        nonce = bytes.fromhex(wrap["nonce"])
        wrapped = bytes.fromhex(wrap["key"])
        alg = wrap["alg"]
    except (KeyError, TypeError, ValueError) as e:
        raise _damaged() from e
    if alg != "aes-256-gcm" or len(nonce) != NONCE_BYTES or len(salt) < SALT_BYTES:
        raise _damaged()
    try:
        data_key = AESGCM(_derive(passphrase, salt, kdf)).decrypt(nonce, wrapped, _WRAP_AAD)
    except InvalidTag as e:
        raise KeyFileError(
            "口令不对，无法打开个人信息密钥 (wrong passphrase for the personal-data key)",
            hint="请输入代办员设置的口令；忘记口令时本机加密的个人信息无法恢复，请联系乡镇重新同步",
        ) from e
    if len(data_key) != KEY_BYTES:
        raise _damaged()
    return data_key


def _params(doc: Mapping[str, Any]) -> ScryptParams:
    try:
        kdf = doc["kdf"]
        if kdf["name"] != "scrypt":
            raise KeyFileError(f"不支持的密钥派生算法 {kdf['name']!r} (unsupported KDF)")
        params = ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    except (KeyError, TypeError, ValueError) as e:
        raise _damaged() from e
    params.check()
    return params


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError as e:
        raise KeyFileError(
            f"找不到个人信息密钥文件 {path} (no key file)", hint="先初始化本机，或指定正确的数据目录"
        ) from e
    except (OSError, ValueError) as e:
        raise _damaged(path) from e
    if not isinstance(doc, dict) or doc.get("type") != KEY_FILE_TYPE:
        raise _damaged(path)
    if doc.get("v") != KEY_FILE_VERSION:
        raise KeyFileError(
            f"{path} 的版本 {doc.get('v')!r} 不受支持 (unsupported key file version)", hint="请升级本软件"
        )
    return doc


def _damaged(path: Path | None = None) -> KeyFileError:
    return KeyFileError(
        f"个人信息密钥文件{f' {path}' if path else ''}已损坏或不是密钥文件 (damaged or not a key file)",
        hint="从备份恢复 pii.key",
    )


def _write_atomically(path: Path, doc: Mapping[str, Any]) -> None:
    """Write a new owner-only file beside `path`, flush it to disk, and rename it over `path`."""
    if not path.parent.exists():
        files.private_dir(path.parent)
    files.write_atomic(path, json.dumps(doc, indent=2, sort_keys=True).encode())


# -- when personal data leaves the laptop --------------------------------------------

PurgeCandidate = tuple[str, str, int, int | None]  # case_id, feed, seq, county receipt time (ms) or None


@dataclass(frozen=True)
class PurgeRule:
    """When a case's personal data is purged from the village laptop.

    `after_days` calendar days after the county's receipt (县级已接收) covers
    the case's entry; 0 purges at the first check after the receipt. The
    county sets it (settings `pii_purge`, `pii_purge_days`); the agent sees it
    as `describe()`. A case the county has not receipted is never purged.
    """

    enabled: bool = True
    after_days: int = 30

    def __post_init__(self) -> None:
        if type(self.after_days) is not int or not 0 <= self.after_days <= 3650:
            raise ValidationError(f"清除期限须为 0–3650 天，不是 {self.after_days!r} (after_days must be 0–3650)")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PurgeRule:
        """From the county's settings `pii_purge` (1/0) and `pii_purge_days` (defaults: on, 30 days)."""
        return cls(bool(settings.get("pii_purge", 1)), settings.get("pii_purge_days", 30))

    def describe(self) -> str:
        if not self.enabled:
            return "不清除: 申请人个人信息加密保存在本机 (personal data is kept, encrypted)"
        when = "县级接收后立即" if self.after_days == 0 else f"县级接收后 {self.after_days} 天"
        return f"{when}从本机清除申请人个人信息；县级保留完整记录 (purged from this laptop; the county keeps it)"


def due_for_purge(cases: Iterable[PurgeCandidate], rule: PurgeRule, now_ms: int) -> list[PurgeCandidate]:
    """The cases whose personal data is due to go, ordered by feed and seq."""
    if not rule.enabled:
        return []
    wait = rule.after_days * DAY_MS
    due = [c for c in cases if c[3] is not None and c[3] + wait <= now_ms]
    return sorted(due, key=lambda c: (c[1], c[2]))
