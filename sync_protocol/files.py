"""Owner-only files, written atomically; input files that must be regular files (an I/O adapter).

Every file that holds keys, personal data or a node's entries (databases,
node.key, pii.key, node.json, web.secret, backups, bundles, exports) is
written through this module:

- `atomic_writer(path)` / `write_atomic(path, data)`: the bytes go to a new
  temporary file with an unpredictable name in the same directory, created
  exclusively (`O_CREAT|O_EXCL`, and `O_NOFOLLOW` where the platform has it,
  so nothing prepared in advance — a symlink, a FIFO — is ever opened), owner
  read/write only (0600), flushed and fsynced, then renamed over `path`, and
  the directory is fsynced. A reader sees the old file or the new one, never
  half of one. `path` itself must not be a symlink (refused, nothing written);
  an existing file's mode is kept when it is stricter than the one asked for,
  never widened.
- `private_dir(path)`: creates directories owner-only (0700).
- `private_database(path)`: creates an empty SQLite file 0600 before SQLite
  opens it, so the database, and its -wal/-shm files that SQLite creates with
  the database's mode, never exist readable by others; an existing database
  (and its -wal/-shm) is tightened to 0600.
- `open_regular(path)` / `require_regular(path)`: an input (bundle, backup
  file, catalog) must be a regular file; a FIFO, a device or a directory is
  refused with `UnsafeFileError` instead of blocking on open or reading forever.

Windows: the modes above are POSIX. There, the same places set a user-only
NTFS ACL with Windows' own `icacls` (`/inheritance:r /grant:r USER:F`, and
`(OI)(CI)F` on a directory so what is created inside inherits it): the data
directory, each database file and each file written atomically. Where the
file system has no ACLs (a FAT USB stick) or `icacls` fails, the file keeps
what it inherited and a warning is logged. This path is exercised only on
Windows; the tests here check the command it runs (`windows_acl_command`).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import StoreError

log = logging.getLogger("sanji.files")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
POSIX = os.name == "posix"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafeFileError(StoreError):
    """A path that is not a plain file where one is needed (a symlink to write through, a FIFO or device to read)."""

    code = "unsafe_file"


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise UnsafeFileError(
            f"{path} 是一个符号链接，拒绝通过它写入 (refusing to write through a symlink)",
            hint="删除这个链接，或换一个文件名再试；数据包和备份只写到普通文件",
        )


def windows_acl_command(path: Path, *, directory: bool, user: str) -> list[str]:
    """The `icacls` command that leaves `path` to `user` alone: inherited entries removed, full control
    granted to the user only (inherited by files and folders created inside a directory)."""
    grant = f"{user}:(OI)(CI)F" if directory else f"{user}:F"
    return ["icacls", str(path), "/inheritance:r", "/grant:r", grant]


def windows_user() -> str:
    user = os.environ.get("USERNAME") or getpass.getuser()
    domain = os.environ.get("USERDOMAIN")
    return f"{domain}\\{user}" if domain else user


def _restrict_windows(path: Path, *, directory: bool) -> None:
    """User-only ACL on Windows (see the module docstring); nothing elsewhere."""
    if os.name != "nt":
        return
    command = windows_acl_command(path, directory=directory, user=windows_user())
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("could not make %s user-only with icacls: %s", path, e)


def _chmod(path: Path | int, mode: int) -> None:
    if not POSIX:
        return  # Windows: `_restrict_windows` sets the ACL
    if isinstance(path, int):
        os.fchmod(path, mode)
    else:
        os.chmod(path, mode)


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) owner-only, and make `path` itself 0700; refuse a symlink."""
    path = Path(path)
    _refuse_symlink(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    _chmod(path, PRIVATE_DIR)
    _restrict_windows(path, directory=True)
    return path


def _kept_mode(path: Path, mode: int) -> int:
    """`mode`, narrowed to an existing file's mode: a file is never made more open than it was."""
    try:
        return stat.S_IMODE(path.stat().st_mode) & mode
    except FileNotFoundError:
        return mode


def _fsync_dir(path: Path) -> None:
    if not POSIX:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private(path: Path) -> BinaryIO:
    """A new owner-only file; fails if anything (a file, a symlink, a FIFO) already has that name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, PRIVATE_FILE)
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = PRIVATE_FILE) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces `path` when the block ends without an error."""
    path = Path(path)
    _refuse_symlink(path)
    final_mode = _kept_mode(path, mode)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with create_private(tmp) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
            _chmod(out.fileno(), final_mode)
        _refuse_symlink(path)  # made meanwhile: still never written through (os.replace would replace the link)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    if mode == PRIVATE_FILE:
        _restrict_windows(path, directory=False)


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    with atomic_writer(path, mode=mode) as out:
        out.write(data)


def private_database(path: Path) -> None:
    """Make sure the SQLite file at `path` exists owner-only before SQLite opens it."""
    path = Path(path)
    if not path.parent.exists():
        private_dir(path.parent)
    _refuse_symlink(path)
    try:
        create_private(path).close()
    except FileExistsError:
        pass
    else:
        _restrict_windows(path, directory=False)
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if POSIX and p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
            _chmod(p, stat.S_IMODE(p.stat().st_mode) & PRIVATE_FILE)


def require_regular(path: Path, what: str = "文件") -> None:
    """Refuse anything but a regular file (following symlinks): a FIFO would block, a device never ends."""
    try:
        st = Path(path).stat()
    except OSError as e:
        raise UnsafeFileError(
            f"无法读取{what} {path}: {e.strerror or e} (cannot read)", hint="确认路径正确、U盘已插好"
        ) from e
    if not stat.S_ISREG(st.st_mode):
        kind = "目录" if stat.S_ISDIR(st.st_mode) else "命名管道" if stat.S_ISFIFO(st.st_mode) else "设备或特殊文件"
        raise UnsafeFileError(
            f"{path} 是{kind}，不是普通文件，拒绝读取 (not a regular file)",
            hint=f"请指定{what}本身（U盘上的普通文件）",
        )


def open_regular(path: Path, what: str = "文件") -> BinaryIO:
    """Open a regular file for reading; a FIFO or device is refused without blocking on it."""
    require_regular(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _BINARY)
    except OSError as e:
        raise UnsafeFileError(f"无法打开{what} {path}: {e.strerror or e} (cannot open)", hint="确认路径正确") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since the check
            raise UnsafeFileError(f"{path} 不是普通文件，拒绝读取 (not a regular file)", hint=f"请指定{what}本身")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
