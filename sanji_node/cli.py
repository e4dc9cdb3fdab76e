"""Helpers for the three node CLIs: one error translation, Chinese text or --json, progress."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from sync_protocol.errors import SyncError, TransportError

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


def handle_errors(fn: F) -> F:
    """Turn a SyncError into a clear message and exit status 2 (3: retry later)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SyncError as e:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": e.to_dict()}, ensure_ascii=False))
            else:
                click.echo(f"错误: {e.message}", err=True)
                if e.hint:
                    click.echo(f"建议: {e.hint}", err=True)
            sys.exit(3 if isinstance(e, TransportError) else 2)

    return wrapper  # type: ignore[return-value]


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
