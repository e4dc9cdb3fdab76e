"""办事指南: finding an item the way a villager names it, and reading it as a guide.

Search takes any part of the name (高龄 finds 高龄津贴申请), the pinyin
initials (gljt), or the code (实施编码 or 基本编码); results keep the catalog's
order, names that start with the text first. Pinyin initials come from
`pypinyin` (a well-kept dictionary with heteronyms) and are cached per name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pypinyin import Style, lazy_pinyin

from .views import catalog

FREE = "不收费"


@lru_cache(maxsize=4096)
def initials(name: str) -> str:
    """Pinyin initials of a name, lower case: 高龄津贴申请 → gljtsq (letters and digits kept as they are)."""
    return "".join(p[:1] for p in lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default")).lower()


def search_items(conn: Any, text: str | None, *, village_only: bool = False) -> list[dict[str, Any]]:
    """Items in use matching `text` (all of them for an empty text); `village_only`: items a village can take."""
    items = [i for i in catalog(conn) if not village_only or i.get("village_mode")]
    t = (text or "").strip()
    if not t:
        return items
    low = t.lower()
    hits = []
    for i in items:
        name = i["name"]
        if t in name or t in i["task_code"] or low in initials(name) or t == i.get("catalog_code"):
            starts = name.startswith(t) or initials(name).startswith(low)
            hits.append((0 if starts else 1, i))
    return [i for _, i in sorted(hits, key=lambda h: h[0])]


def fee_text(item: dict[str, Any]) -> str:
    """收费: 不收费, or each fee in 元 with its standard."""
    fees = [f for f in item.get("fees") or [] if int(f.get("standard_fen") or 0) > 0]
    if not fees:
        return FREE
    return "；".join(f"{f.get('name', '')} {int(f['standard_fen']) / 100:.2f} 元" for f in fees)


def material_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The materials as a guide lists them: name, 原件/复印件, copies, 必需 or not, notes."""
    return [
        {
            "name": m["name"],
            "form": m.get("form") or "原件",
            "copies": int(m.get("copies") or 1),
            "required": bool(m.get("required", True)),
            "standard": m.get("standard") or "",
            "notes": m.get("notes") or "",
        }
        for m in item.get("materials") or []
    ]
