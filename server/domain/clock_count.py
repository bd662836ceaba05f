"""Counting a clock's units (domain.md §1.2; rules stated in clocks.py), recording what the count saw.

Pauses are merged before counting: overlapping reasons (e.g. a third party and a co-producer
consulted at once, OGI2019 art. 32 and 34) suspend the clock from the first pause to the last
resume, so it runs again only when every open reason is closed.
"""

from __future__ import annotations

import calendar as month_calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from server.domain.calendar import DayInfo, OfficeHours, WorkCalendar
from server.domain.clock_model import ClockState, ClockUnit, Pause
from server.domain.ids import CHINA_TZ

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """A stretch during which at least one pause is open; ``members`` index ``state.pauses``."""

    from_at: datetime
    to_at: datetime | None
    members: tuple[int, ...]


def merged_windows(pauses: Sequence[Pause]) -> list[Window]:
    order = sorted(range(len(pauses)), key=lambda i: pauses[i].from_at)
    out: list[Window] = []
    for i in order:
        p = pauses[i]
        last = out[-1] if out else None
        if last is not None and (last.to_at is None or p.from_at <= last.to_at):
            end = None if last.to_at is None or p.to_at is None else max(last.to_at, p.to_at)
            out[-1] = Window(last.from_at, end, (*last.members, i))
        else:
            out.append(Window(p.from_at, p.to_at, (i,)))
    return out


@dataclass
class Trace:
    """What the count saw, for the explanation."""

    rest_days: dict[date, DayInfo] = field(default_factory=dict)
    weekend_work_days: dict[date, DayInfo] = field(default_factory=dict)
    unknown_years: set[int] = field(default_factory=set)
    assumed_working: set[date] = field(default_factory=set)  # unpublished-year days taken as working days
    suspended: dict[int, int] = field(default_factory=dict)  # window index -> units not counted
    first_office_instant: datetime | None = None
    used: float | None = None  # units counted before an open pause (hours for hour units)
    owed: float | None = None  # units still owed then
    month_target: tuple[date, date] | None = None  # (wanted corresponding day, the day used)
    rolled: tuple[DayInfo, date] | None = None  # (the rest day the period ended on, the working day after)

    def saw(self, info: DayInfo) -> None:
        self.saw_year(info)
        if not info.work:
            self.rest_days[info.day] = info
        elif info.day.weekday() >= 5:
            self.weekend_work_days[info.day] = info

    def saw_year(self, info: DayInfo) -> None:
        if not info.known:
            self.unknown_years.add(info.day.year)
            if info.work:
                self.assumed_working.add(info.day)


def local(value: datetime) -> datetime:
    return value.astimezone(CHINA_TZ)


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA_TZ)


def add_months(day: date, months: int) -> date:
    """民法典 art. 202: the corresponding day of the last month, or that month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, month_calendar.monthrange(year, month)[1]))


def count_days(state: ClockState, calendar: WorkCalendar, trace: Trace) -> datetime | None:
    """Working days, calendar days and months (a month period is counted as the calendar days to the
    corresponding day, so a pause extends it day for day, as it does a calendar-day period)."""
    if state.fixed is not None:
        return end_of_day(state.fixed.day)
    unit = state.spec.unit
    working = unit is ClockUnit.WORKING_DAY
    day = local(state.started_at).date()
    target = state.total_units
    if unit is ClockUnit.MONTH:
        corresponding = add_months(day, target)
        wanted_year = day.year + (day.month - 1 + target) // 12
        wanted_month = (day.month - 1 + target) % 12 + 1
        trace.month_target = (date(wanted_year, wanted_month, 1), corresponding) if corresponding.day != day.day \
            else None
        target = (corresponding - day).days
    windows = [
        (local(w.from_at).date(), None if w.to_at is None else local(w.to_at).date())
        for w in merged_windows(state.pauses)
    ]
    counted = 0
    while counted < target:
        day += ONE_DAY
        suspending = next((i for i, (a, b) in enumerate(windows) if day > a and (b is None or day <= b)), None)
        if suspending is not None:
            if windows[suspending][1] is None:
                trace.used, trace.owed = counted, target - counted
                return None  # open pause: the count resumes only when the clock does
            if not working or calendar.is_workday(day):
                trace.suspended[suspending] = trace.suspended.get(suspending, 0) + 1
            continue
        if working:
            info = calendar.day_info(day)
            trace.saw(info)
            if not info.work:
                continue
        counted += 1
    if state.spec.roll_to_workday:
        day = _roll(day, calendar, trace)
    return end_of_day(day)


def _roll(day: date, calendar: WorkCalendar, trace: Trace) -> date:
    """民法典 art. 203: a period whose last day is a rest day ends at the end of the next working day."""
    first = calendar.day_info(day)
    trace.saw_year(first)
    info = first
    while not info.work:
        day += ONE_DAY
        info = calendar.day_info(day)
        trace.saw_year(info)
    if day != first.day:
        trace.rolled = (first, day)
    return day


def office_intervals(
    calendar: WorkCalendar, hours: OfficeHours, start: datetime, end: datetime | None, trace: Trace
) -> Iterator[tuple[datetime, datetime]]:
    """Office-time intervals on working days within [start, end), in order."""
    start = local(start)
    day = start.date()
    while end is None or day <= local(end).date():
        info = calendar.day_info(day)
        trace.saw(info)
        if info.work:
            for period_start, period_end in hours.periods:
                a = max(datetime.combine(day, period_start, tzinfo=CHINA_TZ), start)
                b = datetime.combine(day, period_end, tzinfo=CHINA_TZ)
                if end is not None:
                    b = min(b, local(end))
                if a < b:
                    yield a, b
        day += ONE_DAY


def _running_segments(state: ClockState) -> list[tuple[datetime, datetime | None]]:
    """The stretches the clock runs: from the start to the first pause, between merged pauses, after."""
    segments: list[tuple[datetime, datetime | None]] = []
    cursor: datetime | None = state.started_at
    for window in merged_windows(state.pauses):
        assert cursor is not None  # an open window is always the last one
        segments.append((cursor, window.from_at))
        cursor = window.to_at
    if cursor is not None:
        segments.append((cursor, None))
    return segments


def count_hours(state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: Trace) -> datetime | None:
    if state.fixed is not None:
        return end_of_day(state.fixed.day)
    total = timedelta(hours=state.total_units)
    remaining = total
    for segment_start, segment_end in _running_segments(state):
        for a, b in office_intervals(calendar, hours, segment_start, segment_end, trace):
            if trace.first_office_instant is None:
                trace.first_office_instant = a
            if b - a >= remaining:
                return a + remaining
            remaining -= b - a
    trace.used, trace.owed = (total - remaining) / timedelta(hours=1), remaining / timedelta(hours=1)
    return None  # the last pause is open and office time is still owed


def count_calendar_hours(state: ClockState, trace: Trace) -> datetime | None:
    """Round-the-clock hours; time inside pauses is not counted."""
    if state.fixed is not None:
        return end_of_day(state.fixed.day)
    total = timedelta(hours=state.total_units)
    remaining = total
    for segment_start, segment_end in _running_segments(state):
        if segment_end is None or segment_end - segment_start >= remaining:
            return local(segment_start + remaining)
        remaining -= segment_end - segment_start
    trace.used, trace.owed = (total - remaining) / timedelta(hours=1), remaining / timedelta(hours=1)
    return None


def office_time_between(calendar: WorkCalendar, hours: OfficeHours, a: datetime, b: datetime) -> timedelta:
    spans = office_intervals(calendar, hours, a, b, Trace())
    return sum((end - start for start, end in spans), timedelta())
