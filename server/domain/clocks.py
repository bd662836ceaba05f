"""Deadline clocks: a clock's history as data, and its due time with an explanation (DESIGN.md §2).

Counting rules (domain.md §1.2, §1.7; 民法典 art. 201: "开始的当日不计入"):

- **Day 0** is the local (Asia/Shanghai) date the clock starts. It is never counted, also when
  it is a rest day; counting begins the next day.
- **Working days** (行政许可法 art. 82: limits are working days excluding statutory holidays):
  the deadline is the end (23:59:59) of the n-th working day after day 0.
- **Calendar days**: the end of day 0 + n.
- **Working hours** (工作时): n hours of office time on working days, from the start instant;
  a start outside office hours begins at the next office period.
- **Pauses** (行政许可法 art. 45: special procedures are not counted). For day units, a pause
  from day A to a resume on day B suspends days A+1..B. Why: each running stretch is treated
  like a clock of its own — its first day (day 0, or the resume day B) is not counted and its
  last day (A) is, so a pause and a resume on the same day change nothing. The consequence:
  a pause begun on the last counted day does not save that day. Working-hour clocks suspend
  exactly the office time between pause and resume. While paused, the due time is unknown
  (``None``) unless the count was already complete before the pause.
- **Extensions** add units (行政许可法 art. 42: +10 days with the head's approval).
- **Resets** (e.g. after 补正) start a new clock from the reset instant: ``reset(state, at)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from server.domain.calendar import REASON_LABEL_ZH, DayInfo, OfficeHours, WorkCalendar, provisional_note_zh
from server.domain.ids import CHINA_TZ

ONE_DAY = timedelta(days=1)
_WEEKDAY_ZH = ("一", "二", "三", "四", "五", "六", "日")


class ClockUnit(StrEnum):
    WORKING_DAY = "working_day"
    WORKING_HOUR = "working_hour"
    CALENDAR_DAY = "calendar_day"
    CALENDAR_HOUR = "calendar_hour"  # 自然小时: emergencies do not wait for office hours


_UNIT_BASIS_ZH = {
    ClockUnit.WORKING_DAY: "工作日",
    ClockUnit.WORKING_HOUR: "工作时",
    ClockUnit.CALENDAR_DAY: "自然日",
    ClockUnit.CALENDAR_HOUR: "自然小时",
}
_UNIT_COUNT_ZH = {
    ClockUnit.WORKING_DAY: "个工作日",
    ClockUnit.WORKING_HOUR: "个工作时",
    ClockUnit.CALENDAR_DAY: "日",
    ClockUnit.CALENDAR_HOUR: "小时",
}


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


@dataclass(frozen=True)
class ClockSpec:
    """What a clock measures, e.g. ``ClockSpec("license_decision", WORKING_DAY, 20, "许可决定", "行政许可法第四十二条")``."""

    name: str
    unit: ClockUnit
    duration: int
    label_zh: str
    legal_basis: str = ""

    def __post_init__(self) -> None:
        if self.duration < 1:
            raise ValueError("a clock's duration must be at least one unit")


@dataclass(frozen=True)
class Pause:
    from_at: datetime
    to_at: datetime | None
    reason: str

    def __post_init__(self) -> None:
        _require_aware(self.from_at, "pause start")
        if self.to_at is not None:
            _require_aware(self.to_at, "pause end")
            if self.to_at < self.from_at:
                raise ValueError("a pause cannot end before it starts")


@dataclass(frozen=True)
class Extension:
    amount: int
    reason: str
    at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.at, "extension time")
        if self.amount < 1:
            raise ValueError("an extension adds at least one unit")


@dataclass(frozen=True)
class ClockState:
    """A clock's history, folded from case events. Lists given are stored as tuples."""

    spec: ClockSpec
    started_at: datetime
    pauses: Sequence[Pause] = field(default_factory=tuple)
    extensions: Sequence[Extension] = field(default_factory=tuple)
    stopped_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(self.started_at, "clock start")
        object.__setattr__(self, "pauses", tuple(self.pauses))
        object.__setattr__(self, "extensions", tuple(self.extensions))
        previous_end = self.started_at
        for index, pause in enumerate(self.pauses):
            if pause.from_at < previous_end:
                raise ValueError("pauses must follow the start and each other without overlapping")
            if pause.to_at is None and index != len(self.pauses) - 1:
                raise ValueError("only the last pause may still be open")
            previous_end = pause.to_at or pause.from_at
        if any(ext.at < self.started_at for ext in self.extensions):
            raise ValueError("an extension cannot precede the clock's start")
        if self.stopped_at is not None:
            _require_aware(self.stopped_at, "clock stop")
            if self.stopped_at < previous_end:
                raise ValueError("a clock cannot stop before its start or last resume")

    @property
    def total_units(self) -> int:
        return self.spec.duration + sum(ext.amount for ext in self.extensions)

    def open_pause(self, now: datetime) -> Pause | None:
        """The pause in force at ``now``, if any."""
        for pause in self.pauses:
            if pause.from_at <= now and (pause.to_at is None or now < pause.to_at):
                return pause
        return None

    def pause(self, at: datetime, reason: str) -> ClockState:
        return replace(self, pauses=(*self.pauses, Pause(at, None, reason)))

    def resume(self, at: datetime) -> ClockState:
        if not self.pauses or self.pauses[-1].to_at is not None:
            raise ValueError("the clock is not paused")
        last = self.pauses[-1]
        return replace(self, pauses=(*self.pauses[:-1], replace(last, to_at=at)))

    def extend(self, amount: int, reason: str, at: datetime) -> ClockState:
        return replace(self, extensions=(*self.extensions, Extension(amount, reason, at)))

    def stop(self, at: datetime) -> ClockState:
        return replace(self, stopped_at=at)


