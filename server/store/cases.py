"""Cases on disk: the append-only ``case_events`` log and the ``cases`` cache row.

Every write here runs inside ``Store.write``: the event, the cache row, the audit entry
and the change-log row commit together. The cache row is only ever the fold of the
events (``rebuild_case`` proves it); deadlines are computed from the fold's clocks
with the node's current working calendar.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import OfficeHours, WorkCalendar
from server.domain.clock_rules import CALENDAR, OFFICE_HOURS
from server.domain.clocks import ClockState, ClockUnit, DueDate, clock_status, compute_due
from server.domain.engine import (
    PARENT,
    CaseKind,
    CaseView,
    Draft,
    Event,
    RuleViolation,
    advance,
    apply_event,
    decide,
    fold,
)
from server.domain.ids import uuid7
from server.domain.kinds import get_kind
from server.domain.roles import can_see, tier_of_path
from server.store import audit, changes, org

_EVENT_COLS = (
    "id case_id seq kind transition from_state to_state actor role org_unit on_behalf_of payload"
    " legal_basis device_time node_time hub_time origin_node device_id rules_version effective_time"
    " effective_basis effective_provisional"
).split()


# Per-kind look-ups run before ``decide``: the facts a kind's guards need from the database
# (the unit a case is dispatched to, the case it is merged into), passed as ``Draft.context``.
Lookup = Callable[[Database, CaseView | None, Draft], Mapping[str, Any]]
LOOKUPS: dict[str, Lookup] = {}


def register_lookup(kind_name: str, lookup: Lookup) -> Lookup:
    LOOKUPS[kind_name] = lookup
    return lookup


def _with_context(db: Database, kind: CaseKind, view: CaseView | None, draft: Draft, calendar: WorkCalendar) -> Draft:
    # Guards that judge deadlines (clock_rules.clock_due) get the calendar and, for hourly clocks, the office hours.
    hourly = view is not None and any(c.spec.unit is ClockUnit.WORKING_HOUR for c in view.clocks.values())
    facts = {CALENDAR: calendar, OFFICE_HOURS: org.office_hours_for(db, view.org_path) if view and hourly else None}
    lookup = LOOKUPS.get(kind.name)
    return replace(draft, context={**facts, **(lookup(db, view, draft) if lookup is not None else {})})


@dataclass(frozen=True)
class TransitionResult:
    view: CaseView | None
    event: Event | None
    conflict_id: str | None = None
    conflict_reason: str = ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_row(event: Event, kind: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "case_id": event.case_id,
        "seq": event.seq,
        "kind": kind,
        "transition": event.transition,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "actor": event.actor,
        "role": event.role,
        "org_unit": event.org_unit,
        "on_behalf_of": event.on_behalf_of,
        "payload": json.dumps(dict(event.payload), ensure_ascii=False, sort_keys=True, default=str),
        "legal_basis": event.legal_basis,
        "device_time": _iso(event.device_time),
        "node_time": event.node_time.isoformat(),
        "hub_time": None,
        "origin_node": event.origin_node,
        "device_id": event.device_id,
        "rules_version": event.rules_version,
        "effective_time": _iso(event.effective_time),
        "effective_basis": event.effective_basis,
        "effective_provisional": int(event.effective_provisional),
    }


def row_event(row: dict[str, Any]) -> Event:
    return Event(
        id=row["id"],
        case_id=row["case_id"],
        seq=int(row["seq"]),
        transition=row["transition"],
        from_state=row["from_state"],
        to_state=row["to_state"],
        actor=row["actor"],
        role=row["role"],
        org_unit=row["org_unit"],
        payload=json.loads(row["payload"]),
        node_time=datetime.fromisoformat(row["node_time"]),
        on_behalf_of=row["on_behalf_of"],
        legal_basis=row["legal_basis"],
        device_time=datetime.fromisoformat(row["device_time"]) if row["device_time"] else None,
        device_id=row["device_id"],
        origin_node=row["origin_node"],
        rules_version=int(row["rules_version"]),
        effective_time=datetime.fromisoformat(row["effective_time"]) if row["effective_time"] else None,
        effective_basis=row["effective_basis"],
        effective_provisional=bool(row["effective_provisional"]),
    )


def load_events(db: Database, case_id: str) -> list[Event]:
    cur = db.execute(
        f"SELECT {', '.join(_EVENT_COLS)} FROM case_events WHERE case_id = ? ORDER BY seq", [case_id]
    )
    return [row_event(dict(zip(_EVENT_COLS, r, strict=True))) for r in cur.fetchall()]


def load_view(db: Database, case_id: str) -> tuple[CaseKind, CaseView, dict[str, Any]]:
    row = db.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()
    if row is None:
        raise RuleViolation("not_found", "case_not_found", "未找到该事项", "case_id")
    case = dict(row)
    kind = get_kind(case["kind"])
    view = fold(kind, load_events(db, case_id))
    return kind, view, case


def clock_summary(
    view: CaseView, calendar: WorkCalendar, now: datetime, hours: OfficeHours | None = None
) -> tuple[dict[str, Any], str | None]:
    """Per-clock due date, status and explanation; plus the earliest due date of running clocks."""
    out: dict[str, Any] = {}
    earliest: str | None = None
    for name, clock in view.clocks.items():
        due = compute_due(clock, calendar, hours)
        status = clock_status(clock, due, now)
        out[name] = {
            "label": clock.spec.label_zh,
            "unit": str(clock.spec.unit),
            "duration": clock.spec.duration,
            "started_at": clock.started_at.isoformat(),
            "due_at": _iso(due.due_at),
            "provisional": due.provisional,
            "explanation": due.explanation_zh,
            "calendar_version": due.calendar_version,
            "status": status.state,
            "overdue": status.overdue,
            "remaining_seconds": status.remaining_seconds,
        }
        if due.due_at is not None and status.state == "running":
            iso = due.due_at.isoformat()
            earliest = iso if earliest is None or iso < earliest else earliest
    return out, earliest


def _cache_values(db: Database, view: CaseView, calendar: WorkCalendar, now: datetime) -> list[Any]:
    """state, version, data, clocks, due_at, org_path, owner_tier, updated_at: the cache row's folded part."""
    # Office hours matter only to working-hour clocks; day-unit clocks (all of the services hall's)
    # never read them, so the org look-up is skipped for them.
    hourly = any(c.spec.unit is ClockUnit.WORKING_HOUR for c in view.clocks.values())
    clocks, due_at = clock_summary(view, calendar, now, org.office_hours_for(db, view.org_path) if hourly else None)
    return [view.state, view.version, json.dumps(view.data, ensure_ascii=False, default=str),
            json.dumps(clocks, ensure_ascii=False), due_at, view.org_path, tier_of_path(view.org_path).value,
            now.isoformat()]


