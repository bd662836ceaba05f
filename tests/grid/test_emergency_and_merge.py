"""Emergencies escalate at once (to the district's board); possible duplicates are suggested, merged only
by a person, and a merge keeps both reports' history."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from starlette.testclient import TestClient

from server.store import grid
from server.store.db import Store
from server.web.api_grid import push_escalations_once
from sync.scheduler import SyncScheduler
from tests.conftest import Logins
from tests.grid.conftest import HubAndStreet
from tests.grid.helpers import ENFORCEMENT_TEAM, INSIDE, case, report, send_report, step, walk_to_filed

GAS = "SJ0403"  # 燃气泄漏: emergency, 1 natural hour


def test_emergency_is_escalated_filed_at_once_and_first_on_the_board(client: TestClient, auth: Logins,
                                                                     store: Store) -> None:
    ordinary = send_report(client, auth)
    cid = send_report(client, auth, category=GAS, description="闻到燃气味，疑似泄漏")
    row = case(store, cid)
    assert row["data"]["emergency"] is True and row["data"]["priority_sync"] is True
    assert [e["case_id"] for e in store.read(grid.pending_escalations)] == [cid]
    assert store.query("SELECT entity FROM change_log WHERE entity = 'grid_escalation' AND entity_id = ?", [cid])
    # one audit entry for the report's envelope; the escalation it caused is listed in it
    (entry,) = store.query("SELECT detail FROM audit_log WHERE action = 'case.report' AND object_id = ?", [cid])
    assert [e["action"] for e in json.loads(entry["detail"])["also"]] == ["grid.escalate"]
    # 先处置后核实: the shift leader files an emergency straight away, the clock is in natural hours
    step(client, auth, "leader", cid, "file")
    step(client, auth, "dispatcher", cid, "dispatch", unit_code="440106-ZJJ")
    handle = case(store, cid)["clocks"]["handle"]
    assert handle["unit"] == "calendar_hour" and handle["duration"] == 1
    board = client.get("/api/v1/grid/board", headers=auth("leader")).json()
    assert board["emergencies"] == 1 and board["cases"][0]["id"] == cid
    only = client.get("/api/v1/grid/board?emergency=1", headers=auth("leader")).json()
    assert [c["id"] for c in only["cases"]] == [cid]
    assert ordinary not in [c["id"] for c in only["cases"]]


def test_emergency_reaches_the_district_board_with_the_next_push(hub_and_street: HubAndStreet) -> None:
    """The street pushes as soon as an emergency is pending (no waiting for the night)."""
    pair = hub_and_street
    cid = report(pair.street_store, category=GAS, description="燃气泄漏")
    scheduler = SyncScheduler(lambda trigger: pair.sync(trigger=trigger), "02:00", "Asia/Shanghai")
    services: Any = SimpleNamespace(store=pair.street_store, extra={"sync_scheduler": scheduler})

    assert asyncio.run(push_escalations_once(services)) == "ok"
    assert pair.street_store.read(grid.pending_escalations) == []
    assert asyncio.run(push_escalations_once(services)) == "none"
    hub = pair.hub_client
    token = hub.post("/api/v1/auth/login", json={"username": "district_admin", "password": "demo1234"}).json()["token"]
    board = hub.get("/api/v1/grid/board?emergency=1", headers={"Authorization": f"Bearer {token}"}).json()
    assert [c["id"] for c in board["cases"]] == [cid]
    assert board["cases"][0]["category_name"] == "燃气泄漏" and board["cases"][0]["emergency"] is True


def test_unpaired_node_keeps_the_escalation_pending(store: Store) -> None:
    report(store, category=GAS, description="燃气泄漏")
    services: Any = SimpleNamespace(store=store, extra={})

    assert asyncio.run(push_escalations_once(services)) == "no_hub"
    assert len(store.read(grid.pending_escalations)) == 1


def test_possible_duplicate_is_suggested_and_merged_by_a_person(client: TestClient, auth: Logins,
                                                                store: Store) -> None:
    first = send_report(client, auth, "grid1", description="路口垃圾堆")
    near = {**INSIDE, "lng": INSIDE["lng"] + 0.0002}  # about 20 m east
    second = send_report(client, auth, "grid2", location=near, description="路口有人乱倒垃圾")
    other_kind = send_report(client, auth, category="SJ0504", description="占道经营")  # same place, other category
    far = send_report(client, auth, location={"lng": 113.3411, "lat": 23.1330}, description="北侧垃圾")  # ~130 m north
    dupes = client.get(f"/api/v1/grid/cases/{second}/duplicates", headers=auth("clerk")).json()
    assert [d["id"] for d in dupes["duplicates"]] == [first]
    assert 15 < dupes["duplicates"][0]["distance_m"] < 25 and dupes["radius_m"] == 50
    assert other_kind not in [d["id"] for d in dupes["duplicates"]] and far not in dupes["duplicates"]
    # never merged silently: both still open, the verifier sees the hint in the task list
    assert case(store, first)["state"] == case(store, second)["state"] == "reported"
    tasks = client.get("/api/v1/grid/tasks", headers=auth("clerk")).json()["tasks"]
    assert {t["id"]: t["possible_duplicates"] for t in tasks}[second] == 1
    # a different category or a far report cannot be merged
    refused = client.post(f"/api/v1/grid/cases/{other_kind}/merge", headers=auth("clerk"), json={"into": first})
    assert refused.status_code == 422 and "类别不同" in refused.json()["error"]
    too_far = client.post(f"/api/v1/grid/cases/{far}/merge", headers=auth("clerk"), json={"into": first})
    assert too_far.status_code == 422 and "超过并单距离" in too_far.json()["error"]
    merged = client.post(f"/api/v1/grid/cases/{second}/merge", headers=auth("clerk"),
                         json={"into": first, "reason": "同一堆垃圾"})
    assert merged.status_code == 200, merged.text
    dup, kept = case(store, second), case(store, first)
    assert dup["state"] == "merged" and dup["data"]["merged_into"] == first
    assert kept["state"] == "reported" and kept["data"]["merged_case"] == second
    # both histories kept: the duplicate's own report and its merge, and an event on the kept case
    assert [e["transition"] for e in store.query("SELECT transition FROM case_events WHERE case_id = ?"
                                                 " ORDER BY seq", [second])] == ["report", "merge"]
    assert [e["transition"] for e in store.query("SELECT transition FROM case_events WHERE case_id = ?"
                                                 " ORDER BY seq", [first])] == ["report", "absorb"]
    detail = client.get(f"/api/v1/grid/cases/{first}", headers=auth("clerk")).json()
    assert detail["merges"][0]["duplicate_id"] == second
    again = client.post(f"/api/v1/grid/cases/{second}/merge", headers=auth("clerk"), json={"into": first})
    assert again.status_code == 422 and "已并入" in again.json()["error"]


def test_merge_cannot_be_forged_through_the_generic_event_endpoint(client: TestClient, auth: Logins,
                                                                   store: Store) -> None:
    first = send_report(client, auth, "grid1")
    second = send_report(client, auth, "grid2")
    refused = step(client, auth, "clerk", second, "merge", expect=422, merged_into=first)
    assert "并单功能" in refused["error"] and case(store, second)["state"] == "reported"


def test_merge_needs_a_verifier_and_an_early_state(client: TestClient, auth: Logins, store: Store) -> None:
    first = send_report(client, auth, "grid1")
    second = send_report(client, auth, "grid2")
    assert client.post(f"/api/v1/grid/cases/{second}/merge", headers=auth("dispatcher"),
                       json={"into": first}).status_code == 403
    walk_to_filed(client, auth, second)
    step(client, auth, "dispatcher", second, "dispatch", unit_code=ENFORCEMENT_TEAM)
    late = client.post(f"/api/v1/grid/cases/{second}/merge", headers=auth("leader"), json={"into": first})
    assert late.status_code == 422 and "已派遣" in late.json()["error"]
    # the other way round works: the early report joins the dispatched one
    ok = client.post(f"/api/v1/grid/cases/{first}/merge", headers=auth("leader"), json={"into": second})
    assert ok.status_code == 200, ok.text
    assert case(store, second)["state"] == "dispatched" and case(store, first)["state"] == "merged"
