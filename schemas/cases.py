"""Generic case endpoints: transitions and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schemas.common import Input


class TransitionRequest(Input):
    transition: str = Field(min_length=1, max_length=64, description="transition name of the case kind")
    payload: dict[str, Any] = Field(default_factory=dict)
    base_version: int | None = Field(None, ge=0, description="case version the client saw; stale -> conflict")
    event_id: str | None = Field(None, min_length=36, max_length=36, description="client UUIDv7 (idempotency)")
    on_behalf_of: str | None = Field(None, max_length=128)
    device_time: datetime | None = None
