"""The calendar file format: every problem named in Chinese (field, entry, line); a bad file changes nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from server.domain.calendar_file import CalendarFileError, parse_version, parse_version_text
from server.store.db import Store
from tests.calendar.helpers import CAL_2027, at, cli, due_day, open_case, publish


def problems(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(CalendarFileError) as exc:
        parse_version(doc)
    return exc.value.problems


def test_the_2027_example_parses_with_its_complete_year() -> None:
    parsed = parse_version(CAL_2027)
    assert (parsed.version, parsed.complete_years, len(parsed.entries)) == ("demo-2027.1", (2027,), 26)
    assert parsed.entry_dicts()[0] == {"day": "2027-01-01", "work": False, "reason": "statutory", "name": "元旦"}


def test_a_complete_year_must_list_its_fixed_date_holidays_as_rest_days() -> None:
    doc = copy.deepcopy(CAL_2027)
    doc["entries"] = [e for e in doc["entries"] if e["day"] != "2027-05-02"]
    doc["complete_years"] = [2027, 2028]  # a typo for [2027]: 2028 lists nothing
    found = problems(doc)
    assert ("complete_years", "声明 2027 年已完整发布，但未将 2027-05-02（劳动节）列为休息日") in found
    assert ("complete_years", "声明 2028 年已完整发布，但未将 2028-01-01（元旦）列为休息日") in found
    assert len(found) == 7


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        ({"day": "2027-02-30", "work": False, "reason": "statutory"}, "entries[0]（第 1 条）.day",
         '须为 YYYY-MM-DD 格式的日期，收到 "2027-02-30"'),
        ({"day": "2027-01-01", "work": "no", "reason": "statutory"}, "entries[0]（第 1 条）.work",
         '须为 true（上班）或 false（休息），收到 "no"'),
        ({"day": "2027-01-01", "work": True, "reason": "statutory"}, "entries[0]（第 1 条）.work",
         "reason 为 statutory（法定节假日）时 work 须为 false（休息）"),
        ({"day": "2027-01-01", "work": False, "reason": "statutory", "note": "x"}, "entries[0]（第 1 条）.note",
         "不允许的字段（可用字段：day、work、reason、name）"),
    ],
)
def test_a_bad_entry_is_named_by_field(entry: dict[str, Any], where: str, message: str) -> None:
    doc = {"version": "v1", "source_notice": "通知", "entries": [entry]}
    assert problems(doc) == [(where, message)]


def test_a_duplicate_day_names_both_entries() -> None:
    e = {"day": "2027-01-01", "work": False, "reason": "statutory", "name": "元旦"}
    doc = {"version": "v1", "source_notice": "通知", "entries": [e, dict(e)]}
    assert problems(doc) == [("entries[1]（第 2 条）.day", "2027-01-01 与第 1 条重复")]


def test_json_errors_and_entries_are_located_by_line() -> None:
    with pytest.raises(CalendarFileError) as exc:
        parse_version_text('{\n  "version": "v1",\n  "entries": [\n    {"day": "2027-01-01",}\n  ]\n}')
    assert exc.value.problems[0][0] == "第 4 行第 26 列"
    text = json.dumps({"version": "v1", "source_notice": "通知", "entries": [
        {"day": "2027-01-01", "work": False, "reason": "statutory"},
        {"day": "2027-01-02", "work": False, "reason": "holiday"}]}, indent=2)
    with pytest.raises(CalendarFileError) as exc:
        parse_version_text(text)
    assert exc.value.problems[0][0] == "entries[1]（第 2 条，第 10 行）.reason"


def test_a_bad_file_through_the_cli_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    case = open_case(settings, at(2027, 2, 4))
    doc = copy.deepcopy(CAL_2027)
    doc["entries"][3]["reason"] = "makeup_work"  # 2027-02-07 marked rest with a make-up-work reason
    result = publish(settings, tmp_path, doc)
    assert result.exit_code == 1
    assert "日历文件格式错误（共 1 处），未作任何改动" in result.output
    assert "entries[3]（第 4 条，第 " in result.output and "work 须为 true（上班）" in result.output
    assert due_day(settings, case) == "2027-02-11"
    assert publish(settings, tmp_path, "not json").exit_code == 1
    with Store(settings.db_path) as store:
        assert store.query("SELECT * FROM calendar_versions") == []


def test_a_reused_version_label_is_refused(settings: Settings, tmp_path: Path) -> None:
    assert publish(settings, tmp_path, CAL_2027).exit_code == 0
    again = publish(settings, tmp_path, CAL_2027)
    assert again.exit_code == 1 and "日历版本 demo-2027.1 已存在；修改请另立新版本号；未作任何改动" in again.output


def test_publish_help_documents_the_file_format() -> None:
    from server.cli import main

    text = cli.__globals__["CliRunner"]().invoke(main, ["calendar", "publish", "--help"]).output
    for needle in ('"complete_years": [2027]', '"source_notice"', '"reason": "statutory"', "makeup_work 调休上班",
                   "劳动节 (05-01, 05-02)", "--dry-run"):
        assert needle in text, needle
    doc = (Path(__file__).parents[2] / "ops" / "calendar.md").read_text(encoding="utf-8")
    for needle in ("complete_years", "source_notice", "makeup_rest", "streetnode calendar confirm"):
        assert needle in doc, needle
