"""The generic ``case_event`` envelope kind: a transition of an existing case, made offline.

Payload ``{case_id, transition, payload, base_version}``. The event's id is the envelope's
``submission_id``, so a replayed envelope can never apply twice, and the event in ``case_events``
names the envelope it came from. The case engine decides; a stale ``base_version`` becomes an
explicit conflict record (``stale_version``), never a silent overwrite (DESIGN §2, sync.md §4.3).
Kinds with their own creating envelopes (``service_application``, ``incident_report``, …) register
their own handlers; this one serves every later step of every kind.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from schemas.common import Input
from server.domain.engine import Draft, RuleViolation
from server.domain.roles import can_see
from server.errors import field_errors_from_pydantic
from server.store import cases
from server.store.intake import IntakeContext, IntakeResult, IntakeStatus

__all__ = ["CaseEventPayload", "handle_case_event"]

KIND = "case_event"


class CaseEventPayload(Input):
    case_id: str = Field(min_length=1, max_length=64)
    transition: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    base_version: int | None = Field(None, ge=0, description="case version the device saw; stale -> conflict")
    on_behalf_of: str | None = Field(None, max_length=128)


def handle_case_event(db: Any, payload: dict[str, Any], ctx: IntakeContext) -> IntakeResult:
    try:
        body = CaseEventPayload.model_validate(payload)
    except ValidationError as exc:
        return IntakeResult("invalid", field_errors_from_pydantic(exc, "payload"))
    event_id = ctx.services.get("submission_id")
    if not isinstance(event_id, str):
        return IntakeResult.invalid("submission_id", "缺少提交编号")
    row = db.execute("SELECT org_path FROM cases WHERE id = ?", [body.case_id]).fetchone()
    if row is None:
        return IntakeResult.invalid("payload.case_id", "未找到该事项")
    if not can_see(ctx.principal, row[0]):  # the case's own path, not only the envelope's routing path
        return IntakeResult.forbidden("payload.case_id", "该事项不在您的管辖范围内")
    draft = Draft(
        transition=body.transition, payload=body.payload, principal=ctx.principal, node_time=ctx.received_at,
        event_id=event_id, on_behalf_of=body.on_behalf_of, device_time=ctx.device_time,
        device_id=ctx.device_id, base_version=body.base_version,
        device_clock_trusted=ctx.device_clock_trusted, device_offset_ms=ctx.device_offset_ms,
    )
    try:
        with db.atomic():  # one savepoint: a refused event leaves nothing behind
            result = cases.transition(db, body.case_id, draft, node_id=ctx.node_id, calendar=ctx.calendar)
    except RuleViolation as exc:
        if exc.code == "id_conflict":  # the event id (= submission id) already names another act
            return IntakeResult("id_conflict", [{"field": "submission_id", "message": exc.message}])
        status: IntakeStatus = "forbidden" if exc.kind == "forbidden" else "invalid"
        # the engine names fields of a transition request; here that request is the envelope's payload
        return IntakeResult(status, [{"field": f"payload.{exc.field or 'transition'}", "message": exc.message,
                                      "rule": exc.code}])
    view = result.view
    head = view.events[-1].id if view is not None and view.events else None
    if result.conflict_id is not None:
        return IntakeResult(
            "stale_version",
            [{"field": "payload.base_version", "message": f"事项已被更新（{result.conflict_reason}），已记录为冲突待处理"}],
            record={"case_id": body.case_id, "conflict_id": result.conflict_id, "current_head": head,
                    "current_version": view.version if view else None},
        )
    assert view is not None and result.event is not None
    return IntakeResult("created", record={"case_id": body.case_id, "event_id": result.event.id,
                                           "state": view.state, "version": view.version})

