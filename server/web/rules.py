"""Mapping domain rule violations to HTTP errors (403 / 404 / 409 / 422)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from server.domain.engine import RuleViolation
from server.errors import Conflict, Forbidden, NotFound, StreetnodeError, ValidationFailed

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
    err = cls(exc.message, [{"field": exc.field or "transition", "message": exc.message, "rule": exc.code}])
    return err


@contextmanager
def raise_for_violation() -> Iterator[None]:
    try:
        yield
    except RuleViolation as exc:
        raise to_http(exc) from None
