"""Grid management endpoints (网格化管理): categories, grids, tasks, board, duplicates and merge, hot spots
and preventive work, patrol logs, thresholds.

Incident reports and patrol logs do not arrive here: they come as ``incident_report`` and ``patrol_log``
envelopes through ``POST /sync/v1/outbox`` (one write path); later steps go through
``POST /api/v1/cases/{id}/events`` or ``case_event`` envelopes, decided by the case engine. The engine's
own transitions (挂账 expiry) are fired by the node's periodic timer task with every other kind's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.grid import (
    BoardResponse,
    CategoriesResponse,
    CategoryInput,
    GridSettings,
    MergeRequest,
    PreventiveRequest,
    TasksResponse,
)
from server.domain.grid import (
    KIND,
    PREVENTIVE_KIND,
    STATES,
    VERIFIER_ROLES,
)
from server.domain.ids import now_china
from server.domain.roles import STAFF_ROLES, Role, path_within
from server.errors import NotFound, ValidationFailed
from server.store import case_detail, grid, grid_config, grid_lists, grid_patrols
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.web import api_cases, lifecycle
from server.web.endpoint import Endpoint, RequestContext, Services, query_int

log = logging.getLogger("streetnode.grid")
R = Role
ESCALATION_POLL_SECONDS = 15.0
PLANNERS = frozenset({R.SHIFT_LEADER, R.STREET_ADMIN})
SETTINGS_EDITORS = frozenset({R.STREET_ADMIN})


def _flag(ctx: RequestContext, name: str) -> bool:
    return ctx.query.get(name, "").lower() in ("1", "true", "yes")


def _time(ctx: RequestContext, name: str) -> datetime | None:
    value = ctx.query.get(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name} 须为 ISO 8601 时间", field=name) from None


def _incident(ctx: RequestContext, case_id: str) -> dict[str, Any]:
    case = ctx.store.read(lambda db: case_store.case_row(db, case_id))
    if case is None or case["kind"] not in (KIND, PREVENTIVE_KIND):
        raise NotFound("未找到该网格事件", field="case_id")
    ctx.require_scope(case["org_path"])
    return case


async def categories(ctx: RequestContext) -> CategoriesResponse:
    include = _flag(ctx, "all")
    rows, version = ctx.store.read(lambda db: (grid_config.list_categories(db, include),
                                               grid_config.catalogue_version(db)))
    return CategoriesResponse.model_validate({"version": version, "categories": rows})


async def put_category(ctx: RequestContext) -> dict[str, Any]:
    p, body = ctx.user(), ctx.body
    assert isinstance(body, CategoryInput)
    if body.code != ctx.path["code"]:
        raise ValidationFailed("类别代码与地址不一致", field="code")
    saved = await ctx.store.awrite(lambda db: grid_config.save_category(
        db, body, actor=p.user_id, role=p.role.value, org_path=p.org_path))
    return {"ok": True, "category": saved}


async def grids(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    return {"ok": True, "grids": ctx.store.read(lambda db: grid_lists.grids(db, p.org_path))}


async def get_settings(ctx: RequestContext) -> dict[str, Any]:
    return {"ok": True, "settings": ctx.store.read(grid_config.load_settings).model_dump()}


async def put_settings(ctx: RequestContext) -> dict[str, Any]:
    p, body = ctx.user(), ctx.body
    saved = await ctx.store.awrite(lambda db: grid_config.save_settings(
        db, body, actor=p.user_id, role=p.role.value, org_path=p.org_path))
    return {"ok": True, "settings": saved.model_dump()}


async def tasks(ctx: RequestContext) -> TasksResponse:
    p = ctx.user()
    tasks = await api_cases.read(ctx, lambda db: grid_lists.tasks(db, p, now_china()))
    return TasksResponse.model_validate({"tasks": tasks})


async def board(ctx: RequestContext) -> BoardResponse:
    p, q = ctx.user(), ctx.query
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise ValidationFailed(f"未知的状态：{state}", field="state")
    hub = ctx.settings.role == "district"
    result = await api_cases.read(ctx, lambda db: grid_lists.board(
        db, p.org_path, now_china(), hub=hub, state=state, emergency=_flag(ctx, "emergency"),
        overdue=_flag(ctx, "overdue"), category=q.get("category") or None))
    return BoardResponse.model_validate(result)


async def get_incident(ctx: RequestContext) -> dict[str, Any]:
    """The generic case screen (``GET /api/v1/cases/{id}``) in the shape the grid task screen reads:
    action names, timeline, the grid's extras (dispatched unit, merges) at the top level."""
    case = _incident(ctx, ctx.path["case_id"])
    p, now = ctx.user(), now_china()
    body = await api_cases.read(ctx, lambda db: case_detail.detail(db, case, p, current_calendar(db), now))
    return {"ok": True, "case": body["case"], "events": body["events"],
            "actions": [a["name"] for a in body["available"]], **body["extra"]}


async def duplicates(ctx: RequestContext) -> dict[str, Any]:
    case = _incident(ctx, ctx.path["case_id"])
    found = ctx.store.read(lambda db: [
        {"id": r.id, "state": r.state, "state_label": STATES.get(r.state, r.state), "distance_m": metres,
         "hours_apart": hours, "reported_at": r.reported_at.isoformat(), **_brief(db, r.id)}
        for r, metres, hours in grid.duplicates_of(db, case["id"])])
    p = ctx.user()
    visible = [d for d in found if path_within(d.pop("org_path", ""), p.org_path)]
    settings = ctx.store.read(grid_config.load_settings)
    return {"ok": True, "case_id": case["id"], "duplicates": visible,
            "radius_m": settings.duplicate_radius_m, "window_hours": settings.duplicate_window_hours}


