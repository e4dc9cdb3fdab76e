"""Figures of the reliability suite, gathered into one summary table.

A test calls `record("kill -9 during apply", trials=10, lost=0, duplicated=0)`.
When `SANJI_RELIABILITY_OUT` names a folder (the long run,
`bash scripts/reliability.sh`, sets it), each record is written there as one
JSON file; `python -m tests.reliability.summary FOLDER` prints them as a table.
Without the variable a record is a no-op, so the CI part writes nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

OUT_ENV = "SANJI_RELIABILITY_OUT"
LONG_ENV = "SANJI_LONG"


def long_run() -> bool:
    """True in the long run (`SANJI_LONG=1`): tests use their long trial counts."""
    return os.environ.get(LONG_ENV, "") == "1"


def record(name: str, **figures: Any) -> None:
    folder = os.environ.get(OUT_ENV, "")
    if not folder:
        return
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "figures"
    (out / f"{slug}.json").write_text(
        json.dumps({"name": name, "figures": figures}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
