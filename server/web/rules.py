"""Mapping domain rule violations to HTTP errors (403 / 404 / 409 / 422), once for every route.

``create_app`` registers ``on_rule_violation`` as the app's handler for ``RuleViolation``, so an
endpoint lets the engine's violation propagate and the error envelope of DESIGN.md §7 comes out
the same everywhere; a route that forgets a wrapper can no longer turn a domain refusal into a 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.domain.engine import RuleViolation
from server.errors import Conflict, Forbidden, NotFound, StreetnodeError, ValidationFailed

__all__ = ["on_rule_violation", "to_http"]

_BY_KIND: dict[str, type[StreetnodeError]] = {
    "forbidden": Forbidden,
    "conflict": Conflict,
    "invalid": ValidationFailed,
    "not_found": NotFound,
}


class IdConflict(Conflict):
    """An event id already names another act (or another case's event): 409 ``id_conflict``."""

    code = "id_conflict"


def to_http(exc: RuleViolation) -> StreetnodeError:
    cls = IdConflict if exc.code == "id_conflict" else _BY_KIND.get(exc.kind, ValidationFailed)
    return cls(exc.message, [{"field": exc.field or "transition", "message": exc.message, "rule": exc.code}])


async def on_rule_violation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RuleViolation)
    err = to_http(exc)
    return JSONResponse(err.envelope(), status_code=err.status)
