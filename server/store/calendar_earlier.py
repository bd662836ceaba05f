"""Due dates a new calendar would move earlier: held, listed, and applied only when a person confirms.

Why: a later due date is always safe to apply (nobody is harmed by more time), but an earlier one can
make a case overdue, or let a timer such as deemed acceptance (行政许可法 art. 32) fire at once, on the
strength of a file someone published. So the recompute after a publish keeps such a clock's cached due
date, marks it (``earlier_pending`` in the cached clock) and records it in ``calendar_earlier``; a
street or district admin confirms it (audited), and only then is the earlier date written.

The hold lives in the case's cached clocks. Timers read that cache first (``cases.due_timers``), so
they do not fire before the held date; a later event on the case keeps the hold as long as the clock
still comes out at the held earlier date (``cases._keep_held``); an event that changes the clock itself
(a pause, an extension) gives it a new date, and the list then shows it as no longer held.

Cases are read through ``server.store.cases``' public functions; only the cached ``clocks`` and
``due_at`` columns are written here, exactly as ``cases.clock_summary`` computes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.clocks import ClockUnit
from server.domain.engine import CaseView
from server.domain.ids import uuid7
from server.domain.roles import path_within
from server.store import audit, cases, org

PENDING_KEY = "earlier_pending"  # in a held clock's cached summary: the earlier date awaiting confirmation


@dataclass(frozen=True)
class HeldDue:
    id: str
    case_id: str
    number: str
    kind: str
    org_path: str
    clock: str
    label: str
    held_due_at: str
    new_due_at: str
    version: str
    explanation: str
    created_at: str
    status: str = "pending"
    current_due_at: str | None = None  # what the case's cache shows now (differs once an event applied it)

    @property
    def still_held(self) -> bool:
        return self.status == "pending" and self.current_due_at == self.held_due_at

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "still_held": self.still_held}


class NothingToConfirm(LookupError):
    """The case has no pending earlier due date."""


class HoldChanged(ValueError):
    """The case's clocks no longer give the dates that were listed: show the list again before confirming."""


def _hours(db: Database, view: CaseView) -> Any:
    hourly = any(c.spec.unit is ClockUnit.WORKING_HOUR for c in view.clocks.values())
    return org.office_hours_for(db, view.org_path) if hourly else None


