"""Grid incidents on disk: the ``incident_report`` intake, the engine look-ups, merges and escalations.

Reports arrive only as ``incident_report`` envelopes (``POST /sync/v1/outbox``, DESIGN.md §6): the
handler below validates the payload, builds the creating event (category snapshot, the category's
own handling limit as the case's clock, photos from the envelope's image attachments) and lets the
case engine decide; every rule lives in ``server.domain.grid``. With the case it writes, in the same
transaction: the geographic index row, duplicate suggestions, the hot-spot link and, for an
emergency category, the escalation.

Priority sync contract (for the sync engine): an emergency incident has ``cases.data.emergency`` and
``cases.data.priority_sync`` true, and a row in ``grid_escalations`` (id = case id) with
``synced_at`` NULL until the hub has it; a change-log row ``grid_escalation`` is written with it.
``pending_escalations`` / ``mark_escalations_synced`` read and stamp that queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.grid import IncidentReportPayload, PhotoRef
from server.domain.calendar import WorkCalendar
from server.domain.engine import CaseView, Draft
from server.domain.grid import GRID_INCIDENT, KIND, clock_spec_for
from server.domain.grid_rules import Report, find_duplicates, gap, moved_centre, nearest_hotspot, street_of
from server.domain.ids import uuid7
from server.domain.roles import Principal
from server.errors import field_errors_from_pydantic
from server.store import audit, cases, changes, intake, org
from server.store.grid_config import get_category, load_settings
from server.store.intake import IntakeContext, IntakeResult
from server.store.scope import under

FORM_VERSIONS = frozenset({"1"})


# --- look-ups for the engine's guards ----------------------------------------------------


def case_brief(db: Database, case_id: str) -> dict[str, Any] | None:
    row = db.execute("SELECT id, kind, state, org_path, data, created_at FROM cases WHERE id = ?",
                     [case_id]).fetchone()
    if row is None:
        return None
    absorbed = [json.loads(p).get("merged_case") for (p,) in db.execute(
        "SELECT payload FROM case_events WHERE case_id = ? AND transition = 'absorb'", [case_id]).fetchall()]
    return {"id": row[0], "kind": row[1], "state": row[2], "org_path": row[3], "data": json.loads(row[4]),
            "reported_at": row[5], "absorbed": absorbed}


def lookup(db: Database, view: CaseView | None, draft: Draft) -> dict[str, Any]:
    """The facts ``server.domain.grid``'s guards need (registered with ``cases.register_lookup``)."""
    p = draft.payload
    ctx: dict[str, Any] = {"settings": load_settings(db).model_dump()}
    if view is None and draft.principal is not None:
        ctx["grid"] = org.get_unit(db, draft.principal.org_unit)
        code = p.get("category_code")
        ctx["category"] = get_category(db, code) if isinstance(code, str) else None
    if isinstance(p.get("unit_code"), str):
        ctx["unit"] = org.get_unit(db, p["unit_code"])
    if view is not None and isinstance(view.data.get("unit_code"), str):
        ctx["target"] = org.get_unit(db, view.data["unit_code"])
    other = p.get("merged_case") if draft.transition == "absorb" else p.get("merged_into")
    if draft.transition in ("absorb", "merge") and isinstance(other, str):
        ctx["other"] = case_brief(db, other)
    return ctx




# --- intake of incident reports -----------------------------------------------------------


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return field_errors_from_pydantic(exc, "payload")


def _envelope_parts(raw: Mapping[str, Any], ctx: IntakeContext) -> tuple[Mapping[str, Any], list[Any], Any, Any]:
    """(payload, attachments, submission_id, form_version) whether the outbox hands us the whole
    envelope or its payload (then the envelope, if any, is in ``ctx.services["envelope"]``)."""
    envelope: Mapping[str, Any] = ctx.services.get("envelope") or {}
    if isinstance(raw.get("payload"), Mapping) and "submission_id" in raw:
        envelope, raw = raw, raw["payload"]
    attachments = envelope.get("attachments") or ctx.services.get("attachments") or []
    return raw, list(attachments), envelope.get("submission_id") or ctx.services.get("submission_id"), \
        envelope.get("form_version")


