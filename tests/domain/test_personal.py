"""Personal-data rules: GB 11643 ID numbers, mainland mobiles, masking."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.personal import (
    ID_CARD_CHECK_CHARS,
    id_card_check_char,
    mask_id_card,
    mask_name,
    mask_phone,
    phone_last4,
    validate_id_card,
    validate_mobile,
)

TODAY = date(2026, 6, 1)


def valid_id(first17: str) -> str:
    return first17 + id_card_check_char(first17)


# --------------------------------------------------------------------------- check character


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        # the worked example of GB 11643-1999: sum = 167, 167 mod 11 = 2 -> "X"
        ("11010519491231002", "X"),
        # 4*7+4*9+0*10+1*5+0*8+6*4+1*2+9*1+9*6+0*3+0*7+1*9+0*10+1*5+1*8+2*4+3*2 = 194; mod 11 = 7 -> "5"
        ("44010619900101123", "5"),
        # 4*7+4*9+0*10+1*5+0*8+6*4+2*2+0*1+0*6+0*3+0*7+2*9+2*10+9*5+0*8+0*4+1*2 = 182; mod 11 = 6 -> "6"
        ("44010620000229001", "6"),
        # all zeros: sum 0 -> "1"
        ("00000000000000000", "1"),
    ],
)
def test_check_char_follows_iso_7064_mod_11_2(first17: str, expected: str) -> None:
    assert id_card_check_char(first17) == expected


@pytest.mark.parametrize("bad", ["1234", "4401061990010112345", "4401061990010112A"])
def test_check_char_needs_exactly_17_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="17 位数字"):
        id_card_check_char(bad)


# --------------------------------------------------------------------------- validation table


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),  # lower-case x accepted
        (" 440106 19900101 1235 ", "440106199001011235"),  # spaces typed in groups
        ("４４０１０６１９９００１０１１２３５", "440106199001011235"),  # full-width digits
        ("440106200002290016", "440106200002290016"),  # 29 February of a leap year
        (valid_id("81000019900101123"), None),  # residence permit for Hong Kong residents
    ],
)
def test_valid_numbers_are_normalised(raw: str, normalised: str | None) -> None:
    result = validate_id_card(raw, today=TODAY)
    assert result == (normalised or raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("44010619900101123", "18 位"),
        ("4401061990010112355", "18 位"),
        ("", "18 位"),
        ("4401061990010112A5", "无效字符"),
        ("44010619900101123Y", "无效字符"),
        ("990106199001011235", "省级行政区划代码"),
        ("000000199001011235", "省级行政区划代码"),
        (valid_id("44010619900230123"), "出生日期 19900230 不是有效日期"),
        (valid_id("44010619001301123"), "不是有效日期"),
        (valid_id("44010620010229001"), "不是有效日期"),  # 2001 is not a leap year
        (valid_id("44010620260602001"), "晚于今天"),
        (valid_id("44052418800101001"), "早于 1900 年"),
        ("440106199001011234", "校验码错误：最后一位应为 5，输入为 4"),
        ("110105194912310021", "最后一位应为 X"),
    ],
)
def test_invalid_numbers_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_id_card(raw, today=TODAY)


def test_birth_date_today_is_accepted() -> None:
    number = valid_id("44010620260601001")
    assert validate_id_card(number, today=TODAY) == number


def test_default_today_is_the_current_date() -> None:
    assert validate_id_card("11010519491231002X") == "11010519491231002X"


# --------------------------------------------------------------------------- property

_first17 = st.text(alphabet="0123456789", min_size=17, max_size=17)


@given(_first17)
def test_any_17_digits_with_computed_check_char_pass_the_checksum(first17: str) -> None:
    number = first17 + id_card_check_char(first17)
    try:
        assert validate_id_card(number, today=TODAY) == number
    except ValueError as exc:
        # random digits rarely form a real region and birth date; the checksum itself never fails
        assert "校验码" not in str(exc)


@given(_first17, st.sampled_from(ID_CARD_CHECK_CHARS))
def test_any_other_check_char_fails(first17: str, check: str) -> None:
    # give the number a real region and birth date so only the check character can be at fault
    plausible = "440106" + "19900101" + first17[14:]
    expected = id_card_check_char(plausible)
    if check == expected:
        return
    with pytest.raises(ValueError, match="校验码错误"):
        validate_id_card(plausible + check, today=TODAY)


@given(st.text(alphabet="0123456789", min_size=3, max_size=3), st.dates(date(1900, 1, 1), TODAY))
def test_plausible_numbers_always_validate(serial: str, birth: date) -> None:
    number = valid_id("440106" + birth.strftime("%Y%m%d") + serial)
    assert validate_id_card(number, today=TODAY) == number


# --------------------------------------------------------------------------- mobiles


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("+8619912345678", "19912345678"),
        ("008615012345678", "15012345678"),
        ("8613812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
    ],
)
def test_mobile_numbers_are_normalised(raw: str, expected: str) -> None:
    assert validate_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw", ["12812345678", "1381234567", "138123456789", "020-87654321", "", "1381234567a"]
)
def test_invalid_mobile_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="手机号码格式不正确"):
        validate_mobile(raw)


# --------------------------------------------------------------------------- masking


def test_mask_id_card_keeps_first_and_last_four() -> None:
    assert mask_id_card("440106199001011234") == "4401**********1234"
    assert mask_id_card("11010519491231002X") == "1101**********002X"
    assert mask_id_card("12345678") == "********"


def test_mask_phone_keeps_first_three_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("123") == "***"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳小明", "欧**明"),
        ("李小龙", "李*龙"),
        ("王", "*"),
        ("", ""),
        (" 张三 ", "张*"),
        ("买买提·艾力", "买****力"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_phone_last4() -> None:
    assert phone_last4("+86 138-1234-5678") == "5678"
    assert phone_last4("020-87654321") == "4321"
    with pytest.raises(ValueError, match="4 位"):
        phone_last4("12a")