def _moves_earlier(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """An open clock whose due date the new calendar puts before the one the case shows now."""
    if before is None or not before.get("due_at") or not after.get("due_at") or after.get("status") == "stopped":
        return False
    return datetime.fromisoformat(after["due_at"]) < datetime.fromisoformat(before["due_at"])


def _earliest_running(clocks: dict[str, Any]) -> str | None:
    dues = [c["due_at"] for c in clocks.values() if c.get("due_at") and c.get("status") == "running"]
    return min(dues, key=datetime.fromisoformat) if dues else None


def _write(db: Database, case_id: str, clocks: dict[str, Any], now: datetime) -> None:
    db.execute(
        "UPDATE cases SET clocks = ?, due_at = ?, updated_at = ? WHERE id = ?",
        [json.dumps(clocks, ensure_ascii=False), _earliest_running(clocks), now.isoformat(), case_id],
    )


def _pending(db: Database, case_id: str) -> dict[str, dict[str, Any]]:
    rows = db.execute(
        "SELECT id, clock, held_due_at, new_due_at FROM calendar_earlier WHERE case_id = ? AND status = 'pending'",
        [case_id],
    ).fetchall()
    return {r[1]: {"id": r[0], "held_due_at": r[2], "new_due_at": r[3]} for r in rows}


def _resolve(db: Database, ids: list[str], status: str, now: datetime, by: str = "", note: str = "") -> None:
    for hold_id in ids:
        db.execute(
            "UPDATE calendar_earlier SET status = ?, resolved_at = ?, resolved_by = ?, note = ? WHERE id = ?",
            [status, now.isoformat(), by, note, hold_id],
        )


def recompute_open_clocks_holding_earlier(
    db: Database, calendar: WorkCalendar, now: datetime, version: str
) -> tuple[int, list[HeldDue]]:
    """Recompute every open case's clocks; hold each due date that would move earlier. (count, new holds)"""
    recomputed, held = 0, []
    for case_id in cases.open_case_ids(db):
        kind, view, row = cases.load_view(db, case_id)
        before: dict[str, Any] = json.loads(row["clocks"] or "{}")
        after, _ = cases.clock_summary(view, calendar, now, _hours(db, view))
        pending = _pending(db, case_id)
        merged: dict[str, Any] = {}
        for name, entry in after.items():
            prior = pending.pop(name, None)
            if not _moves_earlier(before.get(name), entry):
                merged[name] = entry
                if prior is not None:  # the new calendar no longer moves it earlier: nothing to confirm
                    applied = PENDING_KEY not in (before.get(name) or {})
                    _resolve(db, [prior["id"]], "superseded", now,
                             note="事项后续办理时已按新日历计算" if applied else f"日历版本 {version} 不再使其提前")
                continue
            kept = {k: v for k, v in before[name].items() if k != PENDING_KEY}
            kept[PENDING_KEY] = {k: entry[k] for k in ("due_at", "provisional", "calendar_version", "explanation")}
            merged[name] = kept
            if prior is not None and prior["new_due_at"] == entry["due_at"]:
                continue  # already listed with the same earlier date
            if prior is not None:
                _resolve(db, [prior["id"]], "superseded", now, note=f"日历版本 {version} 给出新的日期")
            hold = HeldDue(uuid7(), case_id, row["number"], kind.name, view.org_path, name, entry["label"],
                           kept["due_at"], entry["due_at"], version, entry["explanation"], now.isoformat())
            db.execute(
                "INSERT INTO calendar_earlier (id, version, case_id, clock, held_due_at, new_due_at, explanation,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [hold.id, version, case_id, name, hold.held_due_at, hold.new_due_at, hold.explanation, hold.created_at],
            )
            held.append(hold)
        _resolve(db, [p["id"] for p in pending.values()], "superseded", now, note="该计时已不存在")
        _write(db, case_id, merged, now)
        recomputed += 1
    return recomputed, held


def list_earlier(db: Database, scope: str | None, *, status: str = "pending", limit: int = 200) -> list[HeldDue]:
    """Held earlier due dates of cases under ``scope`` (None: the whole node), newest first.

    ``status``: pending | confirmed | superseded | all."""
    sql = (
        "SELECT h.id, h.case_id, c.number, c.kind, c.org_path, h.clock, h.held_due_at, h.new_due_at, h.version,"
        " h.explanation, h.created_at, h.status, c.clocks FROM calendar_earlier h JOIN cases c ON c.id = h.case_id"
    )
    params: list[Any] = []
    if status != "all":
        sql += " WHERE h.status = ?"
        params.append(status)
    sql += " ORDER BY h.created_at DESC, h.id DESC"
    out = []
    for r in db.execute(sql, params).fetchall():
        if scope is not None and not path_within(r[4], scope):
            continue
        clock = json.loads(r[12] or "{}").get(r[5], {})
        out.append(HeldDue(r[0], r[1], r[2], r[3], r[4], r[5], str(clock.get("label", r[5])), r[6], r[7], r[8], r[9],
                           r[10], r[11], clock.get("due_at")))
        if len(out) >= limit:
            break
    return out


def find_case(db: Database, ref: str) -> str | None:
    """A case id from its id or its human number (the CLI accepts either)."""
    row = db.execute("SELECT id FROM cases WHERE id = ? OR number = ?", [ref, ref]).fetchone()
    return None if row is None else str(row[0])


def confirm_earlier(
    db: Database, case_id: str, calendar: WorkCalendar, *, actor: str, role: str, note: str, now: datetime,
) -> dict[str, Any]:
    """Apply the held earlier due dates of one case, as listed; audited. Returns {clock: {from, to}}."""
    pending = _pending(db, case_id)
    if not pending:
        raise NothingToConfirm("该事项没有待确认的提前期限")
    kind, view, row = cases.load_view(db, case_id)
    after, _ = cases.clock_summary(view, calendar, now, _hours(db, view))
    changed = {
        name: {"from": hold["held_due_at"], "to": hold["new_due_at"]} for name, hold in pending.items()
    }
    for name, hold in pending.items():
        if (after.get(name) or {}).get("due_at") != hold["new_due_at"]:
            raise HoldChanged(f"{name} 的期限已变化（现为 {(after.get(name) or {}).get('due_at')}），请刷新列表后再确认")
    _write(db, case_id, after, now)
    _resolve(db, [h["id"] for h in pending.values()], "confirmed", now, by=actor, note=note)
    audit.append(
        db,
        actor=actor,
        role=role,
        action="calendar.confirm_earlier",
        object_type=kind.name,
        object_id=case_id,
        org_path=view.org_path,
        before={name: c["from"] for name, c in changed.items()},
        after={name: c["to"] for name, c in changed.items()},
        detail={"holds": sorted(h["id"] for h in pending.values()), "note": note,
                "calendar_version": calendar.version},
    )
    return changed
