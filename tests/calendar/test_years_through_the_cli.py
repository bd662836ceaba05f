"""2027 then 2028 published through ``streetnode calendar publish``: hand-worked due dates (issue #10 points 1-3).

Every case is a test permit with a 5-working-day ``decide`` clock (day 0 = the day received, not counted).
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from tests.calendar.helpers import CAL_2027, CAL_2028, at, clock, due_day, open_case, publish
from tests.conftest import Logins


def test_2027_then_2028_moves_no_2027_deadline_earlier_and_ends_the_provisional_years(
    settings: Settings, client: TestClient, auth: Logins, tmp_path: Path
) -> None:
    spring = open_case(settings, at(2027, 2, 4))  # Thursday before the 2027 春节
    labour = open_case(settings, at(2027, 4, 28))  # Wednesday before 劳动节
    new_year = open_case(settings, at(2026, 12, 28))  # Monday before 元旦 2027
    spring_2028 = open_case(settings, at(2028, 1, 20))  # Thursday before the 2028 春节
    headers = auth("clerk")

    # Nothing published: 2027 and 2028 are provisional (weekends and the fixed-date holidays only).
    # 春节 2027 is unknown: 02-05, 02-08..02-11 are counted -> 02-11.
    assert due_day(settings, spring) == "2027-02-11"
    # 04-29, 04-30; 05-01/02 rest by law (a weekend anyway); 05-03..05-05 -> 05-05.
    assert due_day(settings, labour) == "2027-05-05"
    # 12-29, 12-30, 12-31; 2027-01-01 rests by law although unpublished; 01-04, 01-05 -> 01-05.
    assert due_day(settings, new_year) == "2027-01-05"
    early = clock(settings, new_year)
    assert early["provisional"] is True
    assert "其中 2027-01-04至2027-01-05 暂按工作日计入，发布后自动重算" in early["explanation"]
    assert client.get("/api/v1/calendar", headers=headers).json()["last_known_year"] == 2026

    result = publish(settings, tmp_path, CAL_2027)
    assert result.exit_code == 0, result.output
    assert "重算 4 个在办事项的期限；已知年份至 2027 年" in result.output
    assert "没有期限被提前" in result.output
    # 春节 rest 02-05..02-11; 02-12 (1), 02-15..02-18 (2-5).
    assert due_day(settings, spring) == "2027-02-18"
    # 04-29 (1), 04-30 (2), rest 05-01..05-05, 05-06 (3), 05-07 (4), Saturday 05-08 make-up (5).
    labour_clock = clock(settings, labour)
    assert labour_clock["due_at"][:10] == "2027-05-08"
    assert labour_clock["provisional"] is False
    assert labour_clock["explanation"] == (
        "办理时限（测试依据）；起算日（第0日）：2027-04-28（星期三），当日不计入；按工作日计 5 日；"
        "跳过：2027-05-01至2027-05-05 劳动节休假；2027-05-08（星期六）为调休上班日，计入；"
        "截止：2027-05-08（星期六）24:00前；日历版本：demo-2027.1"
    )
    published = clock(settings, new_year)
    assert published["due_at"][:10] == "2027-01-05"
    assert published["provisional"] is False and "尚未发布" not in published["explanation"]
    assert clock(settings, spring_2028)["provisional"] is True
    info = client.get("/api/v1/calendar", headers=headers).json()
    assert (info["version"], info["last_known_year"]) == ("demo-2027.1", 2027)

    before_2028 = {case: clock(settings, case)["due_at"] for case in (spring, labour, new_year)}
    result = publish(settings, tmp_path, CAL_2028)
    assert result.exit_code == 0, result.output
    assert "已知年份至 2028 年" in result.output and "没有期限被提前" in result.output
    # The 2027 holidays are still known: no 2027 deadline moved, earlier or later.
    assert {case: clock(settings, case)["due_at"] for case in (spring, labour, new_year)} == before_2028
    assert "尚未发布" not in clock(settings, spring)["explanation"]
    assert clock(settings, spring)["explanation"].endswith("日历版本：demo-2028.1")
    # 2028: 01-21 (1), Saturday 01-22 make-up (2), 01-24 (3), rest 01-25..02-01, 02-02 (4), 02-03 (5).
    later = clock(settings, spring_2028)
    assert later["due_at"][:10] == "2028-02-03" and later["provisional"] is False
    info = client.get("/api/v1/calendar", headers=headers).json()
    assert (info["version"], info["last_known_year"]) == ("demo-2028.1", 2028)
    assert [(v["version"], v["complete_years"]) for v in info["versions"]] == [
        ("demo-2027.1", [2027]), ("demo-2028.1", [2028])]

    with Store(settings.db_path) as store:
        details = [json.loads(r["detail"]) for r in
                   store.query("SELECT detail FROM audit_log WHERE action = 'calendar.publish' ORDER BY seq")]
    assert details == [{"recomputed_cases": 4, "held_earlier": 0}, {"recomputed_cases": 4, "held_earlier": 0}]


def test_publishing_2028_alone_leaves_2027_provisional(settings: Settings, tmp_path: Path) -> None:
    case = open_case(settings, at(2027, 2, 4))
    result = publish(settings, tmp_path, CAL_2028)
    assert result.exit_code == 0, result.output
    assert "已知年份至 2026 年" in result.output, "2027 is still missing, so 2028 does not extend the known years"
    provisional = clock(settings, case)
    assert provisional["due_at"][:10] == "2027-02-11" and provisional["provisional"] is True


def test_calendar_show_and_due_commands(settings: Settings, tmp_path: Path) -> None:
    from tests.calendar.helpers import cli

    assert publish(settings, tmp_path, CAL_2027).exit_code == 0
    shown = cli(settings, "calendar", "show")
    assert shown.exit_code == 0, shown.output
    assert "当前日历：demo-2027.1；已知年份至 2027 年" in shown.output
    assert "demo-2027.1  26 条  完整年份 2027  示例：2027 年部分节假日安排" in shown.output
    assert "待确认的提前期限：0 个" in shown.output
    # Received 2027-09-30 (Thursday): 10-01..10-07 rest, 10-08 (1), Saturday 10-09 make-up (2), 10-11.. (3-5).
    due = cli(settings, "calendar", "due", "2027-09-30", "working_day", "5")
    assert due.exit_code == 0, due.output
    assert "截止：2027-10-13（星期三）24:00前；日历版本：demo-2027.1" in due.output
    assert "暂定" not in due.output
    provisional = cli(settings, "calendar", "due", "2028-09-29", "working_day", "5")
    assert "注意：此日期为暂定" in provisional.output
    bad = cli(settings, "calendar", "due", "2027-13-01", "working_day", "5")
    assert bad.exit_code == 1 and "start：日期格式应为" in bad.output