def reset(state: ClockState, at: datetime) -> ClockState:
    """A fresh clock of the same spec from ``at`` (e.g. OGI 补正: the limit runs again from receipt)."""
    if at < state.started_at:
        raise ValueError("a reset cannot precede the clock it resets")
    return ClockState(spec=state.spec, started_at=at)


@dataclass(frozen=True)
class DueDate:
    due_at: datetime | None
    provisional: bool
    explanation_zh: str
    calendar_version: str


@dataclass
class _Trace:
    """What the count saw, for the explanation."""

    rest_days: dict[date, DayInfo] = field(default_factory=dict)
    weekend_work_days: dict[date, DayInfo] = field(default_factory=dict)
    unknown_years: set[int] = field(default_factory=set)
    assumed_working: set[date] = field(default_factory=set)  # unpublished-year days counted as working
    suspended: dict[int, int] = field(default_factory=dict)  # pause index -> units not counted
    first_office_instant: datetime | None = None

    def saw(self, info: DayInfo) -> None:
        if not info.known:
            self.unknown_years.add(info.day.year)
            if info.work:
                self.assumed_working.add(info.day)
        if not info.work:
            self.rest_days[info.day] = info
        elif info.day.weekday() >= 5:
            self.weekend_work_days[info.day] = info


def _local(value: datetime) -> datetime:
    return value.astimezone(CHINA_TZ)


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA_TZ)


def _count_days(state: ClockState, calendar: WorkCalendar, trace: _Trace) -> datetime | None:
    working = state.spec.unit is ClockUnit.WORKING_DAY
    windows = [
        (_local(p.from_at).date(), None if p.to_at is None else _local(p.to_at).date()) for p in state.pauses
    ]
    day = _local(state.started_at).date()
    counted = 0
    while counted < state.total_units:
        day += ONE_DAY
        suspending = next(
            (i for i, (a, b) in enumerate(windows) if day > a and (b is None or day <= b)), None
        )
        if suspending is not None:
            if windows[suspending][1] is None:
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
    return _end_of_day(day)


def _office_intervals(
    calendar: WorkCalendar, hours: OfficeHours, start: datetime, end: datetime | None, trace: _Trace
) -> Iterator[tuple[datetime, datetime]]:
    """Office-time intervals on working days within [start, end), in order."""
    start = _local(start)
    day = start.date()
    while end is None or day <= _local(end).date():
        info = calendar.day_info(day)
        trace.saw(info)
        if info.work:
            for period_start, period_end in hours.periods:
                a = max(datetime.combine(day, period_start, tzinfo=CHINA_TZ), start)
                b = datetime.combine(day, period_end, tzinfo=CHINA_TZ)
                if end is not None:
                    b = min(b, _local(end))
                if a < b:
                    yield a, b
        day += ONE_DAY


def _count_hours(
    state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: _Trace
) -> datetime | None:
    remaining = timedelta(hours=state.total_units)
    segments: list[tuple[datetime, datetime | None]] = []
    segment_start: datetime | None = state.started_at
    for pause in state.pauses:
        assert segment_start is not None  # only the last pause may be open
        segments.append((segment_start, pause.from_at))
        segment_start = pause.to_at
    if segment_start is not None:
        segments.append((segment_start, None))
    for segment_start, segment_end in segments:
        for a, b in _office_intervals(calendar, hours, segment_start, segment_end, trace):
            if trace.first_office_instant is None:
                trace.first_office_instant = a
            if b - a >= remaining:
                return a + remaining
            remaining -= b - a
    return None  # the last pause is open and office time is still owed


