"""One explanation per unit, word for word, from hand-worked 2026 dates; the art. 202/203 period rules;
holiday names kept off the plain weekend next to them; caps per regime; the due-date memo.

2026 (chinese_calendar 1.11): 春节 02-15..23 with make-up Saturdays 02-14 and 02-28; 中秋节 09-25..27;
国庆节 10-01..07 with make-up Sunday 09-20 and Saturday 10-10.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from server.domain.calendar import CalendarEntry, builtin_calendar
from server.domain.clock_rules import extension_refusal
from server.domain.clocks import (
    EXTENSION_RULES,
    ClockSpec,
    ClockState,
    ClockUnit,
    Pause,
    compute_due,
    reset,
)
from server.domain.engine import Draft
from server.domain.ids import CHINA_TZ

CALENDAR = builtin_calendar()
V = CALENDAR.version
ART203 = "《中华人民共和国民法典》第二百零三条"


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


def end_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 23, 59, 59, tzinfo=CHINA_TZ)


def test_working_days_over_spring_festival_word_for_word() -> None:
    spec = ClockSpec("accept", ClockUnit.WORKING_DAY, 5, "受理审查", "《中华人民共和国行政许可法》第三十二条")
    due = compute_due(ClockState(spec, at(2026, 2, 12)), CALENDAR)
    # 02-13 (1), 02-14 make-up Saturday (2), 02-15..23 春节, 02-24 (3), 02-25 (4), 02-26 (5).
    assert due.due_at == end_of(2026, 2, 26)
    assert due.explanation_zh == (
        "受理审查（《中华人民共和国行政许可法》第三十二条）；起算日（第0日）：2026-02-12（星期四），当日不计入；"
        "按工作日计 5 日；跳过：2026-02-15至2026-02-23 春节休假；2026-02-14（星期六）为调休上班日，计入；"
        f"截止：2026-02-26（星期四）24:00前；日历版本：{V}"
    )


def test_working_hours_over_national_day_with_an_open_pause_show_hours_used_and_left() -> None:
    spec = ClockSpec("handle", ClockUnit.WORKING_HOUR, 8, "处置时限", "数字城管案件处置标准")
    state = ClockState(spec, at(2026, 9, 30, 16, 0)).pause(at(2026, 10, 8, 9, 30), "等待专业部门确认", "dept")
    due = compute_due(state, CALENDAR)
    # 09-30 16:00–17:30 (1 h 30), then 10-08 08:30–09:30 (1 h): 2 h 30 used, 5 h 30 left.
    assert due.due_at is None
    assert due.explanation_zh == (
        "处置时限（数字城管案件处置标准）；起算时间：2026-09-30 16:00；"
        "按工作时计 8 小时（办公时间 08:30–12:00、14:00–17:30）；跳过：2026-10-01至2026-10-07 国庆节休假；"
        "暂停：自 2026-10-08 09:30 起（等待专业部门确认），计时暂停中（已用 2 小时 30 分，剩余 5 小时 30 分）；"
        f"截止：计时暂停中，恢复计时后确定；日历版本：{V}"
    )


def test_calendar_days_roll_past_a_holiday_but_not_past_a_make_up_saturday() -> None:
    spec = ClockSpec("answer", ClockUnit.CALENDAR_DAY, 15, "答辩期限", "测试依据", roll_to_workday=True)
    due = compute_due(ClockState(spec, at(2026, 9, 18)), CALENDAR)
    # 09-18 + 15 = 10-03 (Saturday, 国庆节): the period ends on the first working day after, 10-08.
    assert due.due_at == end_of(2026, 10, 8)
    assert due.explanation_zh == (
        "答辩期限（测试依据）；起算日（第0日）：2026-09-18（星期五），当日不计入；按自然日计 15 日（节假日照常计算）；"
        f"期间最后一日为休息日的，以其后第一个工作日为最后一日（{ART203}）；"
        f"期间最后一日 2026-10-03（星期六）为休息日（国庆节），顺延至 2026-10-08（星期四）（{ART203}）；"
        f"截止：2026-10-08（星期四）24:00前；日历版本：{V}"
    )
    # 02-07 + 15 = 02-22, inside 春节: rolls to 02-24. 02-07 + 7 = 02-14, a make-up working Saturday: no roll.
    assert compute_due(ClockState(spec, at(2026, 2, 7)), CALENDAR).due_at == end_of(2026, 2, 24)
    seven = ClockSpec("answer", ClockUnit.CALENDAR_DAY, 7, "答辩期限", roll_to_workday=True)
    assert compute_due(ClockState(seven, at(2026, 2, 7)), CALENDAR).due_at == end_of(2026, 2, 14)
    # Without the option the period ends on the rest day itself.
    plain = ClockSpec("answer", ClockUnit.CALENDAR_DAY, 15, "答辩期限")
    assert compute_due(ClockState(plain, at(2026, 9, 18)), CALENDAR).due_at == end_of(2026, 10, 3)


def test_calendar_hours_word_for_word() -> None:
    spec = ClockSpec("emergency", ClockUnit.CALENDAR_HOUR, 2, "应急处置")
    start = at(2026, 10, 1, 22, 0)
    state = ClockState(spec, start).pause(at(2026, 10, 1, 23), "等待燃气公司").resume(at(2026, 10, 2, 1))
    due = compute_due(state, CALENDAR)
    assert due.due_at == at(2026, 10, 2, 2, 0)
    assert due.explanation_zh == (
        "应急处置；起算时间：2026-10-01 22:00；按自然小时计 2 小时（节假日、夜间照常计算）；"
        "暂停：2026-10-01 23:00至2026-10-02 01:00（等待燃气公司），其间 2 小时 0 分不计入；"
        f"截止：2026-10-02（星期五）02:00；日历版本：{V}"
    )


def test_a_month_period_without_a_corresponding_day_ends_on_the_last_day_of_the_month() -> None:
    spec = ClockSpec("litigation", ClockUnit.MONTH, 6, "起诉期限", "《中华人民共和国行政诉讼法》第四十六条")
    due = compute_due(ClockState(spec, at(2026, 8, 31)), CALENDAR)
    assert due.due_at == end_of(2027, 2, 28)
    assert not due.provisional  # a month period without the roll does not depend on holidays
    assert due.explanation_zh == (
        "起诉期限（《中华人民共和国行政诉讼法》第四十六条）；起算日（第0日）：2026-08-31（星期一），当日不计入；"
        "按月计 6 个月（到期月的对应日为期间最后一日，没有对应日的为该月末日，《中华人民共和国民法典》第二百零二条）；"
        "2027-02 没有 31 日，以月末日 2027-02-28（星期日）为期间最后一日；"
        f"截止：2027-02-28（星期日）24:00前；日历版本：{V}"
    )
    leap = compute_due(ClockState(spec, at(2027, 8, 31)), CALENDAR)
    assert leap.due_at == end_of(2028, 2, 29)
    # With the roll, 2027-02-28 (Sunday) moves to Monday 03-01, provisionally: 2027 is not published.
    rolled = compute_due(ClockState(ClockSpec("l", ClockUnit.MONTH, 6, "起诉期限", roll_to_workday=True),
                                    at(2026, 8, 31)), CALENDAR)
    assert rolled.due_at == end_of(2027, 3, 1) and rolled.provisional


def test_a_plain_weekend_next_to_a_published_holiday_is_not_given_its_name() -> None:
    # A district version names 2027-02-06..12 春节; 02-13/14 are an ordinary weekend.
    entries = [CalendarEntry(date(2027, 2, d), False, "statutory", "春节") for d in range(6, 13)]
    published = CALENDAR.with_entries(entries, version="440106-2027.1", complete_years=[2027])
    due = compute_due(ClockState(ClockSpec("t", ClockUnit.WORKING_DAY, 5, "测试时限"), at(2027, 2, 4)), published)
    # 02-05 (1), 02-15..18 (2..5).
    assert due.due_at == end_of(2027, 2, 18)
    assert "跳过：2027-02-06至2027-02-12 春节休假、周末 2 天" in due.explanation_zh
    assert "2027-02-06至2027-02-14" not in due.explanation_zh


def test_pauses_for_different_reasons_may_overlap_but_not_for_the_same_reason() -> None:
    spec = ClockSpec("t", ClockUnit.WORKING_DAY, 20, "答复期限")
    ok = ClockState(spec, at(2026, 3, 2), pauses=[Pause(at(2026, 3, 4), None, "第三方", "a"),
                                                  Pause(at(2026, 3, 6), None, "共同制作机关", "b")])
    assert ok.resume(at(2026, 3, 10), "a").is_paused()
    with pytest.raises(ValueError):
        ClockState(spec, at(2026, 3, 2), pauses=[Pause(at(2026, 3, 4), None, "x", "a"),
                                                 Pause(at(2026, 3, 6), None, "y", "a")])


def test_the_memo_never_serves_another_historys_explanation() -> None:
    spec = ClockSpec("t", ClockUnit.WORKING_DAY, 5, "测试时限")
    plain = ClockState(spec, at(2026, 3, 10))
    restarted = reset(ClockState(spec, at(2026, 3, 2)), at(2026, 3, 10), "收到补正材料，自收到补正之日起重新计算")
    assert plain == restarted  # they count alike …
    assert compute_due(plain, CALENDAR).due_at == compute_due(restarted, CALENDAR).due_at
    assert "重新计时" not in compute_due(plain, CALENDAR).explanation_zh  # … but explain differently
    assert "自收到补正之日起重新计算" in compute_due(restarted, CALENDAR).explanation_zh
    noted = plain.note(at(2026, 3, 17), "视为受理，自收到申请材料之日起计算")
    assert "视为受理" in compute_due(noted, CALENDAR).explanation_zh
    assert "视为受理" not in compute_due(plain, CALENDAR).explanation_zh


def _draft(when: datetime) -> Draft:
    return Draft(transition="extend", payload={}, principal=None, node_time=when, event_id="e")


@pytest.mark.parametrize(("regime", "cap"), [("OGI2019", 20), ("OGI2008", 15), ("行政许可", 10)])
def test_each_regime_caps_its_extension(regime: str, cap: int) -> None:
    rule = EXTENSION_RULES[regime]
    clock = ClockState(ClockSpec("t", ClockUnit.WORKING_DAY, 15, "答复期限", extension=rule), at(2026, 3, 2))
    due = compute_due(clock, CALENDAR)
    within = _draft(at(2026, 3, 5))
    assert extension_refusal(clock, rule, cap + 1, within, due) == f"延长不得超过 {cap} 个工作日（{rule.legal_basis}）"
    message = extension_refusal(clock, rule, cap, within, due)
    assert message is None or "告知日期" in message  # OGI2019 also needs the notice date
    assert extension_refusal(clock, rule, 1, _draft(at(2026, 4, 1)), due) == (
        f"「答复期限」已于 2026-03-23 23:59:59 届满，期限届满后不能再延长（{rule.legal_basis}：延长须在期限内决定）")
