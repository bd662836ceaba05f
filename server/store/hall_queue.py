"""Work lists of the services hall: each clerk's and handler's queue, and the street's overview.

Due times come from the case cache row (written with every event from the fold's clocks); what is
computed here at read time is only what depends on *now*: time left, working days left, overdue
and the "due soon" warning (domain.md §1.2: warning before expiry, yellow card when overdue).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.clocks import working_days_between
from server.domain.hall import KIND, STATES, TERMINAL

_BASE = (
    "SELECT c.id, c.number, c.state, c.org_path, c.version, c.due_at, c.clocks, c.created_at, c.updated_at,"
    " a.item_code, a.item_name, a.level, a.channel, p.name_masked"
    " FROM cases c JOIN hall_applications a ON a.case_id = c.id JOIN hall_applicants p ON p.id = a.applicant_id"
    " WHERE c.kind = ? AND (c.org_path = ? OR c.org_path LIKE ? ESCAPE '\\')"
)


def _scope_params(scope: str) -> list[Any]:
    like = scope.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    return [KIND, scope, like]


def clock_now(clock: dict[str, Any], calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """A cached clock summary brought up to ``now``."""
    out = {k: clock.get(k) for k in ("label", "unit", "duration", "started_at", "due_at", "status", "explanation",
                                     "provisional")}
    due_at = clock.get("due_at")
    status = clock.get("status")
    if status in ("stopped", "paused") or due_at is None:
        out.update(remaining_seconds=None, working_days_left=None,
                   overdue=bool(clock.get("overdue")) and status == "stopped")
        return out
    due = datetime.fromisoformat(due_at)
    remaining = int((due - now).total_seconds())
    out.update(
        status="breached" if remaining < 0 else "running",
        remaining_seconds=remaining,
        working_days_left=working_days_between(calendar, now.date(), due.astimezone(now.tzinfo).date()),
        overdue=remaining < 0,
    )
    return out


def _row(r: Any, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    row = dict(r)
    clocks = {name: clock_now(c, calendar, now) for name, c in json.loads(row.pop("clocks")).items()}
    running = [c for c in clocks.values() if c["status"] in ("running", "breached")]
    row.update(
        state_label=STATES.get(row["state"], row["state"]),
        applicant=row.pop("name_masked"),
        clocks=clocks,
        overdue=any(c["overdue"] for c in running),
        due_soon=any(c["working_days_left"] is not None and 0 <= c["working_days_left"] <= 1
                     and not c["overdue"] for c in running),
        remaining_seconds=min((c["remaining_seconds"] for c in running), default=None),
    )
    return row


def queue(
    db: Database,
    scope: str,
    calendar: WorkCalendar,
    now: datetime,
    *,
    states: frozenset[str] | None = None,
    item_code: str = "",
    channel: str = "",
    overdue_only: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    sql = _BASE
    params = _scope_params(scope)
    if states is not None:
        sql += f" AND c.state IN ({', '.join('?' for _ in states)})"
        params += sorted(states)
    else:
        sql += f" AND c.state NOT IN ({', '.join('?' for _ in TERMINAL)})"
        params += sorted(TERMINAL)
    if item_code:
        sql += " AND a.item_code = ?"
        params.append(item_code)
    if channel:
        sql += " AND a.channel = ?"
        params.append(channel)
    sql += " ORDER BY c.due_at IS NULL, c.due_at, c.created_at"
    rows = [_row(r, calendar, now) for r in db.execute(sql, params).fetchall()]
    if overdue_only:
        rows = [r for r in rows if r["overdue"]]
    return rows[:limit]


def overview(db: Database, scope: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """The street's applications by state, with overdue and due-soon counts of the open ones."""
    counts = {s: 0 for s in STATES}
    by_item: dict[str, int] = {}
    overdue = due_soon = 0
    for r in db.execute(_BASE, _scope_params(scope)).fetchall():
        row = _row(r, calendar, now)
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        if row["state"] in TERMINAL:
            continue
        by_item[row["item_name"]] = by_item.get(row["item_name"], 0) + 1
        overdue += row["overdue"]
        due_soon += row["due_soon"]
    return {
        "by_state": [{"state": s, "label": STATES[s], "count": counts.get(s, 0)} for s in STATES],
        "open": sum(n for s, n in counts.items() if s not in TERMINAL),
        "total": sum(counts.values()),
        "overdue": overdue,
        "due_soon": due_soon,
        "open_by_item": dict(sorted(by_item.items(), key=lambda kv: -kv[1])),
    }
