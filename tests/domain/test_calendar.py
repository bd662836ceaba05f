"""WorkCalendar and OfficeHours: builtin notices, district overrides, provisional years."""

from __future__ import annotations

from datetime import date, time, timedelta

import chinese_calendar
import pytest

from server.domain.calendar import (
    BUILTIN_LAST_YEAR,
    CalendarEntry,
    OfficeHours,
    builtin_calendar,
    fixed_date_holidays,
    provisional_note_zh,
)


def test_builtin_calendar_is_versioned_by_the_installed_package() -> None:
    calendar = builtin_calendar()
    assert calendar.version == f"chinese-calendar-{chinese_calendar.__version__}"
    assert calendar.last_known_year == BUILTIN_LAST_YEAR == 2026


def test_builtin_calendar_agrees_with_chinese_calendar_for_every_day_of_2026() -> None:
    calendar = builtin_calendar()
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_spring_festival_2026_rest_days_and_make_up_saturdays() -> None:
    calendar = builtin_calendar()
    # From chinese_calendar 1.11: rest 2026-02-15..23, make-up work on Saturdays 02-14 and 02-28.
    saturday_before = calendar.day_info(date(2026, 2, 14))
    assert (saturday_before.work, saturday_before.reason, saturday_before.name) == (
        True,
        "makeup_work",
        "春节",
    )
    assert calendar.day_info(date(2026, 2, 28)).reason == "makeup_work"
    rest = [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]
    assert not any(calendar.is_workday(d) for d in rest)
    assert {calendar.day_info(d).name for d in rest} == {"春节"}
    assert calendar.day_info(date(2026, 2, 17)).reason == "statutory"
    assert calendar.day_info(date(2026, 2, 20)).reason == "makeup_rest"  # a Friday given in lieu
    assert calendar.day_info(date(2026, 2, 21)).reason == "weekend"
    assert calendar.day_info(date(2026, 2, 24)).work


def test_national_day_2026_and_its_make_up_days() -> None:
    calendar = builtin_calendar()
    assert all(not calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert calendar.day_info(date(2026, 10, 1)).name == "国庆节"
    assert calendar.day_info(date(2026, 10, 10)).reason == "makeup_work"
    assert calendar.day_info(date(2026, 9, 20)).reason == "makeup_work"  # a Sunday
    assert calendar.is_workday(date(2026, 10, 8))


def test_ordinary_days_are_known_workdays_and_weekends() -> None:
    calendar = builtin_calendar()
    monday = calendar.day_info(date(2026, 3, 2))
    sunday = calendar.day_info(date(2026, 3, 1))
    assert (monday.work, monday.reason, monday.known) == (True, "workday", True)
    assert (sunday.work, sunday.reason, sunday.known) == (False, "weekend", True)


@pytest.mark.parametrize("day", [date(2027, 1, 4), date(2030, 6, 3), date(2003, 5, 6), date(2027, 2, 6)])
def test_years_the_package_does_not_know_follow_weekends_and_are_provisional(day: date) -> None:
    info = builtin_calendar().day_info(day)
    assert info.known is False
    assert info.work == (day.weekday() < 5)
    assert info.name == ""


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2027, 1, 1), "元旦"),  # a Friday
        (date(2027, 5, 1), "劳动节"),  # a Saturday: a rest day either way, and named
        (date(2027, 5, 2), "劳动节"),
        (date(2028, 10, 2), "国庆节"),  # a Monday
        (date(2028, 10, 3), "国庆节"),
        (date(2003, 10, 1), "国庆节"),  # before the package's first year, too
    ],
)
def test_provisional_years_rest_on_the_fixed_date_statutory_holidays(day: date, name: str) -> None:
    """《全国年节及纪念日放假办法》 art. 2: 元旦, 劳动节 and 国庆节 fall on fixed solar dates every year."""
    info = builtin_calendar().day_info(day)
    assert (info.work, info.reason, info.name, info.known) == (False, "statutory", name, False)


def test_lunar_holidays_of_a_provisional_year_are_assumed_working() -> None:
    # 2027-02-08 (Monday) is 正月初三 but the notice that makes it a holiday is not published.
    info = builtin_calendar().day_info(date(2027, 2, 8))
    assert (info.work, info.reason, info.known) == (True, "workday", False)
    assert fixed_date_holidays(2027) == {
        date(2027, 1, 1): "元旦", date(2027, 5, 1): "劳动节", date(2027, 5, 2): "劳动节",
        date(2027, 10, 1): "国庆节", date(2027, 10, 2): "国庆节", date(2027, 10, 3): "国庆节",
    }


