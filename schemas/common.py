"""Shared pydantic bases. Input models forbid unknown fields (STYLE.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    """Base for every request body: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    """One field's problem. Besides ``field`` and ``message`` an error may carry the validation ``type``
    (pydantic's error type), the engine's ``rule`` or a ``conflict_id``, and more keys later: clients read
    what they know and keep the rest, so the schema allows them."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str
    type: str | None = None
    rule: str | None = None


class ErrorEnvelope(BaseModel):
    ok: bool = False
    error: str
    errors: list[FieldError] = Field(default_factory=list)
    code: str
    status: int
