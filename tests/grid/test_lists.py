"""Lists: categories, grids, a member's tasks, the board, hot spots and preventive work, patrol logs, thresholds."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from server.domain.ids import now_china
from server.store.db import Store
from server.store.grid_patrols import handle_patrol_log
from tests.conftest import Logins
from tests.grid.conftest import HubAndStreet
from tests.grid.helpers import (
    CHECK,
    ENFORCEMENT_TEAM,
    FEEDBACK,
    GRID,
    INSIDE,
    act,
    case,
    envelope,
    intake,
    report,
    send,
    send_report,
    step,
    upload_photo,
    walk_to_filed,
)


def test_categories_list_the_demo_set_with_limits_and_closure_conditions(client: TestClient, auth: Logins) -> None:
    body = client.get("/api/v1/grid/categories", headers=auth("grid1")).json()
    cats = {c["code"]: c for c in body["categories"]}
    assert len(cats) >= 20 and body["version"]
    assert cats["SJ0102"]["name"] == "暴露垃圾" and cats["SJ0102"]["closure_condition"] == "清除"
    assert cats["SJ0101"]["time_limit"] == {"unit": "working_day", "amount": 15}
    assert cats["SJ0104"]["time_limit_label"] == "5 个工作时"
    assert cats["SJ0403"]["emergency"] is True and cats["BJ0103"]["kind_label"] == "部件"
    for name in ("违法搭建", "道路破损", "井盖缺失", "占道经营", "噪声扰民", "消防通道堵塞"):
        assert name in {c["name"] for c in cats.values()}


def test_grids_are_scoped_and_carry_polygon_and_members(client: TestClient, auth: Logins) -> None:
    mine = client.get("/api/v1/grid/grids", headers=auth("grid1")).json()["grids"]
    assert [g["code"] for g in mine] == [GRID]
    assert len(mine[0]["polygon"]) == 5 and {m["display_name"] for m in mine[0]["members"]} == {"网格员 张伟",
                                                                                                 "网格员 林芳"}
    street = client.get("/api/v1/grid/grids", headers=auth("leader")).json()["grids"]
    assert len(street) > 1 and all(g["org_path"].startswith("440106/440106006000/") for g in street)


def test_tasks_follow_the_case_to_whoever_acts_next(client: TestClient, auth: Logins, store: Store) -> None:
    def tasks(user: str) -> dict[str, list[str]]:
        return {t["id"]: t["actions"] for t in client.get("/api/v1/grid/tasks", headers=auth(user)).json()["tasks"]}

    cid = send_report(client, auth)
    assert tasks("clerk")[cid] == ["accept"] and cid in tasks("leader") and cid not in tasks("grid1")
    step(client, auth, "clerk", cid, "accept")
    assert tasks("grid1")[cid] == ["verify"] and tasks("grid2")[cid] == ["verify"]
    step(client, auth, "grid1", cid, "verify", genuine=True)
    step(client, auth, "leader", cid, "file")
    assert tasks("dispatcher")[cid] == ["dispatch"]
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=GRID)
    assert tasks("grid1")[cid] == ["return", "accept_task"] and cid not in tasks("handler")
    step(client, auth, "grid1", cid, "accept_task")
    step(client, auth, "grid1", cid, "feedback", **FEEDBACK)
    step(client, auth, "clerk", cid, "request_check")
    assert cid not in tasks("grid1")  # the handler may not check their own work
    assert tasks("grid2")[cid] == ["check_pass", "check_fail"]
    step(client, auth, "grid2", cid, "check_pass", **CHECK)
    assert tasks("leader")[cid] == ["close", "rework"]
    assert cid not in tasks("community1")


def test_board_counts_by_state_and_shows_overdue_first(client: TestClient, auth: Logins, store: Store) -> None:
    old = report(store, category="SJ0104", at=now_china() - timedelta(days=10), description="道路不洁")
    t = now_china() - timedelta(days=10)
    act(store, "clerk", old, "accept", t + timedelta(minutes=1))
    act(store, "grid1", old, "verify", t + timedelta(minutes=2), genuine=True)
    act(store, "leader", old, "file", t + timedelta(minutes=3))
    act(store, "dispatcher", old, "dispatch", t + timedelta(minutes=4), unit_code=ENFORCEMENT_TEAM)
    fresh = send_report(client, auth)
    closed_early = send_report(client, auth, description="误报")
    step(client, auth, "leader", closed_early, "not_file", not_filed_reason_code="other", not_filed_reason="误报")
    board = client.get("/api/v1/grid/board", headers=auth("leader")).json()
    assert board["counts"] == {"dispatched": 1, "reported": 1} and board["overdue"] == 1
    first = board["cases"][0]
    assert first["id"] == old and first["overdue"] is True and first["remaining_seconds"] < 0
    assert board["cases"][1]["id"] == fresh and board["cases"][1]["due_at"] is None
    overdue = client.get("/api/v1/grid/board?overdue=1", headers=auth("leader")).json()["cases"]
    assert [c["id"] for c in overdue] == [old]
    by_state = client.get("/api/v1/grid/board?state=not_filed", headers=auth("leader")).json()["cases"]
    assert [c["id"] for c in by_state] == [closed_early]
    bad = client.get("/api/v1/grid/board?state=nope", headers=auth("leader"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
    other_grid = client.get("/api/v1/grid/board", headers=auth("community1")).json()
    assert other_grid["counts"] == {"dispatched": 1, "reported": 1}  # the grid lies in the worker's community


def test_recurring_place_becomes_a_hot_spot_and_then_preventive_work(client: TestClient, auth: Logins,
                                                                    store: Store) -> None:
    start = now_china() - timedelta(days=30)
    ids = [report(store, at=start + timedelta(days=7 * i), description=f"第{i + 1}次暴露垃圾",
                  location={**INSIDE, "lng": INSIDE["lng"] + 0.00005 * i}) for i in range(3)]
    send_report(client, auth, category="SJ0504", description="占道经营")  # one report of another category: no hot spot
    spots = client.get("/api/v1/grid/hotspots", headers=auth("leader")).json()
    assert len(spots["hotspots"]) == 1 and spots["min_reports"] == 3
    spot = spots["hotspots"][0]
    assert spot["reports"] == 3 and spot["category_name"] == "暴露垃圾" and spot["case_ids"] == sorted(ids)
    assert client.get("/api/v1/grid/hotspots?all=1", headers=auth("leader")).json()["hotspots"][1]["reports"] == 1
    denied = client.post(f"/api/v1/grid/hotspots/{spot['id']}/preventive", headers=auth("grid1"),
                         json={"measure": "增设垃圾桶", "unit_code": ENFORCEMENT_TEAM})
    assert denied.status_code == 403
    bad_unit = client.post(f"/api/v1/grid/hotspots/{spot['id']}/preventive", headers=auth("leader"),
                           json={"measure": "增设垃圾桶", "unit_code": "440106008000-enforcement_team"})
    assert bad_unit.status_code == 422 and bad_unit.json()["errors"][0]["field"] == "unit_code"
    created = client.post(f"/api/v1/grid/hotspots/{spot['id']}/preventive", headers=auth("leader"),
                          json={"measure": "增设垃圾桶并张贴告示", "unit_code": ENFORCEMENT_TEAM})
    assert created.status_code == 200, created.text
    again = client.post(f"/api/v1/grid/hotspots/{spot['id']}/preventive", headers=auth("leader"),
                        json={"measure": "再布置", "unit_code": ENFORCEMENT_TEAM})
    assert again.status_code == 409
    made = created.json()
    work = case(store, made["case_id"])
    assert work["kind"] == "grid_preventive" and work["state"] == "assigned"
    assert work["clocks"]["prevent"]["duration"] == 10 and work["data"]["case_ids"] == sorted(ids)
    listed = client.get("/api/v1/grid/hotspots", headers=auth("leader")).json()["hotspots"][0]
    assert listed["status"] == "preventive" and listed["preventive_case_id"] == made["case_id"]
    step(client, auth, "handler", made["case_id"], "complete", result="已增设垃圾桶两个")
    step(client, auth, "leader", made["case_id"], "accept_work")
    assert case(store, made["case_id"])["state"] == "closed"


def test_merged_reports_do_not_make_a_hot_spot(client: TestClient, auth: Logins, store: Store) -> None:
    a, b, c = (send_report(client, auth, description=f"垃圾{i}") for i in range(3))
    assert client.get("/api/v1/grid/hotspots", headers=auth("leader")).json()["hotspots"][0]["reports"] == 3
    assert client.post(f"/api/v1/grid/cases/{b}/merge", headers=auth("clerk"), json={"into": a}).status_code == 200
    assert client.get("/api/v1/grid/hotspots", headers=auth("leader")).json()["hotspots"] == []
    assert case(store, c)["state"] == "reported"


def test_patrol_log_with_route_and_findings_linked_to_incidents(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    cid = send_report(client, auth)
    start = now_china() - timedelta(hours=2)
    payload = {
        "started_at": start.isoformat(), "ended_at": (start + timedelta(minutes=95)).isoformat(),
        "route": [{"lng": 113.3407, "lat": 23.1305}, {"lng": 113.3415, "lat": 23.1305},
                  {"lng": 113.3415, "lat": 23.1330}, {"lng": 113.3450, "lat": 23.1330}],
        "findings": [{"note": "发现暴露垃圾，已上报", "incident_id": cid, "location": INSIDE},
                     {"note": "宣传栏破损，待报部件"}],
    }
    result = intake(store, "grid1", envelope(payload, [], kind="patrol_log"), handler=handle_patrol_log)
    assert result.status == "created" and result.record["points_outside"] == 1
    listed = client.get("/api/v1/grid/patrols?member=me", headers=auth("grid1")).json()["patrols"]
    assert len(listed) == 1 and listed[0]["minutes"] == 95 and 600 < listed[0]["distance_m"] < 800
    finding = listed[0]["findings"][0]
    assert finding["incident_id"] == cid and finding["incident_number"] == case(store, cid)["number"]
    assert client.get("/api/v1/grid/patrols?member=me", headers=auth("grid2")).json()["patrols"] == []
    assert len(client.get("/api/v1/grid/patrols", headers=auth("leader")).json()["patrols"]) == 1
    bad = client.get("/api/v1/grid/patrols?since=yesterday", headers=auth("leader"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"


def test_thresholds_are_configurable_by_the_street_admin(client: TestClient, auth: Logins, store: Store) -> None:
    assert client.get("/api/v1/grid/settings", headers=auth("grid1")).json()["settings"]["duplicate_radius_m"] == 50
    new = {**client.get("/api/v1/grid/settings", headers=auth("admin")).json()["settings"], "duplicate_radius_m": 200}
    assert client.put("/api/v1/grid/settings", headers=auth("leader"), json=new).status_code == 403
    too_big = client.put("/api/v1/grid/settings", headers=auth("admin"), json={**new, "duplicate_radius_m": 99999})
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "duplicate_radius_m"
    assert client.put("/api/v1/grid/settings", headers=auth("admin"), json=new).status_code == 200
    assert store.query("SELECT action FROM audit_log WHERE action = 'grid.settings'")
    first = send_report(client, auth)
    far = send_report(client, auth, location={"lng": 113.3411, "lat": 23.1330})  # ~130 m: a duplicate within 200 m
    dupes = client.get(f"/api/v1/grid/cases/{far}/duplicates", headers=auth("clerk")).json()["duplicates"]
    assert [d["id"] for d in dupes] == [first]


def test_case_detail_offers_the_users_actions_and_the_timeline(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_filed(client, auth, cid)
    detail = client.get(f"/api/v1/grid/cases/{cid}", headers=auth("dispatcher")).json()
    assert detail["actions"] == ["dispatch"] and detail["case"]["state_label"] == "已立案"
    assert [e["label"] for e in detail["events"]] == ["上报", "受理（派网格员核实）", "现场核实", "立案"]
    assert all(not k.startswith("_") for e in detail["events"] for k in e["payload"])
    assert client.get(f"/api/v1/grid/cases/{cid}", headers=auth("grid1")).json()["actions"] == []
    missing = client.get("/api/v1/grid/cases/00000000-0000-7000-8000-000000000000", headers=auth("grid1"))
    assert missing.status_code == 404


def test_the_district_configures_its_category_table(hub_and_street: HubAndStreet) -> None:
    hub = hub_and_street.hub_client
    token = hub.post("/api/v1/auth/login", json={"username": "district_admin", "password": "demo1234"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    cats = {c["code"]: c for c in hub.get("/api/v1/grid/categories", headers=headers).json()["categories"]}
    body = {k: v for k, v in cats["SJ0102"].items() if k not in ("kind_label", "time_limit_label", "catalogue_version")}
    body["time_limit"] = {"unit": "working_hour", "amount": 6}
    saved = hub.put("/api/v1/grid/categories/SJ0102", headers=headers, json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["category"]["time_limit_label"] == "6 个工作时"
    off = hub.put("/api/v1/grid/categories/SJ0102", headers=headers, json={**body, "active": False})
    assert off.status_code == 200
    listed = [c["code"] for c in hub.get("/api/v1/grid/categories", headers=headers).json()["categories"]]
    assert "SJ0102" not in listed
    everything = hub.get("/api/v1/grid/categories?all=1", headers=headers).json()["categories"]
    assert any(c["code"] == "SJ0102" and not c["active"] for c in everything)
    # an emergency must count in hours; a code must match its path
    bad = hub.put("/api/v1/grid/categories/SJ0102", headers=headers, json={**body, "emergency": True,
                                                                          "time_limit": {"unit": "working_day",
                                                                                         "amount": 1}})
    assert bad.status_code == 422
    assert hub.put("/api/v1/grid/categories/SJ0104", headers=headers, json=body).status_code == 422
    assert hub_and_street.hub_client.app.state.services.store.query(  # type: ignore[attr-defined]
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'grid.category'")[0]["n"] == 2


def test_an_inactive_category_cannot_be_reported(client: TestClient, auth: Logins, store: Store) -> None:
    store.write(lambda db: db.execute("UPDATE grid_categories SET active = 0 WHERE code = 'SJ0102'"))
    result = send(client, auth, "grid1", "incident_report",
                  {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾"},
                  [upload_photo(client, auth, "grid1", "x")])
    assert result["status"] == "invalid" and result["errors"][0]["field"] == "payload.category_code"
