"""Work lists of the services hall: the generic work list in the hall's row shape, and the overview.

The queue is ``server.store.worklist`` over the ``service_application`` kind (filters in SQL, the
actions from the declarations); what is added here is only the hall's row shape: each clock brought
to now with working days left, and the "due soon" warning (domain.md §1.2: warning before expiry,
yellow card when overdue).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.actions import actionable_states, offered
from server.domain.calendar import WorkCalendar
from server.domain.hall import KIND, SERVICE_APPLICATION, STATES, TERMINAL
from server.domain.roles import Principal
from server.domain.views import clock_at
from server.store import worklist
from server.store.scope import under

_KINDS = {KIND: SERVICE_APPLICATION}


def _row(row: Mapping[str, Any], calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    data = row["data"]
    clocks = {name: clock_at(c, calendar, now) for name, c in row["clocks"].items()}
    running = [c for c in clocks.values() if c["status"] in ("running", "breached")]
    return {
        "id": row["id"], "number": row["number"], "state": row["state"], "org_path": row["org_path"],
        "version": row["version"], "due_at": row["due_at"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "item_code": data.get("item_code"), "item_name": data.get("item_name"),
        "level": data.get("item_level"), "channel": data.get("channel"),
        "applicant": data.get("applicant_name_masked"),
        "state_label": STATES.get(row["state"], row["state"]),
        "clocks": clocks,
        "overdue": any(c["overdue"] for c in running),
        "due_soon": any(c["working_days_left"] is not None and 0 <= c["working_days_left"] <= 1
                        and not c["overdue"] for c in running),
        "remaining_seconds": min((c["remaining_seconds"] for c in running), default=None),
    }


def queue(
    db: Database,
    principal: Principal,
    calendar: WorkCalendar,
    now: datetime,
    *,
    states: Sequence[str] = (),
    mine_only: bool = True,
    item_code: str = "",
    channel: str = "",
    overdue_only: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The hall queue: by default what waits for this person (the states in which their role has an
    action, from the declarations); ``mine_only=False`` every open application in scope."""
    extra: list[tuple[str, tuple[Any, ...]]] = []
    if item_code:
        extra.append(("json_extract(c.data, '$.item_code') = ?", (item_code,)))
    if channel:
        extra.append(("json_extract(c.data, '$.channel') = ?", (channel,)))
    q = worklist.WorklistQuery(
        kinds=_KINDS, scope=principal.org_path, now=now, states=tuple(states), overdue=overdue_only,
        actionable=actionable_states(_KINDS.values(), principal) if mine_only and not states else None,
        limit=limit, extra_where=tuple(extra),
    )
    rows, _ = worklist.page(db, q)
    facts = worklist.facts_for(db, rows)
    out = []
    for row in rows:
        item = _row(row, calendar, now)
        item["available"] = [{"name": t.name, "label": t.label_zh}
                             for t in offered(SERVICE_APPLICATION, row["state"], principal, facts[row["id"]])]
        out.append(item)
    return out


def overview(db: Database, scope: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """The street's applications by state, with overdue and due-soon counts of the open ones."""
    where, params = under("org_path", scope)
    counts = {s: 0 for s in STATES}
    by_item: dict[str, int] = {}
    overdue = due_soon = 0
    cur = db.execute(f"SELECT id, number, state, org_path, version, due_at, created_at, updated_at, data, clocks"
                     f" FROM cases WHERE kind = ? AND {where}", [KIND, *params])
    names = [d[0] for d in cur.description]
    for raw in cur.fetchall():
        r = dict(zip(names, raw, strict=True))
        r["data"], r["clocks"] = json.loads(r["data"]), json.loads(r["clocks"])
        counts[r["state"]] = counts.get(r["state"], 0) + 1
        if r["state"] in TERMINAL:
            continue
        row = _row(r, calendar, now)
        by_item[row["item_name"]] = by_item.get(row["item_name"], 0) + 1
        overdue += row["overdue"]
        due_soon += row["due_soon"]
    return {
        "by_state": [{"state": s, "label": STATES[s], "count": counts.get(s, 0)} for s in STATES],
        "open": sum(n for s, n in counts.items() if s not in TERMINAL),
        "total": sum(counts.values()),
        "overdue": overdue,
        "due_soon": due_soon,
        "open_by_item": dict(sorted(by_item.items(), key=lambda kv: -kv[1])),
    }
