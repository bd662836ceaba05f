"""A deadline clock's history as data (domain.md §1.2 ``Clock``): what it measures, when it started
and why there, its pauses, extensions, resets, notes and a fixed deadline if a decision set one.

Everything here is a frozen value: the fold builds a new ``ClockState`` per event, and
``compute_due`` (clocks.py) memoises on it. Counting lives in clock_count.py, the Chinese
explanation in clock_explain.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class ClockUnit(StrEnum):
    WORKING_DAY = "working_day"
    WORKING_HOUR = "working_hour"
    CALENDAR_DAY = "calendar_day"
    CALENDAR_HOUR = "calendar_hour"  # 自然小时: emergencies do not wait for office hours
    MONTH = "month"  # 民法典 art. 202: e.g. the 6-month litigation limit


DAY_UNITS = frozenset({ClockUnit.WORKING_DAY, ClockUnit.CALENDAR_DAY, ClockUnit.MONTH})


def require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


@dataclass(frozen=True)
class ExtensionRule:
    """How far, and how often, a legal regime lets the organ extend a limit.

    ``once``: the statutes read "可以延长…日" — one extension, approved once (行政许可法 art. 42,
    OGI2019 art. 33); a second request is refused even if the sum stays under the cap.
    """

    cap: int
    legal_basis: str
    once: bool = True
    needs_notice: bool = False  # OGI2019 art. 33: the applicant is told of the extension


# Caps per regime (domain.md §1.6, §1.7, §3.1).
EXTENSION_RULES: dict[str, ExtensionRule] = {
    "OGI2019": ExtensionRule(20, "《中华人民共和国政府信息公开条例》（2019年修订）第三十三条", needs_notice=True),
    "OGI2008": ExtensionRule(15, "《中华人民共和国政府信息公开条例》（2007年）第二十四条"),
    "行政许可": ExtensionRule(10, "《中华人民共和国行政许可法》第四十二条"),
}

ROLL_BASIS = "《中华人民共和国民法典》第二百零三条"


@dataclass(frozen=True)
class ClockSpec:
    """What a clock measures, e.g. ``ClockSpec("license_decision", WORKING_DAY, 20, "许可决定", "行政许可法第四十二条")``.

    ``roll_to_workday`` (calendar-day and month units): a period whose last day is a rest day ends on
    the next working day (民法典 art. 203). ``extension``: the regime's cap, checked by the guards.
    """

    name: str
    unit: ClockUnit
    duration: int
    label_zh: str
    legal_basis: str = ""
    roll_to_workday: bool = False
    extension: ExtensionRule | None = None

    def __post_init__(self) -> None:
        if self.duration < 1:
            raise ValueError("a clock's duration must be at least one unit")
        if self.roll_to_workday and self.unit not in (ClockUnit.CALENDAR_DAY, ClockUnit.MONTH):
            raise ValueError("only calendar-day and month periods roll to the next working day")


@dataclass(frozen=True)
class Pause:
    """One reason the clock does not run. ``key`` names the reason, so a resume closes only its own
    pause and overlapping reasons (a third party and a co-producer consulted at once) each count."""

    from_at: datetime
    to_at: datetime | None
    reason: str
    key: str = ""
    legal_basis: str = ""

    def __post_init__(self) -> None:
        require_aware(self.from_at, "pause start")
        if self.to_at is not None:
            require_aware(self.to_at, "pause end")
            if self.to_at < self.from_at:
                raise ValueError("a pause cannot end before it starts")


@dataclass(frozen=True)
class Extension:
    amount: int
    reason: str
    at: datetime
    approver: str = ""
    notified_on: date | None = None  # the day the applicant was told (OGI2019 art. 33)
    legal_basis: str = ""

    def __post_init__(self) -> None:
        require_aware(self.at, "extension time")
        if self.amount < 1:
            raise ValueError("an extension adds at least one unit")


@dataclass(frozen=True)
class ResetRecord:
    """A restart of the count (e.g. OGI2019 art. 30: the period runs again from receipt of the correction)."""

    at: datetime  # when the new count starts
    previous_start: datetime
    reason: str
    legal_basis: str = ""


@dataclass(frozen=True)
class Note:
    """A fact the explanation must state, e.g. deemed acceptance (行政许可法 art. 32)."""

    at: datetime
    text: str
    legal_basis: str = ""


@dataclass(frozen=True)
class FixedDeadline:
    """A due date set by a decision rather than counted (OGI2019 art. 35: a reasonable later deadline)."""

    day: date
    reason: str
    at: datetime
    legal_basis: str = ""


@dataclass(frozen=True)
class ClockState:
    """A clock's history, folded from case events. Lists given are stored as tuples.

    ``started_at`` is where the current count starts (after a reset: the reset instant);
    ``start_rule`` says why there (e.g. registered post: the day signed for). ``linked_to`` marks
    a sub-clock ("main_clock:pause_key") that runs while the main clock is paused for that reason.
    ``resets`` is the record of earlier counts; it is history, so two clocks that count alike
    compare equal whatever their records.
    """

    spec: ClockSpec
    started_at: datetime
    pauses: Sequence[Pause] = field(default_factory=tuple)
    extensions: Sequence[Extension] = field(default_factory=tuple)
    stopped_at: datetime | None = None
    stop_reason: str = field(default="", compare=False)
    start_rule: str = field(default="", compare=False)
    resets: Sequence[ResetRecord] = field(default_factory=tuple, compare=False)
    notes: Sequence[Note] = field(default_factory=tuple, compare=False)
    fixed: FixedDeadline | None = None
    linked_to: str = ""

    def __post_init__(self) -> None:
        require_aware(self.started_at, "clock start")
        for name in ("pauses", "extensions", "resets", "notes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        latest = self.started_at
        open_keys: set[str] = set()
        last_by_key: dict[str, datetime | None] = {}
        for pause in self.pauses:
            if pause.from_at < self.started_at:
                raise ValueError("a pause cannot precede the clock's start")
            if pause.key in last_by_key:
                previous_end = last_by_key[pause.key]
                if previous_end is None or pause.from_at < previous_end:
                    raise ValueError("pauses for the same reason must follow each other without overlapping")
            last_by_key[pause.key] = pause.to_at
            if pause.to_at is None:
                open_keys.add(pause.key)
            latest = max(latest, pause.to_at or pause.from_at)
        if any(ext.at < self.started_at for ext in self.extensions):
            raise ValueError("an extension cannot precede the clock's start")
        if self.stopped_at is not None:
            require_aware(self.stopped_at, "clock stop")
            if self.stopped_at < latest:
                raise ValueError("a clock cannot stop before its start or last resume")

    @property
    def total_units(self) -> int:
        return self.spec.duration + sum(ext.amount for ext in self.extensions)

    def memo_key(self, start_date: date) -> tuple[Any, ...]:
        """Every field but the start instant (day units read only its date): a new field is in the key
        by construction, so the memo in ``compute_due`` can never serve another history's answer."""
        return (start_date, *(getattr(self, f.name) for f in fields(self) if f.name != "started_at"))

    def latest_instant(self) -> datetime:
        """The start or the last pause boundary: nothing may be recorded as stopping before it."""
        return max([self.started_at, *(p.to_at or p.from_at for p in self.pauses)])

    def open_pauses(self) -> tuple[Pause, ...]:
        return tuple(p for p in self.pauses if p.to_at is None)

    def open_pause(self, now: datetime) -> Pause | None:
        """A pause in force at ``now``, if any."""
        for pause in self.pauses:
            if pause.from_at <= now and (pause.to_at is None or now < pause.to_at):
                return pause
        return None

    def is_paused(self, key: str | None = None) -> bool:
        """Whether a pause is open (for ``key``, or for any reason when ``key`` is None)."""
        return any(p.to_at is None and (key is None or p.key == key) for p in self.pauses)

    def pause(self, at: datetime, reason: str, key: str = "", legal_basis: str = "") -> ClockState:
        return replace(self, pauses=(*self.pauses, Pause(at, None, reason, key, legal_basis)))

    def resume(self, at: datetime, key: str = "") -> ClockState:
        """Close the open pause for ``key``; other reasons keep the clock paused."""
        for index in range(len(self.pauses) - 1, -1, -1):
            pause = self.pauses[index]
            if pause.to_at is None and pause.key == key:
                pauses = list(self.pauses)
                pauses[index] = replace(pause, to_at=max(at, pause.from_at))
                return replace(self, pauses=tuple(pauses))
        raise ValueError("the clock is not paused for this reason")

    def extend(self, amount: int, reason: str, at: datetime, *, approver: str = "",
               notified_on: date | None = None, legal_basis: str = "") -> ClockState:
        ext = Extension(amount, reason, at, approver, notified_on, legal_basis)
        return replace(self, extensions=(*self.extensions, ext))

    def stop(self, at: datetime, reason: str = "") -> ClockState:
        return replace(self, stopped_at=at, stop_reason=reason)

    def note(self, at: datetime, text: str, legal_basis: str = "") -> ClockState:
        return replace(self, notes=(*self.notes, Note(at, text, legal_basis)))

    def set_deadline(self, day: date, reason: str, at: datetime, legal_basis: str = "") -> ClockState:
        return replace(self, fixed=FixedDeadline(day, reason, at, legal_basis))


def reset(state: ClockState, at: datetime, reason: str = "", legal_basis: str = "", *,
          start_rule: str = "") -> ClockState:
    """A fresh count of the same spec from ``at`` (e.g. OGI 补正: the limit runs again from receipt),
    keeping the record of when, why and on what basis the earlier count was abandoned."""
    if at < state.started_at:
        raise ValueError("a reset cannot precede the clock it resets")
    record = ResetRecord(at, state.started_at, reason, legal_basis)
    return ClockState(spec=state.spec, started_at=at, start_rule=start_rule, resets=(*state.resets, record),
                      linked_to=state.linked_to)
