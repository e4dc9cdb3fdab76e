"""Helpers for the three node CLIs: one error translation, Chinese text or --json, progress."""

from __future__ import annotations

import errno
import functools
import json
import logging
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from sync_protocol.errors import StoreError, SyncError, TransportError
from sync_protocol.http_api import is_busy

from .logs import setup_logging

log = logging.getLogger("sanji.cli")

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False),
    required=True,
    envvar="SANJI_DATA",
    help="the node's data directory (or $SANJI_DATA)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable JSON output")


class UsageError(click.UsageError):
    """click's usage error (a missing option, a bad value, an unknown command), Chinese first for the user."""

    def show(self, file: Any = None) -> None:
        path = self.ctx.command_path if self.ctx is not None else "命令"
        click.echo(f"错误: 命令行参数不对 (usage error: {self.format_message()})", err=True, file=file)
        click.echo(f"建议: 运行 {path} --help 查看用法 (see {path} --help)", err=True, file=file)


class Cancelled(click.ClickException):
    """A prompt with no answer (no terminal, Ctrl-D) or Ctrl-C: nothing was done."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo("错误: 已取消，没有做任何更改 (aborted: nothing changed)", err=True, file=file)


class Program(click.Group):
    """The top command group of a program: click's usage errors are shown Chinese first, like every other error."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as e:
            raise chinese_usage(e) from e

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise chinese_usage(e) from e
        except (click.Abort, EOFError, KeyboardInterrupt) as e:
            click.echo(err=True)  # closes the terminal's ^C echo
            raise Cancelled("aborted") from e


def chinese_usage(e: click.UsageError) -> UsageError:
    if isinstance(e, UsageError):
        return e
    return UsageError(e.format_message(), e.ctx)


def handle_errors(fn: F) -> F:
    """The one edge between a command and its user: logging set up once (DATA/logs/sanji.log), a SyncError as
    a clear message and exit status 2 (3: retry later), anything unexpected as one Chinese line with an
    incident id and the log's path, exit status 1. Never a traceback on the user's screen."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        data_dir = kwargs.get("data_dir")
        log_file = setup_logging(Path(data_dir).expanduser().resolve() if data_dir else None)
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except SyncError as e:
            fail(busy_error() if is_busy(e) else e, as_json)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                unexpected(e, fn.__name__, log_file, as_json)
            log.warning("database busy in %s: %s", fn.__name__, e)
            fail(busy_error(), as_json)
        except OSError as e:  # a folder that is not there, a USB stick pulled out, no permission, a full disk
            log.warning("file error in %s: %s", fn.__name__, e)
            fail(file_error(e), as_json)
        except Exception as e:
            unexpected(e, fn.__name__, log_file, as_json)

    return wrapper  # type: ignore[return-value]


def busy_error() -> TransportError:
    return TransportError(
        "数据库正被本节点的另一个程序占用 (the database is locked by another process of this node)",
        hint="稍后再试；如果一直如此，确认没有别的命令或 serve 卡住",
    )


OS_REASONS = {
    errno.ENOENT: "文件或文件夹不存在",
    errno.EACCES: "没有权限",
    errno.EPERM: "没有权限",
    errno.ENOSPC: "磁盘已满",
    errno.EISDIR: "这是一个文件夹，不是文件",
    errno.EROFS: "磁盘是只读的",
}


def file_error(e: OSError) -> StoreError:
    what = f" {e.filename}" if e.filename else ""
    reason = OS_REASONS.get(e.errno or 0, e.strerror or type(e).__name__)
    return StoreError(
        f"无法读写文件{what}：{reason} (file error: {e})",
        hint="检查路径和文件夹是否存在、U 盘是否插好、是否有写权限、磁盘是否已满",
    )


def fail(e: SyncError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": e.to_dict()}, ensure_ascii=False))
    else:
        click.echo(f"错误: {e.for_people}", err=True)
        if e.hint:
            click.echo(f"建议: {e.hint}", err=True)
    sys.exit(3 if isinstance(e, TransportError) else 2)


def unexpected(e: BaseException, command: str, log_file: Path | None, as_json: bool) -> NoReturn:
    """A bug or an unforeseen condition: logged with its traceback, one line for the user, exit status 1."""
    incident = uuid.uuid4().hex[:8]
    if log_file is None:  # no node in --data: the incident goes to ~/.sanji/logs
        log_file = setup_logging(None, fallback=True)
    log.error("incident %s in command %s", incident, command, exc_info=e)
    where = f"，详细记录在 {log_file}" if log_file else ""
    message = f"程序出错了（事件编号 {incident}）{where} (unexpected error {type(e).__name__}, incident {incident})"
    hint = "请把事件编号和这个日志文件交给县级信息管理员"
    if as_json:
        error = {"code": "internal", "message": message, "hint": hint, "incident": incident}
        click.echo(json.dumps({"error": error}, ensure_ascii=False))
    else:
        click.echo(f"错误: {message}", err=True)
        click.echo(f"建议: {hint}", err=True)
    sys.exit(1)


def emit(as_json: bool, data: Any, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def fmt_ms(ms: int | str | None) -> str:
    if ms in (None, "", 0, "0"):
        return "从未"
    return datetime.fromtimestamp(int(ms) / 1000).strftime("%Y-%m-%d %H:%M:%S")


def now_ms() -> int:
    return int(time.time() * 1000)


def progress_printer() -> Callable[[str, int, int], None]:
    """A one-line progress bar on stderr: 上传/下载 counts."""
    labels = {"push": "上传", "pull": "下载"}

    def show(phase: str, done: int, total: int) -> None:
        label = labels.get(phase, phase)
        if total:
            width = 30
            filled = int(width * done / total)
            bar = "█" * filled + "·" * (width - filled)
            click.echo(f"\r{label} [{bar}] {done}/{total} 条", nl=False, err=True)
        else:
            click.echo(f"\r{label} {done} 条", nl=False, err=True)

    return show


def started(message: str, scheduler: Any) -> None:
    """`serve`'s start hook: say where it listens, then start the sync schedule."""
    click.echo(message)
    scheduler.start()


def parse_duration_ms(text: str) -> int:
    units = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
    try:
        return int(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r}: use a number and m, h or d, e.g. 72h or 7d") from None
