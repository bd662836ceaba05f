"""Generic case endpoints for every kind: kinds metadata, the work list, case detail and events.

These are what the PWA's generic work list and case screen are built on (coord contract, "HTTP"):
a kind needs no web code of its own. Reads run in the thread pool (``run_in_threadpool``), never on
the event loop, so a heavy list never stalls other requests (health checks included).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlite_utils import Database
from starlette.concurrency import run_in_threadpool

from schemas.cases import TransitionRequest
from server.domain.actions import actionable_states, creatable
from server.domain.engine import CREATE, CaseKind, Draft
from server.domain.ids import CHINA_TZ, now_china, uuid7
from server.domain.kinds import REGISTRY
from server.domain.roles import STAFF_ROLES, path_within
from server.domain.views import due_soon_until
from server.errors import Conflict, NotFound, OutOfScope, ValidationFailed
from server.store import case_detail, worklist
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.web.endpoint import Endpoint, RequestContext

T = TypeVar("T")
MAX_LIMIT = 200


async def read(ctx: RequestContext, fn: Callable[[Database], T]) -> T:
    """Run a read in the thread pool on that thread's own read connection."""
    return await run_in_threadpool(ctx.store.read, fn)


# --- kinds metadata -----------------------------------------------------------------------------


_META: dict[int, tuple[CaseKind, dict[str, Any]]] = {}


def kind_meta(kind: CaseKind) -> dict[str, Any]:
    """A kind's metadata; built once per declaration (JSON Schemas of every payload model are costly,
    ~100 ms for all kinds, and a declaration never changes while the node runs)."""
    cached = _META.get(id(kind))
    if cached is None or cached[0] is not kind:
        cached = _META[id(kind)] = (kind, _build_meta(kind))
    return cached[1]


def _build_meta(kind: CaseKind) -> dict[str, Any]:
    views = kind.views
    return {
        "name": kind.name, "label": kind.label_zh, "states": dict(kind.states), "terminal": sorted(kind.terminal),
        "clocks": {name: spec.label_zh for name, spec in kind.clocks.items()},
        "transitions": [{
            "name": t.name, "label": t.label_zh or t.name, "from": sorted(t.from_states), "to": t.to_state,
            "roles": sorted(str(r) for r in t.roles), "tiers": sorted(str(x) for x in t.tiers),
            "required": list(t.required), "legal_basis": t.legal_basis, "system": t.system,
            "creates": CREATE in t.from_states, "hidden": t.name in views.hidden_actions,
            "schema": case_detail.payload_schema(t),
        } for t in kind.transitions.values()],
        "views": {"columns": [{"key": c.key, "label": c.label_zh} for c in views.columns],
                  "current_clock": dict(views.current_clock), "default_clock": views.default_clock,
                  "resident_fields": list(views.resident_fields)},
    }


