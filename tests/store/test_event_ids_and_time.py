"""Event ids are idempotency keys, never reusable; an offline act on a trusted tablet keeps its own time.

Through the real app: the REST route ``POST /api/v1/cases/{id}/events`` and the signed ``case_event``
envelope of ``POST /sync/v1/outbox`` answer alike (issue 9, "Event id reuse"; contract.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from server.domain.engine import Draft
from server.domain.ids import now_china, uuid7
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.conftest import Logins
from tests.kinds_for_tests import TEST_PERMIT
from tests.sync.helpers import enrol_device, post_outbox


def new_case(store: Store, at: datetime | None = None) -> str:
    user = store.read(lambda db: get_user_by_name(db, "clerk"))
    assert user is not None
    p = user.principal()

    def create(db: Any) -> str:
        d = Draft("submit", {"title": "测试"}, p, at or now_china(), uuid7())
        return cases.create_case(db, TEST_PERMIT, d, org_path=p.org_path, node_id="n",
                                 calendar=current_calendar(db))[0].id

    return store.write(create)


def post(client: TestClient, auth: Logins, case_id: str, event_id: str, transition: str = "accept",
         **payload: Any) -> Any:
    return client.post(f"/api/v1/cases/{case_id}/events", headers=auth("clerk"),
                       json={"transition": transition, "payload": payload, "event_id": event_id})


def n_events(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) AS n FROM case_events")[0]["n"])


def test_rest_same_event_id_and_body_is_the_original_result_another_body_is_409(
        client: TestClient, auth: Logins, store: Store) -> None:
    cid, eid = new_case(store), uuid7()
    first = post(client, auth, cid, eid)
    assert first.status_code == 200, first.text
    again = post(client, auth, cid, eid)
    assert again.status_code == 200 and again.json() == first.json()
    before = n_events(store)
    other = post(client, auth, cid, eid, "reject", reason="材料不齐")
    assert other.status_code == 409 and other.json()["code"] == "id_conflict"
    assert other.json()["errors"][0]["field"] == "event_id"
    assert n_events(store) == before


def test_rest_event_id_of_another_case_is_409_not_a_hung_request(client: TestClient, auth: Logins,
                                                                   store: Store) -> None:
    a, b, eid = new_case(store), new_case(store), uuid7()
    assert post(client, auth, a, eid).status_code == 200
    before = n_events(store)
    resp = post(client, auth, b, eid)
    assert resp.status_code == 409 and resp.json()["code"] == "id_conflict" and "另一事项" in resp.json()["error"]
    assert n_events(store) == before
    assert client.get("/api/v1/health").status_code == 200  # the writer thread is alive


def test_outbox_event_id_reuse_is_an_id_conflict_and_a_replay_the_original_result(
        client: TestClient, auth: Logins, store: Store) -> None:
    a, b = new_case(store), new_case(store)
    tablet = enrol_device(client, auth, "clerk")
    eid = uuid7()
    assert post(client, auth, a, eid).status_code == 200  # made online first, then queued again offline

    def send(case_id: str, transition: str, **payload: Any) -> dict[str, Any]:
        env = tablet.envelope("case_event", {"case_id": case_id, "transition": transition, "payload": payload},
                              submission_id=eid)
        resp = post_outbox(client, auth("clerk"), tablet, [env])
        assert resp.status_code == 200, resp.text
        return resp.json()["results"][0]  # type: ignore[no-any-return]

    same = send(a, "accept")
    assert same["status"] == "created" and same["record"]["event_id"] == eid and same["record"]["version"] == 2
    before = n_events(store)
    for result in (send(b, "accept"), send(a, "reject", reason="材料不齐")):
        assert result["status"] == "id_conflict" and result["errors"][0]["field"] == "submission_id"
    assert n_events(store) == before
    kept = store.query("SELECT status FROM quarantine WHERE submission_id = ?", [eid])
    assert kept and {r["status"] for r in kept} == {"id_conflict"}


def test_an_act_queued_on_a_trusted_tablet_takes_effect_when_it_was_done(client: TestClient, auth: Logins,
                                                                         store: Store) -> None:
    cid = new_case(store, now_china() - timedelta(days=1))
    tablet = enrol_device(client, auth, "clerk")
    done_at = (now_china() - timedelta(hours=2)).replace(microsecond=0)
    env = tablet.envelope("case_event", {"case_id": cid, "transition": "accept", "payload": {}},
                          created_at_device=done_at.isoformat())
    resp = post_outbox(client, auth("clerk"), tablet, [env], device_time=now_china())  # the sync measures the clock
    assert resp.json()["results"][0]["status"] == "created", resp.text
    row = store.query("SELECT node_time, effective_time, effective_basis FROM case_events WHERE case_id = ?"
                      " AND seq = 2", [cid])[0]
    effective = datetime.fromisoformat(row["effective_time"])
    assert abs((effective - done_at).total_seconds()) < 5  # corrected by the offset just measured (≈ 0)
    assert datetime.fromisoformat(row["node_time"]) - effective > timedelta(hours=1)
    assert row["effective_basis"].startswith("按设备记录的办理时间")


def test_an_unmeasured_tablet_clock_is_not_believed(client: TestClient, auth: Logins, store: Store) -> None:
    cid = new_case(store, now_china() - timedelta(days=1))
    tablet = enrol_device(client, auth, "clerk")
    env = tablet.envelope("case_event", {"case_id": cid, "transition": "accept", "payload": {}},
                          created_at_device=(now_china() - timedelta(hours=2)).isoformat(timespec="seconds"))
    assert post_outbox(client, auth("clerk"), tablet, [env]).json()["results"][0]["status"] == "created"
    row = store.query("SELECT node_time, effective_time, effective_basis FROM case_events WHERE case_id = ?"
                      " AND seq = 2", [cid])[0]
    assert row["effective_time"] == row["node_time"] and "不采用设备时间" in row["effective_basis"]


def test_an_application_received_offline_starts_its_acceptance_period_when_it_was_received(
        client: TestClient, auth: Logins, store: Store) -> None:
    from tests.hall.helpers import form

    tablet = enrol_device(client, auth, "community1", label="社区代办平板")
    received = (now_china() - timedelta(days=2)).replace(microsecond=0)
    env = tablet.envelope("service_application", form(), created_at_device=received.isoformat())
    result = post_outbox(client, auth("community1"), tablet, [env], device_time=now_china()).json()["results"][0]
    assert result["status"] == "created", result
    row = store.query("SELECT clocks FROM cases WHERE id = ?", [result["record"]["case_id"]])[0]
    started = datetime.fromisoformat(json.loads(row["clocks"])["acceptance"]["started_at"])
    assert abs((started - received).total_seconds()) < 5  # 行政许可法 art. 32 counts from receipt, not upload
