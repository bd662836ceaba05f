"""One case screen for every kind: the case, its clocks brought to now, its timeline, what the reader
may do next, and the kind's own extras (a declared hook, e.g. the hall's masked applicant or the
grid's dispatched unit and merges).

The reader's scope is checked by the caller before anything here is shown.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlite_utils import Database

from server.domain.actions import offered
from server.domain.calendar import WorkCalendar
from server.domain.engine import CaseKind, Transition
from server.domain.kinds import get_kind
from server.domain.roles import Principal
from server.domain.views import clock_at
from server.store import cases
from server.store.worklist import facts_for

# kind -> extras for its case screen (runs on a read connection; must not write)
DetailExtra = Callable[[Database, Mapping[str, Any], Principal], Mapping[str, Any]]
EXTRAS: dict[str, DetailExtra] = {}

_EVENT_SQL = (
    "SELECT id, seq, transition, from_state, to_state, actor, role, org_unit, on_behalf_of, payload, legal_basis,"
    " device_time, node_time, effective_time, effective_basis, effective_provisional, rules_version"
    " FROM case_events WHERE case_id = ? ORDER BY seq"
)


def register_extra(kind: str, extra: DetailExtra) -> None:
    EXTRAS[kind] = extra


def payload_schema(t: Transition) -> dict[str, Any] | None:
    """JSON Schema of the transition's payload model, when the kind declares one."""
    model = t.payload
    return _schema(model) if isinstance(model, type) and issubclass(model, BaseModel) else None


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    # generated once per model: a case screen lists a few actions, each with its form's schema
    return model.model_json_schema()


def action(t: Transition) -> dict[str, Any]:
    return {"name": t.name, "label": t.label_zh or t.name, "required": list(t.required),
            "schema": payload_schema(t), "legal_basis": t.legal_basis}


def events(db: Database, kind: CaseKind, case_id: str) -> list[dict[str, Any]]:
    out = []
    for r in db.execute(_EVENT_SQL, [case_id]).fetchall():
        row = dict(r)
        payload = json.loads(row["payload"])
        t = kind.transitions.get(row["transition"])
        # "_"-keys are the engine's own (ownership moves, per-case clock specs), not what anyone entered
        row.update(label=(t.label_zh if t else "") or row["transition"],
                   payload={k: v for k, v in payload.items() if not k.startswith("_")},
                   # the time the act counts from (clocks), explained; node_time stays the record time
                   effective_time=row["effective_time"] or row["node_time"],
                   effective_provisional=bool(row["effective_provisional"]))
        out.append(row)
    return out


def case_summary(case: Mapping[str, Any], kind: CaseKind, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    clocks = {name: clock_at(c, calendar, now) for name, c in case["clocks"].items()}
    current = kind.views.clock_for(case["state"])
    return {
        "id": case["id"], "kind": kind.name, "kind_label": kind.label_zh, "number": case["number"],
        "state": case["state"], "state_label": kind.states.get(case["state"], case["state"]),
        "version": case["version"], "org_path": case["org_path"], "owner_tier": case.get("owner_tier"),
        "data": case["data"], "clocks": clocks, "due_at": case["due_at"],
        "current_clock": current if current in clocks else None,
        "created_at": case["created_at"], "updated_at": case["updated_at"],
    }


def detail(db: Database, case: Mapping[str, Any], principal: Principal, calendar: WorkCalendar,
           now: datetime) -> dict[str, Any]:
    """The case screen (contract: GET /api/v1/cases/{id}); ``case`` is ``cases.case_row``."""
    kind = get_kind(case["kind"])
    row = {**case}
    facts = facts_for(db, [row])[case["id"]]
    extra = EXTRAS.get(kind.name)
    return {
        "case": case_summary(case, kind, calendar, now),
        "events": events(db, kind, case["id"]),
        "available": [action(t) for t in offered(kind, case["state"], principal, facts)],
        "extra": dict(extra(db, case, principal)) if extra is not None else {},
    }


def load(db: Database, case_id: str) -> dict[str, Any] | None:
    return cases.case_row(db, case_id)
