"""Every feature of the node, in one explicit list: its case kinds, intake handlers, engine look-ups,
work-list facts, case-screen extras and reactions (issue 9: registration is explicit, not a side
effect of importing an API module; after datasette's named hooks).

``install()`` puts them into the registries the generic machinery reads. It is idempotent and is
called wherever the node's store is opened (``server.store.schema``) and by ``create_app``, so the
CLI, the outbox, the timers and the web routes all see the same kinds. The web side of a feature
(endpoints, background loops) is listed in ``server.web.routes`` and ``server.web.lifecycle``.

A new kind is one more ``Feature`` here: its declaration (``CaseKind`` with ``views``), its payload
models and, if it has them, an intake handler made with ``intake.register_case_intake``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.domain.engine import CaseKind
from server.domain.evaluation import RECTIFICATION
from server.domain.grid import GRID_INCIDENT, GRID_PREVENTIVE
from server.domain.hall import SERVICE_APPLICATION
from server.domain.kinds import REGISTRY
from server.store import (
    case_detail,
    case_event_intake,
    cases,
    grid,
    grid_lists,
    grid_patrols,
    hall,
    intake,
    worklist,
)
from server.store.case_detail import DetailExtra
from server.store.cases import Lookup
from server.store.intake import IntakeHandler
from server.store.worklist import FactsLookup


@dataclass(frozen=True)
class Feature:
    name: str
    kinds: tuple[CaseKind, ...] = ()
    intake: Mapping[str, IntakeHandler] = field(default_factory=dict)  # envelope kind -> handler
    lookups: Mapping[str, Lookup] = field(default_factory=dict)  # case kind -> facts for its guards
    facts: Mapping[str, FactsLookup] = field(default_factory=dict)  # case kind -> facts for its action filter
    extras: Mapping[str, DetailExtra] = field(default_factory=dict)  # case kind -> its case-screen extras


FEATURES: list[Feature] = [
    Feature("cases", intake={case_event_intake.KIND: case_event_intake.handle_case_event}),
    Feature("hall", kinds=(SERVICE_APPLICATION, RECTIFICATION),
            intake={SERVICE_APPLICATION.name: hall.handle_application},
            extras={SERVICE_APPLICATION.name: hall.application_extra}),
    Feature("grid", kinds=(GRID_INCIDENT, GRID_PREVENTIVE),
            intake={"incident_report": grid.handle_incident_report, "patrol_log": grid_patrols.handle_patrol_log},
            lookups={GRID_INCIDENT.name: grid.lookup},
            facts={GRID_INCIDENT.name: grid_lists.task_facts, GRID_PREVENTIVE.name: grid_lists.task_facts},
            extras={GRID_INCIDENT.name: grid_lists.incident_extra, GRID_PREVENTIVE.name: grid_lists.incident_extra}),
]


def install(features: list[Feature] | None = None) -> None:
    """Register every feature's parts (idempotent: the same objects again change nothing)."""
    for feature in FEATURES if features is None else features:
        for kind in feature.kinds:
            REGISTRY[kind.name] = kind
        for name, handler in feature.intake.items():
            intake.register(name, handler)
        for name, lookup in feature.lookups.items():
            cases.register_lookup(name, lookup)
        for name, facts in feature.facts.items():
            worklist.register_facts(name, facts)
        for name, extra in feature.extras.items():
            case_detail.register_extra(name, extra)
