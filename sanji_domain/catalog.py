"""Catalog items (事项): the model, file import, planning releases (read back: `catalog_history`).

Pure apart from reading the one file it is given: no database, no clock (the
caller passes `released_ms`), no node package.

**The item** is the body of a `catalog.item` entry in the county feed, keyed by
its 实施编码 `task_code`. Every body has every field (defaults below), English
keys, integers only (money in 分, time limits in working days) and NFC text:

    task_code 实施编码 (required, ≤36)   catalog_code 基本编码 (≤36, "")
    name 事项名称 (required)            item_type 事项类型 ("01".."10", "20"; default "20")
    legal_basis 设定依据 ("")           department 实施主体 ("")
    level 办理层级 (县/乡/村; "县")      village_mode 村级办理方式 (村受理村办结/村受理乡办结/村代办 or null)
    conditions 受理条件 ("")            case_type 办件类型 (即办件/承诺件; blank: 即办件 if promised_days is 0)
    legal_days 法定时限 (0)             promised_days 承诺时限 (0)
    visits 到现场次数 (1)               online 是否网办 (false)       allow_pledge 容缺受理 (false)
    materials 申请材料 ([])             fees 收费 ([]: free)
    phone 咨询电话, supervise_phone 监督电话, address 办理地点, hours 办公时间 ("")
    state 状态 (在用/暂停/取消)          state_reason 状态说明 ("")
    version: the release that wrote this content (set by the release, never by the file)

    material: {name (required), form 原件/复印件/电子 ("原件"), copies (1), required (true), standard 受理标准, notes}
    fee:      {name (required), standard_fen (integer 分, 0), basis 收费依据, exemption 减免}

Checks across fields: promised_days ≤ legal_days when legal_days > 0; a 即办件
is promised 0 days, a 承诺件 more than 0; a 村-level item is 村受理村办结 (and
only a 村 item is); a 县 item is at most 村代办 at the village.

**Files.** `.json` (a list of items, or an object with "items"), `.csv` (UTF-8
with or without BOM; GBK as saved by Excel is read too) and `.xlsx` (the first
sheet). In CSV/XLSX the header row may use the English keys or the Chinese
names above (and common variants: 事项实施编码, 承诺办结时限, 申请材料, …; a
trailing "（工作日）" or "*" is ignored); up to 10 title rows above the header are
skipped; columns 序号 and 版本/version are ignored; any other unknown column is an
error. Booleans: 是/否, true/false, 1/0, yes/no, √/×. In a materials or fees
cell write either a JSON list of objects, or the short form, items separated
by ";" (or "；" or a new line), fields by "|":

    materials: 名称|形式|份数|必需|受理标准|备注   e.g.  居民身份证|原件|1|必需;户口簿|复印件|1|非必需
    fees:      名称|标准(分)|依据|减免            e.g.  工本费|2000|发改价格〔2003〕2322号|低保对象免收

A fee's standard is whole 分, or 元 with at most two decimals when written
with 元 (`工本费|20.50元`). A whole fees cell of `0`, `0.00`, `免费`, `不收费`
or `无` means free (no fees). A column headed in 元 (`收费标准（元）`) holds
one amount for the item (a fee named 收费) or a free word.

A CSV line with fewer cells than the header is an error on each missing
column, never a default: only a cell that is there and blank takes the
field's default.

Row numbers in errors are the rows the user sees: the spreadsheet row (the
header counts) for CSV/XLSX, the item's position (from 1) for JSON.

**Releases.** A release is one commit of the county feed: a `catalog.item`
entry for every new or changed item (with "version": the release) and one
`catalog.release` entry listing every item of the release with the version of
its content. In 全量替换 (`replace`) the file states the whole catalog: items
missing from it are cancelled (取消) in the new release; in 增量 (the default
of `catalog_import`) they stay as they are. An item the administrator suspended
(暂停) stays suspended unless the file gives it a state; a file that changes
nothing makes no release.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync_protocol import files
from sync_protocol.entries import Record

from .errors import NotFoundError, ValidationError

KIND_ITEM, KIND_RELEASE = "catalog.item", "catalog.release"
ITEM_TYPES = {
    "01": "行政许可", "02": "行政处罚", "03": "行政强制", "04": "行政征收", "05": "行政给付", "06": "行政检查",
    "07": "行政确认", "08": "行政奖励", "09": "行政裁决", "10": "其他行政权力", "20": "公共服务",
}  # fmt: skip
LEVELS = ("县", "乡", "村")
VILLAGE_MODES = ("村受理村办结", "村受理乡办结", "村代办")
CASE_TYPES = ("即办件", "承诺件")
FORMS = ("原件", "复印件", "电子")
IN_USE, SUSPENDED, CANCELLED = STATES = ("在用", "暂停", "取消")
MAX_SAFE_INT = 2**53 - 1

LABELS = {
    "task_code": "实施编码", "catalog_code": "基本编码", "name": "事项名称", "item_type": "事项类型",
    "legal_basis": "设定依据", "department": "实施主体", "level": "办理层级", "village_mode": "村级办理方式",
    "conditions": "受理条件", "case_type": "办件类型", "legal_days": "法定时限", "promised_days": "承诺时限",
    "visits": "到现场次数", "online": "是否网办", "allow_pledge": "容缺受理", "materials": "申请材料",
    "fees": "收费", "phone": "咨询电话", "supervise_phone": "监督电话", "address": "办理地点", "hours": "办公时间",
    "state": "状态", "state_reason": "状态说明", "version": "版本",
}  # fmt: skip
ITEM_FIELDS = tuple(LABELS)
_SYNONYMS = {
    "task_code": ("事项实施编码", "实施清单编码"), "catalog_code": ("事项基本编码", "事项编码"),
    "name": ("名称", "实施清单名称"), "item_type": ("类型", "事项类别"),
    "department": ("实施部门", "办理部门", "实施机构"), "level": ("层级", "行使层级"),
    "village_mode": ("村办理方式", "办理方式"), "case_type": ("办件类别",),
    "legal_days": ("法定办结时限",), "promised_days": ("承诺办结时限",),
    "visits": ("到办事现场次数", "跑动次数"), "online": ("网办", "是否网上办理"),
    "allow_pledge": ("是否容缺受理", "容缺"), "materials": ("材料", "申请材料清单"),
    "fees": ("收费项目", "收费标准"), "supervise_phone": ("投诉电话",),
    "address": ("地址", "办理地址"), "hours": ("办理时间",), "state": ("事项状态",),
}  # fmt: skip
MATERIAL_LABELS = {
    "name": ("材料名称", "名称"), "form": ("材料形式", "形式"), "copies": ("份数", "数量"),
    "required": ("是否必需", "必需", "必要性"), "standard": ("受理标准",), "notes": ("备注", "说明", "填报须知"),
}  # fmt: skip
FEE_LABELS = {
    "name": ("收费项目", "名称"), "standard_fen": ("收费标准", "标准", "标准（分）"),
    "basis": ("收费依据", "依据"), "exemption": ("减免", "减免政策"),
}  # fmt: skip
EXTRA_CELLS = "（无表头的列）"
MISSING_CELLS = "（缺少的单元格）"  # a table row with fewer cells than the header has columns
_IN_YUAN = re.compile(r"[（(]\s*元\s*[）)]\s*[*＊]?\s*$")  # a header such as 收费标准（元）
IGNORED_COLUMNS = {"", "序号", "version", "版本"}
_TRUE = {"1", "true", "yes", "y", "t", "是", "√", "✓", "必需", "必须", "必要", "必交"}
_FALSE = {"0", "false", "no", "n", "f", "否", "×", "✗", "非必需", "非必须", "可选", "选交", "选填"}
_NONE = {"", "无", "-", "—", "/"}
_TYPE_NAMES = {name: code for code, name in ITEM_TYPES.items()} | {
    name.removeprefix("行政"): code for code, name in ITEM_TYPES.items() if name.startswith("行政")
} | {"其他": "10", "公共服务事项": "20"}  # fmt: skip
_LEVEL_WORDS = {"县级": "县", "县本级": "县", "乡级": "乡", "乡镇": "乡", "乡镇级": "乡", "镇": "乡", "街道": "乡",
                "村级": "村", "社区": "村", "村（社区）": "村"}  # fmt: skip
_FORM_WORDS = {"复印": "复印件", "电子件": "电子", "电子版": "电子", "电子证照": "电子"}


def _aliases(labels: Mapping[str, str | tuple[str, ...]], synonyms: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, label in labels.items():
        for name in (key, *((label,) if isinstance(label, str) else label), *synonyms.get(key, ())):
            out[_header_key(name)] = key
    return out


def _header_key(header: str) -> str:
    """A header as looked up: NFC, no spaces, lower case, without "*" and a trailing "（…）"."""
    text = unicodedata.normalize("NFC", header).strip().strip("*＊").strip()
    text = re.sub(r"\s*[（(][^）)]*[）)]$", "", text)
    return re.sub(r"\s+", "", text).lower()


ALIASES = _aliases(LABELS, _SYNONYMS)
_MATERIAL_ALIASES = _aliases(MATERIAL_LABELS, {})
_FEE_ALIASES = _aliases(FEE_LABELS, {})


# -- problems --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowProblem:
    """One thing wrong in a catalog file: the row as the user sees it, the column as written, what."""

    row: int
    column: str
    message: str
    field: str = ""  # the item field (English key) the column maps to, when known

    def __str__(self) -> str:
        return f"第 {self.row} 行 {self.column}: {self.message}"


class CatalogFileError(ValidationError):
    """A catalog file with bad rows: `problems` lists every one; nothing was imported."""

    def __init__(self, source: str, problems: Sequence[RowProblem], *, shown: int = 100) -> None:
        lines = [str(p) for p in problems[:shown]]
        if len(problems) > shown:
            lines.append(f"……另有 {len(problems) - shown} 处")
        super().__init__(
            f"{source}: {len(problems)} 处错误，未导入任何事项:\n  " + "\n  ".join(lines),
            hint="改正这些行后重新导入 (fix these rows and import again)",
        )
        self.source = source
        self.problems = list(problems)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.source, self.problems))


@dataclass(frozen=True)
class RawRow:
    """One item as read from a file, before checking: `values` keyed by the column names as written."""

    row: int
    values: dict[str, Any]


class _Bad(Exception):
    """A value that cannot be used; the message says why (caught per field)."""


# -- values ----------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise _Bad(f"应为文本，不是 {json.dumps(value, ensure_ascii=False)}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return unicodedata.normalize("NFC", text)


def _required_text(value: Any) -> str:
    text = _text(value)
    if not text:
        raise _Bad("必填")
    return text


def _code(value: Any, *, required: bool = False) -> str:
    code = _required_text(value) if required else _text(value)
    if len(code) > 36:
        raise _Bad(f"{code} 超过 36 个字符")
    return code


def _int(value: Any, default: int = 0) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise _Bad(f"{value} 不是整数")
    if isinstance(value, float):
        if not value.is_integer():
            raise _Bad(f"{value} 不是整数（金额以分为单位，时限以工作日计）")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+(\.0+)?", text):
            raise _Bad(f"{text!r} 不是整数（金额以分为单位，时限以工作日计）")
        value = int(text.split(".")[0])
    elif not isinstance(value, int):
        raise _Bad(f"{json.dumps(value, ensure_ascii=False)} 不是整数")
    if value < 0:
        raise _Bad(f"{value} 不能为负数")
    if value > MAX_SAFE_INT:
        raise _Bad(f"{value} 太大")
    return int(value)


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = _text(value).lower() if isinstance(value, str) else None
    if text == "":
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Bad(f"{value!r} 不是 是/否（是/否、true/false、1/0）")


def _choice(options: Sequence[str], words: Mapping[str, str] | None = None) -> Callable[[Any], str | None]:
    def parse(value: Any) -> str | None:
        text = _text(value)
        if text in _NONE:
            return None
        text = (words or {}).get(text, text)
        if text not in options:
            raise _Bad(f"{text!r} 不是 {'/'.join(options)} 之一")
        return text

    return parse


def _item_type(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(_int(value)).zfill(2)
    text = _text(value)
    if not text:
        return "20"
    m = re.fullmatch(r"(\d{1,2})\s*[-.、:：\s]?\s*(\D*)", text)
    if m is None:
        code = _TYPE_NAMES.get(text)
        if code is None:
            raise _Bad(f"{text!r} 不是已知的事项类型（01 行政许可 … 10 其他行政权力、20 公共服务）")
        return code
    code, name = m.group(1).zfill(2), m.group(2).strip()
    if code not in ITEM_TYPES:
        raise _Bad(f"{code} 不是已知的事项类型编码（01–10、20）")
    if name and _TYPE_NAMES.get(name) != code:
        raise _Bad(f"编码 {code} 是{ITEM_TYPES[code]}，不是{name}")
    return code


def _parts(value: Any, keys: Sequence[str]) -> list[Any]:
    """A materials/fees value: a list, a JSON list in a cell, or the short form `a|b|c;a|b|c`."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise _Bad("应为列表")
    text = _text(value)
    if text in _NONE:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            raise _Bad(f"不是有效的 JSON 列表 ({e.msg}, 第 {e.pos + 1} 个字符)") from e
        if not isinstance(parsed, list):
            raise _Bad("应为 JSON 列表")
        return parsed
    return [_short(part, keys) for part in re.split(r"[;；\n]+", text) if part.strip()]


