"""China's working calendar and office hours (DESIGN.md §2 "Clocks", domain.md §1.2).

Three sources answer "is this a working day?", in order:

1. district-published overrides (a versioned ``WorkCalendar``), which always win;
2. the ``chinese_calendar`` package, which knows the State Council holiday notices for
   2004 to its last year (2026 in 1.11) and raises ``NotImplementedError`` outside them;
3. where 1 and 2 are silent: the weekend rule (Monday–Friday work, Saturday–Sunday rest)
   plus the fixed-date statutory holidays of 《全国年节及纪念日放假办法》 (元旦 01-01,
   劳动节 05-01–02, 国庆节 10-01–03), which fall on the same solar dates every year whatever
   the notice says. Such an answer is *provisional* (``known=False``) so that a deadline built
   on it says so and is recomputed once the year's notice is published — never an
   exception, never a silent guess. Lunar holidays (春节, 端午, 中秋) and 清明 move, so a
   provisional year counts them as working days, and the explanation names those days.

Weekends are rest days unless declared make-up working days (调休上班); that is why a plain
"weekday or not" test (Alaveteli's ``Holiday.weekend_or_holiday?``) is wrong for China.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from functools import cache
from types import MappingProxyType
from typing import Any, Literal, get_args

import chinese_calendar

DayReason = Literal["statutory", "makeup_work", "makeup_rest", "weekend", "workday", "other"]
DAY_REASONS: frozenset[str] = frozenset(get_args(DayReason))

REASON_LABEL_ZH: Mapping[str, str] = MappingProxyType(
    {
        "statutory": "法定节假日",
        "makeup_work": "调休上班",
        "makeup_rest": "调休休息",
        "weekend": "周末",
        "workday": "工作日",
        "other": "其他",
    }
)

# chinese_calendar names holidays in English; notices and explanations use the Chinese names.
HOLIDAY_NAME_ZH: Mapping[str, str] = MappingProxyType(
    {
        "New Year's Day": "元旦",
        "Spring Festival": "春节",
        "Tomb-sweeping Day": "清明节",
        "Labour Day": "劳动节",
        "Dragon Boat Festival": "端午节",
        "National Day": "国庆节",
        "Mid-autumn Festival": "中秋节",
        "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
    }
)

# Which reasons are compatible with which answer; "other" may go either way.
_WORK_BY_REASON: Mapping[str, bool | None] = MappingProxyType(
    {
        "statutory": False,
        "makeup_work": True,
        "makeup_rest": False,
        "weekend": False,
        "workday": True,
        "other": None,
    }
)

_BUILTIN_HOLIDAYS: Mapping[date, str] = chinese_calendar.holidays
_BUILTIN_WORKDAYS: Mapping[date, str] = chinese_calendar.workdays
_BUILTIN_IN_LIEU: Mapping[date, str] = chinese_calendar.in_lieu_days
BUILTIN_FIRST_YEAR: int = min(_BUILTIN_HOLIDAYS).year
BUILTIN_LAST_YEAR: int = max(_BUILTIN_HOLIDAYS).year
BUILTIN_VERSION: str = f"chinese-calendar-{chinese_calendar.__version__}"


@dataclass(frozen=True)
class CalendarEntry:
    """One district-published day, e.g. ``CalendarEntry(date(2027, 2, 6), True, "makeup_work", "春节")``."""

    day: date
    work: bool
    reason: DayReason
    name: str = ""

    def __post_init__(self) -> None:
        if self.reason not in DAY_REASONS:
            raise ValueError(
                f"unknown calendar reason {self.reason!r}; expected one of {sorted(DAY_REASONS)}"
            )
        expected = _WORK_BY_REASON[self.reason]
        if expected is not None and expected != self.work:
            raise ValueError(f"{self.day}: reason {self.reason!r} contradicts work={self.work}")


@dataclass(frozen=True)
class DayInfo:
    """The calendar's answer for one day; ``known=False`` means it was assumed (weekends and
    fixed-date statutory holidays only), pending the year's published arrangement."""

    day: date
    work: bool
    reason: DayReason
    name: str
    known: bool


# 《全国年节及纪念日放假办法》 (2024 年修订) art. 2: the holidays of all citizens on fixed solar dates.
# 春节, 清明, 端午 and 中秋 follow the lunar calendar or a solar term, and 调休 needs the yearly notice,
# so only these are certain before the State Council publishes a year's arrangement.
FIXED_DATE_HOLIDAYS: Mapping[tuple[int, int], str] = MappingProxyType(
    {(1, 1): "元旦", (5, 1): "劳动节", (5, 2): "劳动节", (10, 1): "国庆节", (10, 2): "国庆节", (10, 3): "国庆节"}
)
FIXED_DATE_HOLIDAYS_ZH = "元旦1月1日，劳动节5月1日至2日，国庆节10月1日至3日"


def fixed_date_holidays(year: int) -> dict[date, str]:
    """The fixed-date statutory holidays of ``year``, e.g. 2027-10-01 -> "国庆节"."""
    return {date(year, m, d): name for (m, d), name in FIXED_DATE_HOLIDAYS.items()}


def _weekend_rule(day: date, *, known: bool = False) -> DayInfo:
    """Weekends rest and, by law, so do the fixed-date statutory holidays."""
    name = FIXED_DATE_HOLIDAYS.get((day.month, day.day))
    if name is not None:
        return DayInfo(day, False, "statutory", name, known=known)
    weekend = day.weekday() >= 5
    return DayInfo(day, not weekend, "weekend" if weekend else "workday", "", known=known)