def _photos(form: IncidentReportPayload, attachments: list[Any]) -> list[dict[str, Any]]:
    photos = [p.model_dump(exclude_none=True) for p in form.photos]
    seen = {p["sha256"] for p in photos}
    for a in attachments:
        try:
            ref = PhotoRef.model_validate({k: a.get(k) for k in ("sha256", "mime", "name", "size")})
        except (ValidationError, AttributeError):
            continue  # not an image: kept by the envelope, not a photo of the scene
        if ref.sha256 not in seen:
            seen.add(ref.sha256)
            photos.append(ref.model_dump(exclude_none=True))
    return photos


def report_payload(db: Database, form: IncidentReportPayload, photos: list[dict[str, Any]],
                   principal: Principal, submission_id: str) -> dict[str, Any]:
    """The creating event: the form, a snapshot of its category and the category's own clock."""
    payload: dict[str, Any] = {
        **form.model_dump(mode="json", exclude_none=True, exclude={"photos"}),
        "photos": photos,
        "grid_code": principal.org_unit,
        "submission_id": submission_id,
    }
    category = get_category(db, form.category_code)
    if category is not None:
        payload["category"] = {k: category[k] for k in (
            "name", "kind", "major_class", "minor_class", "time_limit", "closure_condition")}
        payload["emergency"] = category["emergency"]
        if category["emergency"]:
            payload["priority_sync"] = True
        settings = load_settings(db)
        payload["_clocks"] = {
            "handle": clock_spec_for(category["time_limit"], category["name"]),
            "on_account": {"unit": "calendar_day", "duration": settings.on_account_review_days,
                           "label_zh": "挂账复核期"},
        }
    return payload


def handle_incident_report(db: Database, raw: dict[str, Any], ctx: IntakeContext) -> IntakeResult:
    """Intake handler for ``incident_report`` envelopes: nothing is written unless all is well."""
    payload, attachments, submission_id, form_version = _envelope_parts(raw, ctx)
    if form_version is not None and str(form_version) not in FORM_VERSIONS:
        return IntakeResult.invalid("form_version", f"不支持的表单版本 {form_version}，请更新应用")
    try:
        form = IncidentReportPayload.model_validate(dict(payload))
    except ValidationError as exc:
        return IntakeResult("invalid", _field_errors(exc))
    case_id = str(submission_id or uuid7())
    if db.execute("SELECT 1 FROM cases WHERE id = ?", [case_id]).fetchone():
        return IntakeResult("created", record=incident_record(db, case_id))  # the same report again
    return intake.attempt(db, lambda: create_incident(
        db, form, _photos(form, attachments), ctx.principal, case_id=case_id, node_id=ctx.node_id,
        calendar=ctx.calendar, now=ctx.received_at, device_id=ctx.device_id, device_time=ctx.device_time))


def create_incident(db: Database, form: IncidentReportPayload, photos: list[dict[str, Any]], principal: Principal,
                    *, case_id: str, node_id: str, calendar: WorkCalendar, now: datetime,
                    device_id: str | None = None, device_time: datetime | None = None) -> dict[str, Any]:
    draft = Draft(transition="report", payload=report_payload(db, form, photos, principal, case_id),
                  principal=principal, node_time=now, event_id=uuid7(), device_id=device_id,
                  device_time=device_time)
    view, _number = cases.create_case(db, GRID_INCIDENT, draft, org_path=principal.org_path, node_id=node_id,
                                      calendar=calendar, case_id=case_id)
    _index(db, view, principal, now)
    return incident_record(db, case_id)


def incident_record(db: Database, case_id: str) -> dict[str, Any]:
    row = db.execute("SELECT number, state, data FROM cases WHERE id = ?", [case_id]).fetchone()
    data = json.loads(row[2])
    dupes = db.execute("SELECT COUNT(*) FROM grid_duplicate_suggestions WHERE case_id = ? AND status = 'open'",
                       [case_id]).fetchone()[0]
    return {"case_id": case_id, "number": row[0], "state": row[1], "emergency": bool(data.get("emergency")),
            "possible_duplicates": int(dupes)}