def _short(part: str, keys: Sequence[str]) -> dict[str, str]:
    """One material or fee in the short form: fields in `keys` order, separated by "|"."""
    cells = [c.strip() for c in re.split(r"[|｜]", part.strip())]
    if len(cells) > len(keys):
        raise _Bad(f"{part.strip()!r} 多于 {len(keys)} 栏（{'|'.join(keys)}）")
    return dict(zip(keys, cells, strict=False))


def _records(
    what: str, aliases: Mapping[str, str], parsers: Mapping[str, Callable[[Any], Any]]
) -> Callable[[Any], list[dict[str, Any]]]:
    keys = tuple(parsers)

    def parse(value: Any) -> list[dict[str, Any]]:
        out, bad = [], []
        for n, raw in enumerate(_parts(value, keys), start=1):
            if isinstance(raw, str):
                raw = _short(raw, keys)
            if not isinstance(raw, dict):
                bad.append(f"第 {n} 项{what}应为对象")
                continue
            given = {}
            for k, v in raw.items():
                key = aliases.get(_header_key(str(k)))
                if key is None:
                    bad.append(f"第 {n} 项{what}: 未知的栏目 {k!r}（可用: {', '.join(keys)}）")
                else:
                    given[key] = v
            rec = {}
            for key, parser in parsers.items():
                try:
                    rec[key] = parser(given.get(key))
                except _Bad as e:
                    bad.append(f"第 {n} 项{what} {key}: {e}")
            out.append(rec)
        if bad:
            raise _Bad("；".join(bad))
        return out

    return parse


