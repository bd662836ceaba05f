"""The generic case API: kinds metadata, the work list (filters in SQL, cursor pages, "my actions"),
the one case screen and the events route, over the real app with the test-only kind."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from server.domain.ids import now_china
from server.store.db import Store
from server.store.scope import under
from tests.conftest import Logins
from tests.web.test_cases_api import create


def worklist(client: TestClient, auth: Logins, user: str, **params: str) -> dict:  # type: ignore[type-arg]
    resp = client.get("/api/v1/worklist", headers=auth(user), params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_kinds_metadata_describes_states_transitions_and_views(client: TestClient, auth: Logins) -> None:
    kinds = {k["name"]: k for k in client.get("/api/v1/kinds", headers=auth("clerk")).json()["kinds"]}
    assert {"service_application", "grid_incident", "grid_preventive", "test_permit"} <= set(kinds)
    hall = kinds["service_application"]
    assert hall["label"] == "政务服务办件" and hall["states"]["submitted"] == "已申办"
    assert sorted(hall["terminal"]) == ["delivered", "not_accepted"]
    accept = next(t for t in hall["transitions"] if t["name"] == "accept")
    assert accept["label"] == "受理" and accept["to"] == "accepted" and "window_clerk" in accept["roles"]
    assert set(accept) >= {"from", "tiers", "required", "legal_basis", "system", "schema"}
    assert next(t for t in hall["transitions"] if t["name"] == "deem_accept")["system"] is True
    assert {"key": "item_name", "label": "事项"} in hall["views"]["columns"]
    assert hall["views"]["current_clock"]["in_approval"] == "promised"
    assert hall["creatable"] == ["submit"]  # the clerk may open an application
    one = client.get("/api/v1/kinds/grid_incident", headers=auth("grid1")).json()["kind"]
    assert one["name"] == "grid_incident" and one["creatable"] == ["report"]
    missing = client.get("/api/v1/kinds/nope", headers=auth("grid1"))
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "kind"


def test_worklist_filters_by_kind_state_and_actions_available_to_me(client: TestClient, auth: Logins,
                                                                     store: Store) -> None:
    submitted = create(store, "clerk")
    accepted = create(store, "clerk")
    r = client.post(f"/api/v1/cases/{accepted}/events", json={"transition": "accept"}, headers=auth("clerk"))
    assert r.status_code == 200
    body = worklist(client, auth, "clerk", kind="test_permit")
    assert {i["id"] for i in body["items"]} == {submitted, accepted} and body["next_cursor"] is None
    item = next(i for i in body["items"] if i["id"] == submitted)
    assert item["kind_label"] == "测试许可" and item["state_label"] == "已申请" and item["overdue"] is True
    assert {a["name"] for a in item["actions"]} == {"accept", "reject"}
    # the clerk can act only on the submitted one; the handler only on the accepted one
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", actionable="1")["items"]] == [
        submitted]
    assert [i["id"] for i in worklist(client, auth, "handler", kind="test_permit", actionable="1")["items"]] == [
        accepted]
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", state="accepted")["items"]] == [
        accepted]
    both = client.get("/api/v1/worklist?kind=test_permit&state=accepted&state=submitted", headers=auth("clerk"))
    assert len(both.json()["items"]) == 2
    bad = client.get("/api/v1/worklist", headers=auth("clerk"), params={"state": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    bad = client.get("/api/v1/worklist", headers=auth("clerk"), params={"kind": "nope"})
    assert bad.status_code == 404 and bad.json()["errors"][0]["field"] == "kind"


def test_worklist_pages_with_a_cursor_without_repeats_or_gaps(client: TestClient, auth: Logins,
                                                              store: Store) -> None:
    made = {create(store, "clerk") for _ in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"kind": "test_permit", "limit": "2", **({"cursor": cursor} if cursor else {})}
        body = worklist(client, auth, "clerk", **params)
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    for sort in ("updated", "due"):
        first = worklist(client, auth, "clerk", kind="test_permit", limit="3", sort=sort)
        rest = worklist(client, auth, "clerk", kind="test_permit", limit="3", sort=sort, cursor=first["next_cursor"])
        assert {i["id"] for i in first["items"]} | {i["id"] for i in rest["items"]} == made
    bad = client.get("/api/v1/worklist", headers=auth("clerk"), params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_worklist_scope_owner_and_due_filters(client: TestClient, auth: Logins, store: Store) -> None:
    mine = create(store, "community1")
    street = create(store, "clerk")
    community_path = store.query("SELECT org_path FROM cases WHERE id = ?", [mine])[0]["org_path"]
    ids = {i["id"] for i in worklist(client, auth, "clerk", kind="test_permit")["items"]}
    assert ids == {mine, street}
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", scope=community_path)["items"]] == [
        mine]
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", owner=community_path)["items"]] == [
        mine]
    assert [i["id"] for i in worklist(client, auth, "community1", kind="test_permit")["items"]] == [mine]
    refused = client.get("/api/v1/worklist", headers=auth("community1"), params={"scope": "440106"})
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "scope"
    # both were made "in the past" (the helper's fixed date), so their 5-working-day clock has run out
    assert {i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", overdue="1")["items"]} == ids
    assert all(i["overdue"] for i in worklist(client, auth, "clerk", kind="test_permit")["items"])
    assert worklist(client, auth, "clerk", kind="test_permit", due_soon="1")["items"] == []
    soon = (now_china() - timedelta(days=400)).date().isoformat()
    assert worklist(client, auth, "clerk", kind="test_permit", due_before=soon)["items"] == []
    later = (now_china() + timedelta(days=1)).date().isoformat()
    assert {i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", due_before=later)["items"]} == ids
    bad = client.get("/api/v1/worklist", headers=auth("clerk"), params={"due_before": "friday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "due_before"


def test_closed_cases_leave_the_worklist_unless_asked_for(client: TestClient, auth: Logins, store: Store) -> None:
    case_id = create(store, "clerk")
    r = client.post(f"/api/v1/cases/{case_id}/events", json={"transition": "reject", "payload": {"reason": "不符"}},
                    headers=auth("clerk"))
    assert r.status_code == 200
    assert worklist(client, auth, "clerk", kind="test_permit")["items"] == []
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", closed="1")["items"]] == [case_id]
    assert [i["id"] for i in worklist(client, auth, "clerk", kind="test_permit", state="rejected")["items"]] == [
        case_id]


def test_case_detail_has_the_contract_shape(client: TestClient, auth: Logins, store: Store) -> None:
    case_id = create(store, "clerk")
    body = client.get(f"/api/v1/cases/{case_id}", headers=auth("clerk")).json()
    case = body["case"]
    assert set(case) >= {"id", "kind", "kind_label", "number", "state", "state_label", "version", "org_path", "data",
                         "clocks", "current_clock", "created_at", "updated_at"}
    assert case["kind_label"] == "测试许可" and case["data"] == {"title": "测试事项"}
    decide = case["clocks"]["decide"]
    assert decide["overdue"] is True and decide["remaining_seconds"] < 0 and "起算日" in decide["explanation"]
    event = body["events"][0]
    assert event["label"] == "申请" and event["payload"] == {"title": "测试事项"}  # no engine "_" keys
    assert set(event) >= {"id", "seq", "transition", "from_state", "to_state", "actor", "role", "node_time",
                          "effective_time"}
    reject = next(a for a in body["available"] if a["name"] == "reject")
    assert reject["required"] == ["reason"] and set(reject) >= {"label", "schema", "legal_basis"}
    assert body["extra"] == {}


def test_same_event_id_twice_applies_once(client: TestClient, auth: Logins, store: Store) -> None:
    case_id = create(store, "clerk")
    url = f"/api/v1/cases/{case_id}/events"
    body = {"transition": "accept", "event_id": "0190f000-0000-7000-8000-00000000abcd", "base_version": 1}
    first = client.post(url, json=body, headers=auth("clerk"))
    again = client.post(url, json=body, headers=auth("clerk"))
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert store.query("SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [case_id])[0]["n"] == 2


def test_under_matches_whole_path_segments_only() -> None:
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (p TEXT)")
    paths = ["44", "44/01", "44/01/9", "44/010", "44_01", "44%/01", "4401", "45"]
    db.executemany("INSERT INTO t VALUES (?)", [(p,) for p in paths])

    def below(scope: str) -> set[str]:
        where, params = under("p", scope)
        return {r[0] for r in db.execute(f"SELECT p FROM t WHERE {where}", params)}

    assert below("44/01") == {"44/01", "44/01/9"}
    assert below("44") == {"44", "44/01", "44/01/9", "44/010"}
    assert below("44_01") == {"44_01"} and below("44%") == {"44%/01"}
