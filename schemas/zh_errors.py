"""Chinese messages for pydantic's error types: staff and residents read these (DESIGN.md §7).

Used by every intake path (``server.errors.field_errors_from_pydantic``) and by the case engine's
payload models (``server.domain.engine.check_payload``), so one translation serves both.
"""

from __future__ import annotations

from typing import Any

_ZH_BY_TYPE = {
    "missing": "缺少必填项",
    "extra_forbidden": "不允许的字段",
    "string_type": "须为文本",
    "int_type": "须为整数",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "float_type": "须为数字",
    "float_parsing": "须为数字",
    "bool_type": "须为是/否",
    "bool_parsing": "须为是/否",
    "list_type": "须为列表",
    "dict_type": "须为对象",
    "model_type": "须为对象",
    "model_attributes_type": "须为对象",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "too_short": "项目过少",
    "too_long": "项目过多",
    "string_pattern_mismatch": "格式不正确",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "literal_error": "不是允许的取值",
    "enum": "不是允许的取值",
    "datetime_type": "须为日期时间",
    "datetime_parsing": "日期时间格式不正确",
    "datetime_from_date_parsing": "日期时间格式不正确",
    "timezone_aware": "日期时间须带时区",
    "date_parsing": "日期格式不正确",
    "date_from_datetime_parsing": "日期格式不正确",
    "uuid_parsing": "编号格式不正确",
    "uuid_type": "编号格式不正确",
    "json_invalid": "JSON 格式错误",
}


def zh_message(err: dict[str, Any]) -> str:
    """One pydantic error in Chinese; our own validators' messages (already Chinese) pass through."""
    kind = str(err.get("type", ""))
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ") or "取值不正确"
    if kind == "assertion_error":
        return str(err.get("msg", "")).removeprefix("Assertion failed, ") or "取值不正确"
    return _ZH_BY_TYPE.get(kind, str(err.get("msg", "格式错误")))
