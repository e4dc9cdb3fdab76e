"""Print the figures of a long reliability run as one table: `python -m tests.reliability.summary FOLDER`.

FOLDER holds one JSON file per record (`tests/reliability/report.py` writes
them when `SANJI_RELIABILITY_OUT` names it; `bash scripts/reliability.sh` sets
it). One row per figure: the record's name on its first row, then the figure
and its value. Columns are aligned by display width, so Chinese text (two
columns a character in a terminal) lines up too.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

HEADINGS = ("record", "figure", "value")


def width(text: str) -> int:
    """Terminal columns `text` takes: wide and full-width characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text
    )


def pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def load(folder: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "name" in data and isinstance(data.get("figures"), dict):
            records.append(data)
    return sorted(records, key=lambda r: str(r["name"]))


def table(records: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, str, str]] = []
    for r in records:
        figures = r["figures"] or {"(none)": ""}
        for i, (k, v) in enumerate(figures.items()):
            rows.append((str(r["name"]) if i == 0 else "", str(k), str(v)))
    widths = [max(width(row[i]) for row in [HEADINGS, *rows]) for i in range(3)]
    rule = "  ".join("-" * w for w in widths)
    lines = ["  ".join(pad(h, w) for h, w in zip(HEADINGS, widths, strict=True)).rstrip(), rule]
    for row in rows:
        if row[0] and len(lines) > 2:
            lines.append("")  # a blank line between records
        lines.append("  ".join(pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.reliability.summary FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    records = load(folder) if folder.is_dir() else []
    if not records:
        print(f"没有记录 (no records in {folder})", file=sys.stderr)
        return 1
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