def _index(db: Database, view: CaseView, principal: Principal, now: datetime) -> None:
    """What comes with a new report: geo index, duplicate suggestions, hot spot, escalation."""
    data = view.data
    report = Report.from_data(view.id, view.org_path, view.state, data, now)
    db.execute(
        "INSERT INTO grid_incidents (case_id, submission_id, org_path, grid_code, category_code, lng, lat,"
        " reported_at, reporter_id, emergency, patrol_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [view.id, data.get("submission_id"), view.org_path, data.get("grid_code", ""), report.category_code,
         report.location[0], report.location[1], now.isoformat(), principal.user_id,
         int(bool(data.get("emergency"))), data.get("patrol_id")],
    )
    settings = load_settings(db).model_dump()
    for other, metres, hours in find_duplicates(report, _reports_near_in_time(db, report, settings), settings):
        db.execute(
            "INSERT OR IGNORE INTO grid_duplicate_suggestions (case_id, candidate_id, distance_m, hours_apart,"
            " created_at) VALUES (?, ?, ?, ?, ?)", [view.id, other.id, metres, hours, now.isoformat()])
    _link_hotspot(db, report, settings["hotspot_radius_m"], now)
    if data.get("emergency"):
        _escalate(db, view, principal, now)


def _reports_near_in_time(db: Database, report: Report, settings: Mapping[str, Any]) -> list[Report]:
    window = timedelta(hours=int(settings["duplicate_window_hours"]))
    where, params = under("g.org_path", street_of(report.org_path))
    rows = db.execute(
        "SELECT g.case_id, g.org_path, c.state, c.data, g.reported_at FROM grid_incidents g"
        " JOIN cases c ON c.id = g.case_id WHERE g.category_code = ? AND g.reported_at BETWEEN ? AND ?"
        f" AND {where}",
        [report.category_code, (report.reported_at - window).isoformat(), (report.reported_at + window).isoformat(),
         *params],
    ).fetchall()
    return [Report.from_data(r[0], r[1], r[2], json.loads(r[3]), datetime.fromisoformat(r[4])) for r in rows]


def _link_hotspot(db: Database, report: Report, radius_m: float, now: datetime) -> str:
    where, params = under("org_path", street_of(report.org_path))
    spots = [(r[0], r[1], (float(r[2]), float(r[3]))) for r in db.execute(
        f"SELECT id, category_code, lng, lat FROM grid_hotspots WHERE category_code = ? AND {where}",
        [report.category_code, *params]).fetchall()]
    spot_id = nearest_hotspot(report, spots, radius_m)
    at = report.reported_at.isoformat()
    if spot_id is None:
        spot_id = uuid7()
        db.execute(
            "INSERT INTO grid_hotspots (id, category_code, lng, lat, org_path, reports, first_reported_at,"
            " last_reported_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            [spot_id, report.category_code, report.location[0], report.location[1], report.org_path, at, at,
             now.isoformat()])
    else:
        lng, lat, n = db.execute("SELECT lng, lat, reports FROM grid_hotspots WHERE id = ?", [spot_id]).fetchone()
        centre = moved_centre((lng, lat), int(n), report.location)
        db.execute(
            "UPDATE grid_hotspots SET lng = ?, lat = ?, reports = reports + 1, last_reported_at = ?, org_path = ?,"
            " updated_at = ? WHERE id = ?", [centre[0], centre[1], at, report.org_path, now.isoformat(), spot_id])
    db.execute("INSERT INTO grid_hotspot_reports (case_id, hotspot_id, reported_at) VALUES (?, ?, ?)",
               [report.id, spot_id, at])
    return spot_id


def _escalate(db: Database, view: CaseView, principal: Principal, now: datetime) -> None:
    # 应急处置 (domain.md §1.9): emergency categories reach the district at once.
    category = view.data.get("category", {})
    reason = f"紧急类别「{category.get('name', view.data.get('category_code'))}」即时上报区级"
    db.execute("INSERT INTO grid_escalations (id, org_path, category_code, reason, escalated_at)"
               " VALUES (?, ?, ?, ?, ?)", [view.id, view.org_path, view.data.get("category_code"), reason,
                                          now.isoformat()])
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="grid.escalate",
                 object_type=KIND, object_id=view.id, org_path=view.org_path, detail={"reason": reason})
    changes.record(db, "grid_escalation", view.id, view.org_path)


