"""Shared pydantic bases. Input models forbid unknown fields (STYLE.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    """Base for every request body: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorEnvelope(BaseModel):
    ok: bool = False
    error: str
    errors: list[FieldError] = Field(default_factory=list)
    code: str
    status: int
