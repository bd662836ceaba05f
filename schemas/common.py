"""Shared pydantic bases. Input models forbid unknown fields (STYLE.md)."""

from __future__ import annotations

from typing import Any

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


class OkEnvelope(Output):
    ok: bool = True


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")