def _form(value: Any) -> str:
    return _choice(FORMS, _FORM_WORDS)(value) or "原件"


_materials = _records(
    "材料",
    _MATERIAL_ALIASES,
    {"name": _required_text, "form": _form, "copies": lambda v: _int(v, 1), "required": lambda v: _bool(v, True),
     "standard": _text, "notes": _text},
)  # fmt: skip
FREE_WORDS = {"0", "免费", "不收费", "无", "无收费", "不收取"}  # a whole fees cell meaning 不收费
_YUAN = re.compile(r"[+]?(\d+)(?:\.(\d{1,2}))?")
_YUAN_HINT = "写金额（元，最多两位小数，如 20 或 12.50），不收费写 0、免费 或 不收费"


def _yuan(value: Any) -> int:
    """An amount in 元 (at most two decimals) as whole 分: "12.5" → 1250, "0" → 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(f"{value!r} 不是金额；{_YUAN_HINT}")
    text = _text(value).removesuffix("元").strip().replace(",", "").replace("，", "")
    m = _YUAN.fullmatch(text)
    if m is None:
        raise _Bad(f"{_text(value)!r} 不是金额；{_YUAN_HINT}")
    fen = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if fen > MAX_SAFE_INT:
        raise _Bad(f"{text} 太大")
    return fen


def _fen(value: Any) -> int:
    """A fee's standard: whole 分 (the short form and JSON), or 元 when written with 元 ("12.50元")."""
    if isinstance(value, str) and value.strip().endswith("元"):
        return _yuan(value)
    try:
        return _int(value)
    except _Bad as e:
        raise _Bad(f"{e}；以元计请在金额后写 元，如 12.50元") from e


