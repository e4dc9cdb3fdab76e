"""Applicant validation: 身份证号 by GB 11643 (through python-stdnum), names, phones, NFC."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from stdnum.cn import ric

from sanji_domain.applicant import birth_date_and_sex, check_applicant, check_id_number, mask_id, mask_phone
from sanji_domain.errors import ValidationError

TODAY = date(2026, 11, 21)


def id_number(first17: str) -> str:
    """An 18-character number with the right check digit."""
    return first17 + ric.calc_check_digit(first17 + "0")


GOOD = id_number("43032119550101123")  # 湘潭县, 1955-01-01, 男


def wrong_check_digit(number: str) -> str:
    return number[:17] + next(c for c in "0123456789X" if c != number[17])


def applicant(**changes: object) -> dict[str, object]:
    return {"name": "王秀英", "id_number": GOOD, "phone": "13807345678", "address": "湘潭县梅花村3组", **changes}


def refused(match: str, **changes: object) -> ValidationError:
    with pytest.raises(ValidationError, match=match) as info:
        check_applicant(applicant(**changes), today=TODAY)
    return info.value


def test_a_valid_applicant_comes_back_clean() -> None:
    got = check_applicant(
        {"name": "  王 秀英 ", "id_number": f" {GOOD[:6]} {GOOD[6:14]} {GOOD[14:].lower()} ", "phone": "138 0734 5678"},
        today=TODAY,
    )
    assert got == {"name": "王秀英", "id_number": GOOD, "phone": "13807345678", "address": ""}


def test_check_digit_x_is_upper_case_and_full_width_input_is_accepted() -> None:
    x = next(n for i in range(200) if (n := id_number(f"43032119600101{i:03d}"))[-1] == "X")
    assert check_id_number(x.lower()) == x
    assert check_id_number(x.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))) == x


def test_wrong_check_digit_is_refused_without_repeating_the_number() -> None:
    bad = wrong_check_digit(GOOD)
    err = refused("校验位错误 \\(GB 11643 check digit\\)", id_number=bad)
    assert bad not in str(err) and mask_id(bad) in err.message
    assert err.hint and "身份证原件" in err.hint


def test_old_15_digit_numbers_are_refused_with_a_hint() -> None:
    err = refused("15 位旧号码", id_number="430321550101123")
    assert err.hint and "18 位" in err.hint


@pytest.mark.parametrize(
    ("first17", "match"),
    [
        ("43032119550230123", "出生日期 19550230 不存在"),
        ("43032119551301123", "出生日期 19551301 不存在"),
        ("43032120261122123", "不合理"),  # tomorrow
        ("43032118990101123", "不合理"),
        ("00032119550101123", "地区码"),
    ],
)
def test_impossible_birth_dates_and_regions_are_refused(first17: str, match: str) -> None:
    refused(match, id_number=id_number(first17))


def test_birth_date_today_is_accepted_and_the_future_check_needs_today() -> None:
    born_today = id_number("43032120261121123")
    assert check_applicant(applicant(id_number=born_today), today=TODAY)["id_number"] == born_today
    assert check_id_number(id_number("43032120301121123")) is not None  # no `today`: no future check


def test_an_abolished_county_code_still_passes() -> None:
    """110228 (密云县 until 2015): people born in 1955 hold it, stdnum's validate refuses it (stdnum #442)."""
    old = id_number("11022819550101123")
    assert not ric.is_valid(old)
    assert check_id_number(old, today=TODAY) == old


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("4303211955010112", "应为 18 位"),
        ("43032119550101123A", "格式错误"),
        ("", "必填"),
        (None, "必填"),
        (430321195501011236, "应为文本"),
    ],
)
def test_malformed_id_numbers(bad: object, match: str) -> None:
    refused(match, id_number=bad)


def test_names_are_nfc_trimmed_and_allow_the_middle_dot() -> None:
    decomposed = "Jose\u0301 Garci\u0301a"
    assert not unicodedata.is_normalized("NFC", decomposed)
    got = check_applicant(applicant(name=decomposed), today=TODAY)["name"]
    assert got == "José García" and unicodedata.is_normalized("NFC", got)
    assert check_applicant(applicant(name="买买提•艾力"), today=TODAY)["name"] == "买买提·艾力"
    assert check_applicant(applicant(name="阿依古丽·吐尔逊"), today=TODAY)["name"] == "阿依古丽·吐尔逊"
    assert check_applicant(applicant(name="李〇"), today=TODAY)["name"] == "李〇"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "必填"),
        ("   ", "必填"),
        (None, "必填"),
        ("王秀英2", "数字"),
        ("王秀英３", "数字"),
        ("王秀\u200b英", "U\\+200B"),
        ("王\x07秀英", "控制字符"),
        ("·艾力", "间隔号"),
        ("买买提··艾力", "间隔号"),
        ("王秀英!", "不允许的字符"),
        ("王" * 51, "超过 50"),
    ],
)
def test_bad_names(name: object, match: str) -> None:
    refused(match, name=name)


def test_a_fifty_character_name_passes() -> None:
    assert len(check_applicant(applicant(name="王" * 50), today=TODAY)["name"]) == 50


@pytest.mark.parametrize(
    ("phone", "clean"),
    [
        ("13807345678", "13807345678"),
        ("+86 138-0734-5678", "13807345678"),
        ("0086 19912345678", "19912345678"),
        ("１３８０７３４５６７８", "13807345678"),
        ("0734-5123456", "0734-5123456"),
        ("07345123456", "0734-5123456"),
        ("(0734) 5123456", "0734-5123456"),
        ("010-12345678", "010-12345678"),
        ("02112345678", "021-12345678"),
        ("0734-5123456转801", "0734-5123456-801"),
        ("0734-5123456-801", "0734-5123456-801"),
        ("0755 8888 8888 ext 12", "0755-88888888-12"),
    ],
)
def test_phones_are_normalised(phone: str, clean: str) -> None:
    assert check_applicant(applicant(phone=phone), today=TODAY)["phone"] == clean


@pytest.mark.parametrize("phone", ["12807345678", "1380734567", "138073456789", "5123456", "0734-512345", "电话", ""])
def test_bad_phones(phone: str) -> None:
    err = refused("联系电话", phone=phone)
    if len(phone) > 4:
        assert phone not in err.message


def test_address_is_optional_nfc_and_bounded() -> None:
    assert check_applicant(applicant(address=None), today=TODAY)["address"] == ""
    assert check_applicant(applicant(address="  湘潭县\n梅花村 "), today=TODAY)["address"] == "湘潭县 梅花村"
    refused("超过 200", address="村" * 201)
    refused("控制字符", address="湘潭县\x00")


def test_unknown_fields_and_non_objects_are_refused() -> None:
    refused("未知字段 phon", phon="13807345678")
    with pytest.raises(ValidationError, match="对象"):
        check_applicant(["王秀英"], today=TODAY)  # type: ignore[arg-type]


def test_masks_and_birth_date() -> None:
    assert mask_id("43032119550101123X") == "430321********123X"
    assert mask_phone("13807345678") == "138****5678"
    assert mask_phone("0734-5123456-801") == "0734-***3456"
    assert birth_date_and_sex(GOOD) == (date(1955, 1, 1), "男")
    assert birth_date_and_sex(id_number("43032119800229122"))[1] == "女"
    with pytest.raises(ValidationError):
        birth_date_and_sex("430321550101123")