def _write_cache(db: Database, kind: CaseKind, view: CaseView, calendar: WorkCalendar, now: datetime) -> None:
    values = _keep_held(db, view.id, _cache_values(db, view, calendar, now), now)
    db.execute(
        "UPDATE cases SET state = ?, version = ?, data = ?, clocks = ?, due_at = ?, org_path = ?, owner_tier = ?,"
        " updated_at = ? WHERE id = ?",
        [*values, view.id],
    )


HELD = "earlier_pending"  # a cached clock's due date a new calendar would move earlier (server.store.calendar_earlier)


def _keep_held(db: Database, case_id: str, values: list[Any], now: datetime) -> list[Any]:
    """A due date a calendar publish held back stays held through later events on the case, for as long as
    the clock still comes out at exactly the held earlier date: only a person's confirmation applies it. An
    event that changes the clock itself (a pause, an extension) ends the hold, its date being new anyway."""
    row = db.execute("SELECT clocks FROM cases WHERE id = ?", [case_id]).fetchone()
    old: dict[str, Any] = json.loads(row[0] or "{}") if row is not None else {}
    if not any(isinstance(c, dict) and c.get(HELD) for c in old.values()):
        return values
    clocks: dict[str, Any] = json.loads(values[3])
    for name, summary in clocks.items():
        before = old.get(name) or {}
        pending = before.get(HELD)
        if not pending or summary.get("due_at") != pending.get("due_at") or not before.get("due_at"):
            continue
        held_due = datetime.fromisoformat(before["due_at"])
        remaining = int((held_due - now).total_seconds())
        summary.update({k: before[k] for k in ("due_at", "provisional", "explanation", "calendar_version")
                        if k in before})
        summary[HELD] = pending
        if summary.get("status") in ("running", "breached"):
            summary.update(status="running" if remaining >= 0 else "breached", overdue=remaining < 0,
                           remaining_seconds=remaining)
    running = [c["due_at"] for c in clocks.values() if c.get("due_at") and c.get("status") == "running"]
    return [*values[:3], json.dumps(clocks, ensure_ascii=False), min(running) if running else None, *values[5:]]