def _free(value: Any) -> bool:
    """`0`, `0.00`, `免费`, `不收费` … in a fees cell: the item is free (no fees)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    text = _text(value).removesuffix("元").strip()
    return text in FREE_WORDS or re.fullmatch(r"0+(\.0*)?", text) is not None


_fee_records = _records(
    "收费", _FEE_ALIASES, {"name": _required_text, "standard_fen": _fen, "basis": _text, "exemption": _text}
)


def _fees(value: Any) -> list[dict[str, Any]]:
    if _free(value):
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _Bad(f"{value} 没有名称和单位；写成 名称|金额元，如 工本费|20元；不收费写 0 或 免费")
    if isinstance(value, str) and _YUAN.fullmatch(_text(value).removesuffix("元").strip()):
        raise _Bad(f"{_text(value)!r} 没有收费名称；写成 名称|金额元，如 工本费|20元，或用 收费标准（元） 列")
    return _fee_records(value)


def _fees_in_yuan(value: Any) -> list[dict[str, Any]]:
    """A 收费标准（元） column: one amount in 元 for the item (a fee named 收费), or free."""
    if value is None or _free(value) or (isinstance(value, str) and _text(value) in _NONE):
        return []
    fen = _yuan(value)
    return [{"name": "收费", "standard_fen": fen, "basis": "", "exemption": ""}] if fen else []


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "task_code": lambda v: _code(v, required=True),
    "catalog_code": _code,
    "name": _required_text,
    "item_type": _item_type,
    "legal_basis": _text,
    "department": _text,
    "level": lambda v: _choice(LEVELS, _LEVEL_WORDS)(v) or "县",
    "village_mode": _choice(VILLAGE_MODES),
    "conditions": _text,
    "case_type": _choice(CASE_TYPES, {"即办": "即办件", "承诺": "承诺件"}),
    "legal_days": _int,
    "promised_days": _int,
    "visits": lambda v: _int(v, 1),
    "online": _bool,
    "allow_pledge": _bool,
    "materials": _materials,
    "fees": _fees,
    "phone": _text,
    "supervise_phone": _text,
    "address": _text,
    "hours": _text,
    "state": _choice(STATES),
    "state_reason": _text,
}


def _cross_checks(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, problem) for rules across fields; fields that failed on their own are skipped."""
    bad: list[tuple[str, str]] = []
    legal, promised, case_type = item.get("legal_days"), item.get("promised_days"), item.get("case_type", "?")
    if isinstance(promised, int) and case_type is None:
        case_type = item["case_type"] = "即办件" if promised == 0 else "承诺件"
    if isinstance(legal, int) and isinstance(promised, int) and legal and promised > legal:
        bad.append(("promised_days", f"承诺时限 {promised} 超过法定时限 {legal}"))
    elif case_type == "即办件" and promised:
        bad.append(("promised_days", f"即办件当场办结，承诺时限应为 0，不是 {promised}"))
    elif case_type == "承诺件" and promised == 0:
        bad.append(("promised_days", "承诺件须填写承诺时限（工作日，大于 0）"))
    if "level" not in item or "village_mode" not in item:
        return bad
    level, mode = item["level"], item["village_mode"]
    if level == "村" and mode != "村受理村办结":
        bad.append(("village_mode", "村级事项的村级办理方式应为 村受理村办结"))
    elif level in ("县", "乡") and mode == "村受理村办结":
        bad.append(("village_mode", f"{level}级事项不能村受理村办结（办理层级为村的事项才可以）"))
    elif level == "县" and mode == "村受理乡办结":
        bad.append(("village_mode", "县级事项由乡镇转报县级部门，村级办理方式应为 村代办 或空"))
    return bad


