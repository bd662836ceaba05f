"""Personal-data rules: validating and masking ID-card numbers, mobile numbers and names.

Pure functions, no I/O. Validation normalises what a window clerk or a resident typically types
(full-width digits, spaces, a lower-case x, a +86 prefix) and rejects the rest with a Chinese
message that says what is wrong, so it can be shown next to the form field as is.

Lists and receipts never show a full number (DESIGN.md §4): ``mask_id_card`` keeps the first four
and the last four characters, ``mask_phone`` the first three and the last four digits.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from server.domain.ids import CHINA_TZ

# GB 11643-1999 §8.2: ISO 7064 MOD 11-2 weights for positions 1..17 and the check characters
# indexed by (weighted sum mod 11).
ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK_CHARS = "10X98765432"

# First two digits of a GB/T 2260 division code: the 31 mainland provinces, plus 71 (Taiwan),
# 81/82 (Hong Kong, Macao) and 83 (residence permits for Taiwan residents, which use 830000).
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65"
    " 71 81 82 83".split()
)

_EARLIEST_BIRTH_YEAR = 1900
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_WHITESPACE = re.compile(r"\s+")


def _normalise(value: str) -> str:
    # NFKC folds full-width digits and letters (１２３Ｘ) typed with a Chinese input method
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", value))


def id_card_check_char(first17: str) -> str:
    """The 18th character of a resident ID number whose first 17 digits are ``first17``."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("计算校验码需要 17 位数字")
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK_CHARS[total % 11]


def validate_id_card(value: str, *, today: date | None = None) -> str:
    """Validate an 18-character resident ID number (GB 11643-1999) and return it normalised.

    ``today`` is injectable for tests; it defaults to the current date in China.
    Raises ``ValueError`` with a Chinese message naming the first problem found.
    """
    number = _normalise(value).upper()
    if len(number) != 18:
        raise ValueError(f"身份证号码应为 18 位，当前为 {len(number)} 位")
    body, check = number[:17], number[17]
    if not (body.isascii() and body.isdigit()) or not (check.isdigit() or check == "X"):
        raise ValueError("身份证号码含有无效字符：前 17 位须为数字，最后一位须为数字或 X")
    if body[:2] not in PROVINCE_CODES:
        raise ValueError(f"身份证号码前两位 {body[:2]} 不是有效的省级行政区划代码")
    birth_text = body[6:14]
    try:
        birth = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:8]))
    except ValueError:
        raise ValueError(f"身份证号码中的出生日期 {birth_text} 不是有效日期") from None
    if today is None:
        today = datetime.now(CHINA_TZ).date()
    if birth > today:
        raise ValueError(f"身份证号码中的出生日期 {birth_text} 晚于今天")
    if birth.year < _EARLIEST_BIRTH_YEAR:
        raise ValueError(f"身份证号码中的出生日期 {birth_text} 早于 {_EARLIEST_BIRTH_YEAR} 年，不可信")
    expected = id_card_check_char(body)
    if check != expected:
        raise ValueError(f"身份证号码校验码错误：最后一位应为 {expected}，输入为 {check}，请核对号码")
    return number


def validate_mobile(value: str) -> str:
    """Validate a mainland mobile number and return its 11 digits (spaces, dashes and +86 removed)."""
    number = _normalise(value).replace("-", "")
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix) :]
            break
    else:
        if len(number) == 13 and number.startswith("86"):
            number = number[2:]
    if not _MOBILE.match(number):
        raise ValueError("手机号码格式不正确：应为以 13–19 开头的 11 位中国大陆手机号码")
    return number


def mask_id_card(value: str) -> str:
    """``440106199001011234`` -> ``4401**********1234``."""
    number = _normalise(value)
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``."""
    number = _normalise(value)
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``; ``欧阳小明`` -> ``欧**明``: keep the first and, from three characters on, the last."""
    name = value.strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def phone_last4(value: str) -> str:
    """The last four digits of a phone number, as residents are asked for them to look up a case."""
    digits = "".join(ch for ch in _normalise(value) if ch.isascii() and ch.isdigit())
    if len(digits) < 4:
        raise ValueError("电话号码不足 4 位数字")
    return digits[-4:]


__all__ = [
    "ID_CARD_CHECK_CHARS",
    "ID_CARD_WEIGHTS",
    "PROVINCE_CODES",
    "id_card_check_char",
    "mask_id_card",
    "mask_name",
    "mask_phone",
    "phone_last4",
    "validate_id_card",
    "validate_mobile",
]
