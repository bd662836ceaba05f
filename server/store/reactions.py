"""What the node does by itself: timers that ran out and cases opened in reaction to other records.

All in one place (issue 9 §5), so that a new reaction (later: breach -> supervision alert) is one
more function here and one more line in the node's loop, not a side effect hidden in a feature:

- **timers**: a case whose timer clock has run out gets the engine's own transition (deemed
  acceptance, 行政许可法 art. 32; 挂账 expiry). Each case in its own savepoint: one case that the
  engine refuses (a broken log, a rule changed since) is logged and skipped, never rolls back the
  cases fired before it, never stops the clock for the others.
- **rating -> rectification**: a bad rating (差评) opens a ``rating_rectification`` case for the
  responsible person (国办发〔2019〕51号: 差评 must be rectified and answered).
- **hot spot -> preventive task**: a recurring problem turned into preventive work (源头治理)
  opens a ``grid_preventive`` case with its own clock.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.engine import Draft, RuleViolation
from server.domain.evaluation import RECTIFICATION
from server.domain.grid import GRID_PREVENTIVE
from server.domain.ids import uuid7
from server.domain.roles import Principal
from server.store import cases, changes

log = logging.getLogger("streetnode.reactions")


@dataclass(frozen=True)
class TimerRun:
    fired: list[tuple[str, str]] = field(default_factory=list)  # (case_id, transition)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (case_id, transition, why)


def fire_due_timers(db: Database, calendar: WorkCalendar, now: datetime, node_id: str) -> TimerRun:
    """Make the engine's own transition for every timer that has run out, one savepoint per case."""
    run = TimerRun()
    for case_id, name, due in cases.due_timer_details(db, calendar, now):
        # the act happened when the clock ran out, not when this round noticed it (event time)
        draft = Draft(transition=name, payload={}, principal=None, node_time=now, event_id=uuid7(),
                      **cases.timer_time(due, now))
        try:
            with db.atomic():
                cases.transition(db, case_id, draft, node_id=node_id, calendar=calendar)
        except RuleViolation as exc:
            log.warning("timer %s on case %s refused: %s", name, case_id, exc.message)
            run.failed.append((case_id, name, exc.message))
            continue
        run.fired.append((case_id, name))
    return run


def open_rectification(db: Database, rated_case: Mapping[str, Any], rating_id: str, level: int, responsible: str,
                       deadline_wd: int, *, now: datetime, node_id: str, calendar: WorkCalendar) -> str:
    """Rating -> rectification: the rectification case for a bad rating of ``rated_case``."""
    draft = Draft("open", {"rating_id": rating_id, "case_id": rated_case["id"], "case_number": rated_case["number"],
                           "level": level, "responsible": responsible, "deadline_wd": deadline_wd},
                  None, now, uuid7())
    view, _ = cases.create_case(db, RECTIFICATION, draft, org_path=rated_case["org_path"], node_id=node_id,
                                calendar=calendar)
    return view.id


def preventive_task(db: Database, principal: Principal, hotspot: Mapping[str, Any], payload: dict[str, Any], *,
                    node_id: str, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    """Hot spot -> preventive task: the ``grid_preventive`` case, and the hot spot marked as handled."""
    draft = Draft("plan", payload, principal, now, uuid7())
    view, number = cases.create_case(db, GRID_PREVENTIVE, draft, org_path=hotspot["org_path"], node_id=node_id,
                                     calendar=calendar)
    db.execute("UPDATE grid_hotspots SET status = 'preventive', preventive_case_id = ?, updated_at = ? WHERE id = ?",
               [view.id, now.isoformat(), hotspot["id"]])
    changes.record(db, "grid_hotspot", hotspot["id"], hotspot["org_path"])
    return {"case_id": view.id, "number": number, "state": view.state, "hotspot_id": hotspot["id"]}
