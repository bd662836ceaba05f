"""Which actions a person may take on a case now: ONE function for work lists, case detail and tasks.

The engine's ``decide`` remains the judge when the act is submitted; this only decides what to
*offer*. It reads the declarations (role, tier, system-only, the kind's hidden actions) and, when
the store has looked up the case's facts, the kind's own ``KindViews.action_filter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from server.domain.engine import CREATE, CaseKind, Transition
from server.domain.roles import Principal


def offered(kind: CaseKind, state: str, principal: Principal,
            facts: Mapping[str, Any] | None = None) -> list[Transition]:
    """Transitions ``principal`` may make on a ``kind`` case in ``state``, in declaration order.

    Without ``facts`` the answer is what the declarations allow for this role and tier (a superset,
    used to build the SQL filter); with them, the kind's own filter narrows it per case.
    """
    views = kind.views
    out = []
    for t in kind.transitions.values():
        if state not in t.from_states or t.system or principal.role not in t.roles:
            continue
        if t.tiers and principal.tier not in t.tiers:
            continue
        if t.name in views.hidden_actions:
            continue
        if facts is not None and views.action_filter is not None and not views.action_filter(t, principal, facts):
            continue
        out.append(t)
    return out


def actionable_states(kinds: Iterable[CaseKind], principal: Principal) -> dict[str, list[str]]:
    """kind -> the states in which ``principal`` has at least one action (for ``state IN (...)``)."""
    out: dict[str, list[str]] = {}
    for kind in kinds:
        states = [s for s in kind.states if s != CREATE and offered(kind, s, principal)]
        if states:
            out[kind.name] = states
    return out


def creatable(kind: CaseKind, principal: Principal) -> list[Transition]:
    """The creating transitions ``principal`` may make (the PWA's "new case" buttons)."""
    return offered(kind, CREATE, principal)