# -- checking rows ---------------------------------------------------------------------------------
_NOT_CARRIED = {"task_code", "state", "state_reason"}  # fields a row never takes from the current item


def _existing(current: Mapping[str, Mapping[str, Any]] | None, code: Any) -> Mapping[str, Any] | None:
    """The current item a row is for, when the import goes onto a catalog (None for a new item)."""
    if not current:
        return None
    try:
        return current.get(_code(code, required=True))
    except _Bad:
        return None


def check_items(raw: Sequence[RawRow | Mapping[str, Any]], source: str, *, header_row: int = 0) -> list[dict[str, Any]]:
    """Check every row; return the items (every field but `version`; `state` None when not given).

    Raises one `CatalogFileError` naming every bad row and column. `raw` holds
    `RawRow`s (from `read_rows`) or plain dicts (row = position from 1). For a
    table, `header_row` is the header's row number: unknown or repeated columns
    are reported there once, not on every row.
    """
    items, problems = check_rows(raw, header_row=header_row)
    if problems:
        raise CatalogFileError(source, problems)
    return items


def check_rows(
    raw: Sequence[RawRow | Mapping[str, Any]], *, header_row: int = 0,
    current: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[RowProblem]]:  # fmt: skip
    """`check_items` without raising: the items of the good rows and every problem, sorted by row.

    With `current` (the catalog an import goes onto), a row for an item already
    in it keeps the item's value for every field the file has no column (JSON:
    no key) for, so a file of a few columns changes only those; the checks
    across fields then see the merged item. `state` is never carried over (see
    `plan_release`), and a row that gives 承诺时限 but no 办件类型 derives it.
    """
    problems: list[RowProblem] = []
    header_seen: set[str] = set()
    items: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for n, entry in enumerate(raw, start=1):
        row, values = (entry.row, entry.values) if isinstance(entry, RawRow) else (n, entry)
        if not isinstance(values, Mapping):
            problems.append(RowProblem(row, "", "应为一个事项对象 (not an object)"))
            continue
        given: dict[str, Any] = {}
        columns: dict[str, str] = {}
        for column, value in values.items():
            column = str(column)
            if column == EXTRA_CELLS:
                problems.append(
                    RowProblem(row, column, f"多出无表头的单元格: {value}；删去多余的单元格，或在表头补上列名")
                )
                continue
            if column == MISSING_CELLS:
                problems.extend(
                    RowProblem(row, name, f"这一行缺少这一格（该行比表头少 {len(value)} 格）；补齐这一格，空值也要留出分隔符",
                               ALIASES.get(_header_key(name), ""))
                    for name in value
                )  # fmt: skip
                continue
            key = _header_key(column)
            if key in IGNORED_COLUMNS:
                continue
            f = ALIASES.get(key)
            where = header_row or row
            if f is None or f in columns:
                if not header_row or column not in header_seen:
                    header_seen.add(column)
                    what = (
                        "未知的列；改成已知的列名（如 实施编码、事项名称、办理层级、承诺时限），或删去这一列"
                        if f is None
                        else f"与 {columns[f]} 重复（都是 {f}）；删去其中一列"
                    )
                    problems.append(RowProblem(where, column, what, f or ""))
                continue
            given[f], columns[f] = value, column
        item: dict[str, Any] = {}
        bad: list[tuple[str, str]] = []
        missing = {ALIASES.get(_header_key(n)) for n in values.get(MISSING_CELLS, ())}
        old = _existing(current, given.get("task_code"))
        for f, parse in _PARSERS.items():
            if f in missing:
                continue  # reported above: never a default for a cell the row lacks
            if old is not None and f in old and f not in given and f not in _NOT_CARRIED:
                item[f] = None if f == "case_type" and "promised_days" in given else old.get(f)
                continue
            if f == "fees" and _IN_YUAN.search(columns.get(f, "")):
                parse = _fees_in_yuan
            try:
                item[f] = parse(given.get(f))
            except _Bad as e:
                bad.append((f, str(e)))
        bad.extend(_cross_checks(item))
        code = item.get("task_code")
        if code and code in first_row:
            bad.append(("task_code", f"{code} 与第 {first_row[code]} 行重复"))
        elif code:
            first_row[code] = row
        label = (lambda f: LABELS.get(f, f)) if header_row else str
        problems.extend(RowProblem(row, columns.get(f) or label(f), msg, f) for f, msg in bad)
        if not bad and MISSING_CELLS not in values:
            items.append(item)
    if not raw:
        problems.append(RowProblem(header_row, "", "文件中没有事项 (no items)"))
    return items, sorted(problems, key=lambda p: p.row)


