"""Working-calendar endpoints: the node's calendar, the clerk's due-date calculator, held earlier dates.

Publishing happens at the district (CLI or the nightly down-package), never over this API; a street
admin confirms the due dates a published calendar would move earlier (``server.store.calendar_earlier``).
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database
from starlette.concurrency import run_in_threadpool

from schemas.calendar import ConfirmEarlierRequest
from server.domain.calendar import FIXED_DATE_HOLIDAYS_ZH
from server.domain.calendar_due import DueQueryError, due_if_received
from server.domain.ids import now_china
from server.domain.roles import ADMINS, STAFF_ROLES
from server.errors import Conflict, NotFound, ValidationFailed
from server.store import org
from server.store.calendar_earlier import HoldChanged, NothingToConfirm, confirm_earlier, list_earlier
from server.store.calendars import current_calendar, list_versions
from server.web.endpoint import Endpoint, RequestContext

_STATUSES = ("pending", "confirmed", "superseded", "all")


async def calendar_info(ctx: RequestContext) -> dict[str, Any]:
    scope = ctx.user().org_path

    def read(db: Database) -> dict[str, Any]:
        cal = current_calendar(db)
        return {
            "ok": True,
            "version": cal.version,
            "last_known_year": cal.last_known_year,
            "provisional_rule": f"{cal.last_known_year} 年以后按周末及固定日期法定节假日（{FIXED_DATE_HOLIDAYS_ZH}）暂算",
            "versions": [v.__dict__ for v in list_versions(db)],
            "earlier_pending": len(list_earlier(db, scope)),
        }

    return await run_in_threadpool(ctx.store.read, read)


async def calendar_due(ctx: RequestContext) -> dict[str, Any]:
    """``?start=2026-09-30&unit=working_day&duration=20[&label=…]``: the due date if received then."""
    q = ctx.query
    scope = ctx.user().org_path

    def compute(db: Database) -> dict[str, Any]:
        due = due_if_received(current_calendar(db), start=q.get("start"), unit=q.get("unit"),
                              duration=q.get("duration"), label=q.get("label"),
                              hours=org.office_hours_for(db, scope) if q.get("unit") == "working_hour" else None)
        return {"ok": True, "due_at": due.due_at.isoformat() if due.due_at else None, "provisional": due.provisional,
                "explanation": due.explanation_zh, "calendar_version": due.calendar_version}

    try:
        return await run_in_threadpool(ctx.store.read, compute)
    except DueQueryError as exc:
        raise ValidationFailed(exc.message, field=exc.field) from None


async def earlier_list(ctx: RequestContext) -> dict[str, Any]:
    status = ctx.query.get("status", "pending")
    if status not in _STATUSES:
        raise ValidationFailed(f"status 须为 {'、'.join(_STATUSES)} 之一", field="status")
    scope = ctx.user().org_path
    rows = await run_in_threadpool(ctx.store.read, lambda db: list_earlier(db, scope, status=status))
    return {"ok": True, "items": [h.as_dict() for h in rows]}


async def earlier_confirm(ctx: RequestContext) -> dict[str, Any]:
    case_id = ctx.path["case_id"]
    body: ConfirmEarlierRequest = ctx.body
    p = ctx.user()

    def write(db: Database) -> dict[str, Any]:
        from server.store.cases import case_row

        row = case_row(db, case_id)
        if row is None:
            raise NothingToConfirm("未找到该事项")
        ctx.require_scope(row["org_path"])
        return confirm_earlier(db, case_id, current_calendar(db), actor=p.user_id, role=p.role.value,
                               note=body.note, now=now_china())

    try:
        changed = await ctx.store.awrite(write)
    except NothingToConfirm as exc:
        raise NotFound(str(exc), field="case_id") from None
    except HoldChanged as exc:
        raise Conflict(str(exc), field="case_id") from None
    return {"ok": True, "case_id": case_id, "confirmed": changed}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/calendar", calendar_info, STAFF_ROLES, "当前工作日历版本与已知年份", tags=("calendar",)),
    Endpoint("GET", "/api/v1/calendar/due", calendar_due, STAFF_ROLES, "期限试算：假设某日收到，何时截止",
             tags=("calendar",)),
    Endpoint("GET", "/api/v1/calendar/earlier", earlier_list, STAFF_ROLES, "新日历将提前、待确认的期限",
             tags=("calendar",)),
    Endpoint("POST", "/api/v1/calendar/earlier/{case_id}/confirm", earlier_confirm, ADMINS,
             "确认应用提前的期限（留痕）", body=ConfirmEarlierRequest, writes=True, tags=("calendar",)),
]
