"""Services hall, staff side: catalogue, work lists, application detail, receipts, ratings and appeals.

New applications do not arrive here: they come as ``service_application`` envelopes through
``POST /sync/v1/outbox`` (one write path for tablets and desks); later steps go through
``POST /api/v1/cases/{id}/events`` or ``case_event`` envelopes. This module also starts the
hall's periodic task: firing the engine's timers (deemed acceptance) every minute.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database
from starlette.responses import HTMLResponse

from schemas.hall import (
    AppealRequest,
    AppealReviewRequest,
    CatalogueItemInput,
    HallSettingsRequest,
    WithdrawItemRequest,
)
from server.domain.crypto import DataKey, b64url_encode
from server.domain.hall import KIND, STATES
from server.domain.ids import now_china
from server.domain.roles import DISTRICT_STAFF, STAFF_ROLES, STREET_STAFF, Role
from server.errors import Forbidden, NotFound, ValidationFailed
from server.node import data_key, node_key
from server.store import audit, case_detail, hall, hall_catalogue, hall_queue, hall_ratings
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.web import api_cases
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, Services, query_int
from server.web.templates_receipt import render_receipt

R = Role
HALL_STAFF = frozenset({R.WINDOW_CLERK, R.STREET_HANDLER, R.STREET_ADMIN, R.SUPERVISOR, R.COMMUNITY_WORKER,
                        R.DISTRICT_APPROVER, R.DISTRICT_ADMIN})
HANDLERS = frozenset({R.WINDOW_CLERK, R.STREET_HANDLER, R.STREET_ADMIN, R.COMMUNITY_WORKER, R.DISTRICT_APPROVER})
RECEIPT_ROLES = frozenset({R.WINDOW_CLERK, R.COMMUNITY_WORKER, R.STREET_ADMIN, R.STREET_HANDLER})
REVIEWERS = frozenset({R.SUPERVISOR, R.STREET_ADMIN, R.DISTRICT_ADMIN})


def hall_key(services: Services) -> DataKey:
    key = services.extra.get("data_key")
    if key is None:
        key = services.extra["data_key"] = data_key(services.settings)
    return key  # type: ignore[no-any-return]


# --- catalogue ----------------------------------------------------------------------------------


async def list_items(ctx: RequestContext) -> dict[str, Any]:
    q = ctx.query
    items = ctx.store.read(lambda db: hall_catalogue.search_items(
        db, q.get("q", ""), q.get("item_type", ""), q.get("level", ""), query_int(q.get("limit"), 50, 1, 200)))
    return {"ok": True, "items": items}


async def get_item(ctx: RequestContext) -> dict[str, Any]:
    code = ctx.path["code"]

    def read(db: Database) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return hall_catalogue.current_item(db, code), hall_catalogue.item_history(db, code)

    item, history = ctx.store.read(read)
    if item is None:
        raise NotFound(f"未找到事项：{code}", field="code")
    return {"ok": True, "item": item, "history": history}


async def put_item(ctx: RequestContext) -> dict[str, Any]:
    # DESIGN.md §6 rule 4: the hub owns the catalogue; a street node receives it, never edits it.
    if ctx.settings.role != "district":
        raise Forbidden("服务事项目录由区级统一维护，街道节点不能修改", field="role")
    body: CatalogueItemInput = ctx.body
    if body.implementation_code != ctx.path["code"]:
        raise ValidationFailed("实施编码与地址不一致", field="implementation_code")
    p = ctx.user()
    result = await ctx.store.awrite(lambda db: hall_catalogue.publish_item(
        db, body, actor=p.user_id, role=p.role.value, now=now_china()))
    return {"ok": True, **result}


async def withdraw_item(ctx: RequestContext) -> dict[str, Any]:
    """POST …/withdrawal: the district stops offering an item; streets receive it as a deletion."""
    if ctx.settings.role != "district":
        raise Forbidden("服务事项目录由区级统一维护，街道节点不能修改", field="role")
    body: WithdrawItemRequest = ctx.body
    code = ctx.path["code"]
    p = ctx.user()

    def write(db: Database) -> dict[str, Any]:
        try:
            return hall_catalogue.withdraw_item(db, code, reason=body.reason, actor=p.user_id, role=p.role.value,
                                                now=now_china())
        except LookupError:
            raise NotFound(f"未找到事项：{code}", field="code") from None

    return {"ok": True, **await ctx.store.awrite(write)}


# --- work lists -----------------------------------------------------------------------------------


async def get_queue(ctx: RequestContext) -> dict[str, Any]:
    """The hall's queue: ``GET /api/v1/worklist?kind=service_application&actionable=1`` in the row shape
    the window screens read (clocks with working days left, masked applicant, item)."""
    p = ctx.user()
    q = ctx.query
    states = [s for s in q.get("state", "").split(",") if s]
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise ValidationFailed(f"未知的状态：{'、'.join(unknown)}", field="state")
    now = now_china()

    def read(db: Database) -> list[dict[str, Any]]:
        return hall_queue.queue(db, p, current_calendar(db), now, states=states, mine_only=q.get("all") != "1",
                                item_code=q.get("item_code", ""), channel=q.get("channel", ""),
                                overdue_only=q.get("overdue") == "1", limit=query_int(q.get("limit"), 100, 1, 500))

    rows = await api_cases.read(ctx, read)
    return {"ok": True, "now": now.isoformat(), "items": rows}


async def get_overview(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    now = now_china()
    data = await api_cases.read(ctx, lambda db: hall_queue.overview(db, p.org_path, current_calendar(db), now))
    return {"ok": True, "now": now.isoformat(), **data}


# --- one application ------------------------------------------------------------------------------


def _application_in_scope(ctx: RequestContext, case_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def read(db: Database) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return case_store.case_row(db, case_id), hall.application(db, case_id)

    case, app = ctx.store.read(read)
    if case is None or app is None or case["kind"] != KIND:
        raise NotFound("未找到该办件", field="case_id")
    ctx.require_scope(case["org_path"])
    return case, app


async def get_application(ctx: RequestContext) -> dict[str, Any]:
    """The generic case screen plus the application record (the receipt screen reads both)."""
    case_id = ctx.path["case_id"]
    case, app = _application_in_scope(ctx, case_id)
    p, now = ctx.user(), now_china()
    body = await api_cases.read(ctx, lambda db: case_detail.detail(db, case, p, current_calendar(db), now))
    return {"ok": True, "application": app, **body}


async def get_applicant(ctx: RequestContext) -> dict[str, Any]:
    """The applicant in clear, for handling the case; every view is audited."""
    case_id = ctx.path["case_id"]
    case, _ = _application_in_scope(ctx, case_id)
    p = ctx.user()
    key = hall_key(ctx.services)

    def write(db: Database) -> dict[str, str] | None:
        audit.append(db, actor=p.user_id, role=p.role.value, action="hall.applicant_viewed",
                     object_type=KIND, object_id=case_id, org_path=case["org_path"])
        return hall.applicant_clear(db, case_id, key)

    return {"ok": True, "applicant": await ctx.store.awrite(write)}


async def get_receipt(ctx: RequestContext) -> HTMLResponse:
    case_id = ctx.path["case_id"]
    case, app = _application_in_scope(ctx, case_id)
    key = hall_key(ctx.services)

    def read(db: Database) -> tuple[dict[str, Any] | None, str, str]:
        home = case["data"].get("home_path", case["org_path"])
        return hall.receipt(db, case_id, key), hall.unit_name(db, home), hall.unit_name(db, home.split("/")[0])

    rec, window, district = ctx.store.read(read)
    if rec is None:
        raise NotFound("该办件没有回执", field="case_id")
    signer = node_key(ctx.settings)
    signature = b64url_encode(signer.sign(rec["signed_body"].encode("utf-8")))
    base = str(ctx.request.base_url).rstrip("/")
    item = ctx.store.read(lambda db: hall_catalogue.current_item(db, app["item_code"]))
    spec = item["spec"] if item else {}
    data = {
        **app, "number": case["number"], "query_code": rec["query_code"], "applicant": app["applicant"]["name"],
        "received_at": rec["issued_at"][:16].replace("T", " "), "window": window,
        "issuer": f"{district}{window if window != district else ''} 政务服务",
        "promised": f"{case['data'].get('promised_limit_wd', 0)} 个工作日" if case["data"].get("promised_limit_wd")
        else "即办", "statutory": f"{case['data'].get('statutory_limit_wd')} 个工作日",
        "state_label": STATES.get(case["state"], case["state"]), "rating_token": rec["rating_token"],
        "track_url": f"{base}/#/track/{rec['query_code']}?t={rec['rating_token']}",
        "phone": spec.get("phone", "12345"), "complaint_phone": spec.get("complaint_phone", "12345"),
        "node_id": rec["node_id"], "key_id": signer.key_id, "signature": signature,
    }
    return HTMLResponse(render_receipt(data), headers={"Cache-Control": "no-store"})


# --- ratings, appeals, settings ------------------------------------------------------------------


async def list_ratings(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    bad = ctx.query.get("bad") == "1"
    return {"ok": True, "ratings": ctx.store.read(lambda db: hall_ratings.ratings(db, p.org_path, bad_only=bad))}


async def post_appeal(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    body: AppealRequest = ctx.body
    rating_id = ctx.path["rating_id"]
    result = await ctx.store.awrite(lambda db: hall_ratings.appeal(db, rating_id, p, body.reason, now_china()))
    return {"ok": True, **result}


async def post_appeal_review(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    body: AppealReviewRequest = ctx.body
    appeal_id = ctx.path["appeal_id"]
    node_id = ctx.services.node_id

    def write(db: Database) -> dict[str, Any]:
        return hall_ratings.review_appeal(db, appeal_id, p, body.decision, body.reason, now=now_china(),
                                          node_id=node_id, calendar=current_calendar(db))

    result = await ctx.store.awrite(write)
    return {"ok": True, **result}


async def get_settings(ctx: RequestContext) -> dict[str, Any]:
    return {"ok": True, "rectification_wd": ctx.store.read(hall_ratings.rectification_wd)}


async def put_settings(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    body: HallSettingsRequest = ctx.body
    await ctx.store.awrite(lambda db: hall_ratings.set_rectification_wd(db, body.rectification_wd, p))
    return {"ok": True, "rectification_wd": body.rectification_wd}


# --- start-up (listed in server.web.lifecycle): the data key and the catalogue ---------------------


async def hall_startup(services: Services) -> None:
    hall.configure(data_key=hall_key(services), max_attachment_bytes=services.settings.max_attachment_bytes)
    await services.store.awrite(hall_catalogue.seed_catalogue)  # idempotent: nodes made before the hall


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/catalogue/items", list_items, PUBLIC, "服务事项目录（中文检索、按类型和层级筛选）",
             tags=("catalogue",)),
    Endpoint("GET", "/api/v1/catalogue/items/{code}", get_item, PUBLIC, "服务事项办事指南及版本", tags=("catalogue",)),
    Endpoint("PUT", "/api/v1/catalogue/items/{code}", put_item, frozenset({R.DISTRICT_ADMIN}),
             "发布服务事项新版本（仅区级）", body=CatalogueItemInput, writes=True, tags=("catalogue",)),
    Endpoint("POST", "/api/v1/catalogue/items/{code}/withdrawal", withdraw_item, frozenset({R.DISTRICT_ADMIN}),
             "停止办理服务事项（仅区级；街道同步时收到删除）", body=WithdrawItemRequest, writes=True,
             tags=("catalogue",)),
    Endpoint("GET", "/api/v1/hall/queue", get_queue, HANDLERS | {R.SUPERVISOR}, "本人待办队列（时限、剩余时间、超期）",
             tags=("hall",)),
    Endpoint("GET", "/api/v1/hall/overview", get_overview, (STREET_STAFF | DISTRICT_STAFF) & HALL_STAFF,
             "办件概况（按状态）", tags=("hall",)),
    Endpoint("GET", "/api/v1/hall/applications/{case_id}", get_application, HALL_STAFF, "办件详情", tags=("hall",)),
    Endpoint("GET", "/api/v1/hall/applications/{case_id}/applicant", get_applicant, HANDLERS,
             "申请人完整信息（查看留痕）", tags=("hall",)),
    Endpoint("GET", "/receipt/{case_id}", get_receipt, RECEIPT_ROLES, "打印办件回执（HTML）", tags=("hall",)),
    Endpoint("GET", "/api/v1/hall/ratings", list_ratings, REVIEWERS | HANDLERS, "好差评记录", tags=("evaluation",)),
    Endpoint("POST", "/api/v1/hall/ratings/{rating_id}/appeals", post_appeal, HANDLERS, "对评价提出申诉",
             body=AppealRequest, writes=True, tags=("evaluation",)),
    Endpoint("POST", "/api/v1/hall/appeals/{appeal_id}/review", post_appeal_review, REVIEWERS,
             "复核申诉（非申诉人）", body=AppealReviewRequest, writes=True, tags=("evaluation",)),
    Endpoint("GET", "/api/v1/hall/settings", get_settings, STAFF_ROLES, "办事大厅设置", tags=("hall",)),
    Endpoint("PUT", "/api/v1/hall/settings", put_settings, frozenset({R.STREET_ADMIN, R.DISTRICT_ADMIN}),
             "修改办事大厅设置（差评整改时限）", body=HallSettingsRequest, writes=True, tags=("hall",)),
]
