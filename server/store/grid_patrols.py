"""Patrol logs (巡查日志): the ``patrol_log`` intake and the list.

A member sends one ``patrol_log`` envelope when a patrol ends: start, end, route points and findings,
each finding optionally linked to an incident by the incident report's submission id (= its case id,
known to the tablet offline). A link to a report that has not arrived yet is kept and resolves when
it does. Route points outside the member's grid are counted, not refused: patrols follow streets.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.grid import PatrolLogPayload
from server.domain.grid_geo import path_length_m, point_in_polygon
from server.domain.ids import uuid7
from server.domain.roles import Role
from server.errors import field_errors_from_pydantic
from server.store import audit, changes, org
from server.store.intake import IntakeContext, IntakeResult
from server.store.scope import under


def handle_patrol_log(db: Database, raw: dict[str, Any], ctx: IntakeContext) -> IntakeResult:
    """Intake handler for ``patrol_log`` envelopes."""
    envelope: dict[str, Any] = ctx.services.get("envelope") or {}
    if isinstance(raw.get("payload"), dict) and "submission_id" in raw:
        envelope, raw = raw, raw["payload"]
    p = ctx.principal
    if p.role != Role.GRID_MEMBER:
        return IntakeResult.forbidden("kind", "只有网格员可以提交巡查日志")
    try:
        log = PatrolLogPayload.model_validate(raw)
    except ValidationError as exc:
        return IntakeResult("invalid", field_errors_from_pydantic(exc, "payload"))
    patrol_id = str(envelope.get("submission_id") or ctx.services.get("submission_id") or uuid7())
    if db.execute("SELECT 1 FROM grid_patrols WHERE id = ?", [patrol_id]).fetchone():
        return IntakeResult("created", record={"patrol_id": patrol_id})
    grid = org.get_unit(db, p.org_unit) or {"data": {}}
    polygon = grid["data"].get("polygon")
    route = [(pt.lng, pt.lat) for pt in log.route]
    outside = sum(1 for pt in route if polygon and not point_in_polygon(pt, polygon))
    db.execute(
        "INSERT INTO grid_patrols (id, member_id, grid_code, org_path, started_at, ended_at, route, distance_m,"
        " points, points_outside, note, received_at, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [patrol_id, p.user_id, p.org_unit, p.org_path, log.started_at.isoformat(), log.ended_at.isoformat(),
         json.dumps([pt.model_dump(mode="json", exclude_none=True) for pt in log.route]),
         round(path_length_m(route), 1), len(route), outside, log.note or "", ctx.received_at.isoformat(),
         ctx.device_id],
    )
    for seq, f in enumerate(log.findings, start=1):
        loc = f.location
        db.execute(
            "INSERT INTO grid_patrol_findings (patrol_id, seq, note, lng, lat, place, incident_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [patrol_id, seq, f.note, loc.lng if loc else None, loc.lat if loc else None,
             loc.place if loc else None, f.incident_id],
        )
    audit.append(db, actor=p.user_id, role=p.role.value, action="grid.patrol", object_type="grid_patrol",
                 object_id=patrol_id, org_path=p.org_path, device_id=ctx.device_id,
                 after={"started_at": log.started_at.isoformat(), "ended_at": log.ended_at.isoformat(),
                        "points": len(route), "findings": len(log.findings)})
    changes.record(db, "grid_patrol", patrol_id, p.org_path)
    return IntakeResult("created", record={"patrol_id": patrol_id, "points": len(route),
                                           "points_outside": outside, "findings": len(log.findings)})


def _under(path: str) -> tuple[str, list[Any]]:
    return under("p.org_path", path)


def list_patrols(db: Database, scope: str, *, member_id: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    where, params = _under(scope)
    sql = ("SELECT p.id, p.member_id, u.display_name, p.grid_code, p.started_at, p.ended_at, p.distance_m,"
           " p.points, p.points_outside, p.note FROM grid_patrols p LEFT JOIN users u ON u.id = p.member_id"
           f" WHERE {where}")
    if member_id:
        sql += " AND p.member_id = ?"
        params.append(member_id)
    if since:
        sql += " AND p.started_at >= ?"
        params.append(since.isoformat())
    if until:
        sql += " AND p.started_at < ?"
        params.append(until.isoformat())
    rows = db.execute(sql + " ORDER BY p.started_at DESC LIMIT ?", [*params, limit]).fetchall()
    out = []
    for r in rows:
        findings = [
            {"seq": f[0], "note": f[1], "lng": f[2], "lat": f[3], "place": f[4], "incident_id": f[5],
             "incident_number": f[6], "incident_state": f[7]}
            for f in db.execute(
                "SELECT f.seq, f.note, f.lng, f.lat, f.place, f.incident_id, c.number, c.state"
                " FROM grid_patrol_findings f LEFT JOIN cases c ON c.id = f.incident_id"
                " WHERE f.patrol_id = ? ORDER BY f.seq", [r[0]]).fetchall()
        ]
        started, ended = datetime.fromisoformat(r[4]), datetime.fromisoformat(r[5])
        out.append({"id": r[0], "member_id": r[1], "member_name": r[2] or "", "grid_code": r[3],
                    "started_at": r[4], "ended_at": r[5], "minutes": int((ended - started).total_seconds() // 60),
                    "distance_m": r[6], "points": r[7], "points_outside": r[8], "note": r[9],
                    "findings": findings})
    return out


