"""Deadline clocks: worked examples around 2026 holidays, pauses, extensions, provisional years."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from server.domain.calendar import CalendarEntry, WorkCalendar, builtin_calendar
from server.domain.clocks import (
    ClockSpec,
    ClockState,
    ClockUnit,
    Pause,
    clock_status,
    compute_due,
    reset,
    working_days_between,
)
from server.domain.ids import CHINA_TZ

CALENDAR = builtin_calendar()
DECISION = ClockSpec("license_decision", ClockUnit.WORKING_DAY, 20, "许可决定", "《行政许可法》第四十二条")


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_TZ)


def end_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 23, 59, 59, tzinfo=CHINA_TZ)


def days(n: int) -> ClockSpec:
    return ClockSpec("t", ClockUnit.WORKING_DAY, n, "测试时限")


def hours(n: int) -> ClockSpec:
    return ClockSpec("t", ClockUnit.WORKING_HOUR, n, "测试时限")


# --- working days ---------------------------------------------------------------------------


def test_national_day_2026_is_skipped_and_the_make_up_saturday_counts() -> None:
    due = compute_due(ClockState(DECISION, at(2026, 9, 30)), CALENDAR)
    # 10-08, 10-09, 10-10 (Sat, make-up), then 17 ordinary working days: 11-03.
    assert due.due_at == end_of(2026, 11, 3)
    assert not due.provisional
    assert due.calendar_version == "chinese-calendar-1.11.0"
    text = due.explanation_zh
    assert text.startswith("许可决定（《行政许可法》第四十二条）；起算日（第0日）：2026-09-30（星期三）")
    assert "按工作日计 20 日" in text
    assert "跳过：2026-10-01至2026-10-07 国庆节休假" in text
    assert "2026-10-10（星期六）为调休上班日，计入" in text
    assert "截止：2026-11-03（星期二）24:00前" in text
    assert text.endswith("日历版本：chinese-calendar-1.11.0")


def test_spring_festival_2026_skips_nine_days_and_counts_both_make_up_saturdays() -> None:
    due = compute_due(ClockState(days(10), at(2026, 2, 13)), CALENDAR)
    # 02-14 (Sat, make-up), 02-24..27, 02-28 (Sat, make-up), 03-02..05.
    assert due.due_at == end_of(2026, 3, 5)
    assert "2026-02-15至2026-02-23 春节休假" in due.explanation_zh
    assert "2026-02-14（星期六）为调休上班日，计入" in due.explanation_zh
    assert "2026-02-28（星期六）为调休上班日，计入" in due.explanation_zh


def test_day_zero_is_not_counted_even_on_a_working_day() -> None:
    assert compute_due(ClockState(days(1), at(2026, 3, 2, 8, 0)), CALENDAR).due_at == end_of(2026, 3, 3)


def test_a_rest_day_start_keeps_that_day_as_day_zero() -> None:
    # Sunday 2026-10-04 inside the National Day break: 10-08, 10-09, 10-10 are days 1..3.
    due = compute_due(ClockState(days(3), at(2026, 10, 4)), CALENDAR)
    assert due.due_at == end_of(2026, 10, 10)
    assert "起算日（第0日）：2026-10-04（星期日），当日不计入" in due.explanation_zh
    # Saturday and Friday starts reach the same Monday for a one-day limit.
    saturday = compute_due(ClockState(days(1), at(2026, 3, 7)), CALENDAR)
    friday = compute_due(ClockState(days(1), at(2026, 3, 6)), CALENDAR)
    assert saturday.due_at == friday.due_at == end_of(2026, 3, 9)


def test_day_zero_is_the_china_date_of_a_utc_start() -> None:
    started = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 2026-03-02 01:00 in Beijing
    assert compute_due(ClockState(days(1), started), CALENDAR).due_at == end_of(2026, 3, 3)


def test_plain_weekends_are_summarised_not_listed() -> None:
    due = compute_due(ClockState(days(10), at(2026, 3, 2)), CALENDAR)
    assert due.due_at == end_of(2026, 3, 16)
    assert "跳过：周末 4 天" in due.explanation_zh


# --- working hours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (at(2026, 3, 2, 11, 0), 2, at(2026, 3, 2, 15, 0)),  # over the lunch break
        (at(2026, 3, 2, 11, 0), 1, at(2026, 3, 2, 12, 0)),  # ends exactly at a period end
        (at(2026, 3, 2, 17, 0), 2, at(2026, 3, 3, 10, 0)),  # overnight
        (at(2026, 3, 6, 17, 0), 1, at(2026, 3, 9, 9, 0)),  # over a weekend
        (at(2026, 3, 2, 7, 0), 1, at(2026, 3, 2, 9, 30)),  # before office hours
        (at(2026, 3, 2, 12, 30), 1, at(2026, 3, 2, 15, 0)),  # during the lunch break
        (at(2026, 9, 30, 17, 0), 1, at(2026, 10, 8, 9, 0)),  # over National Day
        (at(2026, 10, 9, 16, 0), 5, at(2026, 10, 10, 12, 0)),  # into a make-up Saturday
    ],
)
def test_working_hours_count_office_time_on_working_days(start: datetime, n: int, due: datetime) -> None:
    assert compute_due(ClockState(hours(n), start), CALENDAR).due_at == due


def test_working_hours_explain_a_start_outside_office_hours() -> None:
    due = compute_due(ClockState(hours(1), at(2026, 3, 2, 7, 0)), CALENDAR)
    assert "起算时间：2026-03-02 07:00；非办公时间，自 2026-03-02 08:30 起计" in due.explanation_zh
    assert "按工作时计 1 小时（办公时间 08:30–12:00、14:00–17:30）" in due.explanation_zh
    assert "截止：2026-03-02（星期一）09:30" in due.explanation_zh


def test_working_hours_pause_suspends_exactly_the_office_time_between() -> None:
    state = ClockState(hours(4), at(2026, 3, 2, 9, 0)).pause(at(2026, 3, 2, 10, 0), "等待现场核查")
    state = state.resume(at(2026, 3, 2, 14, 30))
    due = compute_due(state, CALENDAR)
    assert due.due_at == at(2026, 3, 2, 17, 30)
    assert "其间办公时间 2 小时 30 分不计入" in due.explanation_zh


# --- calendar days --------------------------------------------------------------------------


def test_calendar_days_count_holidays_too() -> None:
    spec = ClockSpec("t", ClockUnit.CALENDAR_DAY, 15, "测试时限")
    due = compute_due(ClockState(spec, at(2026, 9, 30)), CALENDAR)
    assert due.due_at == end_of(2026, 10, 15)
    assert "按自然日计 15 日（节假日照常计算）" in due.explanation_zh
    assert "跳过" not in due.explanation_zh


# --- pauses, extensions, resets -------------------------------------------------------------


def test_pause_suspends_the_days_after_the_pause_day_through_the_resume_day() -> None:
    base = ClockState(DECISION, at(2026, 3, 2))
    assert compute_due(base, CALENDAR).due_at == end_of(2026, 3, 30)
    paused = base.pause(at(2026, 3, 4), "专家评审").resume(at(2026, 3, 6, 15, 0))
    due = compute_due(paused, CALENDAR)
    assert due.due_at == end_of(2026, 4, 1)  # 03-05 and 03-06 not counted
    assert (
        "暂停：2026-03-04 10:00至2026-03-06 15:00（专家评审），2026-03-05至2026-03-06 不计入（2 个工作日）"
        in (due.explanation_zh)
    )


def test_pause_and_resume_on_the_same_day_change_nothing() -> None:
    state = ClockState(DECISION, at(2026, 3, 2)).pause(at(2026, 3, 4, 9), "核实").resume(at(2026, 3, 4, 16))
    due = compute_due(state, CALENDAR)
    assert due.due_at == end_of(2026, 3, 30)
    assert "当日恢复，不影响计算" in due.explanation_zh


def test_open_pause_leaves_the_due_time_unknown() -> None:
    state = ClockState(DECISION, at(2026, 3, 2)).pause(at(2026, 3, 4), "听证")
    due = compute_due(state, CALENDAR)
    assert due.due_at is None
    assert "截止：计时暂停中，恢复计时后确定" in due.explanation_zh
    status = clock_status(state, due, at(2026, 3, 20))
    assert (status.state, status.remaining_seconds, status.overdue) == ("paused", None, False)


def test_pause_begun_after_the_count_completed_does_not_hide_the_deadline() -> None:
    state = ClockState(days(2), at(2026, 3, 2)).pause(at(2026, 3, 4, 16), "听证")  # 03-04 is day 2
    due = compute_due(state, CALENDAR)
    assert due.due_at == end_of(2026, 3, 4)
    assert "暂停前时限已计满，不影响截止时间" in due.explanation_zh
    assert clock_status(state, due, at(2026, 3, 5)).state == "breached"


def test_extension_adds_working_days_and_is_explained() -> None:
    state = ClockState(DECISION, at(2026, 9, 30)).extend(10, "情况复杂，经负责人批准", at(2026, 10, 20))
    due = compute_due(state, CALENDAR)
    assert due.due_at == end_of(2026, 11, 17)
    assert (
        "延长 10 个工作日（情况复杂，经负责人批准，2026-10-20 10:00 决定）；合计 30 个工作日"
        in due.explanation_zh
    )


def test_reset_starts_a_fresh_clock_from_the_reset_time() -> None:
    state = ClockState(DECISION, at(2026, 3, 2)).extend(5, "延期", at(2026, 3, 3)).stop(at(2026, 3, 4))
    fresh = reset(state, at(2026, 3, 10))
    assert fresh == ClockState(DECISION, at(2026, 3, 10))
    with pytest.raises(ValueError):
        reset(state, at(2026, 3, 1))


# --- provisional years and district overrides -----------------------------------------------


def test_deadline_running_into_2027_is_provisional_and_says_so() -> None:
    due = compute_due(ClockState(DECISION, at(2026, 12, 15)), CALENDAR)
    # 12 working days in December; 2027-01-01 (Friday, 元旦) rests by 《全国年节及纪念日放假办法》 even
    # before the 2027 notice; then 01-04..08 and 01-11..13.
    assert due.due_at == end_of(2027, 1, 13)
    assert due.provisional
    assert due.explanation_zh == (
        "许可决定（《行政许可法》第四十二条）；起算日（第0日）：2026-12-15（星期二），当日不计入；按工作日计 20 日；"
        "跳过：2027-01-01（星期五） 元旦休假、周末 8 天；2027 年节假日安排尚未发布，暂按周末及固定日期法定节假日"
        "（元旦1月1日，劳动节5月1日至2日，国庆节10月1日至3日）计算，其中 2027-01-04至2027-01-08、2027-01-11至"
        "2027-01-13 暂按工作日计入，发布后自动重算；截止：2027-01-13（星期三）24:00前；日历版本：chinese-calendar-1.11.0"
    )


def test_publishing_2027_recomputes_without_the_provisional_mark() -> None:
    published = CALENDAR.with_entries(
        [CalendarEntry(date(2027, 1, 1), False, "statutory", "元旦")],
        version="440106-2027.1",
        complete_years=[2027],
    )
    due = compute_due(ClockState(DECISION, at(2026, 12, 15)), published)
    assert due.due_at == end_of(2027, 1, 13)
    assert not due.provisional
    # Only 01-01 is published as 元旦: the plain weekend after it is not labelled with the holiday's name.
    assert "跳过：2027-01-01（星期五） 元旦休假、周末 8 天" in due.explanation_zh
    assert due.calendar_version == "440106-2027.1"


@pytest.mark.parametrize("start", [at(2031, 7, 1), at(2001, 7, 2)])
def test_years_far_outside_the_package_never_raise(start: datetime) -> None:
    due = compute_due(ClockState(DECISION, start), CALENDAR)
    assert due.provisional and due.due_at is not None


def test_district_overrides_move_the_deadline_both_ways() -> None:
    holiday = CalendarEntry(date(2026, 3, 4), False, "other", "区级调整")
    make_up = CalendarEntry(date(2026, 3, 7), True, "makeup_work", "区级调休")
    state = ClockState(DECISION, at(2026, 3, 2))
    only_holiday = compute_due(state, CALENDAR.with_entries([holiday], version="v1"))
    assert only_holiday.due_at == end_of(2026, 3, 31)
    both = compute_due(state, CALENDAR.with_entries([holiday, make_up], version="v2"))
    assert both.due_at == end_of(2026, 3, 30)
    assert "2026-03-04（星期三） 区级调整休假" in both.explanation_zh
    assert "2026-03-07（星期六）为调休上班日，计入" in both.explanation_zh
    assert both.calendar_version == "v2"


# --- status and helpers ---------------------------------------------------------------------


def test_status_running_then_breached() -> None:
    state = ClockState(days(1), at(2026, 3, 2))
    due = compute_due(state, CALENDAR)
    running = clock_status(state, due, at(2026, 3, 3, 23, 59))
    assert (running.state, running.remaining_seconds, running.overdue) == ("running", 59, False)
    breached = clock_status(state, due, at(2026, 3, 4, 0, 0))
    assert (breached.state, breached.remaining_seconds, breached.overdue) == ("breached", -1, True)


def test_status_of_a_stopped_clock_records_whether_it_was_late() -> None:
    state = ClockState(days(1), at(2026, 3, 2))
    on_time = state.stop(at(2026, 3, 3, 17))
    late = state.stop(at(2026, 3, 4, 9))
    assert clock_status(on_time, compute_due(on_time, CALENDAR), at(2026, 3, 10)).overdue is False
    late_status = clock_status(late, compute_due(late, CALENDAR), at(2026, 3, 10))
    assert (late_status.state, late_status.overdue) == ("stopped", True)
    before_stop = clock_status(on_time, compute_due(on_time, CALENDAR), at(2026, 3, 3, 9))
    assert before_stop.state == "running"


def test_working_days_between_matches_deadline_counting() -> None:
    assert working_days_between(CALENDAR, date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert working_days_between(CALENDAR, date(2026, 10, 10), date(2026, 9, 30)) == -3
    assert working_days_between(CALENDAR, date(2026, 3, 2), date(2026, 3, 2)) == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: ClockState(DECISION, datetime(2026, 3, 2, 10)),
        lambda: ClockState(DECISION, at(2026, 3, 2), pauses=[Pause(at(2026, 3, 1), None, "早于起算")]),
        lambda: ClockState(
            DECISION,
            at(2026, 3, 2),
            pauses=[Pause(at(2026, 3, 3), None, "a"), Pause(at(2026, 3, 4), None, "b")],
        ),
        lambda: ClockState(
            DECISION,
            at(2026, 3, 2),
            pauses=[Pause(at(2026, 3, 3), at(2026, 3, 5), "a"), Pause(at(2026, 3, 4), at(2026, 3, 6), "b")],
        ),
        lambda: ClockState(DECISION, at(2026, 3, 2)).resume(at(2026, 3, 3)),
        lambda: ClockState(DECISION, at(2026, 3, 2)).extend(0, "无", at(2026, 3, 3)),
        lambda: ClockState(DECISION, at(2026, 3, 2)).stop(at(2026, 3, 1)),
        lambda: ClockSpec("t", ClockUnit.WORKING_DAY, 0, "零"),
    ],
    ids=[
        "naive",
        "pause-before-start",
        "two-open",
        "overlap",
        "resume-unpaused",
        "zero-ext",
        "stop-early",
        "zero",
    ],
)
def test_inconsistent_clock_histories_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


# --- properties -----------------------------------------------------------------------------

# No deadline: tests never assert timings. No example database: nothing written into the tree.
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)

units = st.sampled_from(list(ClockUnit))
durations = st.integers(min_value=1, max_value=40)
starts = st.datetimes(
    min_value=datetime(2025, 9, 1), max_value=datetime(2027, 3, 31), timezones=st.just(CHINA_TZ)
)


def _due(state: ClockState, calendar: WorkCalendar = CALENDAR) -> datetime:
    due_at = compute_due(state, calendar).due_at
    assert due_at is not None
    return due_at


@PROPERTY_SETTINGS
@given(unit=units, n=durations, start=starts, offset=st.integers(min_value=0, max_value=90))
def test_adding_a_holiday_never_moves_a_due_date_earlier(
    unit: ClockUnit, n: int, start: datetime, offset: int
) -> None:
    day = start.date() + timedelta(days=offset)
    assume(CALENDAR.is_workday(day))
    state = ClockState(ClockSpec("p", unit, n, "性质"), start)
    holiday = CALENDAR.with_entries([CalendarEntry(day, False, "other", "区级调整")], version="p1")
    assert _due(state, holiday) >= _due(state)


@PROPERTY_SETTINGS
@given(unit=units, n=durations, start=starts, extra=st.integers(min_value=1, max_value=20))
def test_an_extension_never_moves_a_due_date_earlier(
    unit: ClockUnit, n: int, start: datetime, extra: int
) -> None:
    state = ClockState(ClockSpec("p", unit, n, "性质"), start)
    assert _due(state.extend(extra, "延期", start)) > _due(state)


@PROPERTY_SETTINGS
@given(unit=units, n=durations, start=starts, extra=st.integers(min_value=0, max_value=20))
def test_a_longer_duration_never_gives_an_earlier_date(
    unit: ClockUnit, n: int, start: datetime, extra: int
) -> None:
    shorter = ClockState(ClockSpec("p", unit, n, "性质"), start)
    longer = ClockState(ClockSpec("p", unit, n + extra, "性质"), start)
    assert _due(longer) >= _due(shorter)


@PROPERTY_SETTINGS
@given(
    unit=units,
    n=durations,
    start=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(CHINA_TZ)
    ),
)
def test_due_is_after_the_start_in_any_year(unit: ClockUnit, n: int, start: datetime) -> None:
    due = compute_due(ClockState(ClockSpec("p", unit, n, "性质"), start), CALENDAR)
    assert due.due_at is not None and due.due_at > start
    if unit in (ClockUnit.CALENDAR_DAY, ClockUnit.CALENDAR_HOUR, ClockUnit.MONTH):
        assert not due.provisional, "calendar days and months do not depend on the holiday arrangement"
    elif start.year > 2026 or start.year < 2003:
        assert due.provisional


@PROPERTY_SETTINGS
@given(
    unit=units,
    n=durations,
    start=starts,
    delay=st.integers(min_value=0, max_value=60 * 24 * 40),
    length=st.integers(min_value=0, max_value=60 * 24 * 30),
)
def test_a_pause_never_moves_a_due_date_earlier(
    unit: ClockUnit, n: int, start: datetime, delay: int, length: int
) -> None:
    state = ClockState(ClockSpec("p", unit, n, "性质"), start)
    pause_from = start + timedelta(minutes=delay)
    paused = state.pause(pause_from, "暂停").resume(pause_from + timedelta(minutes=length))
    assert _due(paused) >= _due(state)


def test_calendar_hours_run_through_nights_and_holidays_and_skip_pauses() -> None:
    from server.domain.calendar import builtin_calendar as _cal
    from server.domain.clocks import ClockSpec as _Spec
    from server.domain.clocks import ClockState as _State
    from server.domain.clocks import ClockUnit as _Unit
    from server.domain.clocks import compute_due as _due
    from server.domain.ids import CHINA_TZ as _TZ

    start = datetime(2026, 10, 1, 22, 0, tzinfo=_TZ)  # National Day, at night
    state = _State(_Spec("emergency", _Unit.CALENDAR_HOUR, 2, "应急处置"), start)
    assert _due(state, _cal()).due_at == datetime(2026, 10, 2, 0, 0, tzinfo=_TZ)
    paused = state.pause(start + timedelta(hours=1), "等待燃气公司").resume(start + timedelta(hours=3))
    due = _due(paused, _cal())
    assert due.due_at == datetime(2026, 10, 2, 2, 0, tzinfo=_TZ)
    assert "自然小时" in due.explanation_zh and "不计入" in due.explanation_zh
    assert _due(state.pause(start + timedelta(minutes=30), "x"), _cal()).due_at is None
