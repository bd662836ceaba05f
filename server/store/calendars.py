"""District-published working-calendar versions, stored and applied.

The node's calendar is **cumulative**: the builtin (``chinese-calendar``) overridden by the entries
of every published version, applied in publish order — a later version supersedes an earlier one
day by day and never forgets the days it does not list (publishing 2028 keeps 2027's holidays).
Each version also records the years it completes (``complete_years``), which stop being
provisional.

Publishing recomputes every open deadline in the same transaction, audited. A recompute that
would move an open deadline *earlier* is not applied silently (an earlier date can make a case
overdue, or deemed accepted, at once): the case keeps its due date and the earlier one waits in
``calendar_earlier`` until a person confirms it (``server.store.calendar_earlier``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import BUILTIN_VERSION, CalendarEntry, WorkCalendar, builtin_calendar
from server.store import audit, changes
from server.store.calendar_earlier import HeldDue, recompute_open_clocks_holding_earlier

# Built calendars by their full content (every version's label, complete years and entry rows, in
# publish order), so one object, and its memo of due dates, serves every request until a new version
# is published. Keyed by content rather than by label: two databases in one process may carry the same
# label with different entries.
_BUILT: dict[tuple[Any, ...], WorkCalendar] = {}


@dataclass(frozen=True)
class VersionInfo:
    version: str
    source_notice: str
    published_at: str
    complete_years: tuple[int, ...]
    entries: int


@dataclass(frozen=True)
class PublishReport:
    version: str
    entries: int
    complete_years: tuple[int, ...]
    recomputed: int
    held: list[HeldDue] = field(default_factory=list)
    last_known_year: int = 0


def _versions(db: Database) -> list[tuple[str, tuple[int, ...]]]:
    rows = db.execute("SELECT version, complete_years FROM calendar_versions ORDER BY seq").fetchall()
    return [(v, tuple(sorted(int(y) for y in json.loads(c or "[]")))) for v, c in rows]


def current_calendar(db: Database) -> WorkCalendar:
    """Builtin + every published version's entries and complete years, in publish order."""
    versions = _versions(db)
    base = builtin_calendar()
    if not versions:
        return base
    rows = db.execute(
        "SELECT e.version, e.day, e.work, e.reason, e.name FROM calendar_entries e"
        " JOIN calendar_versions v ON v.version = e.version ORDER BY v.seq, e.day"
    ).fetchall()
    by_version: dict[str, list[tuple[Any, ...]]] = {v: [] for v, _ in versions}
    for version, day, work, reason, name in rows:
        by_version[version].append((day, work, reason, name))
    key = tuple((v, years, tuple(by_version[v])) for v, years in versions)
    built = _BUILT.get(key)
    if built is None:
        built = base
        for version, years in versions:
            entries = [CalendarEntry(date.fromisoformat(d), bool(w), r, n) for d, w, r, n in by_version[version]]
            built = built.with_entries(entries, version, complete_years=years)
        if len(_BUILT) >= 64:
            _BUILT.clear()
        _BUILT[key] = built
    return built


def list_versions(db: Database) -> list[VersionInfo]:
    rows = db.execute(
        "SELECT v.version, v.source_notice, v.published_at, v.complete_years,"
        " (SELECT COUNT(*) FROM calendar_entries e WHERE e.version = v.version) FROM calendar_versions v"
        " ORDER BY v.seq"
    ).fetchall()
    return [
        VersionInfo(v, notice, at, tuple(sorted(json.loads(years or "[]"))), int(n)) for v, notice, at, years, n in rows
    ]


def publish_version(
    db: Database,
    *,
    version: str,
    entries: list[dict[str, Any]],
    source_notice: str,
    actor: str,
    role: str,
    now: datetime,
    complete_years: list[int] | tuple[int, ...] = (),
) -> PublishReport:
    """Store a calendar version on top of the earlier ones; recompute open clocks, holding earlier dates.

    Raises ``ValueError`` (nothing written, the caller's transaction rolls back) for a reused label or
    an entry the domain refuses.
    """
    if not version or version == BUILTIN_VERSION:
        raise ValueError(f"日历版本标签无效：{version!r}")
    if db.execute("SELECT 1 FROM calendar_versions WHERE version = ?", [version]).fetchone():
        raise ValueError(f"日历版本 {version} 已存在；修改请另立新版本号")
    parsed = [
        CalendarEntry(day=date.fromisoformat(str(e["day"])), work=bool(e["work"]), reason=e.get("reason", "other"),
                      name=str(e.get("name", "")))
        for e in entries
    ]
    years = tuple(sorted({int(y) for y in complete_years}))
    seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM calendar_versions").fetchone()[0])
    db.execute("UPDATE calendar_versions SET active = 0 WHERE active = 1")
    db.execute(
        "INSERT INTO calendar_versions (version, source_notice, published_at, active, complete_years, seq)"
        " VALUES (?, ?, ?, 1, ?, ?)",
        [version, source_notice, now.isoformat(), json.dumps(list(years)), seq],
    )
    for e in parsed:
        db.execute(
            "INSERT INTO calendar_entries (version, day, work, reason, name) VALUES (?, ?, ?, ?, ?)",
            [version, e.day.isoformat(), int(e.work), e.reason, e.name],
        )
    calendar = current_calendar(db)  # also checks the stored entries build (conflicts raise here)
    recomputed, held = recompute_open_clocks_holding_earlier(db, calendar, now, version)
    audit.append(
        db,
        actor=actor,
        role=role,
        action="calendar.publish",
        object_type="calendar",
        object_id=version,
        after={"version": version, "entries": entries, "source_notice": source_notice,
               "complete_years": list(years)},
        detail={"recomputed_cases": recomputed, "held_earlier": len(held)},
    )
    changes.record(db, "calendar", version)
    return PublishReport(version, len(parsed), years, recomputed, held, calendar.last_known_year)