# -- reading files ---------------------------------------------------------------------------------
def read_catalog(path: Path) -> list[dict[str, Any]]:
    """Read and check a .json, .csv or .xlsx catalog file (see the module docstring)."""
    rows, header_row = read_rows(path)
    return check_items(rows, path.name, header_row=header_row)


def read_rows(path: Path) -> tuple[list[RawRow], int]:
    """The file's items unchecked, and the header's row number (0 for JSON)."""
    files.require_regular(path, "事项清单文件")
    return parse_rows(path.read_bytes(), path.name)


def parse_rows(data: bytes, name: str) -> tuple[list[RawRow], int]:
    """`read_rows` for a file's bytes (an upload): `name`'s suffix says the format."""
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        return _json_rows(data, name), 0
    if suffix == ".csv":
        return _table_rows(csv.reader(io.StringIO(_csv_text(data, name), newline="")), name, short_rows=True)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(data, name)
    hint = "另存为 .xlsx 后再导入" if suffix == ".xls" else "use a .json, .csv or .xlsx file"
    raise ValidationError(f"{name}: 事项清单应为 .json、.csv 或 .xlsx 文件", hint=hint)


def _json_rows(data: bytes, name: str) -> list[RawRow]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValidationError(
            f"{name} 不是有效的 UTF-8 JSON 文件: {e}", hint="用文本编辑器检查该文件，或改用 Excel (.xlsx) 或 CSV 格式"
        ) from e
    items = doc.get("items") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ValidationError(f'{name}: 应为事项列表，或带 "items" 列表的对象', hint='{"items": [{…}, …]}')
    return [RawRow(n, item) for n, item in enumerate(items, start=1)]


