"""Applicant (申请人) validation: name, 身份证号, phone, address → one clean dict, or a clear refusal.

Pure: no I/O and no clock; `today` is passed in. The 身份证号 is checked with
`stdnum.cn.ric` (GB 11643 check digit, birth date), never by hand, and its
province code against GB/T 2260. `ric.validate` is not used as is: it also
requires the county code to have existed in the birth year, which refuses
genuine numbers of elderly people whose county was renamed or merged after
their number was issued (python-stdnum issue #442, e.g. 412723…): exactly the
villagers who apply for 高龄津贴. Messages are Chinese with an English gloss and never repeat a whole ID
number or phone number (errors end up in logs): they show it masked.

    check_applicant({"name": "王秀英", "id_number": "43032119550101...", "phone": "138 0734 5678"}, today=...)
    → {"name": "王秀英", "id_number": "43032119550101...", "phone": "13807345678", "address": ""}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric

from .errors import ValidationError

FIELDS = ("name", "id_number", "phone", "address")
MAX_NAME = 50
MAX_ADDRESS = 200
OLDEST_BIRTH = date(1900, 1, 1)
MIDDLE_DOT = "·"  # U+00B7, as in 买买提·艾力
# dots that people type for the middle dot of minority names
_DOTS = str.maketrans(dict.fromkeys("•‧・∙⋅．", MIDDLE_DOT))
# GB/T 2260 provinces, and 81/82/83 (港澳台居民居住证); 9: 外国人永久居留身份证 (2023)
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 81 82 83".split()
)
_MOBILE = re.compile(r"1[3-9]\d{9}")
# 0 + area code (010, 02x: 3 digits with the 0; others 4) + 7–8 digit number, optional extension
_LANDLINE = re.compile(r"(0(?:10|2\d|[3-9]\d{2}))-?(\d{7,8})(?:(?:-|转|ext\.?|x)(\d{1,6}))?", re.IGNORECASE)
_ID_HINT = "请对照身份证原件重新输入 (check the number against the ID card)"


def check_applicant(data: Mapping[str, Any], *, today: date | None = None) -> dict[str, str]:
    """A clean applicant {name, id_number, phone, address}, or ValidationError naming the field.

    `today` bounds the birth date in the ID number; the caller passes it (the
    command's `now`). Without it that one check is skipped.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("申请人必须是对象 {name, id_number, phone, address} (the applicant is an object)")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise ValidationError(
            f"申请人信息有未知字段 {'、'.join(unknown)} (unknown applicant fields)", hint="可填: " + ", ".join(FIELDS)
        )
    return {
        "name": check_name(data.get("name")),
        "id_number": check_id_number(data.get("id_number"), today=today),
        "phone": check_phone(data.get("phone")),
        "address": check_address(data.get("address")),
    }


def _text(value: Any, label: str, gloss: str) -> str:
    """NFC, trimmed, no control or format characters (a tab or newline counts as a space)."""
    if not isinstance(value, str):
        if value is None:
            raise ValidationError(f"{label}必填 ({gloss} is required)")
        raise ValidationError(f"{label}应为文本 ({gloss} must be text)")
    text = unicodedata.normalize("NFC", value).strip()
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs") and not c.isspace()), None)
    if bad is not None:
        raise ValidationError(
            f"{label}含有控制字符或不可见字符 U+{ord(bad):04X} ({gloss} contains a control or invisible character)"
        )
    return " ".join(text.split())


def _is_han(c: str) -> bool:
    return unicodedata.name(c, "").startswith("CJK UNIFIED IDEOGRAPH")


def check_name(value: Any) -> str:
    """NFC, trimmed, 1–50 characters: letters (rare characters too), and · between the parts of a name.

    Spaces are collapsed, and dropped in a Chinese name (王 秀英 → 王秀英);
    •, ・ and similar dots become the middle dot ·. Private-use and
    not-yet-known code points pass: some 生僻字 in names have no other form.
    """
    name = _text(value, "申请人姓名", "name").translate(_DOTS)
    if any(_is_han(c) for c in name):
        name = name.replace(" ", "")
    if not name:
        raise ValidationError("申请人姓名必填 (name is required)")
    if len(name) > MAX_NAME:
        raise ValidationError(f"申请人姓名超过 {MAX_NAME} 个字 (name longer than {MAX_NAME} characters)")
    for c in name:
        category = unicodedata.category(c)
        if category.startswith("N") and c != "〇":
            raise ValidationError(f"申请人姓名不能含数字 {c!r} (no digits in a name)", hint="请按身份证上的姓名填写")
        if not (category[0] in "LM" or category in ("Co", "Cn") or c in (" ", MIDDLE_DOT, "〇")):
            raise ValidationError(
                f"申请人姓名含有不允许的字符 {c!r} (character not allowed in a name)",
                hint="少数民族姓名的间隔号请用 ·",
            )
    if name[0] == MIDDLE_DOT or name[-1] == MIDDLE_DOT or MIDDLE_DOT * 2 in name:
        raise ValidationError("申请人姓名的间隔号 · 只能用在两段姓名之间 (· only between two parts of a name)")
    return name


