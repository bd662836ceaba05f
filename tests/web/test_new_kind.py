"""A new kind with no web or store code of its own (``test_request`` in tests/kinds_for_tests.py), driven
end to end through the generic machinery: kinds metadata, an outbox envelope to create it, the work
list, the case screen, the events route and a ``case_event`` envelope, its settings and its timer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from server.domain.ids import now_china
from server.store import reactions, settings
from server.store.calendars import current_calendar
from server.store.db import Store
from tests.conftest import Logins
from tests.kinds_for_tests import REQUEST, TEST_REQUEST, RequestSettings
from tests.sync.helpers import TestDevice, enrol_device, post_outbox


def send(client: TestClient, auth: Logins, device: TestDevice, *envs: dict[str, Any]) -> list[dict[str, Any]]:
    resp = post_outbox(client, auth(device.username), device, list(envs))
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]  # type: ignore[no-any-return]


def register(client: TestClient, auth: Logins, device: TestDevice, **form: Any) -> str:
    (made,) = send(client, auth, device, device.envelope(REQUEST, {"subject": "路灯不亮", "detail": "小区东门路灯",
                                                                   **form}))
    assert made["status"] == "created", made
    return str(made["record"]["case_id"])


def test_a_new_kind_runs_on_the_generic_machinery_end_to_end(client: TestClient, auth: Logins,
                                                             store: Store) -> None:
    kind = client.get(f"/api/v1/kinds/{REQUEST}", headers=auth("clerk")).json()["kind"]
    assert kind["label"] == "居民诉求" and kind["creatable"] == ["register"]
    assert [c["key"] for c in kind["views"]["columns"]] == ["subject", "unit", "received_at"]
    assign = next(t for t in kind["transitions"] if t["name"] == "assign")
    assert assign["schema"]["properties"]["unit"]["description"] == "承办单位"  # the form, from the payload model
    assert assign["schema"]["additionalProperties"] is False

    clerk = enrol_device(client, auth, "clerk")
    envelope = clerk.envelope(REQUEST, {"subject": "路灯不亮", "detail": "小区东门路灯", "place": "东门"})
    (made,) = send(client, auth, clerk, envelope)
    case_id = made["record"]["case_id"]
    assert case_id == envelope["submission_id"] and made["record"]["number"]
    (again,) = send(client, auth, clerk, envelope)
    assert again["record"]["case_id"] == case_id  # a replayed envelope makes no second case
    assert store.query("SELECT COUNT(*) AS n FROM cases WHERE kind = ?", [REQUEST])[0]["n"] == 1
    bad = send(client, auth, clerk, clerk.envelope(REQUEST, {"subject": "", "detail": "y", "extra": 1}))
    assert bad[0]["status"] == "invalid" and {e["field"] for e in bad[0]["errors"]} >= {"payload.subject",
                                                                                        "payload.extra"}

    listed = client.get("/api/v1/worklist", headers=auth("admin"), params={"kind": REQUEST, "actionable": "1"})
    (row,) = listed.json()["items"]
    assert row["id"] == case_id and row["columns"]["subject"] == "路灯不亮" and row["state_label"] == "已登记"
    assert row["actions"] == [{"name": "assign", "label": "分派"}]
    assert client.get("/api/v1/worklist", headers=auth("handler"),
                      params={"kind": REQUEST, "actionable": "1"}).json()["items"] == []

    url = f"/api/v1/cases/{case_id}/events"
    refused = client.post(url, json={"transition": "assign", "payload": {"unit": "城管", "colour": "red"}},
                          headers=auth("admin"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "payload.colour"
    done = client.post(url, json={"transition": "assign", "payload": {"unit": "城管"}, "base_version": 1},
                       headers=auth("admin"))
    assert done.status_code == 200 and done.json()["state"] == "assigned"

    handler = enrol_device(client, auth, "handler")
    answer = handler.envelope("case_event", {"case_id": case_id, "transition": "answer", "base_version": 2,
                                             "payload": {"answer": "已修复"}})
    (answered,) = send(client, auth, handler, answer)
    assert answered["status"] == "created" and answered["record"]["state"] == "answered"

    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth("admin")).json()
    assert detail["case"]["state_label"] == "已答复" and detail["case"]["current_clock"] == "answer"
    assert detail["case"]["clocks"]["answer"]["status"] == "stopped"
    assert [e["label"] for e in detail["events"]] == ["登记", "分派", "答复"]
    assert detail["events"][-1]["id"] == answer["submission_id"]  # the envelope's id is the event's id
    assert [a["name"] for a in detail["available"]] == ["close"]

    # the REST route and the envelope leave the same kind of rows: one event, one audit entry, one change
    rows = store.query("SELECT action, object_id FROM audit_log WHERE action LIKE 'case.%' AND object_id = ?",
                       [case_id])
    assert [r["action"] for r in rows] == ["case.register", "case.assign", "case.answer"]


def test_the_new_kinds_settings_live_in_the_one_settings_table(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    assert store.read(lambda db: settings.load(db, TEST_REQUEST, RequestSettings)).answer_wd == 10
    store.write(lambda db: settings.save(db, TEST_REQUEST, RequestSettings(answer_wd=3), actor="u", role="street_admin",
                                         org_path="440106"))
    clerk = enrol_device(client, auth, "clerk")
    case_id = register(client, auth, clerk)
    clock = client.get(f"/api/v1/cases/{case_id}", headers=auth("clerk")).json()["case"]["clocks"]["answer"]
    assert clock["duration"] == 3
    stored = store.query("SELECT kind, key, value FROM kind_settings WHERE kind = ?", [REQUEST])
    assert stored == [{"kind": REQUEST, "key": "answer_wd", "value": "3"}]


def test_one_case_refused_by_its_timer_does_not_hold_back_the_others(client: TestClient, auth: Logins,
                                                                      store: Store) -> None:
    clerk = enrol_device(client, auth, "clerk")
    ids = [register(client, auth, clerk, on_hold=i == 1) for i in range(3)]
    frozen = ids[1]  # its timer transition is refused by its guard
    for case_id in ids:
        payload = {"unit": "城管"}
        r = client.post(f"/api/v1/cases/{case_id}/events", json={"transition": "assign", "payload": payload},
                        headers=auth("admin"))
        assert r.status_code == 200
    later = now_china() + timedelta(days=40)
    run = store.write(lambda db: reactions.fire_due_timers(db, current_calendar(db), later, "test-street"))
    assert sorted(c for c, _ in run.fired) == sorted(set(ids) - {frozen})
    assert [(c, t) for c, t, _ in run.failed] == [(frozen, "escalate")]
    states = {r["id"]: r["state"] for r in store.query("SELECT id, state FROM cases WHERE kind = ?", [REQUEST])}
    assert states == {ids[0]: "escalated", frozen: "assigned", ids[2]: "escalated"}