def pending_escalations(db: Database) -> list[dict[str, Any]]:
    """Emergencies the hub does not have yet, oldest first: the sync engine sends these first."""
    rows = db.execute("SELECT id, org_path, category_code, reason, escalated_at FROM grid_escalations"
                      " WHERE synced_at IS NULL ORDER BY escalated_at").fetchall()
    return [dict(zip(("case_id", "org_path", "category_code", "reason", "escalated_at"), r, strict=True))
            for r in rows]


def mark_escalations_synced(db: Database, case_ids: list[str], at: datetime) -> int:
    n = 0
    for case_id in case_ids:
        n += db.execute("UPDATE grid_escalations SET synced_at = ? WHERE id = ? AND synced_at IS NULL",
                        [at.isoformat(), case_id]).rowcount
    return n


# --- duplicates and merges (并单) ----------------------------------------------------------


def report_of(db: Database, case_id: str) -> Report | None:
    row = db.execute("SELECT g.case_id, g.org_path, c.state, c.data, g.reported_at FROM grid_incidents g"
                     " JOIN cases c ON c.id = g.case_id WHERE g.case_id = ?", [case_id]).fetchone()
    return None if row is None else Report.from_data(row[0], row[1], row[2], json.loads(row[3]),
                                                     datetime.fromisoformat(row[4]))


def duplicates_of(db: Database, case_id: str) -> list[tuple[Report, float, float]]:
    """Possible duplicates under the street's current thresholds (computed afresh, never merged here)."""
    subject = report_of(db, case_id)
    if subject is None:
        return []
    settings = load_settings(db).model_dump()
    return find_duplicates(subject, _reports_near_in_time(db, subject, settings), settings)


def merge(db: Database, principal: Principal, duplicate_id: str, kept_id: str, reason: str | None, *,
          node_id: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """并单: an ``absorb`` event on the kept case, then ``merge`` on the duplicate (both engine-checked,
    one transaction: the caller's ``Store.write`` rolls both back if either is refused)."""
    note = {"merge_reason": reason} if reason else {}
    kept = cases.transition(db, kept_id, Draft("absorb", {"merged_case": duplicate_id, **note}, principal, now,
                                               uuid7()), node_id=node_id, calendar=calendar)
    dup = cases.transition(db, duplicate_id, Draft("merge", {"merged_into": kept_id, **note}, principal, now,
                                                   uuid7()), node_id=node_id, calendar=calendar)
    a, b = report_of(db, kept_id), report_of(db, duplicate_id)
    metres, hours = (0.0, 0.0)
    if a is not None and b is not None:
        metres, hours = gap(a, b)
    merge_id = uuid7()
    db.execute("INSERT INTO grid_merges (id, duplicate_id, kept_id, actor, role, distance_m, hours_apart, reason,"
               " merged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               [merge_id, duplicate_id, kept_id, principal.user_id, principal.role.value, round(metres, 1),
                round(hours, 2), reason or "", now.isoformat()])
    db.execute("UPDATE grid_duplicate_suggestions SET status = 'merged', decided_by = ?, decided_at = ?"
               " WHERE (case_id = ? AND candidate_id = ?) OR (case_id = ? AND candidate_id = ?)",
               [principal.user_id, now.isoformat(), duplicate_id, kept_id, kept_id, duplicate_id])
    changes.record(db, "grid_merge", merge_id, kept.view.org_path if kept.view else "")
    assert kept.event is not None and dup.event is not None
    return {"merge_id": merge_id, "kept_id": kept_id, "duplicate_id": duplicate_id,
            "kept_event_id": kept.event.id, "duplicate_event_id": dup.event.id,
            "distance_m": round(metres, 1), "hours_apart": round(hours, 2)}


