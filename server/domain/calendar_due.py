""""What if it were received on …": a clerk's due-date calculator over the node's calendar.

Alaveteli users asked for a "what if submitted today" calculator (domain.md §4): the clerk at the
window must be able to tell an applicant the date before the case exists, with the same count and
the same explanation the case's clock will show. So this builds an ordinary clock and asks the
clock engine — it never counts days itself.
"""

from __future__ import annotations

from datetime import date, datetime, time

from server.domain.calendar import OfficeHours, WorkCalendar
from server.domain.clocks import ClockSpec, ClockState, ClockUnit, DueDate, compute_due
from server.domain.ids import CHINA_TZ

MAX_DURATION = 1000
DEFAULT_LABEL = "试算时限"
_UNITS_ZH = "、".join(u.value for u in ClockUnit)


class DueQueryError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_start(value: str | None) -> datetime:
    """``YYYY-MM-DD`` (the start of that day, Beijing time) or ``YYYY-MM-DDTHH:MM[:SS]`` (Beijing time)."""
    if not value:
        raise DueQueryError("start", "缺少起算日期，如 2026-09-30 或 2026-09-30T16:00")
    try:
        if len(value) == 10:
            start = datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=CHINA_TZ)
        else:
            start = datetime.fromisoformat(value)
            start = start.replace(tzinfo=CHINA_TZ) if start.tzinfo is None else start.astimezone(CHINA_TZ)
    except ValueError:
        raise DueQueryError("start", f"日期格式应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM，收到 {value!r}") from None
    if not 2000 <= start.year <= 2100:
        raise DueQueryError("start", "起算日期须在 2000 年至 2100 年之间")
    return start


def due_if_received(
    calendar: WorkCalendar,
    *,
    start: str | None,
    unit: str | None,
    duration: str | None,
    label: str | None = None,
    hours: OfficeHours | None = None,
) -> DueDate:
    """The due date of a clock of ``duration`` ``unit``s started at ``start``; raises ``DueQueryError``."""
    started = parse_start(start)
    try:
        clock_unit = ClockUnit(unit or "")
    except ValueError:
        raise DueQueryError("unit", f"计时单位须为 {_UNITS_ZH} 之一，收到 {unit!r}") from None
    if not duration or not duration.strip().isdigit() or not 1 <= int(duration) <= MAX_DURATION:
        raise DueQueryError("duration", f"时限须为 1 至 {MAX_DURATION} 的整数，收到 {duration!r}")
    text = (label or "").strip() or DEFAULT_LABEL
    if len(text) > 50:
        raise DueQueryError("label", "名称不超过 50 个字符")
    spec = ClockSpec("what_if", clock_unit, int(duration), text)
    return compute_due(ClockState(spec, started), calendar, hours)
