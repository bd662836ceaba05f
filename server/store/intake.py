"""Intake: the one write path for records that arrive as sync envelopes (DESIGN.md §6).

``POST /sync/v1/outbox`` (sync package) verifies, de-duplicates and records each
envelope, then calls the handler registered for the envelope's ``kind`` **inside the
same write transaction**, so an accepted envelope and the records it creates commit
together or not at all. Features register their handlers at import time:

    intake.register("service_application", handle_application)

A handler validates the payload (pydantic), applies the domain rules and writes; it
returns an ``IntakeResult``. It raises nothing for bad input: it returns ``invalid`` or
``forbidden`` with field errors, and must then have written nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.roles import Principal

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
