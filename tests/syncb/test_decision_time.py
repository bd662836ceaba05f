"""A district decision takes effect when the district made it, and one the street refuses goes back up.

Two real nodes (hub app + street SQLite file, tests/syncb/conftest.py). Issue 9 "Event time": the street
used its own sync time for the decision, so a statutory clock stopped days late; and a refused decision
stayed a local note the district never saw.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from schemas.sync_leg_b import DecisionRequest
from server.domain.engine import Draft
from server.domain.ids import now_china, uuid7
from server.node import node_key
from server.store import cases
from server.store.calendars import current_calendar
from server.store.users import get_user_by_name
from sync.hub_publish import publish_decision
from tests.conftest import Logins
from tests.syncb.conftest import HANDUP, Pair


def handed_up(pair: Pair, at: datetime) -> str:
    """A case received at ``at`` and handed up to the district an hour later, recorded at those times."""
    clerk, handler = pair.principal("clerk"), pair.principal("handler")

    def write(db: Any) -> str:
        d = Draft("submit", {"title": "困难救助"}, clerk, at, uuid7())
        view, _ = cases.create_case(db, HANDUP, d, org_path=clerk.org_path, node_id="test-street",
                                    calendar=current_calendar(db))
        cases.transition(db, view.id, Draft("hand_up", {}, handler, at + timedelta(hours=1), uuid7()),
                         node_id="test-street", calendar=current_calendar(db))
        return view.id

    return pair.street_store.write(write)


def decide_at_hub(pair: Pair, case_id: str, at: datetime, transition: str, **payload: Any) -> None:
    user = pair.hub_store.read(lambda db: get_user_by_name(db, "approver"))
    assert user is not None
    req = DecisionRequest(transition=transition, payload=payload, base_version=2)
    pair.hub_store.write(lambda db: publish_decision(db, node_key(pair.hub), "test-hub", case_id, req,
                                                     user.principal(), at))


def test_a_district_decision_takes_effect_at_the_hubs_decision_time_not_the_streets_sync(pair: Pair) -> None:
    received = (now_china() - timedelta(days=6)).replace(microsecond=0)
    cid = handed_up(pair, received)
    pair.sync()
    decided = received + timedelta(days=2)  # the district decided on day 2; the street syncs on day 6
    decide_at_hub(pair, cid, decided, "approve", note="同意")
    assert pair.sync().package_errors == []
    event = pair.street_store.query("SELECT node_time, effective_time, effective_basis FROM case_events"
                                    " WHERE case_id = ? AND seq = 3", [cid])[0]
    assert datetime.fromisoformat(event["effective_time"]) == decided
    assert datetime.fromisoformat(event["node_time"]) - decided > timedelta(days=3)
    assert event["effective_basis"].startswith(f"按区级部门作出决定的时间 {decided:%Y-%m-%d %H:%M} 计时")


def test_a_decision_the_street_refuses_travels_back_and_the_district_sees_it(pair: Pair) -> None:
    cid = handed_up(pair, (now_china() - timedelta(days=1)).replace(microsecond=0))
    pair.sync()
    decide_at_hub(pair, cid, now_china(), "refuse")  # 不予批准 needs a written reason: the street refuses it
    assert pair.sync().package_errors == []
    assert pair.street_store.query("SELECT state FROM cases WHERE id = ?", [cid]) == [{"state": "handed_up"}]
    local = pair.street_store.query("SELECT case_id, code, reason FROM decision_refusals")
    assert local == [{"case_id": cid, "code": "missing_field", "reason": "缺少必填项：reason"}]
    pair.sync()  # the next up-sync carries the refusal
    resp = pair.hub_client.get("/hub/v1/records?entity=decision_refusal", headers=Logins(pair.hub_client)("approver"))
    assert resp.status_code == 200, resp.text
    [record] = resp.json()["records"]
    assert record["data"]["case_id"] == cid and record["data"]["code"] == "missing_field"
    assert record["data"]["reason"] == "缺少必填项：reason" and record["node_id"] == "test-street"
    decision = record["data"]["decision"]
    decision = json.loads(decision) if isinstance(decision, str) else decision
    assert decision["transition"] == "refuse"