def test_provisional_note_names_the_years_and_the_days_assumed_working() -> None:
    days = [date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 6), date(2027, 1, 11), date(2028, 3, 1)]
    assert provisional_note_zh([2028, 2027], days) == (
        "2027、2028 年节假日安排尚未发布，暂按周末及固定日期法定节假日（元旦1月1日，劳动节5月1日至2日，"
        "国庆节10月1日至3日）计算，其中 2027-01-04至2027-01-06、2027-01-11（星期一）、2028-03-01（星期三）"
        " 暂按工作日计入，发布后自动重算"
    )
    assert provisional_note_zh([2027], []) == (
        "2027 年节假日安排尚未发布，暂按周末及固定日期法定节假日（元旦1月1日，劳动节5月1日至2日，"
        "国庆节10月1日至3日）计算，发布后自动重算"
    )


def test_override_turns_a_weekday_into_a_holiday_and_a_saturday_into_a_work_day() -> None:
    base = builtin_calendar()
    district = base.with_entries(
        [
            CalendarEntry(date(2026, 3, 4), False, "other", "区级调整"),
            CalendarEntry(date(2026, 3, 7), True, "makeup_work", "区级调休"),
        ],
        version="440106-2026.1",
    )
    assert district.version == "440106-2026.1"
    assert not district.is_workday(date(2026, 3, 4))
    assert district.day_info(date(2026, 3, 7)).reason == "makeup_work"
    assert base.is_workday(date(2026, 3, 4)), "the earlier version is unchanged"
    assert base.overrides == {}


def test_later_version_replaces_an_earlier_override_for_the_same_day() -> None:
    first = builtin_calendar().with_entries([CalendarEntry(date(2026, 3, 4), False, "other")], version="v1")
    second = first.with_entries([CalendarEntry(date(2026, 3, 4), True, "workday")], version="v2")
    assert second.is_workday(date(2026, 3, 4))


def test_an_override_in_an_unpublished_year_is_known_but_other_days_stay_provisional() -> None:
    calendar = builtin_calendar().with_entries(
        [CalendarEntry(date(2027, 2, 8), False, "statutory", "春节")], version="v1"
    )
    assert calendar.day_info(date(2027, 2, 8)).known
    assert not calendar.day_info(date(2027, 2, 9)).known
    assert calendar.last_known_year == 2026


def test_publishing_a_whole_year_makes_its_unlisted_days_known() -> None:
    calendar = builtin_calendar().with_entries(
        [CalendarEntry(date(2027, 1, 1), False, "statutory", "元旦")], version="v1", complete_years=[2027]
    )
    assert calendar.last_known_year == 2027
    assert calendar.day_info(date(2027, 3, 3)).known
    assert not calendar.is_workday(date(2027, 1, 1))
    gap = builtin_calendar().with_entries([], version="v2", complete_years=[2028])
    assert gap.last_known_year == 2026, "2027 is still missing"
    assert gap.day_info(date(2028, 3, 3)).known
    new_year = gap.day_info(date(2028, 10, 2))
    assert (new_year.work, new_year.name, new_year.known) == (False, "国庆节", True)


def test_conflicting_entries_in_one_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="conflicting"):
        builtin_calendar().with_entries(
            [CalendarEntry(date(2026, 3, 4), False, "other"), CalendarEntry(date(2026, 3, 4), True, "other")],
            version="v1",
        )


def test_a_new_version_needs_a_new_label() -> None:
    calendar = builtin_calendar()
    with pytest.raises(ValueError, match="version"):
        calendar.with_entries([], version=calendar.version)


@pytest.mark.parametrize(("work", "reason"), [(True, "statutory"), (False, "makeup_work"), (True, "weekend")])
def test_entry_whose_reason_contradicts_its_answer_is_refused(work: bool, reason: str) -> None:
    with pytest.raises(ValueError, match="contradicts"):
        CalendarEntry(date(2026, 3, 4), work, reason)  # type: ignore[arg-type]


def test_entry_with_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calendar reason"):
        CalendarEntry(date(2026, 3, 4), False, "typhoon")  # type: ignore[arg-type]


def test_default_office_hours_have_a_lunch_break() -> None:
    assert OfficeHours().periods == ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))
    assert OfficeHours().describe_zh() == "08:30–12:00、14:00–17:30"


@pytest.mark.parametrize(
    "periods",
    [
        (),
        ((time(12, 0), time(8, 30)),),
        ((time(8, 30), time(12, 0)), (time(11, 0), time(17, 30))),
        ((time(14, 0), time(17, 30)), (time(8, 30), time(12, 0))),
    ],
    ids=["empty", "reversed", "overlapping", "out-of-order"],
)
def test_invalid_office_hours_are_refused(periods: tuple[tuple[time, time], ...]) -> None:
    with pytest.raises(ValueError):
        OfficeHours(periods)
