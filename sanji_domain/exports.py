"""Excel (openpyxl) and CSV files of the 代办台账, the 值班表 and the statistics, as a township prints them.

Excel: a title row merged across the columns (e.g. "梅花村代办台账 2026年11月"),
a bold header row with borders, column widths fitted to the content, dates as
`yyyy-mm-dd` text, panes frozen below the header, A4 landscape, fitted to one
page wide, the header repeated on every printed page.
CSV: UTF-8 with a BOM (so Excel opens the Chinese correctly), a header row,
no title.

A file is written next to its target and moved into place, owner-only
(sync_protocol.files), so a failed export never leaves half a file. Returns the number of data rows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sync_protocol import files

from . import places, views
from . import stats as stats_module
from .errors import ValidationError

FORMATS = ("xlsx", "csv")
Column = str | tuple[str, str]  # a key that is also the header, or (key, header)

_MAX_WIDTH = 40


def _columns(columns: Sequence[Column]) -> list[tuple[str, str]]:
    out = [(c, c) if isinstance(c, str) else (c[0], c[1]) for c in columns]
    if not out:
        raise ValidationError("导出至少需要一列 (no columns to export)")
    return out


def cell_text(value: Any) -> Any:
    """What a cell shows: dates as yyyy-mm-dd text, booleans 是/否, None empty; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | str):
        return value
    return str(value)


