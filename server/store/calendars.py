"""District-published working-calendar versions, stored and applied.

The node's calendar is the builtin (``chinese-calendar``) overridden by the entries of
the active published version. Publishing a version recomputes every open deadline in
the same transaction, audited, so no open case keeps a due date from an old calendar.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import CalendarEntry, WorkCalendar, builtin_calendar
from server.store import audit, cases, changes

# Built calendars by their full content (version label and every entry row), so one object, and its
# memo of due dates, serves every request until a new version is published. Keyed by content rather
# than by label: two databases in one process may carry the same label with different entries.
_BUILT: dict[tuple[str, tuple[tuple[Any, ...], ...]], WorkCalendar] = {}


def current_calendar(db: Database) -> WorkCalendar:
    row = db.execute("SELECT version FROM calendar_versions WHERE active = 1").fetchone()
    base = builtin_calendar()
    if row is None:
        return base
    rows = tuple(
        tuple(r) for r in db.execute(
            "SELECT day, work, reason, name FROM calendar_entries WHERE version = ? ORDER BY day", [row[0]]
        ).fetchall()
    )
    key = (row[0], rows)
    built = _BUILT.get(key)
    if built is None:
        entries = [CalendarEntry(day=date.fromisoformat(d), work=bool(w), reason=r, name=n) for d, w, r, n in rows]
        if len(_BUILT) >= 64:
            _BUILT.clear()
        built = _BUILT[key] = base.with_entries(entries, row[0])
    return built


def publish_version(
    db: Database,
    *,
    version: str,
    entries: list[dict[str, Any]],
    source_notice: str,
    actor: str,
    role: str,
    now: datetime,
) -> int:
    """Store and activate a calendar version; recompute open clocks. Returns how many cases were recomputed."""
    if db.execute("SELECT 1 FROM calendar_versions WHERE version = ?", [version]).fetchone():
        raise ValueError(f"calendar version {version} already exists")
    db.execute("UPDATE calendar_versions SET active = 0 WHERE active = 1")
    db.execute(
        "INSERT INTO calendar_versions (version, source_notice, published_at, active) VALUES (?, ?, ?, 1)",
        [version, source_notice, now.isoformat()],
    )
    for e in entries:
        db.execute(
            "INSERT INTO calendar_entries (version, day, work, reason, name) VALUES (?, ?, ?, ?, ?)",
            [version, str(e["day"]), int(bool(e["work"])), e.get("reason", "other"), e.get("name", "")],
        )
    n = cases.recompute_open_clocks(db, current_calendar(db), now)
    audit.append(
        db,
        actor=actor,
        role=role,
        action="calendar.publish",
        object_type="calendar",
        object_id=version,
        after={"version": version, "entries": entries, "source_notice": source_notice},
        detail={"recomputed_cases": n},
    )
    changes.record(db, "calendar", version)
    return n