async def list_kinds(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    out = []
    for kind in REGISTRY.values():
        out.append({**kind_meta(kind), "creatable": [t.name for t in creatable(kind, p)]})
    return {"ok": True, "kinds": out}


def _kind(name: str, field: str = "kind") -> CaseKind:
    kind = REGISTRY.get(name)
    if kind is None:
        raise NotFound(f"未知的事项类型：{name}", field=field)
    return kind


async def get_kind(ctx: RequestContext) -> dict[str, Any]:
    kind = _kind(ctx.path["kind"])
    return {"ok": True, "kind": {**kind_meta(kind), "creatable": [t.name for t in creatable(kind, ctx.user())]}}


# --- the work list ------------------------------------------------------------------------------


def _flag(ctx: RequestContext, name: str) -> bool:
    return ctx.query.get(name, "").lower() in ("1", "true", "yes")


def _many(ctx: RequestContext, name: str) -> list[str]:
    return [v for raw in ctx.request.query_params.getlist(name) for v in raw.split(",") if v.strip()]


def _limit(ctx: RequestContext, default: int = 50, high: int = MAX_LIMIT) -> int:
    raw = ctx.query.get("limit")
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValidationFailed("limit 须为正整数", field="limit")
    return min(int(raw), high)


def _due_before(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        if "T" in raw:
            value = datetime.fromisoformat(raw)
            return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)
        # a date: due on or before that day, i.e. before the next midnight (China time)
        return datetime.combine(date.fromisoformat(raw) + timedelta(days=1), time(0), tzinfo=CHINA_TZ)
    except ValueError:
        raise ValidationFailed("due_before 须为 ISO 8601 日期", field="due_before") from None


def worklist_query(ctx: RequestContext, *, kinds: dict[str, CaseKind] | None = None, sort: str | None = None,
                   include_closed: bool | None = None,
                   extra_where: tuple[tuple[str, tuple[Any, ...]], ...] = ()) -> worklist.WorklistQuery:
    """Parse and check the work-list query (shared with the hall's and grid's list aliases)."""
    p = ctx.user()
    q = ctx.query
    if kinds is None:
        names = _many(ctx, "kind")
        kinds = {n: _kind(n) for n in names} if names else dict(REGISTRY)
    states = tuple(dict.fromkeys(_many(ctx, "state")))
    known = {s for k in kinds.values() for s in k.states}
    unknown = [s for s in states if s not in known]
    if unknown:
        raise ValidationFailed(f"未知的状态：{'、'.join(unknown)}", field="state")
    scope = q.get("scope") or p.org_path
    owner = q.get("owner") or None
    for name, path in (("scope", scope), ("owner", owner)):
        if path is not None and not path_within(path, p.org_path):
            raise OutOfScope("所选组织不在您的管辖范围内", field=name)
    order = sort or q.get("sort") or "due"
    if order not in ("due", "updated"):
        raise ValidationFailed("sort 须为 due 或 updated", field="sort")
    now = now_china()
    soon = None
    if _flag(ctx, "due_soon"):
        calendar = ctx.store.read(current_calendar)
        soon = due_soon_until(calendar, now)
    return worklist.WorklistQuery(
        kinds=kinds, scope=scope, now=now, states=states, owner=owner, due_before=_due_before(q.get("due_before")),
        overdue=_flag(ctx, "overdue"), due_soon_until=soon,
        actionable=actionable_states(kinds.values(), p) if _flag(ctx, "actionable") else None,
        include_closed=_flag(ctx, "closed") if include_closed is None else include_closed,
        sort=order,  # type: ignore[arg-type]
        limit=_limit(ctx), cursor=q.get("cursor") or None, extra_where=extra_where,
    )


async def run_worklist(ctx: RequestContext, query: worklist.WorklistQuery) -> tuple[list[dict[str, Any]], str | None]:
    p = ctx.user()
    try:
        return await read(ctx, lambda db: worklist.worklist(db, query, p))
    except worklist.BadCursor:
        raise ValidationFailed("翻页标记无效，请从第一页重新加载", field="cursor") from None


async def get_worklist(ctx: RequestContext) -> dict[str, Any]:
    items, next_cursor = await run_worklist(ctx, worklist_query(ctx))
    return {"ok": True, "items": items, "next_cursor": next_cursor}


async def list_cases(ctx: RequestContext) -> dict[str, Any]:
    """The older flat list (every state, newest first); the work list is the one to use."""
    query = worklist_query(ctx, sort="updated", include_closed=True)
    items, next_cursor = await run_worklist(ctx, query)
    return {"ok": True, "cases": items, "next_cursor": next_cursor}


# --- one case -----------------------------------------------------------------------------------


async def case_in_scope(ctx: RequestContext, case_id: str) -> dict[str, Any]:
    case = await read(ctx, lambda db: case_store.case_row(db, case_id))
    if case is None:
        raise NotFound("未找到该事项", field="case_id")
    ctx.require_scope(case["org_path"])
    return case


async def get_case(ctx: RequestContext) -> dict[str, Any]:
    case = await case_in_scope(ctx, ctx.path["case_id"])
    p, now = ctx.user(), now_china()
    body = await read(ctx, lambda db: case_detail.detail(db, case, p, current_calendar(db), now))
    return {"ok": True, **body}


async def post_event(ctx: RequestContext) -> dict[str, Any]:
    case_id = ctx.path["case_id"]
    await case_in_scope(ctx, case_id)
    return await apply_transition(ctx, case_id, ctx.body)


async def apply_transition(ctx: RequestContext, case_id: str, body: TransitionRequest) -> dict[str, Any]:
    """The engine decides, the store appends: the same ``cases.transition`` the ``case_event``
    envelope runs, so both leave the same event (id = event_id, the dedupe key), audit and change rows."""
    p = ctx.user()
    draft = Draft(
        transition=body.transition, payload=body.payload, principal=p, node_time=now_china(),
        event_id=body.event_id or uuid7(), on_behalf_of=body.on_behalf_of, device_time=body.device_time,
        device_id=p.device_id, base_version=body.base_version,
    )
    node_id = ctx.services.node_id

    def write(db: Database) -> case_store.TransitionResult:
        return case_store.transition(db, case_id, draft, node_id=node_id, calendar=current_calendar(db))

    result = await ctx.store.awrite(write)
    if result.conflict_id:
        raise Conflict(
            f"提交冲突：{result.conflict_reason}；已记录为冲突待处理（{result.conflict_id}）",
            [{"field": "base_version", "message": result.conflict_reason, "conflict_id": result.conflict_id}],
        )
    assert result.view is not None and result.event is not None
    return {"ok": True, "case_id": case_id, "event_id": result.event.id, "state": result.view.state,
            "version": result.view.version}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/kinds", list_kinds, STAFF_ROLES, "事项类型：状态、操作、填报要求、列表栏目",
             tags=("cases",)),
    Endpoint("GET", "/api/v1/kinds/{kind}", get_kind, STAFF_ROLES, "一种事项类型的说明", tags=("cases",)),
    Endpoint("GET", "/api/v1/worklist", get_worklist, STAFF_ROLES,
             "工作清单（按类型、状态、范围、时限、可办操作筛选，分页）", tags=("cases",)),
    Endpoint("GET", "/api/v1/cases", list_cases, STAFF_ROLES, "本人管辖范围内的事项", tags=("cases",)),
    Endpoint("GET", "/api/v1/cases/{case_id}", get_case, STAFF_ROLES, "事项详情、时限、时间线与可办操作",
             tags=("cases",)),
    Endpoint("POST", "/api/v1/cases/{case_id}/events", post_event, STAFF_ROLES, "办理事项（状态流转）",
             body=TransitionRequest, writes=True, tags=("cases",)),
]
