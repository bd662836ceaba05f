"""Pure grid rules beside the case kind: duplicates (并单), hot spots (源头治理), task lists, time left.

No I/O: the store hands these functions plain values and writes what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.domain.engine import Transition
from server.domain.grid_geo import LngLat, distance_m
from server.domain.roles import Principal, Role

MERGEABLE_STATES = frozenset({"reported", "verifying", "verified", "filed"})
NOT_RECURRING_STATES = frozenset({"merged", "not_filed"})  # a duplicate or a false report is no recurrence
# Transitions the lists never offer as a bare step: they have their own screen (并单).
NOT_A_TASK = frozenset({"absorb", "merge"})
_HANDLING = frozenset({"return", "accept_task", "request_on_account", "feedback"})
_CHECKING = frozenset({"check_pass", "check_fail"})


@dataclass(frozen=True)
class Report:
    """What duplicate and hot-spot rules need to know of one incident."""

    id: str
    org_path: str
    category_code: str
    location: LngLat
    reported_at: datetime
    state: str

    @classmethod
    def from_data(cls, case_id: str, org_path: str, state: str, data: Mapping[str, Any], at: datetime) -> Report:
        loc = data.get("location") or {}
        return cls(case_id, org_path, str(data.get("category_code", "")),
                   (float(loc.get("lng", 0.0)), float(loc.get("lat", 0.0))), at, state)


def street_of(org_path: str) -> str:
    return "/".join(org_path.split("/")[:2])


def gap(a: Report, b: Report) -> tuple[float, float]:
    """(metres, hours) between two reports."""
    return distance_m(a.location, b.location), abs((a.reported_at - b.reported_at).total_seconds()) / 3600


def duplicate_problem(kept: Report, duplicate: Report, settings: Mapping[str, Any]) -> str | None:
    """Why ``duplicate`` may not be merged into ``kept`` (None: it may)."""
    radius = int(settings.get("duplicate_radius_m", 50))
    window = int(settings.get("duplicate_window_hours", 24))
    if duplicate.id == kept.id:
        return "不能与自身并单"
    if duplicate.state == "merged":
        return "该事件已并入其他事件"
    if duplicate.state not in MERGEABLE_STATES:
        return "被并入的事件已派遣处置或已办结，不能并单"
    if duplicate.category_code != kept.category_code:
        return "两个事件类别不同，不能并单"
    if street_of(duplicate.org_path) != street_of(kept.org_path):
        return "两个事件不属于同一街道，不能并单"
    metres, hours = gap(kept, duplicate)
    if metres > radius:
        return f"两个事件相距约 {metres:.0f} 米，超过并单距离 {radius} 米"
    if hours > window:
        return f"两个事件上报时间相差约 {hours:.0f} 小时，超过并单时间窗 {window} 小时"
    return None


def find_duplicates(
    subject: Report, candidates: Iterable[Report], settings: Mapping[str, Any]
) -> list[tuple[Report, float, float]]:
    """Possible duplicates of ``subject``, nearest first: suggestions for the verifier, never merged here.

    A candidate qualifies when ``subject`` could be merged into it or it into ``subject``."""
    out = []
    for other in candidates:
        if other.id == subject.id or other.state in NOT_RECURRING_STATES:
            continue
        probe = subject if subject.state in MERGEABLE_STATES else other
        keep = other if probe is subject else subject
        if duplicate_problem(keep, probe, settings) is None:
            metres, hours = gap(subject, other)
            out.append((other, round(metres, 1), round(hours, 2)))
    return sorted(out, key=lambda item: (item[1], item[2]))


def nearest_hotspot(
    report: Report, hotspots: Sequence[tuple[str, str, LngLat]], radius_m: float
) -> str | None:
    """The hot spot (id, category, centre) of the same category within ``radius_m``, nearest first."""
    best: tuple[float, str] | None = None
    for hotspot_id, category, centre in hotspots:
        if category != report.category_code:
            continue
        metres = distance_m(report.location, centre)
        if metres <= radius_m and (best is None or metres < best[0]):
            best = (metres, hotspot_id)
    return best[1] if best else None


def moved_centre(centre: LngLat, n: int, point: LngLat) -> LngLat:
    """Running mean of ``n`` points plus one more."""
    return (centre[0] * n + point[0]) / (n + 1), (centre[1] * n + point[1]) / (n + 1)


def offered_to(t: Transition, principal: Principal, facts: Mapping[str, Any]) -> bool:
    """The grid's own narrowing of the offered actions (``KindViews.action_filter``): handling goes to
    the members of the grid a case was dispatched to (or, for a unit, to street staff), and the check
    to someone who did not handle the case. ``facts``: ``data``, ``handlers``, ``target_kind``."""
    data = facts.get("data") or {}
    if t.name in _HANDLING:
        on_grid = facts.get("target_kind") == "grid"
        if principal.role == Role.GRID_MEMBER and not (on_grid and data.get("unit_code") == principal.org_unit):
            return False
        if principal.role != Role.GRID_MEMBER and on_grid:
            return False
    if t.name in _CHECKING and principal.user_id in facts.get("handlers", ()):
        return False  # the check must be made by someone who did not handle the case
    return True
