"""The Chinese explanation of a due date: every fact a clerk needs to defend it (domain.md §1.2, §4).

Start and why there, resets with their record, the unit, rest days skipped (a named holiday apart
from the plain weekend next to it), make-up working days, pauses with reason and legal basis (days
used and left while paused), extensions with approver and notice, notes such as deemed acceptance,
a roll to the next working day (民法典 art. 203), and the calendar version.
"""

from __future__ import annotations

from datetime import date, datetime

from server.domain.calendar import REASON_LABEL_ZH, DayInfo, OfficeHours, WorkCalendar, provisional_note_zh
from server.domain.clock_count import ONE_DAY, Trace, local, merged_windows, office_time_between
from server.domain.clock_model import DAY_UNITS, ROLL_BASIS, ClockState, ClockUnit, Pause

_WEEKDAY_ZH = ("一", "二", "三", "四", "五", "六", "日")
MONTH_BASIS = "《中华人民共和国民法典》第二百零二条"

UNIT_BASIS_ZH = {
    ClockUnit.WORKING_DAY: "工作日",
    ClockUnit.WORKING_HOUR: "工作时",
    ClockUnit.CALENDAR_DAY: "自然日",
    ClockUnit.CALENDAR_HOUR: "自然小时",
    ClockUnit.MONTH: "月",
}
UNIT_COUNT_ZH = {
    ClockUnit.WORKING_DAY: "个工作日",
    ClockUnit.WORKING_HOUR: "个工作时",
    ClockUnit.CALENDAR_DAY: "日",
    ClockUnit.CALENDAR_HOUR: "小时",
    ClockUnit.MONTH: "个月",
}


def fmt_day(day: date) -> str:
    return f"{day.isoformat()}（星期{_WEEKDAY_ZH[day.weekday()]}）"


def _fmt_clock(value: datetime) -> str:
    lv = local(value)
    return f"{lv:%H:%M:%S}" if lv.second else f"{lv:%H:%M}"


def fmt_instant(value: datetime) -> str:
    return f"{local(value).date().isoformat()} {_fmt_clock(value)}"


def fmt_when(value: datetime) -> str:
    """An instant, or just its date when it is a date taken from a payload (local midnight)."""
    lv = local(value)
    return lv.date().isoformat() if (lv.hour, lv.minute, lv.second) == (0, 0, 0) else fmt_instant(value)


def _fmt_range(first: date, last: date) -> str:
    return fmt_day(first) if first == last else f"{first.isoformat()}至{last.isoformat()}"


def _with_basis(text: str, basis: str) -> str:
    return f"{text}，{basis}" if basis else text


def explain(state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: Trace,
            due_at: datetime | None) -> list[str]:
    spec = state.spec
    parts = [f"{spec.label_zh}（{spec.legal_basis}）" if spec.legal_basis else spec.label_zh]
    for r in state.resets:
        text = f"重新计时：{fmt_when(r.at)} {r.reason}" if r.reason else f"重新计时：{fmt_when(r.at)}"
        parts.append(f"{text}（{r.legal_basis}）" if r.legal_basis else text)
        parts.append(f"原起算时间 {fmt_when(r.previous_start)}")
    parts.extend(_explain_start(state, hours, trace))
    if state.fixed is not None:
        f = state.fixed
        parts.append(f"截止日期由决定确定：{f.reason}（{_with_basis(fmt_instant(f.at) + ' 决定', f.legal_basis)}）")
    else:
        parts.extend(_explain_rest_days(trace))
        for info in sorted(trace.weekend_work_days.values(), key=lambda i: i.day):
            kind = "调休上班日" if info.reason == "makeup_work" else f"上班日（{REASON_LABEL_ZH[info.reason]}）"
            parts.append(f"{fmt_day(info.day)}为{kind}，计入")
        parts.extend(_explain_pauses(state, calendar, hours, trace, due_at))
        parts.extend(_explain_extensions(state))
    for note in state.notes:
        text = f"{fmt_instant(note.at)} {note.text}"
        parts.append(f"{text}（{note.legal_basis}）" if note.legal_basis else text)
    if trace.unknown_years:
        parts.append(provisional_note_zh(trace.unknown_years, trace.assumed_working))
    if trace.rolled is not None:
        info, day = trace.rolled
        why = f"（{info.name}）" if info.name else ""
        parts.append(f"期间最后一日 {fmt_day(info.day)}为休息日{why}，顺延至 {fmt_day(day)}（{ROLL_BASIS}）")
    if due_at is None:
        parts.append("截止：计时暂停中，恢复计时后确定")
    elif spec.unit in (ClockUnit.WORKING_HOUR, ClockUnit.CALENDAR_HOUR) and state.fixed is None:
        parts.append(f"截止：{fmt_day(local(due_at).date())}{_fmt_clock(due_at)}")
    else:
        parts.append(f"截止：{fmt_day(due_at.date())}24:00前")
    if state.stopped_at is not None:
        stop = f"计时已于 {fmt_instant(state.stopped_at)} 停止"
        parts.append(f"{stop}（{state.stop_reason}）" if state.stop_reason else stop)
    parts.append(f"日历版本：{calendar.version}")
    return parts