def _office_time_between(calendar: WorkCalendar, hours: OfficeHours, a: datetime, b: datetime) -> timedelta:
    spans = _office_intervals(calendar, hours, a, b, _Trace())
    return sum((end - start for start, end in spans), timedelta())


def compute_due(state: ClockState, calendar: WorkCalendar, hours: OfficeHours | None = None) -> DueDate:
    """The due time of ``state`` under ``calendar``, with a Chinese explanation of the count.

    Never raises for years the calendar does not know: such days follow the weekend rule and
    the result is ``provisional``, to be recomputed when the district publishes the year.
    """
    if state.spec.unit in (ClockUnit.WORKING_DAY, ClockUnit.CALENDAR_DAY):
        # Day units depend on the start *date* only (the start instant is never read), not on office
        # hours: every case created on one day shares its answer, memoised on the immutable calendar.
        key = ("due", state.spec, _local(state.started_at).date(), state.pauses, state.extensions,
               state.stopped_at)
        found = calendar.memo.get(key)
        if found is None:
            if len(calendar.memo) >= _MEMO_LIMIT:
                calendar.memo.clear()  # bounded: a long-running node must not grow it without end
            found = calendar.memo[key] = _compute_due(state, calendar, OfficeHours())
        return found  # type: ignore[no-any-return]
    return _compute_due(state, calendar, hours or OfficeHours())


_MEMO_LIMIT = 4096


def _compute_due(state: ClockState, calendar: WorkCalendar, hours: OfficeHours) -> DueDate:
    trace = _Trace()
    if state.spec.unit is ClockUnit.WORKING_HOUR:
        due_at = _count_hours(state, calendar, hours, trace)
    elif state.spec.unit is ClockUnit.CALENDAR_HOUR:
        due_at = _count_calendar_hours(state)
    else:
        due_at = _count_days(state, calendar, trace)
    explanation = "；".join(_explain(state, calendar, hours, trace, due_at))
    return DueDate(due_at, bool(trace.unknown_years), explanation, calendar.version)


def _count_calendar_hours(state: ClockState) -> datetime | None:
    """Round-the-clock hours; time inside pauses is not counted."""
    remaining = timedelta(hours=state.total_units)
    cursor = state.started_at
    for pause in state.pauses:
        if pause.from_at - cursor >= remaining:
            break
        remaining -= pause.from_at - cursor
        if pause.to_at is None:
            return None
        cursor = pause.to_at
    return _local(cursor + remaining)


def _fmt_day(day: date) -> str:
    return f"{day.isoformat()}（星期{_WEEKDAY_ZH[day.weekday()]}）"


def _fmt_clock(value: datetime) -> str:
    local = _local(value)
    return f"{local:%H:%M:%S}" if local.second else f"{local:%H:%M}"


def _fmt_instant(value: datetime) -> str:
    return f"{_local(value).date().isoformat()} {_fmt_clock(value)}"


def _fmt_range(first: date, last: date) -> str:
    return _fmt_day(first) if first == last else f"{first.isoformat()}至{last.isoformat()}"


def _explain(
    state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: _Trace, due_at: datetime | None
) -> list[str]:
    spec = state.spec
    count_word = _UNIT_COUNT_ZH[spec.unit]
    parts = [f"{spec.label_zh}（{spec.legal_basis}）" if spec.legal_basis else spec.label_zh]
    if spec.unit is ClockUnit.CALENDAR_HOUR:
        parts.append(f"起算时间：{_fmt_instant(state.started_at)}")
        parts.append(f"按自然小时计 {spec.duration} 小时（节假日、夜间照常计算）")
    elif spec.unit is ClockUnit.WORKING_HOUR:
        parts.append(f"起算时间：{_fmt_instant(state.started_at)}")
        first = trace.first_office_instant
        if first is not None and first != _local(state.started_at):
            parts.append(f"非办公时间，自 {_fmt_instant(first)} 起计")
        parts.append(f"按工作时计 {spec.duration} 小时（办公时间 {hours.describe_zh()}）")
    else:
        parts.append(f"起算日（第0日）：{_fmt_day(_local(state.started_at).date())}，当日不计入")
        note = "（节假日照常计算）" if spec.unit is ClockUnit.CALENDAR_DAY else ""
        parts.append(f"按{_UNIT_BASIS_ZH[spec.unit]}计 {spec.duration} 日{note}")
    parts.extend(_explain_rest_days(trace))
    for info in sorted(trace.weekend_work_days.values(), key=lambda i: i.day):
        kind = "调休上班日" if info.reason == "makeup_work" else f"上班日（{REASON_LABEL_ZH[info.reason]}）"
        parts.append(f"{_fmt_day(info.day)}为{kind}，计入")
    parts.extend(_explain_pauses(state, calendar, hours, trace, due_at))
    for ext in state.extensions:
        parts.append(f"延长 {ext.amount} {count_word}（{ext.reason}，{_fmt_instant(ext.at)} 决定）")
    if state.extensions:
        parts.append(f"合计 {state.total_units} {count_word}")
    if trace.unknown_years:
        parts.append(provisional_note_zh(trace.unknown_years, trace.assumed_working))
    if due_at is None:
        parts.append("截止：计时暂停中，恢复计时后确定")
    elif spec.unit in (ClockUnit.WORKING_HOUR, ClockUnit.CALENDAR_HOUR):
        parts.append(f"截止：{_fmt_day(_local(due_at).date())}{_fmt_clock(due_at)}")
    else:
        parts.append(f"截止：{_fmt_day(due_at.date())}24:00前")
    if state.stopped_at is not None:
        parts.append(f"计时已于 {_fmt_instant(state.stopped_at)} 停止")
    parts.append(f"日历版本：{calendar.version}")
    return parts