def _brief(db: Database, case_id: str) -> dict[str, Any]:
    row = case_store.case_row(db, case_id) or {"number": "", "data": {}, "org_path": ""}
    text = str(row["data"].get("description", ""))
    return {"number": row["number"], "org_path": row["org_path"],
            "description": text if len(text) <= 80 else text[:80] + "…"}


async def merge(ctx: RequestContext) -> dict[str, Any]:
    p, body = ctx.user(), ctx.body
    assert isinstance(body, MergeRequest)
    duplicate_id = ctx.path["case_id"]
    _incident(ctx, duplicate_id)
    node_id, now = ctx.services.node_id, now_china()
    result = await ctx.store.awrite(lambda db: grid.merge(
        db, p, duplicate_id, body.into, body.reason, node_id=node_id, calendar=current_calendar(db), now=now))
    return {"ok": True, **result}


async def list_hotspots(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    found = ctx.store.read(lambda db: grid_lists.hotspots(db, p.org_path, now_china(), include_all=_flag(ctx, "all")))
    settings = ctx.store.read(grid_config.load_settings)
    return {"ok": True, "hotspots": found, "min_reports": settings.hotspot_min_reports,
            "window_days": settings.hotspot_window_days, "radius_m": settings.hotspot_radius_m}


async def preventive(ctx: RequestContext) -> dict[str, Any]:
    p, body = ctx.user(), ctx.body
    assert isinstance(body, PreventiveRequest)
    hotspot_id, node_id, now = ctx.path["hotspot_id"], ctx.services.node_id, now_china()
    result = await ctx.store.awrite(lambda db: grid_lists.make_preventive(
        db, p, hotspot_id, body, node_id=node_id, calendar=current_calendar(db), now=now))
    return {"ok": True, **result}


async def patrols(ctx: RequestContext) -> dict[str, Any]:
    p, q = ctx.user(), ctx.query
    member = q.get("member") or None
    member_id = p.user_id if member == "me" else member
    since, until = _time(ctx, "since"), _time(ctx, "until")
    limit = query_int(q.get("limit"), 100, 1, 500)
    rows = ctx.store.read(lambda db: grid_patrols.list_patrols(
        db, p.org_path, member_id=member_id, since=since, until=until, limit=limit))
    return {"ok": True, "patrols": rows}


# --- emergencies go up at once (应急处置, domain.md §1.9) ------------------------------------------


async def push_escalations_once(services: Services) -> str:
    """If an emergency has not reached the hub yet, run a sync session now (not at night) through the
    node's sync scheduler, which retries with backoff while the hub is unreachable."""
    pending = services.store.read(grid.pending_escalations)
    if not pending:
        return "none"
    scheduler = services.extra.get("sync_scheduler")
    if scheduler is None:
        return "no_hub"  # not paired (or the hub itself): stays pending, listed by pending_escalations
    outcome = str(await asyncio.to_thread(scheduler.job, "emergency"))
    if outcome == "ok":
        ids = [p["case_id"] for p in pending]
        await services.store.awrite(lambda db: grid.mark_escalations_synced(db, ids, now_china()))
    return outcome


async def _escalation_loop(services: Services, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await push_escalations_once(services)
        except Exception:  # never let one failed push end the watch
            log.exception("pushing emergency escalations failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ESCALATION_POLL_SECONDS)


async def grid_startup(services: Services) -> None:
    if services.settings.role != "street":
        return
    lifecycle.start_loop(services, "grid_escalations", _escalation_loop)


async def grid_shutdown(services: Services) -> None:
    await lifecycle.stop_loop(services, "grid_escalations")


ALL_STAFF = STAFF_ROLES
ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/grid/categories", categories, ALL_STAFF, "网格事件类别（部件/事件、时限、结案条件）",
             response=CategoriesResponse, tags=("grid",)),
    Endpoint("PUT", "/api/v1/grid/categories/{code}", put_category, frozenset({R.DISTRICT_ADMIN}),
             "新增或修改事件类别（仅区级）", body=CategoryInput, writes=True, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/grids", grids, ALL_STAFF, "管辖范围内的网格（边界、网格员）", tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/settings", get_settings, ALL_STAFF, "网格管理参数（并单、热点、挂账、核查）",
             tags=("grid",)),
    Endpoint("PUT", "/api/v1/grid/settings", put_settings, SETTINGS_EDITORS, "修改网格管理参数", body=GridSettings,
             writes=True, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/tasks", tasks, ALL_STAFF, "本人待办（网格员：核实、处置、核查）",
             response=TasksResponse, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/board", board, ALL_STAFF, "事件看板（按状态、剩余时间、超期、紧急）",
             response=BoardResponse, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/cases/{case_id}", get_incident, ALL_STAFF, "网格事件详情、时间线与可办操作",
             tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/cases/{case_id}/duplicates", duplicates, ALL_STAFF, "疑似重复上报（供核实人并单）",
             tags=("grid",)),
    Endpoint("POST", "/api/v1/grid/cases/{case_id}/merge", merge, VERIFIER_ROLES, "并单：本事件并入另一事件",
             body=MergeRequest, writes=True, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/hotspots", list_hotspots, ALL_STAFF, "热点：同一地点同类问题反复发生",
             tags=("grid",)),
    Endpoint("POST", "/api/v1/grid/hotspots/{hotspot_id}/preventive", preventive, PLANNERS,
             "将热点转为预防性任务（源头治理）", body=PreventiveRequest, writes=True, tags=("grid",)),
    Endpoint("GET", "/api/v1/grid/patrols", patrols, ALL_STAFF, "巡查日志", tags=("grid",)),
]
