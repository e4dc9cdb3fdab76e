"""Changing a node's passphrase: the node key and, on a village laptop, the personal-data key.

Both files are rewrapped under the new passphrase; the sealed data and the
node's identity stay as they are. Each file is replaced atomically, and a
change cut short (power lost between the two files) is finished by running
the command again: a file that already opens with the new passphrase is left
as it is.
"""

from __future__ import annotations

from sanji_domain import pii
from sync_protocol import files
from sync_protocol.errors import KeyFileError, SyncError
from sync_protocol.keys import SigningKey

from .child import PII_KEY_FILE
from .config import DataDir


def _opens(pem: bytes, passphrase: str) -> SigningKey | None:
    try:
        return SigningKey.from_pem(pem, passphrase.encode("utf-8"))
    except SyncError:
        return None


def change_passphrase(data: DataDir, old: str, new: str) -> list[str]:
    """Rewrap the node key (and `pii.key`) from `old` to `new`; return the files changed."""
    if len(new) < pii.MIN_PASSPHRASE:
        raise KeyFileError(
            f"the new passphrase needs at least {pii.MIN_PASSPHRASE} characters",
            hint="用一句只有代办员知道的话 (a sentence only the agent knows)",
        )
    if new == old:
        raise KeyFileError("the new passphrase is the same as the old one", hint="choose another")
    pem = data.key_path.read_bytes()
    key = _opens(pem, old)
    if key is None and _opens(pem, new) is None:
        raise KeyFileError(
            "the node key does not open with the current passphrase",
            hint="set the passphrase variable named in node.json to the current passphrase",
        )
    pii_path = data.path / PII_KEY_FILE
    changed = []
    if pii_path.exists():
        try:
            pii.open_key_file(pii_path, new)  # already changed by an earlier, interrupted run
        except SyncError:
            pii.change_passphrase(pii_path, old, new)
            changed.append(PII_KEY_FILE)
    if key is not None:
        files.write_atomic(data.key_path, key.to_pem(new.encode("utf-8")))
        changed.append(data.key_path.name)
    return changed
