"""The calendar version file a district publishes (``streetnode calendar publish FILE``).

A JSON object, UTF-8::

    {
      "version": "440106-2027.1",                  # new label, never reused
      "source_notice": "国办发明电〔2026〕N号",       # the notice the entries copy (required)
      "complete_years": [2027],                    # years this version publishes in full (may be [])
      "entries": [
        {"day": "2027-01-01", "work": false, "reason": "statutory", "name": "元旦"},
        {"day": "2027-02-20", "work": true, "reason": "makeup_work", "name": "春节"}
      ]
    }

``reason`` is one of ``statutory`` (法定节假日), ``makeup_rest`` (调休休息), ``makeup_work`` (调休上班),
``weekend``, ``workday``, ``other``; ``work`` must agree with it (``other`` may go either way).
Days a version does not list keep what earlier versions and the builtin notices say. A year in
``complete_years`` is no longer provisional: its unlisted days follow the weekend rule. Because a
complete year is what a court will be told the node knew, its fixed-date statutory holidays
(元旦, 劳动节, 国庆节) must be listed as rest days — a typo in ``complete_years`` is caught here
rather than turning a holiday into a working day.

Parsing is pure: it reports every problem at once, in Chinese, each naming the field and, for an
entry, its position and line in the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.domain.calendar import (
    DAY_REASONS,
    REASON_LABEL_ZH,
    CalendarEntry,
    fixed_date_holidays,
)

_WORK_OF_REASON = {"statutory": False, "makeup_rest": False, "weekend": False, "makeup_work": True, "workday": True}
_ENTRY_KEYS = frozenset({"day", "work", "reason", "name"})
_TOP_KEYS = frozenset({"version", "source_notice", "complete_years", "entries"})
_VERSION_RE = re.compile(r"^[0-9A-Za-z\u4e00-\u9fff][0-9A-Za-z\u4e00-\u9fff._\-]{0,63}$")
_FIRST_YEAR, _LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class CalendarVersion:
    version: str
    source_notice: str
    complete_years: tuple[int, ...]
    entries: tuple[CalendarEntry, ...]

    def entry_dicts(self) -> list[dict[str, Any]]:
        return [{"day": e.day.isoformat(), "work": e.work, "reason": e.reason, "name": e.name} for e in self.entries]


class CalendarFileError(ValueError):
    """Every problem of a calendar file: ``problems`` is a list of (where, message), both Chinese."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("；".join(f"{where}：{message}" for where, message in problems))

    def describe_zh(self) -> str:
        lines = [f"日历文件格式错误（共 {len(self.problems)} 处），未作任何改动："]
        lines += [f"  {where}：{message}" for where, message in self.problems]
        return "\n".join(lines)


