"""Grid lists: a member's tasks, the street's board, hot spots and the preventive work made from them.

Every list is scoped by org path (a grid member sees their grid, street staff their street, the
district everything). On the district hub the board reads the street cases received by sync
(``hub_records``), so an emergency shows there as soon as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from schemas.grid import PreventiveRequest
from server.domain.actions import actionable_states, offered
from server.domain.calendar import WorkCalendar
from server.domain.engine import RuleViolation
from server.domain.grid import (
    GRID_INCIDENT,
    GRID_PREVENTIVE,
    HANDLING_TRANSITIONS,
    KIND,
    PREVENTIVE_KIND,
    PREVENTIVE_STATES,
    STATES,
    TERMINAL,
)
from server.domain.roles import Principal
from server.domain.views import clock_at
from server.store import org, reactions, worklist
from server.store.grid_config import get_category, load_settings
from server.store.scope import under

_CLOSED = sorted(GRID_INCIDENT.terminal | GRID_PREVENTIVE.terminal)
_KINDS = {GRID_INCIDENT.name: GRID_INCIDENT, GRID_PREVENTIVE.name: GRID_PREVENTIVE}
TASK_LIMIT = 500


def _summary(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    data, clocks = row["data"], row.get("clocks") or {}
    kind = row.get("kind", KIND)
    labels = PREVENTIVE_STATES if kind == PREVENTIVE_KIND else STATES
    clock = clock_at(clocks.get("handle") or clocks.get("prevent") or {}, None, now)
    due_at, left, overdue = clock["due_at"], clock["remaining_seconds"], clock["overdue"]
    category = data.get("category") or {}
    text = str(data.get("description") or data.get("measure") or "")
    return {
        "id": row["id"], "kind": kind, "number": row["number"], "state": row["state"],
        "state_label": labels.get(row["state"], row["state"]), "org_path": row["org_path"],
        "grid_code": data.get("grid_code") or row["org_path"].rsplit("/", 1)[-1],
        "category_code": data.get("category_code", ""),
        "category_name": category.get("name") or data.get("category_name", ""),
        "emergency": bool(data.get("emergency")),
        "description": text if len(text) <= 80 else text[:80] + "…",  # lists show a digest only
        "location": {k: v for k, v in (data.get("location") or {}).items() if k in ("lng", "lat", "place")},
        "reported_at": row["created_at"], "due_at": due_at, "remaining_seconds": left, "overdue": overdue,
        "unit_code": data.get("unit_code"),
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _case_rows(db: Database, scope: str, kinds: tuple[str, ...], open_only: bool) -> list[dict[str, Any]]:
    where, params = under("org_path", scope)
    marks = ", ".join("?" for _ in kinds)
    sql = (f"SELECT id, kind, number, org_path, state, data, clocks, created_at FROM cases"
           f" WHERE kind IN ({marks}) AND {where}")
    params = [*kinds, *params]
    if open_only:
        sql += f" AND state NOT IN ({', '.join('?' for _ in _CLOSED)})"
        params += _CLOSED
    cur = db.execute(sql + " ORDER BY created_at", params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for r in rows:
        r["data"], r["clocks"] = _json(r["data"]), _json(r["clocks"])
    return rows


def _hub_case_rows(db: Database, scope: str) -> list[dict[str, Any]]:
    """Street cases as the district hub received them (``hub_records``, written by sync)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'hub_records'").fetchone():
        return []
    where, params = under("org_path", scope)
    out = []
    for (raw,) in db.execute(f"SELECT data FROM hub_records WHERE entity = 'case' AND op != 'delete' AND {where}",
                             params).fetchall():
        row = _json(raw)
        if row.get("kind") == KIND:
            row["data"], row["clocks"] = _json(row.get("data")), _json(row.get("clocks"))
            out.append(row)
    return out


