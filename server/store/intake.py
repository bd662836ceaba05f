"""Intake: the one write path for records that arrive as sync envelopes (DESIGN.md §6).

``POST /sync/v1/outbox`` (sync package) verifies, de-duplicates and records each
envelope, then calls the handler registered for the envelope's ``kind`` **inside the
same write transaction**, so an accepted envelope and the records it creates commit
together or not at all. Handlers are listed in ``server.features``; a kind whose envelope
creates a case gets its handler from ``case_intake(kind, model, build, after_create)``.

A handler validates the payload (pydantic), applies the domain rules and writes; it
returns an ``IntakeResult``. It raises nothing for bad input: it returns ``invalid`` or
``forbidden`` with field errors, and must then have written nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.engine import CaseKind, CaseView, Draft, RuleViolation
from server.domain.ids import uuid7
from server.domain.roles import Principal
from server.errors import field_errors_from_pydantic
from server.store import cases

IntakeStatus = Literal["created", "invalid", "forbidden", "stale_version", "awaiting_blobs", "id_conflict"]


@dataclass(frozen=True)
class IntakeContext:
    node_id: str
    principal: Principal  # the signed-in user the device acts for
    received_at: datetime  # node time
    calendar: WorkCalendar
    device_id: str | None = None
    device_time: datetime | None = None
    device_clock_trusted: bool = False  # the last sync measured the device clock and found it right
    device_offset_ms: int | None = None  # node time minus device time, as measured
    services: dict[str, Any] = field(default_factory=dict)  # e.g. {"data_key": DataKey, "blob_dir": Path}


@dataclass(frozen=True)
class IntakeResult:
    status: IntakeStatus
    errors: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)  # e.g. {"case_id", "number", "query_code"}

    @classmethod
    def invalid(cls, field_name: str, message: str) -> IntakeResult:
        return cls("invalid", [{"field": field_name, "message": message}])

    @classmethod
    def forbidden(cls, field_name: str, message: str) -> IntakeResult:
        return cls("forbidden", [{"field": field_name, "message": message}])


IntakeHandler = Callable[[Database, dict[str, Any], IntakeContext], IntakeResult]

HANDLERS: dict[str, IntakeHandler] = {}


def register(kind: str, handler: IntakeHandler) -> IntakeHandler:
    HANDLERS[kind] = handler
    return handler


def handler_for(kind: str) -> IntakeHandler | None:
    return HANDLERS.get(kind)


def attempt(db: Database, write: Callable[[], dict[str, Any]], *, field_prefix: str = "") -> IntakeResult:
    """Run ``write`` in one savepoint (sqlite-utils' ``db.atomic()``): a ``RuleViolation`` undoes
    everything it wrote and becomes the refusal, anything else undoes it and propagates. The one
    SAVEPOINT -> IntakeResult wrapper of every intake handler."""
    try:
        with db.atomic():
            record = write()
    except RuleViolation as exc:
        status: IntakeStatus = "forbidden" if exc.kind == "forbidden" else "invalid"
        return IntakeResult(status, [{"field": f"{field_prefix}{exc.field or 'payload'}", "message": exc.message,
                                      "rule": exc.code}])
    return IntakeResult("created", record=record)


@dataclass(frozen=True)
class CaseIntake:
    """What a kind's ``build`` makes of a valid form: the creating event's payload and, if not the
    submitter's own unit, where the case lives."""

    payload: dict[str, Any]
    org_path: str | None = None


Build = Callable[[Database, Any, IntakeContext], "CaseIntake | IntakeResult"]
AfterCreate = Callable[[Database, CaseView, Any, IntakeContext], dict[str, Any]]


def case_intake(kind: CaseKind, model: type[BaseModel], build: Build,
                after_create: AfterCreate | None = None) -> IntakeHandler:
    """An intake handler that creates a ``kind`` case from an envelope whose payload is ``model``.

    The envelope's ``submission_id`` is the case id, so a replayed envelope returns the case it made
    (never a second case). ``build`` may refuse with an ``IntakeResult``; ``after_create`` writes the
    kind's own rows with the case (same savepoint) and adds to the receipt record.
    """
    creating = kind.creating
    if len(creating) != 1:
        raise ValueError(f"{kind.name}: case_intake needs exactly one creating transition")
    transition = creating[0].name

    def handle(db: Database, payload: dict[str, Any], ctx: IntakeContext) -> IntakeResult:
        try:
            form = model.model_validate(payload)
        except ValidationError as exc:
            return IntakeResult("invalid", field_errors_from_pydantic(exc, "payload"))
        submission = ctx.services.get("submission_id")
        case_id = submission if isinstance(submission, str) else uuid7()
        existing = db.execute("SELECT number, state, version FROM cases WHERE id = ?", [case_id]).fetchone()
        if existing is not None:  # the same envelope again: the same answer
            return IntakeResult("created", record={"case_id": case_id, "number": existing[0], "state": existing[1],
                                                   "version": existing[2]})
        built = build(db, form, ctx)
        if isinstance(built, IntakeResult):
            return built

        def write() -> dict[str, Any]:
            draft = Draft(transition, built.payload, ctx.principal, ctx.received_at, uuid7(),
                          device_time=ctx.device_time, device_id=ctx.device_id,
                          device_clock_trusted=ctx.device_clock_trusted, device_offset_ms=ctx.device_offset_ms)
            view, number = cases.create_case(db, kind, draft, org_path=built.org_path or ctx.principal.org_path,
                                             node_id=ctx.node_id, calendar=ctx.calendar, case_id=case_id)
            more = after_create(db, view, form, ctx) if after_create is not None else {}
            return {"case_id": view.id, "number": number, "state": view.state, "version": view.version, **more}

        return attempt(db, write)

    return handle


def register_case_intake(kind: CaseKind, model: type[BaseModel], build: Build,
                         after_create: AfterCreate | None = None, *, envelope_kind: str | None = None) -> IntakeHandler:
    """``case_intake`` registered for envelopes of ``envelope_kind`` (default: the kind's name)."""
    return register(envelope_kind or kind.name, case_intake(kind, model, build, after_create))