def _values(columns: list[tuple[str, str]], row: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    if isinstance(row, Mapping):
        return [cell_text(row.get(key)) for key, _ in columns]
    return [cell_text(v) for v in row]


def _width(value: Any) -> int:
    """Display width: a CJK character takes two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(value))


def _target(path: str | os.PathLike[str], fmt: str | None) -> tuple[Path, str]:
    """The file and its format: `fmt` if given, else the suffix; they must agree, and the folder must exist."""
    p = Path(path)
    suffix = p.suffix.lower().lstrip(".")
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(f"不支持的导出格式 {fmt!r} (unknown format)", hint="可用: xlsx 或 csv")
    if fmt is None:
        if suffix not in FORMATS:
            raise ValidationError(
                f"无法从文件名 {p.name!r} 判断导出格式 (give a .xlsx or .csv file name, or a format)",
                hint="例如 台账.xlsx 或 台账.csv",
            )
        fmt = suffix
    elif suffix in FORMATS and suffix != fmt:
        raise ValidationError(f"文件名 {p.name!r} 与导出格式 {fmt} 不符 (file name and format disagree)")
    if p.is_dir():
        raise ValidationError(f"{p} 是一个文件夹，请给出文件名 (a folder, not a file name)")
    if not p.parent.is_dir():
        raise ValidationError(f"文件夹 {p.parent} 不存在 (no such folder)", hint="先建好文件夹，或换一个保存位置")
    return p, fmt


def _write_whole(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """`write` a file beside `path`, then move it into place: all of the file or none of it (owner-only)."""
    try:
        with files.atomic_writer(path) as out:
            write(out)
    except OSError as e:
        raise ValidationError(
            f"无法写入 {path}: {e.strerror or e} (cannot write the file)", hint="文件是否正在 Excel 中打开？"
        ) from e


def write_xlsx(
    path: str | os.PathLike[str],
    title: str,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any] | Sequence[Any]],
) -> int:
    """The printable table in one sheet: title row, bold bordered header, data rows; returns the row count."""
    p, _ = _target(path, "xlsx")
    cols = _columns(columns)
    # imported here: every command line imports this module, few of them write Excel
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    wb = Workbook()
    ws = wb.active
    ws.title = (title.split()[0] if title.strip() else "Sheet")[:31].translate(str.maketrans("", "", "[]:*?/\\"))
    n = len(cols)
    ws.cell(row=1, column=1, value=title)
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    if n > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=n)
    ws.row_dimensions[1].height = 28
    widths = [_width(header) for _, header in cols]
    for j, (_, header) in enumerate(cols, start=1):
        c = ws.cell(row=2, column=j, value=header)
        c.font = Font(bold=True)
        c.border = border
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    count = 0
    for i, row in enumerate(rows, start=3):
        count += 1
        for j, value in enumerate(_values(cols, row), start=1):
            c = ws.cell(row=i, column=j, value=value)
            c.border = border
            c.alignment = Alignment(vertical="center", wrap_text=True)
            if isinstance(value, str):
                c.number_format = "@"  # text, so Excel does not turn 身份证号 or dates into numbers
            widths[j - 1] = max(widths[j - 1], _width(value))
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(_MAX_WIDTH, w + 2)
    ws.freeze_panes = "A3"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "2:2"
    ws.print_options.horizontalCentered = True
    _write_whole(p, wb.save)
    return count


def write_csv(
    path: str | os.PathLike[str], columns: Sequence[Column], rows: Iterable[Mapping[str, Any] | Sequence[Any]]
) -> int:
    """A header row and the data rows, UTF-8 with a BOM; returns the row count."""
    p, _ = _target(path, "csv")
    cols = _columns(columns)
    count = 0

    def write(out: BinaryIO) -> None:
        nonlocal count
        f = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
        w = csv.writer(f)
        w.writerow([header for _, header in cols])
        for row in rows:
            w.writerow(_values(cols, row))
            count += 1
        f.flush()
        f.detach()  # the stream stays open for the atomic writer to sync and rename

    _write_whole(p, write)
    return count


def write_table(
    path: str | os.PathLike[str],
    fmt: str | None,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any] | Sequence[Any]],
) -> int:
    """`write_xlsx` or `write_csv`, by `fmt` or else the file name's suffix."""
    _, fmt = _target(path, fmt)
    if fmt == "xlsx":
        return write_xlsx(path, title, columns, rows)
    return write_csv(path, columns, rows)


def _month_text(month: str | None) -> str:
    if not month:
        return ""
    first, _ = views.parse_month(month)
    return f" {first.year}年{first.month}月"


def export_ledger(
    conn: Any, path: str | os.PathLike[str], fmt: str | None = None, *, title: str | None = None, **filters: Any
) -> int:
    """代办台账 (`views.ledger` with `filters`: village, township, month, today, opener, tz) to a file.
    `title` defaults to "<village's or township's name>代办台账 <yyyy>年<m>月"."""
    _target(path, fmt)  # a bad path or format fails before the query
    rows = views.ledger(conn, **filters)
    place = filters.get("village") or filters.get("township")
    where = places.name_of(conn, place) if place else "全县"
    title = title or f"{where}代办台账{_month_text(filters.get('month'))}"
    return write_table(path, fmt, title, views.LEDGER_COLUMNS, rows)


def export_roster(
    conn: Any, path: str | os.PathLike[str], fmt: str | None = None, *, title: str | None = None, **filters: Any
) -> int:
    """值班表 (`views.roster` with `filters`: village, month) to a file; the title names the village."""
    _target(path, fmt)
    rows = views.roster(conn, **filters)
    where = places.name_of(conn, filters["village"]) if filters.get("village") else ""
    title = title or f"{where}代办点值班表{_month_text(filters.get('month'))}"
    return write_table(path, fmt, title, views.ROSTER_COLUMNS, rows)


def export_statistics(
    conn: Any, path: str | os.PathLike[str], fmt: str | None = None, *, title: str | None = None, **filters: Any
) -> int:
    """Statistics (`stats.statistics` with `filters`: group_by, period, today, tz), one row per group, a
    column per metric and per state that occurs."""
    _target(path, fmt)
    rows = stats_module.statistics(conn, **filters)
    columns, flat = stats_module.flat_rows(rows)
    group_by = filters.get("group_by", "county")
    columns[0] = ("label", stats_module.GROUP_LABELS.get(group_by, "分组"))
    if title is None:
        period = stats_module.check_period(filters.get("period"))
        span = f" {period[0].isoformat()} 至 {period[1].isoformat()}" if period else ""
        title = f"政务服务办件统计（按{stats_module.GROUP_LABELS.get(group_by, group_by)}）{span}"
    return write_table(path, fmt, title, columns, flat)
