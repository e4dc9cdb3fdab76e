"""A file an export writes, sent to the browser as a download (Excel, named in Chinese)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Response, send_file

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def written(write: Callable[[Path], Any], suffix: str = ".xlsx") -> bytes:
    """The bytes of a file `write(path)` makes in a fresh temporary folder (removed at once)."""
    with tempfile.TemporaryDirectory(prefix="sanji-export-") as tmp:
        path = Path(tmp) / f"export{suffix}"
        write(path)
        return path.read_bytes()


def xlsx_download(write: Callable[[Path], Any], name: str) -> Response:
    """The Excel file `write(path)` makes, as an attachment called `name` (办件统计_按村_2026-11.xlsx)."""
    return send_file(io.BytesIO(written(write)), mimetype=XLSX, as_attachment=True, download_name=name)