def _csv_text(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on Chinese Windows saves CSV as GBK
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(f"{name}: 不是 UTF-8 或 GBK 编码的 CSV 文件", hint="在 Excel 中另存为 CSV UTF-8")


def _xlsx_rows(data: bytes, name: str) -> tuple[list[RawRow], int]:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # styles and extensions openpyxl does not read
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as e:
        raise ValidationError(f"{name}: 不能作为 Excel (.xlsx) 文件读取: {e}", hint="用 Excel 另存为 .xlsx") from e
    try:
        sheet = book.worksheets[0]
        return _table_rows(sheet.iter_rows(min_row=1, values_only=True), name)
    finally:
        book.close()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _table_rows(lines: Iterable[Sequence[Any]], source: str, *, short_rows: bool = False) -> tuple[list[RawRow], int]:
    """Rows of a CSV or sheet: the header is the first of the first 10 rows naming the 实施编码 column.

    With `short_rows` (CSV) a line with fewer cells than the header is marked
    (`MISSING_CELLS`); a sheet's row simply ends at its last filled cell.
    """
    header: list[str] | None = None
    header_row = 0
    out: list[RawRow] = []
    for n, cells in enumerate(lines, start=1):
        if header is None:
            names = [_text(c) for c in cells]
            if any(ALIASES.get(_header_key(c)) == "task_code" for c in names):
                header, header_row = names, n
            elif n >= 10:
                break
            continue
        if all(_blank(c) for c in cells):
            continue
        values = {h: c for h, c in zip(header, cells, strict=False) if h or not _blank(c)}
        extra = [c for c in cells[len(header) :] if not _blank(c)]
        if extra:
            values[EXTRA_CELLS] = extra
        lacking = [h for h in header[len(cells) :] if h and _header_key(h) not in IGNORED_COLUMNS]
        if lacking and short_rows:  # a CSV line cut short: its last cells are not blank, they are not there
            values[MISSING_CELLS] = lacking
        out.append(RawRow(n, values))
    if header is None:
        raise CatalogFileError(source, [RowProblem(1, "", "找不到表头：前 10 行中没有 实施编码/task_code 列")])
    return out, header_row


# -- releases --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReleasePlan:
    """What a release writes: the changed `catalog.item` bodies and the `catalog.release` body.

    An empty plan (`release` None, falsy) means nothing changed: write nothing.
    """

    version: int
    items: list[dict[str, Any]] = field(default_factory=list)
    release: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return self.release is not None

    @property
    def changes(self) -> dict[str, list[str]]:
        return self.release["changes"] if self.release else {"added": [], "changed": [], "cancelled": []}

    def records(self, hlc: int) -> list[Record]:
        """The entries to append, in one commit, to the county feed."""
        if self.release is None:
            return []
        out = [Record(KIND_ITEM, item["task_code"], item, hlc) for item in self.items]
        return [*out, Record(KIND_RELEASE, str(self.version), self.release, hlc)]


def _content(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "version"}


def release_of(
    current: Mapping[str, dict[str, Any]], written: list[dict[str, Any]], changes: dict[str, list[str]], version: int,
    released_ms: int, source: str, **extra: Any,
) -> ReleasePlan:  # fmt: skip
    if not written:
        return ReleasePlan(version)
    items = {**current, **{b["task_code"]: b for b in written}}
    release = {
        "version": version,
        "released_ms": released_ms,
        "source": source,
        "count": len(items),
        "items": sorted([code, body.get("version", 0)] for code, body in items.items()),
        "changes": {k: sorted(v) for k, v in changes.items()},
        **extra,
    }
    return ReleasePlan(version, sorted(written, key=lambda b: b["task_code"]), release)


def plan_release(
    current: Mapping[str, dict[str, Any]], incoming: Sequence[Mapping[str, Any]], version: int, *,
    released_ms: int = 0, source: str = "", replace: bool = True,
) -> ReleasePlan:  # fmt: skip
    """The release that makes the catalog what `incoming` (checked items) says, or an empty plan.

    `current` maps task_code → the item's body in the latest release. New and
    changed items are written with `"version": version`; unchanged items keep
    their version. With `replace` (全量替换) items of `current` missing from
    `incoming` are cancelled; without it (增量) they stay as they are.
    """
    changes: dict[str, list[str]] = {"added": [], "changed": [], "cancelled": []}
    written: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in incoming:
        code = item["task_code"]
        if code in seen:
            raise ValidationError(f"实施编码 {code} 重复", hint="每个事项在清单中只能出现一次，请删除重复的行")
        seen.add(code)
        old = current.get(code)
        body = {**item}
        if body.get("state") is None:  # the file does not say: a suspension stays, anything else is in use
            keep = old is not None and old.get("state") == SUSPENDED
            body["state"] = SUSPENDED if keep else IN_USE
            body["state_reason"] = (old or {}).get("state_reason", "") if keep else body.get("state_reason", "")
        if old is not None and _content(old) == _content(body):
            continue
        if old is None:
            changes["added"].append(code)
        elif body["state"] == CANCELLED and old.get("state") != CANCELLED:
            changes["cancelled"].append(code)
        else:
            changes["changed"].append(code)
        written.append({**body, "version": version})
    for code in sorted(set(current) - seen) if replace else ():
        old = current[code]
        if old.get("state") != CANCELLED:
            changes["cancelled"].append(code)
            written.append({**old, "state": CANCELLED, "state_reason": "新导入的清单中已无此事项", "version": version})
    return release_of(current, written, changes, version, released_ms, source)


STATE_ACTIONS = {SUSPENDED: "暂停", CANCELLED: "取消", IN_USE: "恢复"}


def set_state(
    current: Mapping[str, dict[str, Any]], task_code: str, state: str, reason: str, version: int, *,
    released_ms: int = 0,
) -> ReleasePlan:  # fmt: skip
    """A one-item release that suspends (暂停), cancels (取消) or resumes (在用) an item, with the reason."""
    if state not in STATES:
        raise ValidationError(f"{state!r} 不是事项状态（{'/'.join(STATES)}）")
    old = current.get(task_code)
    if old is None:
        raise NotFoundError(
            f"当前事项清单中没有实施编码为 {task_code} 的事项", hint="用 catalog list 查看实施编码 (see `catalog list`)"
        )
    if old.get("state") == state:
        raise ValidationError(
            f"事项 {task_code}（{old.get('name', '')}）已是{state}状态", hint="无需操作 (nothing to do)"
        )
    reason = _text(reason)
    if state != IN_USE and not reason:
        raise ValidationError(f"{STATE_ACTIONS[state]}事项须说明原因", hint="请写明原因 (give a reason)")
    body = {**old, "state": state, "state_reason": reason, "version": version}
    changes: dict[str, list[str]] = {"added": [], "changed": [], "cancelled": []}
    changes["cancelled" if state == CANCELLED else "changed"].append(task_code)
    source = f"{STATE_ACTIONS[state]} {task_code}"
    return release_of(current, [body], changes, version, released_ms, source, reason=reason)
