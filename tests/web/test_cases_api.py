"""Generic case endpoints over HTTP: scope, transitions, conflicts (with the test-only kind)."""

from __future__ import annotations

from datetime import datetime

from starlette.testclient import TestClient

from server.domain.engine import Draft
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.roles import Principal, Role
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.conftest import Logins
from tests.kinds_for_tests import TEST_PERMIT

AT = datetime(2026, 11, 2, 9, 0, tzinfo=CHINA_TZ)


def create(store: Store, username: str, org_path: str | None = None) -> str:
    user = store.read(lambda db: get_user_by_name(db, username))
    assert user is not None
    p = user.principal()

    def write(db):  # type: ignore[no-untyped-def]
        d = Draft("submit", {"title": "测试事项"}, p, AT, uuid7())
        view, _ = cases.create_case(db, TEST_PERMIT, d, org_path=org_path or p.org_path, node_id="n",
                                    calendar=current_calendar(db))
        return view.id

    return store.write(write)


def test_staff_see_cases_in_scope_only(client: TestClient, auth: Logins, store: Store) -> None:
    case_id = create(store, "community1")  # received at the community on the street's behalf
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth("community1")).status_code == 200
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth("clerk")).status_code == 200  # street sees below
    resp = client.get(f"/api/v1/cases/{case_id}", headers=auth("grid1"))  # a grid sees only its grid
    assert resp.status_code == 403 and resp.json()["code"] == "out_of_scope"
    listed = client.get("/api/v1/cases", headers=auth("grid1")).json()["cases"]
    assert case_id not in {c["id"] for c in listed}
    assert case_id in {c["id"] for c in client.get("/api/v1/cases", headers=auth("clerk")).json()["cases"]}


def test_case_detail_has_timeline_clocks_and_available_transitions(client: TestClient, auth: Logins,
                                                                    store: Store) -> None:
    case_id = create(store, "clerk")
    body = client.get(f"/api/v1/cases/{case_id}", headers=auth("clerk")).json()
    assert body["case"]["state"] == "submitted" and body["case"]["state_label"] == "已申请"
    assert [e["transition"] for e in body["events"]] == ["submit"]
    assert {a["name"] for a in body["available"]} == {"accept", "reject"}
    assert "起算日" in body["case"]["clocks"]["decide"]["explanation"]


def test_transition_over_http_and_wrong_role_and_missing_field(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    case_id = create(store, "clerk")
    url = f"/api/v1/cases/{case_id}/events"
    r = client.post(url, json={"transition": "accept"}, headers=auth("handler"))
    assert r.status_code == 403 and r.json()["errors"][0]["rule"] == "role_not_allowed"
    r = client.post(url, json={"transition": "reject"}, headers=auth("clerk"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "payload.reason"
    r = client.post(url, json={"transition": "accept", "base_version": 1}, headers=auth("clerk"))
    assert r.status_code == 200 and r.json()["state"] == "accepted" and r.json()["version"] == 2


def test_stale_version_is_409_and_kept_as_conflict_record(client: TestClient, auth: Logins, store: Store) -> None:
    case_id = create(store, "clerk")
    url = f"/api/v1/cases/{case_id}/events"
    assert client.post(url, json={"transition": "accept", "base_version": 1}, headers=auth("clerk")).status_code == 200
    r = client.post(url, json={"transition": "reject", "payload": {"reason": "材料不全"}, "base_version": 1},
                    headers=auth("clerk"))
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    conflicts = client.get("/api/v1/conflicts", headers=auth("admin")).json()["conflicts"]
    assert [c["case_id"] for c in conflicts] == [case_id]


def test_case_of_another_street_is_out_of_scope(client: TestClient, auth: Logins, store: Store) -> None:
    store.write(lambda db: db.execute(
        "INSERT INTO org_units (code, parent_code, name, tier, kind, path) VALUES "
        "('440106001000', '440106', '五山街', 'street', 'street_office', '440106/440106001000')"))
    wushan = Principal("w", "wushan-clerk", Role.WINDOW_CLERK, "440106001000", "440106/440106001000")

    def write(db):  # type: ignore[no-untyped-def]
        d = Draft("submit", {"title": "五山街事项"}, wushan, AT, uuid7())
        return cases.create_case(db, TEST_PERMIT, d, org_path=wushan.org_path, node_id="n",
                                 calendar=current_calendar(db))[0].id

    case_id = store.write(write)
    r = client.post(f"/api/v1/cases/{case_id}/events", json={"transition": "accept"}, headers=auth("clerk"))
    assert r.status_code == 403 and r.json()["code"] == "out_of_scope"
    events = store.query("SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [case_id])[0]["n"]
    assert events == 1


def test_each_state_changing_request_writes_exactly_one_chained_audit_entry(client: TestClient, auth: Logins,
                                                                            store: Store) -> None:
    from server.store.audit import verify_chain

    def new_actions(before: int) -> list[str]:
        return [r["action"] for r in store.query("SELECT action FROM audit_log WHERE seq > ? ORDER BY seq", [before])]

    def head() -> int:
        return int(store.query("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_log")[0]["n"])

    case_id = create(store, "clerk")
    start = head()
    headers = auth("clerk")
    assert new_actions(start) == ["auth.login"]
    mark = head()
    client.post(f"/api/v1/cases/{case_id}/events", json={"transition": "accept"}, headers=headers)
    assert new_actions(mark) == ["case.accept"]
    mark = head()
    refused = client.post(f"/api/v1/cases/{case_id}/events", json={"transition": "accept"}, headers=headers)
    assert refused.status_code == 409 and new_actions(mark) == []  # refused: nothing written
    client.post("/api/v1/auth/logout", headers=headers)
    assert new_actions(mark) == ["auth.logout"]
    assert store.read(verify_chain).ok
