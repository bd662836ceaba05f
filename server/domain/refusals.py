"""How the case engine says "no": ``RuleViolation`` (raised by ``decide``) and ``Refusal`` (returned by guards).

Guards return, never raise (contract.md): a plain Chinese string means "no" with the generic code
``guard_failed``; a ``Refusal`` also names its code and the field at fault. Payload models (pydantic,
``extra="forbid"``) are checked here too, so a bad field is named ``payload.<field>`` in Chinese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.zh_errors import zh_message


class RuleViolation(Exception):
    """A proposed transition breaks a rule. ``kind`` decides the HTTP status at the edge:
    forbidden -> 403, conflict -> 409, invalid -> 422, not_found -> 404."""

    def __init__(self, kind: str, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Refusal:
    """What a guard returns to say "no" with a code and the field at fault (a plain string also says no)."""

    message: str
    code: str = "guard_failed"
    field: str | None = None


def refusal(result: str | Refusal) -> RuleViolation:
    """The violation a guard's answer stands for."""
    if isinstance(result, Refusal):
        return RuleViolation("invalid", result.code, result.message, result.field)
    return RuleViolation("invalid", "guard_failed", result)


def check_payload(model: type[BaseModel] | None, payload: Mapping[str, Any]) -> None:
    """Validate the client's part of ``payload`` (its non-"_" keys: the rest are the engine's own)."""
    if model is None:
        return
    try:
        model.model_validate({k: v for k, v in payload.items() if not k.startswith("_")})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise RuleViolation("invalid", "invalid_payload", f"{loc or '提交内容'}：{zh_message(dict(err))}",
                            f"payload.{loc}" if loc else "payload") from None
