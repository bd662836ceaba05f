"""Work lists: each role's queue with due dates, time left and overdue flags; the street overview."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from server.config import Settings
from server.domain.ids import now_china
from server.store.db import Store
from tests.conftest import Logins
from tests.hall.helpers import EMPLOYMENT_REG, MINIMUM_LIVING, ORIGINALS, step, submitted


def queue(client: TestClient, auth: Logins, user: str, **params: str) -> list[dict]:  # type: ignore[type-arg]
    resp = client.get("/api/v1/hall/queue", headers=auth(user), params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


def test_queue_shows_due_dates_time_left_and_overdue(client: TestClient, auth: Logins, store: Store,
                                                      settings: Settings) -> None:
    old = submitted(store, settings, "clerk", EMPLOYMENT_REG, at=now_china() - timedelta(days=20))["case_id"]
    new = submitted(store, settings, "clerk")["case_id"]
    items = queue(client, auth, "clerk")
    assert [i["id"] for i in items] == [old, new]  # earliest due first
    first, second = items
    assert first["overdue"] is True and first["clocks"]["statutory"]["overdue"] is True
    assert first["remaining_seconds"] < 0
    assert second["overdue"] is False and second["clocks"]["promised"]["working_days_left"] >= 19
    assert second["applicant"] == "张*丰" and second["item_name"] == "最低生活保障审批"
    assert {a["name"] for a in second["available"]} >= {"pre_review_pass", "correction_notice"}
    assert [i["id"] for i in queue(client, auth, "clerk", overdue="1")] == [old]
    assert [i["id"] for i in queue(client, auth, "clerk", item_code=MINIMUM_LIVING)] == [new]


def test_each_role_sees_what_waits_for_it(client: TestClient, auth: Logins, store: Store,
                                          settings: Settings) -> None:
    cid = submitted(store, settings, "clerk")["case_id"]
    assert queue(client, auth, "handler") == []
    step(client, auth, "clerk", cid, "pre_review_pass")
    step(client, auth, "clerk", cid, "onsite_check", verified=ORIGINALS[MINIMUM_LIVING])
    step(client, auth, "clerk", cid, "accept")
    assert [i["id"] for i in queue(client, auth, "handler")] == [cid]
    assert queue(client, auth, "clerk") == []
    assert [i["id"] for i in queue(client, auth, "clerk", all="1")] == [cid]
    assert [i["id"] for i in queue(client, auth, "clerk", state="accepted")] == [cid]
    bad = client.get("/api/v1/hall/queue", headers=auth("clerk"), params={"state": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"


def test_community_queue_is_its_own_community(client: TestClient, auth: Logins, store: Store,
                                              settings: Settings) -> None:
    mine = submitted(store, settings, "community1")["case_id"]
    submitted(store, settings, "clerk")
    assert [i["id"] for i in queue(client, auth, "community1", all="1")] == [mine]


def test_overview_counts_by_state(client: TestClient, auth: Logins, store: Store, settings: Settings) -> None:
    submitted(store, settings, "clerk", EMPLOYMENT_REG, at=now_china() - timedelta(days=20))
    cid = submitted(store, settings, "clerk")["case_id"]
    step(client, auth, "clerk", cid, "not_accept", reasons=["不符合条件"])
    body = client.get("/api/v1/hall/overview", headers=auth("admin")).json()
    states = {s["state"]: s["count"] for s in body["by_state"]}
    assert states["submitted"] == 1 and states["not_accepted"] == 1
    assert body["open"] == 1 and body["total"] == 2 and body["overdue"] == 1
    assert client.get("/api/v1/hall/overview", headers=auth("grid1")).status_code == 403
