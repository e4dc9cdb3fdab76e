"""Logging for the three programs: once per program, to a rotating file in the node's data directory.

DATA/logs/sanji.log     the newest lines (at most 1 MiB), then sanji.log.1 … sanji.log.5

Every line goes through `redact`: 身份证号 and mobile numbers are masked,
whatever logged them (an exception's text included). The code never logs
applicants' names, form fields or request bodies; an incident logs its id,
the route and the traceback. A log file that cannot be rotated (Windows: another
process of the node has it open) or written is skipped silently: logging never
takes a command down or prints to the user's screen.
"""

from __future__ import annotations

import logging
import re
from logging.handlers import RotatingFileHandler
from pathlib import Path

from .config import CONFIG_FILE

LOG_DIR, LOG_FILE = "logs", "sanji.log"
MAX_BYTES, BACKUPS = 1024 * 1024, 5
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"

_ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}[01][0-9][0-3][0-9]{4}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def redact(text: str) -> str:
    """The text with every 身份证号 and mobile number masked."""
    return _MOBILE.sub("1**********", _ID_NUMBER.sub("******************", text))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class QuietRotatingFileHandler(RotatingFileHandler):
    """A rotating file that never reports its own failures on stderr (a user would see a traceback)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def log_path(data_path: Path) -> Path:
    return data_path / LOG_DIR / LOG_FILE


def fallback_dir() -> Path:
    """Where a command logs when its data directory holds no node (yet) or is unusable."""
    return Path.home() / ".sanji"


def setup_logging(data_path: Path | None, *, fallback: bool = False, level: int = logging.INFO) -> Path | None:
    """Send the `sanji` loggers (and waitress's) to DATA/logs/sanji.log, one handler per process.

    Called again for the same directory, nothing changes (a program's commands each call it); for another
    directory (tests running many nodes in one process) the handler moves there. Without a node in `data_path`
    nothing is set up unless `fallback` (an incident to record): then ~/.sanji/logs. Returns the log file, or
    None (then nothing is logged)."""
    wanted = [log_path(data_path)] if data_path is not None and (data_path / CONFIG_FILE).is_file() else []
    for name in ("sanji", "waitress"):
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, QuietRotatingFileHandler):
                if Path(h.baseFilename) in wanted or (not wanted and name == "sanji"):
                    return Path(h.baseFilename)
                logger.removeHandler(h)
                h.close()
    for base in ([data_path] if data_path is not None and wanted else []) + ([fallback_dir()] if fallback else []):
        path = log_path(base)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            handler = QuietRotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
            )
        except OSError:
            continue
        handler.setFormatter(RedactingFormatter(FORMAT))
        for name in ("sanji", "waitress"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = False  # nothing reaches stderr through the root logger
        return path
    quiet = logging.getLogger("sanji")  # no file: nothing at all, rather than Python's last resort on stderr
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return None