def next_number(db: Database, prefix: str, day: datetime) -> str:
    """Human case number ``<prefix>-<yyyymmdd>-<n>``: a display identifier only, never a key."""
    key = f"{prefix}-{day:%Y%m%d}"
    db.execute(
        "INSERT INTO case_counters (prefix, n) VALUES (?, 1) ON CONFLICT(prefix) DO UPDATE SET n = n + 1", [key]
    )
    n = db.execute("SELECT n FROM case_counters WHERE prefix = ?", [key]).fetchone()[0]
    return f"{key}-{n:04d}"


def create_case(
    db: Database,
    kind: CaseKind,
    draft: Draft,
    *,
    org_path: str,
    node_id: str,
    calendar: WorkCalendar,
    case_id: str | None = None,
    number_prefix: str | None = None,
) -> tuple[CaseView, str]:
    """Create a case with its first event. Returns (view, human case number)."""
    case_id = case_id or uuid7()
    # The creating event carries the org path, so the fold alone knows where the case lives.
    draft = replace(draft, payload={**draft.payload, "_org_path": org_path})
    event = decide(kind, None, _with_context(db, kind, None, draft, calendar), case_id, org_path)
    parent_id = _check_parent(db, kind, draft) if kind.parent_kind is not None else None
    event = _with_origin(event, node_id)
    prefix = number_prefix or _street_code(org_path) or kind.number_prefix or kind.name
    number = next_number(db, prefix, draft.node_time)
    now = draft.node_time
    # The cache row is inserted once with its folded state (one INSERT instead of INSERT + UPDATE);
    # it is still exactly the fold of the event log, written in the same transaction as the event.
    first = apply_event(kind, None, event, org_path)
    db.execute(
        "INSERT INTO cases (state, version, data, clocks, due_at, org_path, owner_tier, updated_at,"
        " id, kind, number, created_at, origin_node, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*_cache_values(db, first, calendar, event.node_time), case_id, kind.name, number, now.isoformat(),
         node_id, parent_id],
    )
    view = _append(db, kind, None, event, org_path, calendar, folded=first)
    return view, number


def _check_parent(db: Database, kind: CaseKind, draft: Draft) -> str:
    """A child case (a consultation's comment, a request's third-party consultation) is created under an
    existing case of its kind's ``parent_kind`` that the actor may see; ``decide`` checked it is named."""
    parent_id = str(draft.payload[PARENT])
    row = db.execute("SELECT kind, org_path FROM cases WHERE id = ?", [parent_id]).fetchone()
    if row is None or row[0] != kind.parent_kind:
        raise RuleViolation("invalid", "unknown_parent", "未找到所属的上级事项", f"payload.{PARENT}")
    if draft.principal is not None and not can_see(draft.principal, row[1]):
        raise RuleViolation("forbidden", "out_of_scope", "上级事项不在您的管辖范围内", f"payload.{PARENT}")
    return parent_id