def parse_version_text(text: str) -> CalendarVersion:
    """Parse and check a calendar file's text; raise ``CalendarFileError`` naming every problem."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileError([(f"第 {exc.lineno} 行第 {exc.colno} 列", f"不是有效的 JSON（{exc.msg}）")]) from None
    return parse_version(doc, entry_lines=_entry_lines(text))


def parse_version(doc: Any, *, entry_lines: list[int] | None = None) -> CalendarVersion:
    problems: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        raise CalendarFileError([("文件", "内容须为一个 JSON 对象（{…}）")])
    for key in sorted(set(doc) - _TOP_KEYS):
        problems.append((key, f"不允许的字段（可用字段：{'、'.join(sorted(_TOP_KEYS))}）"))
    version = doc.get("version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        problems.append(("version", "须为 1–64 个字符的版本标签（字母、数字、汉字、点、横线、下划线），如 440106-2027.1"))
    notice = doc.get("source_notice")
    if not isinstance(notice, str) or not notice.strip():
        problems.append(("source_notice", "须注明所依据的通知文号，如 国办发明电〔2026〕N号"))
    years = _complete_years(doc.get("complete_years", []), problems)
    entries = _entries(doc.get("entries"), entry_lines or [], problems)
    if entries is not None:
        problems += _check_complete_years(years, entries)
    if problems:
        raise CalendarFileError(problems)
    assert isinstance(version, str) and isinstance(notice, str) and entries is not None
    return CalendarVersion(version, notice.strip(), tuple(sorted(years)), tuple(entries))


def _complete_years(value: Any, problems: list[tuple[str, str]]) -> list[int]:
    if not isinstance(value, list):
        problems.append(("complete_years", "须为年份列表，如 [2027]；不完整发布则写 []"))
        return []
    years: list[int] = []
    for i, year in enumerate(value):
        if isinstance(year, bool) or not isinstance(year, int) or not _FIRST_YEAR <= year <= _LAST_YEAR:
            problems.append((f"complete_years[{i}]", f"须为 {_FIRST_YEAR}–{_LAST_YEAR} 之间的年份整数，收到 {year!r}"))
        elif year in years:
            problems.append((f"complete_years[{i}]", f"{year} 年重复"))
        else:
            years.append(year)
    return years


def _entries(value: Any, lines: list[int], problems: list[tuple[str, str]]) -> list[CalendarEntry] | None:
    if not isinstance(value, list) or not value:
        problems.append(("entries", "须为至少一条日期的列表"))
        return None
    out: list[CalendarEntry] = []
    first_of_day: dict[date, int] = {}
    ok = True
    for i, item in enumerate(value):
        where = f"entries[{i}]（第 {i + 1} 条" + (f"，第 {lines[i]} 行）" if i < len(lines) else "）")
        entry = _entry(item, where, problems)
        if entry is None:
            ok = False
            continue
        if entry.day in first_of_day:
            problems.append((f"{where}.day", f"{entry.day} 与第 {first_of_day[entry.day] + 1} 条重复"))
            ok = False
            continue
        first_of_day[entry.day] = i
        out.append(entry)
    return out if ok else None


def _entry(item: Any, where: str, problems: list[tuple[str, str]]) -> CalendarEntry | None:
    if not isinstance(item, dict):
        problems.append((where, '须为对象，如 {"day": "2027-01-01", "work": false, "reason": "statutory", "name": "元旦"}'))
        return None
    before = len(problems)
    for key in sorted(set(item) - _ENTRY_KEYS):
        problems.append((f"{where}.{key}", "不允许的字段（可用字段：day、work、reason、name）"))
    day: date | None = None
    raw_day = item.get("day")
    try:
        day = date.fromisoformat(raw_day) if isinstance(raw_day, str) and len(raw_day) == 10 else None
    except ValueError:
        day = None
    if day is None:
        problems.append((f"{where}.day", f"须为 YYYY-MM-DD 格式的日期，收到 {json.dumps(raw_day, ensure_ascii=False)}"))
    work = item.get("work")
    if not isinstance(work, bool):
        problems.append((f"{where}.work", f"须为 true（上班）或 false（休息），收到 {json.dumps(work, ensure_ascii=False)}"))
    reason = item.get("reason")
    if reason not in DAY_REASONS:
        allowed = "、".join(f"{r}（{REASON_LABEL_ZH[r]}）" for r in sorted(DAY_REASONS))
        problems.append((f"{where}.reason", f"须为 {allowed} 之一，收到 {json.dumps(reason, ensure_ascii=False)}"))
    elif isinstance(work, bool) and _WORK_OF_REASON.get(reason, work) != work:
        should = "true（上班）" if _WORK_OF_REASON[reason] else "false（休息）"
        problems.append((f"{where}.work", f"reason 为 {reason}（{REASON_LABEL_ZH[reason]}）时 work 须为 {should}"))
    name = item.get("name", "")
    if not isinstance(name, str) or len(name) > 40:
        problems.append((f"{where}.name", "须为不超过 40 个字符的节日名称，如 春节"))
    if len(problems) > before or day is None:
        return None
    assert isinstance(work, bool) and isinstance(reason, str) and isinstance(name, str)
    return CalendarEntry(day, work, reason, name.strip())  # type: ignore[arg-type]


def _check_complete_years(years: list[int], entries: list[CalendarEntry]) -> list[tuple[str, str]]:
    by_day = {e.day: e for e in entries}
    problems = []
    for year in years:
        for day, name in fixed_date_holidays(year).items():
            entry = by_day.get(day)
            if entry is None or entry.work:
                problems.append(("complete_years", f"声明 {year} 年已完整发布，但未将 {day.isoformat()}（{name}）列为休息日"))
    return problems


def _entry_lines(text: str) -> list[int]:
    """The line on which each object of the top-level ``entries`` array starts (best effort: [] if unsure)."""
    decoder = json.JSONDecoder()
    match = re.search(r'"entries"\s*:\s*\[', text)
    if match is None:
        return []
    lines: list[int] = []
    index = match.end()
    try:
        while True:
            while index < len(text) and text[index] in " \t\r\n,":
                index += 1
            if index >= len(text) or text[index] == "]":
                return lines
            lines.append(text.count("\n", 0, index) + 1)
            _, index = decoder.raw_decode(text, index)
    except json.JSONDecodeError:
        return []