def _explain_rest_days(trace: _Trace) -> list[str]:
    """Named or declared rest runs one by one ("2026-10-01至2026-10-07 国庆节休假"); plain weekends summed."""
    runs: list[list[DayInfo]] = []
    for day in sorted(trace.rest_days):
        if runs and runs[-1][-1].day + ONE_DAY == day:
            runs[-1].append(trace.rest_days[day])
        else:
            runs.append([trace.rest_days[day]])
    described: list[str] = []
    plain_weekend_days = 0
    for run in runs:
        names = list(dict.fromkeys(i.name for i in run if i.name))
        if names:
            described.append(f"{_fmt_range(run[0].day, run[-1].day)} {'、'.join(names)}休假")
            continue
        reasons = list(dict.fromkeys(REASON_LABEL_ZH[i.reason] for i in run if i.reason != "weekend"))
        if reasons:
            described.append(f"{_fmt_range(run[0].day, run[-1].day)} 休息（{'、'.join(reasons)}）")
        else:
            plain_weekend_days += len(run)
    if plain_weekend_days:
        described.append(f"周末 {plain_weekend_days} 天")
    return [f"跳过：{'、'.join(described)}"] if described else []


def _explain_pauses(
    state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: _Trace, due_at: datetime | None
) -> list[str]:
    parts = []
    count_word = _UNIT_COUNT_ZH[state.spec.unit]
    for index, pause in enumerate(state.pauses):
        span = (
            f"{_fmt_instant(pause.from_at)}至{_fmt_instant(pause.to_at)}"
            if pause.to_at
            else (f"自 {_fmt_instant(pause.from_at)} 起")
        )
        text = f"暂停：{span}（{pause.reason}）"
        if due_at is not None and _counted_before(state, pause.from_at, due_at):
            text += "，暂停前时限已计满，不影响截止时间"
        elif pause.to_at is None:
            text += "，计时暂停中"
        elif state.spec.unit is ClockUnit.CALENDAR_HOUR:
            minutes = int((pause.to_at - pause.from_at).total_seconds()) // 60
            text += f"，其间 {minutes // 60} 小时 {minutes % 60} 分不计入"
        elif state.spec.unit is ClockUnit.WORKING_HOUR:
            paused = _office_time_between(calendar, hours, pause.from_at, pause.to_at)
            minutes = int(paused.total_seconds()) // 60
            text += f"，其间办公时间 {minutes // 60} 小时 {minutes % 60} 分不计入"
        else:
            first = _local(pause.from_at).date() + ONE_DAY
            last = _local(pause.to_at).date()
            if first <= last:
                text += f"，{_fmt_range(first, last)} 不计入（{trace.suspended.get(index, 0)} {count_word}）"
            else:
                text += "，当日恢复，不影响计算"
        parts.append(text)
    return parts


def _counted_before(state: ClockState, paused_at: datetime, due_at: datetime) -> bool:
    """Whether the count was complete before this pause took effect (so the pause changes nothing)."""
    if state.spec.unit in (ClockUnit.WORKING_HOUR, ClockUnit.CALENDAR_HOUR):
        return paused_at >= due_at
    # Day units: the pause day itself is counted, so a pause on or after the due day changes nothing.
    return _local(paused_at).date() >= _local(due_at).date()


ClockStateName = Literal["running", "paused", "stopped", "breached"]


@dataclass(frozen=True)
class ClockStatus:
    """``remaining_seconds`` is wall-clock time to the due time; negative once breached."""

    state: ClockStateName
    remaining_seconds: int | None
    overdue: bool


def clock_status(state: ClockState, due: DueDate, now: datetime) -> ClockStatus:
    _require_aware(now, "now")
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
