"""The one write path: reports, later steps and patrol logs as signed envelopes through the outbox."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from server.domain.ids import now_china
from server.store.db import Store
from tests.conftest import Logins
from tests.grid.helpers import (
    FEEDBACK,
    GRID,
    INSIDE,
    NEAR,
    OUTSIDE,
    case,
    counts,
    send,
    send_event,
    send_report,
    step,
    upload_photo,
    walk_to_filed,
)


def test_report_through_the_outbox_becomes_a_case_with_its_photos(client: TestClient, auth: Logins,
                                                                  store: Store) -> None:
    cid = send_report(client, auth, photos=2)
    row = case(store, cid)
    assert row["kind"] == "grid_incident" and row["state"] == "reported" and len(row["data"]["photos"]) == 2
    assert row["data"]["submission_id"] == cid
    event = store.query("SELECT device_id, device_time FROM case_events WHERE case_id = ?", [cid])[0]
    assert event["device_id"] and event["device_time"]


def test_bad_reports_come_back_per_item_and_leave_only_quarantine(client: TestClient, auth: Logins,
                                                                   store: Store) -> None:
    photo = upload_photo(client, auth, "grid1", "ok")
    good = {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾"}
    before = counts(store)
    cases = [
        ({**good}, [], "attachments"),
        ({**good, "location": OUTSIDE}, [photo], "payload.location"),
        ({**good, "category_code": "XX0000"}, [photo], "payload.category_code"),
    ]
    for payload, attachments, field in cases:
        result = send(client, auth, "grid1", "incident_report", payload, attachments)
        assert result["status"] == "invalid" and result["errors"][0]["field"] == field, result
    assert counts(store)[0:2] == before[0:2] and counts(store)[4:] == before[4:]  # no case, event, index row
    assert store.query("SELECT COUNT(*) AS n FROM quarantine")[0]["n"] == 3


def test_a_clerk_cannot_report_for_a_grid(client: TestClient, auth: Logins) -> None:
    photo = upload_photo(client, auth, "clerk", "c")
    result = send(client, auth, "clerk", "incident_report",
                  {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾"}, [photo])
    assert result["status"] == "forbidden"


def test_member_verifies_handles_and_checks_offline_with_case_events(client: TestClient, auth: Logins,
                                                                     store: Store) -> None:
    cid = send_report(client, auth)
    step(client, auth, "clerk", cid, "accept")
    assert send_event(client, auth, "grid2", cid, "verify", genuine=True)["status"] == "created"
    step(client, auth, "leader", cid, "file")
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=GRID)
    assert send_event(client, auth, "grid1", cid, "accept_task")["status"] == "created"
    after = upload_photo(client, auth, "grid1", "after")
    done = send_event(client, auth, "grid1", cid, "feedback", result="已清理",
                      after_photos=[{k: after[k] for k in ("sha256", "mime", "name", "size")}])
    assert done["status"] == "created", done
    step(client, auth, "clerk", cid, "request_check")
    own = send_event(client, auth, "grid1", cid, "check_pass", check_photos=FEEDBACK["after_photos"],
                     check_location=NEAR)
    assert own["status"] == "invalid" and "处置人以外" in own["errors"][0]["message"]
    ok = send_event(client, auth, "grid2", cid, "check_pass", check_photos=FEEDBACK["after_photos"],
                    check_location=NEAR)
    assert ok["status"] == "created", ok
    step(client, auth, "leader", cid, "close")
    assert case(store, cid)["state"] == "closed"


def test_patrol_log_through_the_outbox_links_a_report_made_on_the_way(client: TestClient, auth: Logins,
                                                                      store: Store) -> None:
    cid = send_report(client, auth)
    start = now_china() - timedelta(hours=1)
    result = send(client, auth, "grid1", "patrol_log", {
        "started_at": start.isoformat(timespec="seconds"),
        "ended_at": (start + timedelta(minutes=50)).isoformat(timespec="seconds"),
        "route": [{"lng": 113.3407, "lat": 23.1305}, {"lng": 113.3411, "lat": 23.1318}],
        "findings": [{"note": "发现暴露垃圾", "incident_id": cid}]})
    assert result["status"] == "created", result
    patrols = client.get("/api/v1/grid/patrols", headers=auth("leader")).json()["patrols"]
    assert patrols[0]["id"] == result["submission_id"] and patrols[0]["findings"][0]["incident_id"] == cid


def test_tasks_of_a_member_after_reports_arrive(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth, "grid2")
    walk_to_filed(client, auth, cid)
    tasks = client.get("/api/v1/grid/tasks", headers=auth("dispatcher")).json()["tasks"]
    assert [t["id"] for t in tasks] == [cid] and tasks[0]["category_name"] == "暴露垃圾"