def children(db: Database, case_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The child cases of ``case_id`` (optionally of one kind), oldest first."""
    sql = ("SELECT id, kind, number, state, version, org_path, due_at, created_at, updated_at FROM cases"
           " WHERE parent_id = ?")
    params: list[Any] = [case_id]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    cur = db.execute(sql + " ORDER BY created_at, id", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _street_code(org_path: str) -> str:
    parts = [p for p in org_path.split("/") if p]
    return parts[1] if len(parts) > 1 else ""


def _with_origin(event: Event, node_id: str) -> Event:
    return replace(event, origin_node=node_id)


def _append(
    db: Database, kind: CaseKind, view: CaseView | None, event: Event, org_path: str, calendar: WorkCalendar,
    *, folded: CaseView | None = None,
) -> CaseView:
    """Append ``event``; ``folded`` is given by create_case, whose cache row already holds the new state."""
    row = event_row(event, kind.name)
    db.execute(
        f"INSERT INTO case_events ({', '.join(_EVENT_COLS)}) VALUES ({', '.join('?' for _ in _EVENT_COLS)})",
        [row[c] for c in _EVENT_COLS],
    )
    if folded is None:
        assert view is not None
        new = view  # freshly folded for this write only: advanced in place, not copied
        advance(kind, new, event)
        _write_cache(db, kind, new, calendar, event.node_time)
    else:
        new = folded
    audit.append(
        db,
        actor=event.actor,
        role=event.role,
        action=f"case.{event.transition}",
        object_type=kind.name,
        object_id=event.case_id,
        org_path=new.org_path,
        after={"event": event.id, "seq": event.seq, "to": event.to_state, "payload": row["payload"]},
        legal_basis=event.legal_basis,
        on_behalf_of=event.on_behalf_of,
        device_id=event.device_id,
        detail={"from": event.from_state, "to": event.to_state, "event_id": event.id},
    )
    changes.record(db, "case_event", event.id, new.org_path)
    changes.record(db, "case", event.case_id, new.org_path)
    return new


def transition(
    db: Database, case_id: str, draft: Draft, *, node_id: str, calendar: WorkCalendar
) -> TransitionResult:
    """Apply one transition. A stale ``base_version`` becomes a conflict record, not an error-and-forget."""
    replay = _replayed(db, case_id, draft)
    if replay is not None:
        return replay
    kind, view, _case = load_view(db, case_id)
    try:
        event = decide(kind, view, _with_context(db, kind, view, draft, calendar), case_id, view.org_path)
    except RuleViolation as exc:
        if exc.code != "stale_version":
            raise
        conflict_id = uuid7()
        db.execute(
            "INSERT INTO case_conflicts (id, case_id, event, base_version, current_version, current_state, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [conflict_id, case_id, json.dumps(_draft_json(draft), ensure_ascii=False, default=str),
             draft.base_version, view.version, view.state, exc.message, draft.node_time.isoformat()],
        )
        p = draft.principal
        audit.append(
            db,
            actor=p.user_id if p else "system",
            role=p.role.value if p else "system",
            action="case.conflict",
            object_type=kind.name,
            object_id=case_id,
            org_path=view.org_path,
            after=_draft_json(draft),
            detail={"conflict_id": conflict_id, "transition": draft.transition},
        )
        changes.record(db, "case_conflict", conflict_id, view.org_path)
        return TransitionResult(view, None, conflict_id, exc.message)
    event = _with_origin(event, node_id)
    return TransitionResult(_append(db, kind, view, event, view.org_path, calendar), event)


def _replayed(db: Database, case_id: str, draft: Draft) -> TransitionResult | None:
    """An event id seen before: the same act sent again (lost response, replayed outbox) gets the original
    result; the id reused for another act, or for another case, is an ``id_conflict`` and changes nothing."""
    cur = db.execute(f"SELECT {', '.join(_EVENT_COLS)} FROM case_events WHERE id = ?", [draft.event_id])
    row = cur.fetchone()
    if row is None:
        return None
    event = row_event(dict(zip(_EVENT_COLS, row, strict=True)))
    actor = draft.principal.user_id if draft.principal is not None else "system"
    same = (event.case_id == case_id and event.transition == draft.transition and event.actor == actor
            and event.on_behalf_of == draft.on_behalf_of and _client_part(event.payload) == _client_part(draft.payload))
    if not same:
        where = "另一事项" if event.case_id != case_id else "内容不同的另一次办理"
        raise RuleViolation("conflict", "id_conflict", f"该提交编号已用于{where}，请勿重复使用编号", "event_id")
    kind, view, _ = load_view(db, case_id)
    return TransitionResult(fold(kind, [e for e in view.events if e.seq <= event.seq]), event)


def _client_part(payload: Mapping[str, Any]) -> str:
    """What the client sent: the engine adds "_"-keys (a route's ``_org_path``) to the stored payload."""
    body = {k: v for k, v in payload.items() if not k.startswith("_")}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, default=str)


def _draft_json(draft: Draft) -> dict[str, Any]:
    return {
        "event_id": draft.event_id,
        "transition": draft.transition,
        "payload": dict(draft.payload),
        "actor": draft.principal.user_id if draft.principal else "system",
        "role": draft.principal.role.value if draft.principal else "system",
        "base_version": draft.base_version,
        "device_time": _iso(draft.device_time),
        "node_time": draft.node_time.isoformat(),
    }


def case_row(db: Database, case_id: str) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()
    if row is None:
        return None
    case = dict(row)
    case["data"] = json.loads(case["data"])
    case["clocks"] = json.loads(case["clocks"])
    return case


def rebuild_case(db: Database, case_id: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """Fold the log again and compare with the cache row; returns the differences (empty = consistent)."""
    kind, view, case = load_view(db, case_id)
    diffs: dict[str, Any] = {}
    if view.state != case["state"]:
        diffs["state"] = (case["state"], view.state)
    if view.version != case["version"]:
        diffs["version"] = (case["version"], view.version)
    stored = json.loads(case["data"])
    folded = json.loads(json.dumps(view.data, default=str))
    if stored != folded:
        diffs["data"] = (stored, folded)
    if view.org_path != case["org_path"]:
        diffs["org_path"] = (case["org_path"], view.org_path)
    # The row was written at ``updated_at``: which clocks were running (so ``due_at``) is judged then.
    written = datetime.fromisoformat(case["updated_at"])
    hourly = any(c.spec.unit is ClockUnit.WORKING_HOUR for c in view.clocks.values())
    clocks, due_at = clock_summary(view, calendar, written, org.office_hours_for(db, view.org_path) if hourly else None)
    cached = json.loads(case["clocks"])
    # A due date a new calendar would move earlier is held for a person to confirm (server.store.
    # calendar_earlier): the row keeps the old date and records the fold's in ``earlier_pending``.
    held = any("earlier_pending" in v for v in cached.values())
    cached = {k: {**v, **v.get("earlier_pending", {})} for k, v in cached.items()}
    # A row written under an earlier calendar version keeps that version's dates until it is recomputed
    # (``recompute_open_clocks`` does so for open cases only): its dates are not compared, its facts are.
    same_calendar = all(cached.get(k, {}).get("calendar_version") == v["calendar_version"] for k, v in clocks.items())
    stored_clocks = {k: _stable(v, same_calendar) for k, v in cached.items()}
    folded_clocks = {k: _stable(v, same_calendar) for k, v in clocks.items()}
    if stored_clocks != folded_clocks:
        diffs["clocks"] = (stored_clocks, folded_clocks)
    if same_calendar and not held and due_at != case["due_at"]:
        diffs["due_at"] = (case["due_at"], due_at)
    tier = tier_of_path(view.org_path).value
    if tier != case["owner_tier"]:
        diffs["owner_tier"] = (case["owner_tier"], tier)
    if view.parent_id != case.get("parent_id"):
        diffs["parent_id"] = (case.get("parent_id"), view.parent_id)
    return diffs


# What a clock's cached summary must share with a fresh fold: status, overdue and remaining time change
# with the hour the row was written, not with the facts.
_CLOCK_FACTS = ("label", "unit", "duration", "started_at")
_CALENDAR_FACTS = ("due_at", "provisional", "calendar_version")


def _stable(summary: dict[str, Any], with_dates: bool) -> dict[str, Any]:
    return {k: summary.get(k) for k in (_CLOCK_FACTS + _CALENDAR_FACTS if with_dates else _CLOCK_FACTS)}


def open_case_ids(db: Database, kinds: list[str] | None = None) -> list[str]:
    rows = db.execute("SELECT id, kind, state FROM cases").fetchall()
    out = []
    for case_id, kind_name, state in rows:
        if kinds and kind_name not in kinds:
            continue
        try:
            kind = get_kind(kind_name)
        except RuleViolation:
            continue
        if state not in kind.terminal:
            out.append(case_id)
    return out


def recompute_open_clocks(db: Database, calendar: WorkCalendar, now: datetime) -> int:
    """After a calendar change: recompute every open case's deadlines (the caller audits)."""
    n = 0
    for case_id in open_case_ids(db):
        kind, view, _ = load_view(db, case_id)
        _write_cache(db, kind, view, calendar, now)
        n += 1
    return n


def due_timers(db: Database, calendar: WorkCalendar, now: datetime) -> list[tuple[str, str]]:
    """(case_id, transition) pairs whose timer clock has run out (see ``due_timer_details``)."""
    return [(case_id, name) for case_id, name, _due in due_timer_details(db, calendar, now)]


def due_timer_details(db: Database, calendar: WorkCalendar, now: datetime) -> list[tuple[str, str, DueDate]]:
    """(case_id, transition) pairs whose timer clock has run out: deemed acceptance, 挂账 expiry.

    Runs every minute, so it reads only cases of kinds with timers, in a timer's states, whose
    cached due date has passed; only those are folded again to confirm.
    """
    from server.domain.kinds import REGISTRY

    out: list[tuple[str, str, DueDate]] = []
    seen: set[str] = set()
    for kind in REGISTRY.values():
        for timer in kind.timers:
            states = sorted(timer.states)
            rows = db.execute(
                f"SELECT id, json_extract(clocks, ?) FROM cases WHERE kind = ? AND state IN"
                f" ({', '.join('?' for _ in states)})",
                [f"$.{timer.clock}.due_at", kind.name, *states],
            ).fetchall()
            for case_id, cached_due in rows:
                if case_id in seen or not cached_due or datetime.fromisoformat(cached_due) > now:
                    continue
                _, view, _ = load_view(db, case_id)
                clock: ClockState | None = view.clocks.get(timer.clock)
                if view.state not in timer.states or clock is None or clock.stopped_at is not None:
                    continue
                due = compute_due(clock, calendar, org.office_hours_for(db, view.org_path))
                if due.due_at is not None and due.due_at <= now:
                    out.append((case_id, timer.transition, due))
                    seen.add(case_id)
    return out


def timer_time(due: DueDate, now: datetime) -> dict[str, Any]:
    """A timer's act takes effect when its clock ran out, not when the scheduler noticed (issue 10 point 4:
    a 挂账 that expired on 04-01 and fired on 04-10 resumes the handling clock from 04-01). On a due date
    of a calendar year not yet published the event says so: deemed acceptance cannot be undone."""
    assert due.due_at is not None
    basis = f"按时限届满时间 {due.due_at:%Y-%m-%d %H:%M} 计（系统于 {now:%Y-%m-%d %H:%M} 执行）"
    if due.provisional:
        basis += "；届满日所在年度的节假日安排尚未发布，为暂定日期"
    return {"effective_time": due.due_at, "effective_basis": basis, "effective_provisional": due.provisional}


def fire_timers(db: Database, calendar: WorkCalendar, now: datetime, node_id: str) -> int:
    """Make the engine's own transitions for every timer that has run out."""
    fired = 0
    for case_id, name, due in due_timer_details(db, calendar, now):
        draft = Draft(transition=name, payload={}, principal=None, node_time=now, event_id=uuid7(),
                      **timer_time(due, now))
        transition(db, case_id, draft, node_id=node_id, calendar=calendar)
        fired += 1
    return fired