def _explain_start(state: ClockState, hours: OfficeHours, trace: Trace) -> list[str]:
    spec = state.spec
    parts: list[str] = []
    if spec.unit in DAY_UNITS:
        parts.append(f"起算日（第0日）：{fmt_day(local(state.started_at).date())}，当日不计入")
    else:
        parts.append(f"起算时间：{fmt_instant(state.started_at)}")
        first = trace.first_office_instant
        if spec.unit is ClockUnit.WORKING_HOUR and first is not None and first != local(state.started_at):
            parts.append(f"非办公时间，自 {fmt_instant(first)} 起计")
    if state.start_rule:
        parts.append(f"起算依据：{state.start_rule}")
    if state.fixed is not None:
        return parts
    if spec.unit is ClockUnit.CALENDAR_HOUR:
        parts.append(f"按自然小时计 {spec.duration} 小时（节假日、夜间照常计算）")
    elif spec.unit is ClockUnit.WORKING_HOUR:
        parts.append(f"按工作时计 {spec.duration} 小时（办公时间 {hours.describe_zh()}）")
    elif spec.unit is ClockUnit.MONTH:
        parts.append(f"按月计 {spec.duration} 个月（到期月的对应日为期间最后一日，没有对应日的为该月末日，"
                     f"{MONTH_BASIS}）")
        if trace.month_target is not None:
            wanted, used = trace.month_target
            start_day = local(state.started_at).day
            parts.append(f"{wanted.year}-{wanted.month:02d} 没有 {start_day} 日，以月末日 {fmt_day(used)}为期间最后一日")
    else:
        note = "（节假日照常计算）" if spec.unit is ClockUnit.CALENDAR_DAY else ""
        parts.append(f"按{UNIT_BASIS_ZH[spec.unit]}计 {spec.duration} 日{note}")
    if spec.roll_to_workday:
        parts.append(f"期间最后一日为休息日的，以其后第一个工作日为最后一日（{ROLL_BASIS}）")
    return parts


def _split_named(run: list[DayInfo]) -> list[list[DayInfo]]:
    """A rest run around a holiday: the named days apart from the plain days before and after them
    (2027-02-06..12 春节 then a plain 02-13..14 weekend is not "02-06至02-14 春节休假")."""
    named = [i for i, info in enumerate(run) if info.name]
    if not named:
        return [run]
    pieces = [run[: named[0]], run[named[0]: named[-1] + 1], run[named[-1] + 1:]]
    return [p for p in pieces if p]


def _explain_rest_days(trace: Trace) -> list[str]:
    """Named or declared rest runs one by one ("2026-10-01至2026-10-07 国庆节休假"); plain weekends summed."""
    runs: list[list[DayInfo]] = []
    for day in sorted(trace.rest_days):
        if runs and runs[-1][-1].day + ONE_DAY == day:
            runs[-1].append(trace.rest_days[day])
        else:
            runs.append([trace.rest_days[day]])
    described: list[str] = []
    plain_weekend_days = 0
    for piece in (p for run in runs for p in _split_named(run)):
        names = list(dict.fromkeys(i.name for i in piece if i.name))
        if names:
            described.append(f"{_fmt_range(piece[0].day, piece[-1].day)} {'、'.join(names)}休假")
            continue
        reasons = list(dict.fromkeys(REASON_LABEL_ZH[i.reason] for i in piece if i.reason != "weekend"))
        if reasons:
            described.append(f"{_fmt_range(piece[0].day, piece[-1].day)} 休息（{'、'.join(reasons)}）")
        else:
            plain_weekend_days += len(piece)
    if plain_weekend_days:
        described.append(f"周末 {plain_weekend_days} 天")
    return [f"跳过：{'、'.join(described)}"] if described else []