def check_id_number(value: Any, *, today: date | None = None) -> str:
    """The 18-character 身份证号, compact, check letter upper-case X; 15-digit numbers are refused."""
    raw = unicodedata.normalize("NFKC", _text(value, "申请人身份证号", "ID number"))  # full-width digits, Ｘ
    number = ric.compact(re.sub(r"[\s-]", "", raw))
    if not number:
        raise ValidationError("申请人身份证号必填 (ID number is required)")
    shown = mask_id(number)
    if len(number) == 15 and number.isdigit():
        raise ValidationError(
            f"申请人身份证号 {shown} 是 15 位旧号码 (old 15-digit number)",
            hint="请填写第二代身份证上的 18 位号码 (use the 18-digit number on the current card)",
        )
    if len(number) != 18:
        raise ValidationError(
            f"申请人身份证号应为 18 位，现为 {len(number)} 位 (an ID number has 18 characters)", hint=_ID_HINT
        )
    if not number[:17].isascii() or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationError(
            f"申请人身份证号 {shown} 格式错误: 前 17 位为数字，最后一位为数字或 X (17 digits, then a digit or X)",
            hint=_ID_HINT,
        )
    if ric.calc_check_digit(number) != number[17]:
        raise ValidationError(f"申请人身份证号 {shown} 校验位错误 (GB 11643 check digit)", hint=_ID_HINT)
    try:
        born = ric.get_birth_date(number)
    except stdnum_errors.ValidationError as e:
        raise ValidationError(
            f"申请人身份证号 {shown} 中的出生日期 {number[6:14]} 不存在 (no such birth date)", hint=_ID_HINT
        ) from e
    if born < OLDEST_BIRTH or (today is not None and born > today):
        raise ValidationError(
            f"申请人身份证号 {shown} 中的出生日期 {born.isoformat()} 不合理 (birth date out of range)", hint=_ID_HINT
        )
    if number[:2] not in PROVINCES and number[0] != "9":
        raise ValidationError(f"申请人身份证号 {shown} 的地区码不存在 (no such province code)", hint=_ID_HINT)
    return number


def check_phone(value: Any) -> str:
    """A mainland mobile (13807345678) or landline (0734-5123456, extension as 0734-5123456-801)."""
    text = unicodedata.normalize("NFKC", _text(value, "申请人联系电话", "phone"))
    compact = re.sub(r"[\s()（）]", "", text).replace("－", "-").replace("—", "-")
    if not compact:
        raise ValidationError("申请人联系电话必填 (phone is required)")
    mobile = re.sub(r"^(?:\+86|0086|86)(?=1\d{10}$)", "", compact.replace("-", ""))
    if _MOBILE.fullmatch(mobile):
        return mobile
    m = _LANDLINE.fullmatch(compact)
    if m is None:
        raise ValidationError(
            f"申请人联系电话 {mask_phone(compact)} 不是手机号或固定电话 (not a mainland mobile or landline number)",
            hint="手机号 11 位，如 13807345678；固定电话带区号，如 0734-5123456",
        )
    area, number, ext = m.groups()
    return f"{area}-{number}" + (f"-{ext}" if ext else "")


def check_address(value: Any) -> str:
    """Optional: NFC, trimmed, at most 200 characters, no control characters ("" when not given)."""
    if value is None:
        return ""
    address = _text(value, "申请人住址", "address")
    if len(address) > MAX_ADDRESS:
        raise ValidationError(f"申请人住址超过 {MAX_ADDRESS} 个字 (address longer than {MAX_ADDRESS} characters)")
    return address


def mask_id(id_number: str) -> str:
    """For display: 430321********123X (region code and the last four kept)."""
    n = len(id_number)
    if n <= 10:
        return "*" * n
    return id_number[:6] + "*" * (n - 10) + id_number[-4:]


def mask_phone(phone: str) -> str:
    """For display: 138****5678, 0734-***3456 (extension dropped)."""
    if _MOBILE.fullmatch(phone):
        return phone[:3] + "****" + phone[-4:]
    area, sep, rest = phone.partition("-")
    if sep and area.startswith("0"):
        number = rest.partition("-")[0]
        return f"{area}-" + "*" * max(len(number) - 4, 0) + number[-4:]
    return "*" * max(len(phone) - 4, 0) + phone[-4:]


def birth_date_and_sex(id_number: str) -> tuple[date, Literal["男", "女"]]:
    """Birth date and sex (17th digit: odd 男, even 女) of a checked 18-character number."""
    number = ric.compact(id_number)
    if len(number) != 18 or not number[16].isdigit():
        raise ValidationError(f"身份证号 {mask_id(number)} 不是 18 位号码 (not an 18-character ID number)")
    try:
        born = ric.get_birth_date(number)
    except stdnum_errors.ValidationError as e:
        raise ValidationError(f"身份证号 {mask_id(number)} 中的出生日期不存在 (no such birth date)") from e
    return born, "男" if int(number[16]) % 2 else "女"