def _builtin_day(day: date) -> DayInfo:
    weekend = day.weekday() >= 5
    if day in _BUILTIN_WORKDAYS:
        return DayInfo(day, True, "makeup_work", _zh(_BUILTIN_WORKDAYS[day]), known=True)
    if day in _BUILTIN_HOLIDAYS:
        name = _zh(_BUILTIN_HOLIDAYS[day])
        if day in _BUILTIN_IN_LIEU:
            return DayInfo(day, False, "makeup_rest", name, known=True)
        # chinese_calendar does not say which weekend days of a holiday block are statutory
        # (e.g. 2026-10-03 is, 2026-02-15 is not); both are rest days, so "weekend" is safe.
        return DayInfo(day, False, "weekend" if weekend else "statutory", name, known=True)
    return DayInfo(day, not weekend, "weekend" if weekend else "workday", "", known=True)


def _zh(name: str | None) -> str:
    if not name:
        return ""
    return HOLIDAY_NAME_ZH.get(name, name)


@dataclass(frozen=True)
class WorkCalendar:
    """A versioned working calendar: builtin notices plus district overrides.

    ``complete_years`` are years whose whole arrangement a district version published: days
    of those years without an override follow the weekend rule (and the fixed-date statutory
    holidays) and are *known*, not provisional.
    """

    version: str
    overrides: Mapping[date, CalendarEntry] = field(default_factory=dict)
    complete_years: frozenset[int] = frozenset()
    # Results of pure computations over this (immutable) calendar, e.g. day-unit due dates keyed by
    # their inputs (clocks.compute_due). Lives and dies with the calendar object, so a newly published
    # version never sees an old version's answers.
    memo: dict[Any, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for day, entry in self.overrides.items():
            if entry.day != day:
                raise ValueError(f"override keyed {day} holds an entry for {entry.day}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))

    def with_entries(
        self, entries: Iterable[CalendarEntry], version: str, *, complete_years: Iterable[int] = ()
    ) -> WorkCalendar:
        """A new version: ``entries`` replace earlier overrides for the same days.

        Two different entries for one day in one batch are refused rather than one picked.
        """
        batch: dict[date, CalendarEntry] = {}
        for entry in entries:
            if entry.day in batch and batch[entry.day] != entry:
                raise ValueError(f"conflicting calendar entries for {entry.day}")
            batch[entry.day] = entry
        if not version or version == self.version:
            raise ValueError("a changed calendar needs a new version label")
        return WorkCalendar(
            version=version,
            overrides={**self.overrides, **batch},
            complete_years=self.complete_years | frozenset(complete_years),
        )

    @property
    def last_known_year(self) -> int:
        """The last year up to which every day is known (builtin years, then contiguous published ones)."""
        year = BUILTIN_LAST_YEAR
        while year + 1 in self.complete_years:
            year += 1
        return year

    def day_info(self, day: date) -> DayInfo:
        entry = self.overrides.get(day)
        if entry is not None:
            return DayInfo(day, entry.work, entry.reason, entry.name, known=True)
        if BUILTIN_FIRST_YEAR <= day.year <= BUILTIN_LAST_YEAR:
            return _builtin_day(day)
        return _weekend_rule(day, known=day.year in self.complete_years)

    def is_workday(self, day: date) -> bool:
        return self.day_info(day).work


@cache
def builtin_calendar() -> WorkCalendar:
    """The calendar of the installed ``chinese_calendar`` package, without district overrides.

    One shared object: it is immutable, and sharing keeps its ``memo`` warm across requests.
    """
    return WorkCalendar(version=BUILTIN_VERSION)


_WEEKDAY_ZH = ("一", "二", "三", "四", "五", "六", "日")


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive runs of ``days``, in order: [(first, last), ...]."""
    runs: list[list[date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def _fmt_run(first: date, last: date) -> str:
    if first == last:
        return f"{first.isoformat()}（星期{_WEEKDAY_ZH[first.weekday()]}）"
    return f"{first.isoformat()}至{last.isoformat()}"


def provisional_note_zh(years: Iterable[int], assumed_working: Iterable[date]) -> str:
    """Why a count is provisional, and which days it assumed to be working days.

    A clerk defending a date must be able to say what was assumed: e.g. "2027 年节假日安排尚未发布，
    暂按周末及固定日期法定节假日（…）计算，其中 2027-01-04至2027-01-05 暂按工作日计入，发布后自动重算".
    """
    ys = "、".join(str(y) for y in sorted(set(years)))
    text = f"{ys} 年节假日安排尚未发布，暂按周末及固定日期法定节假日（{FIXED_DATE_HOLIDAYS_ZH}）计算"
    runs = day_runs(assumed_working)
    if runs:
        text += f"，其中 {'、'.join(_fmt_run(a, b) for a, b in runs)} 暂按工作日计入"
    return text + "，发布后自动重算"


_DEFAULT_PERIODS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))


@dataclass(frozen=True)
class OfficeHours:
    """Office periods of a working day (domain.md §1.2 BusinessHours); per org unit later.

    Working-hour clocks (工作时, e.g. grid SLAs under the 济源 standard) consume only these periods.
    """

    periods: tuple[tuple[time, time], ...] = _DEFAULT_PERIODS

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("office hours need at least one period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("office hours are local wall-clock times; give naive times")
            if not start < end:
                raise ValueError(f"office period {start}–{end} must start before it ends")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"office period starting {start} overlaps or is out of order")
            previous_end = end

    def describe_zh(self) -> str:
        return "、".join(f"{s:%H:%M}–{e:%H:%M}" for s, e in self.periods)