def board(db: Database, scope: str, now: datetime, *, hub: bool = False, state: str | None = None,
          emergency: bool = False, overdue: bool = False, category: str | None = None) -> dict[str, Any]:
    """The street's (or, on the hub, the district's) board: open incidents by state, time left, overdue."""
    rows = _hub_case_rows(db, scope) if hub else _case_rows(db, scope, (KIND,), open_only=state is None)
    items = [_summary(r, now) for r in rows]
    if state is None:
        items = [i for i in items if i["state"] not in TERMINAL]
    counts: dict[str, int] = {}
    for item in items:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    all_overdue = sum(1 for i in items if i["overdue"])
    all_emergencies = sum(1 for i in items if i["emergency"])
    items = [i for i in items if (state is None or i["state"] == state) and (not emergency or i["emergency"])
             and (not overdue or i["overdue"]) and (category is None or i["category_code"] == category)]
    items.sort(key=lambda i: (not i["emergency"], not i["overdue"], i["due_at"] is None, i["due_at"] or "",
                              i["reported_at"]))
    return {"counts": counts, "overdue": all_overdue, "emergencies": all_emergencies, "cases": items[:500]}


def task_facts(db: Database, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the grid's action filter needs for a page of cases: who handled each, and what kind of
    unit it was dispatched to (registered as the grid kinds' work-list facts look-up)."""
    out: dict[str, dict[str, Any]] = {r["id"]: {"handlers": set(), "target_kind": None} for r in rows}
    ids = list(out)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for case_id, actor in db.execute(
                f"SELECT case_id, actor FROM case_events WHERE case_id IN ({marks}) AND transition IN"
                f" ({', '.join('?' for _ in HANDLING_TRANSITIONS)})", [*chunk, *HANDLING_TRANSITIONS]).fetchall():
            out[case_id]["handlers"].add(actor)
    units = sorted({u for r in rows if isinstance(u := (r.get("data") or {}).get("unit_code"), str)})
    if units:
        kinds = dict(db.execute(f"SELECT code, kind FROM org_units WHERE code IN ({', '.join('?' for _ in units)})",
                                units).fetchall())
        for r in rows:
            out[r["id"]]["target_kind"] = kinds.get((r.get("data") or {}).get("unit_code"))
    return out


def _possible_duplicates(db: Database, ids: list[str]) -> dict[str, int]:
    dupes: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for (case_id,) in db.execute(
            f"SELECT case_id FROM grid_duplicate_suggestions WHERE status = 'open' AND case_id IN ({marks})"
            f" UNION ALL SELECT candidate_id FROM grid_duplicate_suggestions WHERE status = 'open'"
            f" AND candidate_id IN ({marks})", [*chunk, *chunk]).fetchall():
            dupes[case_id] = dupes.get(case_id, 0) + 1
    return dupes


def tasks(db: Database, principal: Principal, now: datetime) -> list[dict[str, Any]]:
    """What this user can act on now: the generic work list over the two grid kinds, in the grid's
    own order (emergencies, then overdue, then earliest due). The engine still decides on submit."""
    q = worklist.WorklistQuery(kinds=_KINDS, scope=principal.org_path, now=now, limit=TASK_LIMIT,
                               actionable=actionable_states(_KINDS.values(), principal))
    rows, _ = worklist.page(db, q)
    facts = worklist.facts_for(db, rows)
    dupes = _possible_duplicates(db, [r["id"] for r in rows])
    out = []
    for row in rows:
        actions = [t.name for t in offered(_KINDS[row["kind"]], row["state"], principal, facts[row["id"]])]
        if actions:
            out.append({**_summary(row, now), "actions": actions, "possible_duplicates": dupes.get(row["id"], 0)})
    out.sort(key=lambda i: (not i["emergency"], not i["overdue"], i["due_at"] is None, i["due_at"] or ""))
    return out


def hotspots(db: Database, scope: str, now: datetime, *, include_all: bool = False) -> list[dict[str, Any]]:
    """Same category recurring at the same place within the window (merged and unfiled reports not counted)."""
    s = load_settings(db)
    where, params = under("h.org_path", scope)
    since = (now - timedelta(days=s.hotspot_window_days)).isoformat()
    rows = db.execute(
        "SELECT h.id, h.category_code, h.lng, h.lat, h.org_path, h.status, h.preventive_case_id,"
        " COUNT(r.case_id), MIN(r.reported_at), MAX(r.reported_at), GROUP_CONCAT(r.case_id)"
        " FROM grid_hotspots h JOIN grid_hotspot_reports r ON r.hotspot_id = h.id JOIN cases c ON c.id = r.case_id"
        f" WHERE r.reported_at >= ? AND c.state NOT IN ('merged', 'not_filed') AND {where}"
        " GROUP BY h.id HAVING COUNT(r.case_id) >= ? ORDER BY COUNT(r.case_id) DESC, MAX(r.reported_at) DESC",
        [since, *params, 1 if include_all else s.hotspot_min_reports],
    ).fetchall()
    out = []
    for r in rows:
        category = get_category(db, r[1]) or {}
        out.append({"id": r[0], "category_code": r[1], "category_name": category.get("name", r[1]),
                    "lng": round(r[2], 6), "lat": round(r[3], 6), "org_path": r[4], "status": r[5],
                    "preventive_case_id": r[6], "reports": r[7], "first_reported_at": r[8],
                    "last_reported_at": r[9], "case_ids": sorted(str(r[10]).split(","))})
    return out


def make_preventive(db: Database, principal: Principal, hotspot_id: str, req: PreventiveRequest, *,
                    node_id: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """源头治理: turn a hot spot into a preventive task (a ``grid_preventive`` case with its own clock)."""
    spot = next((h for h in hotspots(db, principal.org_path, now) if h["id"] == hotspot_id), None)
    if spot is None:
        raise RuleViolation("not_found", "hotspot_not_found", "未找到该热点（或已不满足热点条件）", "hotspot_id")
    if spot["status"] == "preventive":
        raise RuleViolation("conflict", "hotspot_has_work", "该热点已布置预防性任务", "hotspot_id")
    unit = org.get_unit(db, req.unit_code)
    street = "/".join(spot["org_path"].split("/")[:2])
    if unit is None or unit["kind"] not in ("department", "business_unit", "grid") or (
            unit["kind"] != "department" and not unit["path"].startswith(street + "/")):
        raise RuleViolation("invalid", "bad_unit", "负责单位须为区职能部门、本街道一队三中心或网格", "unit_code")
    payload = {
        "hotspot_id": hotspot_id, "category_code": spot["category_code"], "category_name": spot["category_name"],
        "measure": req.measure, "unit_code": req.unit_code, "unit_name": unit["name"],
        "location": {"lng": spot["lng"], "lat": spot["lat"]}, "reports": spot["reports"],
        "case_ids": spot["case_ids"],
        "_clocks": {"prevent": {"unit": "working_day", "duration": req.due_working_days}},
    }
    return reactions.preventive_task(db, principal, spot, payload, node_id=node_id, calendar=calendar, now=now)


def grids(db: Database, scope: str) -> list[dict[str, Any]]:
    """Grids in scope with their polygon and members (the tablet checks locations offline with these)."""
    where, params = under("g.path", scope)
    rows = db.execute(
        "SELECT g.code, g.name, g.path, g.data, c.name FROM org_units g LEFT JOIN org_units c ON c.code ="
        f" g.parent_code WHERE g.kind = 'grid' AND {where} ORDER BY g.path", params).fetchall()
    members: dict[str, list[dict[str, str]]] = {}
    for user_id, name, unit in db.execute(
            "SELECT id, display_name, org_unit FROM users WHERE role = 'grid_member' AND active = 1"
            " ORDER BY username").fetchall():
        members.setdefault(unit, []).append({"id": user_id, "display_name": name})
    return [{"code": r[0], "name": r[1], "org_path": r[2], "community": r[4],
             "polygon": _json(r[3]).get("polygon"), "addresses": _json(r[3]).get("addresses", []),
             "members": members.get(r[0], [])} for r in rows]


def incident_extra(db: Database, case: Mapping[str, Any], principal: Principal) -> dict[str, Any]:
    """The grid case screen's own part: the unit it is dispatched to and its merges (并单)."""
    unit_code = case["data"].get("unit_code")
    unit = org.get_unit(db, unit_code) if isinstance(unit_code, str) else None
    merges = db.execute("SELECT duplicate_id, kept_id, merged_at FROM grid_merges WHERE kept_id = ?"
                        " OR duplicate_id = ?", [case["id"], case["id"]]).fetchall()
    return {"unit": unit, "merges": [{"duplicate_id": m[0], "kept_id": m[1], "merged_at": m[2]} for m in merges]}