def _fmt_units(state: ClockState, value: float) -> str:
    unit = state.spec.unit
    if unit in (ClockUnit.WORKING_HOUR, ClockUnit.CALENDAR_HOUR):
        minutes = round(value * 60)
        return f"{minutes // 60} 小时 {minutes % 60} 分"
    word = "日" if unit is ClockUnit.MONTH else UNIT_COUNT_ZH[unit]
    return f"{int(value)} {word}"


def _pause_span(pause: Pause) -> str:
    if pause.to_at is None:
        return f"自 {fmt_instant(pause.from_at)} 起"
    return f"{fmt_instant(pause.from_at)}至{fmt_instant(pause.to_at)}"


def _explain_pauses(state: ClockState, calendar: WorkCalendar, hours: OfficeHours, trace: Trace,
                    due_at: datetime | None) -> list[str]:
    parts = []
    count_word = UNIT_COUNT_ZH[state.spec.unit] if state.spec.unit is not ClockUnit.MONTH else "日"
    for index, window in enumerate(merged_windows(state.pauses)):
        members = [state.pauses[i] for i in window.members]
        text = "暂停：" + "、".join(f"{_pause_span(p)}（{_with_basis(p.reason, p.legal_basis)}）" for p in members)
        if len(members) > 1:
            text += "，各项暂停理由均消除后方恢复计时"
        if due_at is not None and _counted_before(state, window.from_at, due_at):
            text += "，暂停前时限已计满，不影响截止时间"
        elif window.to_at is None:
            text += "，计时暂停中"
            if trace.used is not None and trace.owed is not None:
                text += f"（已用 {_fmt_units(state, trace.used)}，剩余 {_fmt_units(state, trace.owed)}）"
        elif state.spec.unit is ClockUnit.CALENDAR_HOUR:
            minutes = int((window.to_at - window.from_at).total_seconds()) // 60
            text += f"，其间 {minutes // 60} 小时 {minutes % 60} 分不计入"
        elif state.spec.unit is ClockUnit.WORKING_HOUR:
            paused = office_time_between(calendar, hours, window.from_at, window.to_at)
            minutes = int(paused.total_seconds()) // 60
            text += f"，其间办公时间 {minutes // 60} 小时 {minutes % 60} 分不计入"
        else:
            first = local(window.from_at).date() + ONE_DAY
            last = local(window.to_at).date()
            if first <= last:
                text += f"，{_fmt_range(first, last)} 不计入（{trace.suspended.get(index, 0)} {count_word}）"
            else:
                text += "，当日恢复，不影响计算"
        parts.append(text)
    return parts


def _explain_extensions(state: ClockState) -> list[str]:
    count_word = UNIT_COUNT_ZH[state.spec.unit]
    parts = []
    for ext in state.extensions:
        facts = [ext.reason]
        if ext.approver:
            facts.append(f"{ext.approver}批准")
        facts.append(f"{fmt_instant(ext.at)} 决定")
        if ext.notified_on is not None:
            facts.append(f"{ext.notified_on.isoformat()} 告知申请人")
        if ext.legal_basis:
            facts.append(ext.legal_basis)
        parts.append(f"延长 {ext.amount} {count_word}（{'，'.join(f for f in facts if f)}）")
    if state.extensions:
        parts.append(f"合计 {state.total_units} {count_word}")
    return parts


def _counted_before(state: ClockState, paused_at: datetime, due_at: datetime) -> bool:
    """Whether the count was complete before this pause took effect (so the pause changes nothing)."""
    if state.spec.unit in (ClockUnit.WORKING_HOUR, ClockUnit.CALENDAR_HOUR):
        return paused_at >= due_at
    # Day units: the pause day itself is counted, so a pause on or after the due day changes nothing.
    return local(paused_at).date() >= local(due_at).date()
