"""Deadline clocks: a clock's history as data, and its due time with an explanation (DESIGN.md §2).

Counting rules (domain.md §1.2, §1.7; 民法典 art. 201: "开始的当日不计入"):

- **Day 0** is the local (Asia/Shanghai) date the clock starts. It is never counted, also when
  it is a rest day; counting begins the next day. The start may be a date taken from the
  payload (e.g. OGI2019 art. 31: registered post starts on the day signed for), with the rule
  used kept in ``ClockState.start_rule`` and named in the explanation.
- **Working days** (行政许可法 art. 82: limits are working days excluding statutory holidays):
  the deadline is the end (23:59:59) of the n-th working day after day 0.
- **Calendar days**: the end of day 0 + n; with ``roll_to_workday`` a last day that is a rest day
  rolls to the next working day (民法典 art. 203).
- **Months** (民法典 art. 202): the corresponding day of the last month, or its last day when it
  has none (a period from 08-31 of 6 months ends 02-28); counted as the calendar days up to that
  day, so pauses extend it day for day. ``roll_to_workday`` applies as for calendar days.
- **Working hours** (工作时): n hours of office time on working days, from the start instant;
  a start outside office hours begins at the next office period.
- **Pauses** (行政许可法 art. 45: special procedures are not counted). For day units, a pause
  from day A to a resume on day B suspends days A+1..B. Why: each running stretch is treated
  like a clock of its own — its first day (day 0, or the resume day B) is not counted and its
  last day (A) is, so a pause and a resume on the same day change nothing. The consequence:
  a pause begun on the last counted day does not save that day. Working-hour clocks suspend
  exactly the office time between pause and resume. Pauses carry a reason key: overlapping
  reasons are merged, and the clock runs again only when all are closed. While paused, the due
  time is unknown (``None``) unless the count was already complete before the pause; the
  explanation then gives the units used and left.
- **Extensions** add units (行政许可法 art. 42: +10 days with the head's approval), recorded with
  approver, notice date and basis; caps per regime are ``EXTENSION_RULES``.
- **Resets** (e.g. after 补正) start a new count from the reset instant, keeping a record of when,
  why and on what basis: ``reset(state, at, reason, legal_basis)``.
- **Fixed deadlines** set by a decision (OGI2019 art. 35) replace the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from server.domain.calendar import OfficeHours, WorkCalendar
from server.domain.clock_count import ONE_DAY, Trace, count_calendar_hours, count_days, count_hours, local
from server.domain.clock_explain import explain
from server.domain.clock_model import (
    DAY_UNITS,
    EXTENSION_RULES,
    ROLL_BASIS,
    ClockSpec,
    ClockState,
    ClockUnit,
    Extension,
    ExtensionRule,
    FixedDeadline,
    Note,
    Pause,
    ResetRecord,
    require_aware,
    reset,
)

__all__ = [
    "DAY_UNITS", "EXTENSION_RULES", "ROLL_BASIS", "ClockSpec", "ClockState", "ClockStateName", "ClockStatus",
    "ClockUnit", "DueDate", "Extension", "ExtensionRule", "FixedDeadline", "Note", "Pause", "ResetRecord",
    "clock_status", "compute_due", "reset", "working_days_between",
]


@dataclass(frozen=True)
class DueDate:
    due_at: datetime | None
    provisional: bool
    explanation_zh: str
    calendar_version: str


_MEMO_LIMIT = 4096


def compute_due(state: ClockState, calendar: WorkCalendar, hours: OfficeHours | None = None) -> DueDate:
    """The due time of ``state`` under ``calendar``, with a Chinese explanation of the count.

    Never raises for years the calendar does not know: such days follow the weekend rule and
    the result is ``provisional``, to be recomputed when the district publishes the year.
    """
    if state.spec.unit in DAY_UNITS:
        # Day units depend on the start *date* only (the start instant is never read), not on office
        # hours: every case created on one day shares its answer, memoised on the immutable calendar.
        # ``memo_key`` holds every other field of the state, so no new input can be left out of it.
        key = ("due", *state.memo_key(local(state.started_at).date()))
        found = calendar.memo.get(key)
        if found is None:
            if len(calendar.memo) >= _MEMO_LIMIT:
                calendar.memo.clear()  # bounded: a long-running node must not grow it without end
            found = calendar.memo[key] = _compute_due(state, calendar, OfficeHours())
        return found  # type: ignore[no-any-return]
    return _compute_due(state, calendar, hours or OfficeHours())


def _compute_due(state: ClockState, calendar: WorkCalendar, hours: OfficeHours) -> DueDate:
    trace = Trace()
    if state.spec.unit is ClockUnit.WORKING_HOUR:
        due_at = count_hours(state, calendar, hours, trace)
    elif state.spec.unit is ClockUnit.CALENDAR_HOUR:
        due_at = count_calendar_hours(state, trace)
    else:
        due_at = count_days(state, calendar, trace)
    explanation = "；".join(explain(state, calendar, hours, trace, due_at))
    return DueDate(due_at, bool(trace.unknown_years), explanation, calendar.version)


ClockStateName = Literal["running", "paused", "stopped", "breached"]


@dataclass(frozen=True)
class ClockStatus:
    """``remaining_seconds`` is wall-clock time to the due time; negative once breached."""

    state: ClockStateName
    remaining_seconds: int | None
    overdue: bool


def clock_status(state: ClockState, due: DueDate, now: datetime) -> ClockStatus:
    require_aware(now, "now")
    due_at = due.due_at
    if state.stopped_at is not None and state.stopped_at <= now:
        return ClockStatus("stopped", None, due_at is not None and state.stopped_at > due_at)
    remaining = None if due_at is None else int((due_at - now).total_seconds())
    if remaining is not None and remaining < 0:
        return ClockStatus("breached", remaining, True)
    if state.open_pause(now) is not None:
        return ClockStatus("paused", remaining, False)
    return ClockStatus("running", remaining, False)


def working_days_between(calendar: WorkCalendar, a: date, b: date) -> int:
    """Working days d with a < d <= b (``a`` is day 0, as in a deadline); negative when b < a."""
    if b < a:
        return -working_days_between(calendar, b, a)
    count = 0
    day = a
    while day < b:
        day += ONE_DAY
        count += calendar.is_workday(day)
    return count
