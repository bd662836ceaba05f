"""What a case kind shows: its work-list columns, what a resident may see, which clock is "current".

Declared by the kind (``CaseKind.views``) so that the generic work list, case screen and resident
page render every kind without per-kind web code (issue 9, "Kind views"). Pure data plus two pure
helpers; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from server.domain.calendar import WorkCalendar
from server.domain.clocks import working_days_between

if TYPE_CHECKING:  # the engine imports this module; only type checkers need the engine's names here
    from server.domain.engine import Transition
    from server.domain.roles import Principal

# A kind's own refinement of "which actions does this person have now" beyond role and tier
# (e.g. a grid task goes only to the members of the grid it was dispatched to). ``facts`` are what
# the kind's row-facts look-up found for the case (``server.features``); the engine still decides.
ActionFilter = Callable[["Transition", "Principal", Mapping[str, Any]], bool]


@dataclass(frozen=True)
class ViewColumn:
    """One work-list column. ``source`` is "data.<field>[.<field>]" or a case column
    ("number", "due_at", "created_at", "updated_at", "org_path", "state")."""

    key: str
    label_zh: str
    source: str


@dataclass(frozen=True)
class KindViews:
    columns: tuple[ViewColumn, ...] = ()
    resident_fields: tuple[str, ...] = ()  # data fields a resident tracking the case may see
    current_clock: Mapping[str, str] = field(default_factory=dict)  # state -> clock shown as "the" deadline
    default_clock: str | None = None  # the current clock in states not listed above
    # Transitions never offered as list/detail actions: the engine's own and those with their own
    # screens (并单 is made from the duplicates screen, not as a bare step).
    hidden_actions: frozenset[str] = frozenset()
    action_filter: ActionFilter | None = None

    def clock_for(self, state: str) -> str | None:
        return self.current_clock.get(state, self.default_clock)


CASE_COLUMNS = frozenset({"id", "number", "due_at", "created_at", "updated_at", "org_path", "state", "kind"})


def column_value(source: str, row: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
    """The value of a declared column for one case row (``data`` is the row's decoded data)."""
    if source.startswith("data."):
        value: Any = data
        for part in source[5:].split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    if source in CASE_COLUMNS:
        return row.get(source)
    raise ValueError(f"unknown column source {source!r}")


def check_views(kind_name: str, states: Mapping[str, str], clocks: Mapping[str, Any], views: KindViews) -> None:
    """Declaration errors surface when the kind is built, not when a list is first shown."""
    for col in views.columns:
        if not col.source.startswith("data.") and col.source not in CASE_COLUMNS:
            raise ValueError(f"{kind_name}: column {col.key} has unknown source {col.source}")
    for state, clock in views.current_clock.items():
        if state not in states or clock not in clocks:
            raise ValueError(f"{kind_name}: current_clock {state} -> {clock} names an unknown state or clock")
    if views.default_clock is not None and views.default_clock not in clocks:
        raise ValueError(f"{kind_name}: unknown default_clock {views.default_clock}")


def clock_at(clock: Mapping[str, Any], calendar: WorkCalendar | None, now: datetime) -> dict[str, Any]:
    """A cached clock summary (``cases.clocks``, as of the last write) brought up to ``now``: the one
    place lists, case detail and the resident page compute time left and overdue (working days left
    only when given the calendar)."""
    out = {k: clock.get(k) for k in ("label", "unit", "duration", "started_at", "due_at", "status", "explanation",
                                     "provisional")}
    due_at = clock.get("due_at")
    status = clock.get("status")
    if status in ("stopped", "paused") or due_at is None:
        # a stopped clock is overdue only if it stopped late (the cache knew that when it stopped)
        out.update(remaining_seconds=None, working_days_left=None,
                   overdue=bool(clock.get("overdue")) and status == "stopped")
        return out
    due = datetime.fromisoformat(str(due_at))
    remaining = int((due - now).total_seconds())
    out.update(
        status="breached" if remaining < 0 else "running",
        remaining_seconds=remaining,
        working_days_left=None if calendar is None else working_days_between(
            calendar, now.date(), due.astimezone(now.tzinfo).date()),
        overdue=remaining < 0,
    )
    return out


def due_soon_until(calendar: WorkCalendar, now: datetime) -> datetime:
    """Due soon = due today or on the next working day (domain.md §1.2: warn before expiry): the
    instant that period ends, midnight after the next working day."""
    day = now.date() + timedelta(days=1)
    while not calendar.is_workday(day):
        day += timedelta(days=1)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=now.tzinfo)
