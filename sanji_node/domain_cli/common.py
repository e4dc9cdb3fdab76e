"""What the domain commands share: the node loader's type, the group helper, the table renderer, options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..cli import data_option, handle_errors, json_option
from ..workspace import LocalNode

Loader = Callable[[str], LocalNode]
Prepare = Callable[[LocalNode, bool], None]


def subgroup(group: click.Group, name: str, help: str) -> click.Group:
    """The group `name` under `group`: the program's own if it has one (the county's `catalog`), else a new one."""
    sub = group.commands.get(name)
    if not isinstance(sub, click.Group):
        sub = click.Group(name, help=help)
        group.add_command(sub)
    return sub


def table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    """Rows as lines of columns (`cols`: (key, heading)); an empty cell for None; （无） for no rows."""
    if not rows:
        return "（无）"
    lines = ["  ".join(h for _, h in cols)]
    for r in rows:
        lines.append("  ".join("" if r.get(k) is None else str(r.get(k)) for k, _ in cols))
    return "\n".join(lines)


def yes(value: Any) -> Any:
    """A flag as a reader wants it in a table: 是 for true, blank for false, anything else as it is."""
    return "是" if value is True else "" if value is False else value


def yes_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: yes(v) for k, v in r.items()} for r in rows]


# what a program records after a command changed data (the county's audit log; nothing elsewhere):
# audit(ws, action, target_kind=…, target=…, reason=…, details=…), inside the command's workspace
Audit = Callable[..., None]


def no_audit(ws: Any, action: str, **what: Any) -> None:
    """The townships and villages keep no audit log of their commands."""


person_option = click.option(
    "--person", default=None, help="the name of who does it (窗口人员/代办员姓名), recorded on the event"
)


format_option = click.option(
    "--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None, help="default: from the file name"
)


def export_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """DATA, PATH, --month, --village, --format and --json, with the one error translation."""
    for deco in reversed(
        (
            data_option,
            click.argument("path", type=click.Path(dir_okay=False)),
            click.option("--month", default=None, help="YYYY-MM"),
            click.option("--village", default=None, help="only this village"),
            format_option,
            json_option,
            handle_errors,
        )
    ):
        fn = deco(fn)
    return fn


def format_for(path: Path, fmt: str | None) -> str:
    """The export format: --format, else the file's suffix, else xlsx."""
    return fmt or path.suffix.lstrip(".").lower() or "xlsx"
