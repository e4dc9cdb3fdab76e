"""事项清单 pages: how an item's fields are shown, and the edit form (fields in, the row an import would read out).

The form is checked by the catalog import's own rules: its fields become one
row keyed by the column names a file would use (实施编码, 承诺时限, 申请材料 …),
so an edit and an imported file are refused for the same reasons, and an error
names the field as it names a column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sanji_domain import guide
from sanji_domain.catalog import CASE_TYPES, ITEM_TYPES, LABELS, LEVELS, VILLAGE_MODES

EMPTY = "（空）"


@dataclass(frozen=True)
class Field:
    key: str
    kind: str  # text | textarea | select | number | yesno
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for a select
    hint: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.key]


MATERIALS_HINT = "一行一种材料；要删去一种材料，清空它的名称；在空行里填写可以增加材料。"
FEES_HINT = "不收费：全部留空。收费：每行一项，金额以元计，最多两位小数（如 12.50）。"
FIELDS: tuple[Field, ...] = (
    Field("task_code", "text", hint="实施编码，最多 36 个字符；发布后不能修改"),
    Field("catalog_code", "text", hint="基本编码，最多 36 个字符"),
    Field("name", "text"),
    Field("item_type", "select", tuple((code, f"{code} {name}") for code, name in ITEM_TYPES.items())),
    Field("department", "text"),
    Field("level", "select", tuple((v, v) for v in LEVELS)),
    Field(
        "village_mode",
        "select",
        (("", "（村里不办理）"), *((v, v) for v in VILLAGE_MODES)),
        hint="村级事项为 村受理村办结；乡级事项可 村受理乡办结 或 村代办；县级事项最多 村代办",
    ),
    Field("case_type", "select", tuple((v, v) for v in CASE_TYPES), hint="即办件的承诺时限为 0"),
    Field("legal_days", "number", hint="工作日；没有法定时限写 0"),
    Field("promised_days", "number", hint="工作日；不超过法定时限"),
    Field("visits", "number"),
    Field("online", "yesno"),
    Field("allow_pledge", "yesno"),
    Field("legal_basis", "textarea"),
    Field("conditions", "textarea"),
    Field("materials", "textarea", hint=MATERIALS_HINT),
    Field("fees", "textarea", hint=FEES_HINT),
    Field("address", "text"),
    Field("hours", "text"),
    Field("phone", "text"),
    Field("supervise_phone", "text"),
)
FORM_KEYS = tuple(f.key for f in FIELDS)


def deadline_text(item: Mapping[str, Any]) -> str:
    """承诺 5 个工作日（法定 20）, or 即办."""
    promised, legal = int(item.get("promised_days") or 0), int(item.get("legal_days") or 0)
    if item.get("case_type") == "即办件" or not promised:
        return "即办" + (f"（法定 {legal} 个工作日）" if legal else "")
    return f"承诺 {promised} 个工作日" + (f"（法定 {legal}）" if legal else "")


def level_text(item: Mapping[str, Any]) -> str:
    level = item.get("level") or "—"
    return f"{level}级" + (f"（{item['village_mode']}）" if item.get("village_mode") else "")


def show_value(field: str, value: Any) -> str:
    """A field's value as people read it in a preview or a diff (materials by name, fees in 元)."""
    if value is None or value == "" or value == []:
        return guide.FREE if field == "fees" else EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    if field == "fees":
        return guide.fee_text({"fees": value})
    if field == "materials" and isinstance(value, list):
        return "；".join(
            f"{m.get('name', '')}（{m.get('form') or '原件'}{' ' + str(m.get('copies')) + '份' if m.get('copies') else ''}"
            f"{'' if m.get('required', True) else '，非必需'}）"
            for m in value
            if isinstance(m, Mapping)
        )
    if field == "item_type":
        return f"{value} {ITEM_TYPES.get(str(value), '')}".strip()
    if field in ("legal_days", "promised_days"):
        return f"{value} 个工作日"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


MATERIAL_KEYS = ("name", "form", "copies", "required", "standard", "notes")
FEE_KEYS = ("name", "yuan", "basis", "exemption")
BLANK_ROWS = 2  # empty rows under the materials and fees, to add one


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def form_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's fields as the edit form shows them: strings, and the materials and fees as rows of strings."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = item.get(f.key)
        if f.key == "materials":
            out[f.key] = [
                {"name": _cell(m.get("name")), "form": _cell(m.get("form") or "原件"), "copies": _cell(m.get("copies", 1)),
                 "required": "必需" if m.get("required", True) else "非必需", "standard": _cell(m.get("standard")),
                 "notes": _cell(m.get("notes"))}
                for m in value or []
            ]  # fmt: skip
        elif f.key == "fees":
            out[f.key] = [
                {"name": _cell(fee.get("name")), "yuan": f"{int(fee.get('standard_fen') or 0) / 100:.2f}",
                 "basis": _cell(fee.get("basis")), "exemption": _cell(fee.get("exemption"))}
                for fee in value or []
            ]  # fmt: skip
        elif f.kind == "yesno":
            out[f.key] = "是" if value else "否"
        else:
            out[f.key] = _cell(value)
    return out


def _rows(form: Any, prefix: str, keys: tuple[str, ...], kept_by: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a table in the form (inputs named `prefix-<n>-<key>`), in order, that fill one of `kept_by`.

    A material whose name is cleared is deleted; a fee with an amount but no
    name is kept, so that the check says its name is missing.
    """
    numbers = sorted({int(k.split("-")[1]) for k in form if k.startswith(prefix + "-") and k.split("-")[1].isdigit()})
    rows = [{k: (form.get(f"{prefix}-{n}-{k}") or "").strip() for k in keys} for n in numbers]
    return [r for r in rows if any(r[k] for k in kept_by)]


def posted_values(form: Any) -> dict[str, Any]:
    """The edit form as posted, in the shape `form_values` gives (to check it, or to show it again)."""
    out: dict[str, Any] = {f.key: (form.get(f.key) or "") for f in FIELDS if f.key not in ("materials", "fees")}
    out["materials"] = _rows(form, "m", MATERIAL_KEYS, ("name",))
    out["fees"] = _rows(form, "fee", FEE_KEYS, ("name", "yuan"))
    return out


def row_of(values: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The form's fields as one catalog row keyed by column name; an edited item keeps its state (暂停 stays 暂停).

    Materials and fees go in as lists of objects, as a JSON file gives them, so
    the import's own parsers check every cell (份数, 必需, an amount in 元).
    """
    row: dict[str, Any] = {}
    for k in FORM_KEYS:
        if k == "materials":
            row[LABELS[k]] = [dict(m) for m in values.get(k) or []]
        elif k == "fees":
            row[LABELS[k]] = [
                {"name": fee["name"], "standard_fen": f"{fee['yuan']}元" if fee.get("yuan") else "",
                 "basis": fee.get("basis", ""), "exemption": fee.get("exemption", "")}
                for fee in values.get(k) or []
            ]  # fmt: skip
        else:
            row[LABELS[k]] = str(values.get(k) or "").strip()
    if old is not None:
        row[LABELS["task_code"]] = old["task_code"]  # the code of a published item never changes
        row[LABELS["state"]] = old.get("state") or ""
        row[LABELS["state_reason"]] = old.get("state_reason") or ""
    return row


def field_errors(problems: list[Any]) -> dict[str, list[str]]:
    """The problems of a checked form, by field key (problems of no field under "")."""
    out: dict[str, list[str]] = {}
    for p in problems:
        key = p.field if p.field in FORM_KEYS else ""
        out.setdefault(key, []).append(p.message if key else str(p))
    return out
