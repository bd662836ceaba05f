"""The one work list: cases of any kind, filtered in SQL, cursor-paginated, with each person's actions.

Every filter is a WHERE clause (kind, state, scope, owner, due date, overdue / due soon, "actions
available to me"), so a page of 50 costs the same over 50 cases or 50,000. "Actions available to
me" comes from the declarations: the (kind, state) pairs in which the caller's role and tier have
at least one transition become ``(kind = ? AND state IN (...)) OR ...``; a kind's own narrower rule
(``KindViews.action_filter``, e.g. only the grid a task was dispatched to) is applied to the page
with the facts its registered look-up found (``register_facts``), and rows left with no action are
dropped from an ``actionable`` page (the cursor still moves past them).

Pages are keyset-paginated: by due date (earliest first, cases without one last) or by last
update (newest first); the cursor is the last row's sort key, opaque to clients.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlite_utils import Database

from server.domain.actions import offered
from server.domain.engine import CaseKind
from server.domain.roles import Principal
from server.domain.views import column_value
from server.store.scope import under

Sort = Literal["due", "updated"]
NO_DUE = "~"  # sorts after every ISO date: cases without a deadline come last
NARROW_SCOPE_DEPTH = 2  # "district/street/community" and below: few enough cases to read the scope's range
_SELECT = "SELECT c.id, c.kind, c.number, c.state, c.org_path, c.version, c.due_at, c.data, c.clocks, c.created_at," \
          " c.updated_at FROM cases c"

# kind -> look-up of the facts its action filter needs, for a page of rows at once (one query each)
FactsLookup = Callable[[Database, Sequence[Mapping[str, Any]]], Mapping[str, Mapping[str, Any]]]
FACTS: dict[str, FactsLookup] = {}


def register_facts(kind: str, lookup: FactsLookup) -> None:
    FACTS[kind] = lookup


class BadCursor(ValueError):
    """The cursor was not made by this list (or for another sort order)."""


@dataclass(frozen=True)
class WorklistQuery:
    kinds: Mapping[str, CaseKind]  # the kinds to list (already validated)
    scope: str  # org path; the caller checked it lies within the principal's own
    now: datetime
    states: tuple[str, ...] = ()  # empty: open cases (not in a terminal state)
    owner: str | None = None  # exact org path
    due_before: datetime | None = None
    overdue: bool = False
    due_soon_until: datetime | None = None  # due from now until then (and not yet overdue)
    actionable: Mapping[str, Sequence[str]] | None = None  # kind -> states with an action for the caller
    include_closed: bool = False
    sort: Sort = "due"
    limit: int = 50
    cursor: str | None = None
    extra_where: tuple[tuple[str, tuple[Any, ...]], ...] = field(default_factory=tuple)  # kind-specific


def encode_cursor(sort: Sort, key: str, case_id: str) -> str:
    raw = json.dumps([sort, key, case_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, key, case_id = json.loads(raw)
    except (ValueError, TypeError):
        raise BadCursor("cursor") from None
    if got_sort != sort or not isinstance(key, str) or not isinstance(case_id, str):
        raise BadCursor("cursor")
    return key, case_id


def _where(q: WorklistQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    kinds = sorted(q.kinds)
    clauses.append(f"c.kind IN ({', '.join('?' for _ in kinds)})")
    params += kinds
    # Which index drives the page: for a narrow scope (a community, a grid) the scope's own range on
    # ``cases_scope``; for a street or a district the due-date / last-update order itself, filtering as
    # it goes (a unary "+" keeps the planner off the scope index, whose range is then most of the table).
    narrow = q.scope.count("/") >= NARROW_SCOPE_DEPTH
    scope_sql, scope_params = under("c.org_path" if narrow else "+c.org_path", q.scope)
    clauses.append(scope_sql)
    params += scope_params
    if q.states:
        clauses.append(f"c.state IN ({', '.join('?' for _ in q.states)})")
        params += list(q.states)
    elif not q.include_closed:
        closed = [(k.name, s) for k in q.kinds.values() for s in sorted(k.terminal)]
        if closed:
            clauses.append(f"(c.kind, c.state) NOT IN (VALUES {', '.join('(?, ?)' for _ in closed)})")
            params += [x for pair in closed for x in pair]
    if q.actionable is not None:
        pairs = [(k, sorted(states)) for k, states in sorted(q.actionable.items()) if k in q.kinds and states]
        if not pairs:
            clauses.append("0")
        else:
            parts = []
            for kind, states in pairs:
                parts.append(f"(c.kind = ? AND c.state IN ({', '.join('?' for _ in states)}))")
                params += [kind, *states]
            clauses.append("(" + " OR ".join(parts) + ")")
    if q.owner is not None:
        clauses.append("c.org_path = ?")
        params.append(q.owner)
    # Due-date filters are written on the due index's own expression, so a page sorted by due date
    # seeks to the range instead of scanning the overdue cases before it ("~" = no deadline).
    due, now = f"COALESCE(c.due_at, '{NO_DUE}')", q.now.isoformat()
    if q.due_before is not None:
        clauses.append(f"{due} < ?")
        params.append(q.due_before.isoformat())
    if q.overdue:
        clauses.append(f"{due} < ?")
        params.append(now)
    if q.due_soon_until is not None:
        clauses.append(f"{due} >= ? AND {due} < ?")
        params += [now, q.due_soon_until.isoformat()]
    for sql, extra in q.extra_where:
        clauses.append(sql)
        params += list(extra)
    return clauses, params


def page(db: Database, q: WorklistQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page of case rows (data and clocks decoded) and the cursor of the next page.

    Two steps: the page's ids from the covering indexes alone (kind, state, scope, due date and the
    sort key, no table rows), then the page's rows by id. Sorting or scanning 50,000 index entries is
    cheap; dragging 50,000 rows of JSON through a sort is not.
    """
    clauses, params = _where(q)
    if q.sort == "due":
        key_sql, order, compare = f"COALESCE(c.due_at, '{NO_DUE}')", f"COALESCE(c.due_at, '{NO_DUE}'), c.id", ">"
    else:
        key_sql, order, compare = "c.updated_at", "c.updated_at DESC, c.id DESC", "<"
    if q.cursor:
        key, last_id = decode_cursor(q.cursor, q.sort)
        clauses.append(f"({key_sql}, c.id) {compare} (?, ?)")
        params += [key, last_id]
    found = db.execute(f"SELECT c.id, {key_sql} FROM cases c WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?",
                       [*params, q.limit + 1]).fetchall()
    next_cursor = encode_cursor(q.sort, found[q.limit - 1][1], found[q.limit - 1][0]) if len(found) > q.limit else None
    ids = [r[0] for r in found[: q.limit]]
    if not ids:
        return [], None
    cur = db.execute(f"{_SELECT} WHERE c.id IN ({', '.join('?' for _ in ids)})", ids)
    names = [d[0] for d in cur.description]
    by_id = {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    rows = [by_id[i] for i in ids if i in by_id]
    for row in rows:
        row["data"] = json.loads(row["data"] or "{}")
        row["clocks"] = json.loads(row["clocks"] or "{}")
    return rows, next_cursor


def facts_for(db: Database, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per case: its data plus whatever its kind's registered look-up found (one call per kind)."""
    out: dict[str, dict[str, Any]] = {r["id"]: {"data": r["data"]} for r in rows}
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, kind_rows in by_kind.items():
        lookup = FACTS.get(kind)
        if lookup is not None:
            for case_id, found in lookup(db, kind_rows).items():
                out[case_id].update(found)
    return out


def item(row: Mapping[str, Any], kind: CaseKind, principal: Principal, facts: Mapping[str, Any],
         now: datetime) -> dict[str, Any]:
    """A work-list row in the shape the PWA renders for every kind (contract: worklist items)."""
    due_at = row["due_at"]
    return {
        "id": row["id"], "kind": kind.name, "kind_label": kind.label_zh, "number": row["number"],
        "state": row["state"], "state_label": kind.states.get(row["state"], row["state"]),
        "org_path": row["org_path"], "due_at": due_at,
        "overdue": due_at is not None and due_at < now.isoformat(),
        "updated_at": row["updated_at"],
        "columns": {c.key: column_value(c.source, row, row["data"]) for c in kind.views.columns},
        "actions": [{"name": t.name, "label": t.label_zh or t.name}
                    for t in offered(kind, row["state"], principal, facts)],
    }


def worklist(db: Database, q: WorklistQuery, principal: Principal) -> tuple[list[dict[str, Any]], str | None]:
    rows, next_cursor = page(db, q)
    facts = facts_for(db, rows)
    items = [item(r, q.kinds[r["kind"]], principal, facts[r["id"]], q.now) for r in rows]
    if q.actionable is not None:
        items = [i for i in items if i["actions"]]
    return items, next_cursor
