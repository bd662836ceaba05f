"""Errors are classes with an HTTP status and a stable code; one handler renders them.

    StreetnodeError (500 internal)
    ├── BadRequest (400 bad_request)
    │   ├── MalformedJSON (400 malformed_json)
    │   └── ValidationFailed (422 validation_error)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    │   └── OutOfScope (403 out_of_scope)
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    │   └── MustReset (409 must_reset)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── AccountLocked (423 account_locked)
    ├── RateLimited (429 rate_limited)
    ├── BadGateway (502 bad_gateway)           the district hub answered wrongly
    └── ServiceUnavailable (503 unavailable)   the district hub cannot be reached

Every error renders as the envelope of DESIGN.md §7:
``{"ok": false, "error": summary, "errors": [{"field", "message"}], "code", "status"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.zh_errors import zh_message


class StreetnodeError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])
        if field is not None and not self.errors:
            self.errors.append({"field": field, "message": message})

    def envelope(self) -> dict[str, Any]:
        return {"ok": False, "error": self.message, "errors": self.errors, "code": self.code, "status": self.status}


class BadRequest(StreetnodeError):
    status = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class ClientDisconnected(BadRequest):
    """The client went away before its body arrived: nothing was read, nothing is written, and it is not a
    server error (no traceback in the log; nobody reads the answer)."""

    code = "client_disconnected"


class ValidationFailed(BadRequest):
    status = 422
    code = "validation_error"


class Unauthorized(StreetnodeError):
    status = 401
    code = "unauthorized"


class Forbidden(StreetnodeError):
    status = 403
    code = "forbidden"


class OutOfScope(Forbidden):
    code = "out_of_scope"


class NotFound(StreetnodeError):
    status = 404
    code = "not_found"


class Conflict(StreetnodeError):
    status = 409
    code = "conflict"


class MustReset(Conflict):
    code = "must_reset"


class PayloadTooLarge(StreetnodeError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(StreetnodeError):
    status = 415
    code = "unsupported_media_type"


class AccountLocked(StreetnodeError):
    status = 423
    code = "account_locked"


class RateLimited(StreetnodeError):
    status = 429
    code = "rate_limited"


class BadGateway(StreetnodeError):
    status = 502
    code = "bad_gateway"


class ServiceUnavailable(StreetnodeError):
    status = 503
    code = "unavailable"


# Chinese messages for pydantic's error types live in ``schemas.zh_errors`` (the domain uses them too).


def field_errors_from_pydantic(exc: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Turn a pydantic ValidationError into our field-level list (dotted field paths, Chinese messages)."""
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "body")
        out.append({"field": field, "message": zh_message(err), "type": err.get("type")})
    return out
